import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { IpmitoolOutput } from '../../../../src/drivers/power/ipmitool-runner.js';

/** Real ipmitool output captured from ipmi_sim (test/fixtures/ipmitool/capture.ts). */
export const FIXTURE_DIR = join(import.meta.dirname, '../../../fixtures/ipmitool');

export type FixtureName =
  | 'chassis-power-status-on'
  | 'chassis-power-status-off'
  | 'chassis-power-on'
  | 'chassis-power-off'
  | 'chassis-power-soft'
  | 'chassis-power-cycle'
  | 'dcmi-power-reading-supported'
  | 'dcmi-power-reading-deactivated'
  | 'dcmi-power-reading-unsupported'
  | 'raw-get-system-guid'
  | 'raw-get-system-guid-unset'
  | 'error-raw-invalid-command'
  | 'error-wrong-password'
  | 'error-wrong-user'
  | 'error-unreachable'
  | 'error-cipher-suite-17'
  | 'error-no-password'
  | 'error-slow-bmc'
  | 'error-status-failed'
  | 'error-power-off-refused';

export function fixtureNames(): string[] {
  return readdirSync(FIXTURE_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

export function fixture(name: FixtureName, durationMs = 1): IpmitoolOutput {
  const dir = join(FIXTURE_DIR, name);
  const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8')) as { exitCode: number | null };
  return { stdout: readFileSync(join(dir, 'stdout'), 'utf8'), stderr: readFileSync(join(dir, 'stderr'), 'utf8'), exitCode: meta.exitCode, durationMs };
}
