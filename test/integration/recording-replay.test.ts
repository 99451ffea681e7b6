import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { buildSimulatedWorld } from '../../src/cli/build-drivers.js';
import { loadPolicyFile } from '../../src/config/load.js';
import { cycleAt, daemonsStoppedAfterEach } from '../helpers/sim-daemon.js';

const run = promisify(execFile);
const startDaemon = daemonsStoppedAfterEach();
const DEMO_POLICY = 'config/demo.yaml';
const CYCLE_SECONDS = 600;

/** The built CLI, as an operator runs it (`npm run build` comes first). */
async function consolidator(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['dist/main.js', ...args], { maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failure = e as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

describe('what it would save: record in dry-run, replay with the built CLI', () => {
  it('the real daemon records the demo datacenter in dry-run; simulate --recording replays it under the demo policy', async () => {
    const loaded = await loadPolicyFile(DEMO_POLICY);
    if (!loaded.ok) throw new Error('demo policy invalid');
    const demo = loaded.value.policy;
    const world = await buildSimulatedWorld(loaded.value);
    const t = await startDaemon({
      setup: world.datacenter.setup,
      datacenter: world.datacenter,
      policy: { mode: 'dry-run', thresholds: demo.thresholds, consolidation: demo.consolidation, safety: demo.safety },
    });
    // Six simulated hours of the demo day, a cycle every 10 minutes, the daemon touching nothing.
    const start = world.datacenter.nowSeconds;
    for (let k = 1; k <= 36; k++) {
      const report = await cycleAt(t, start + k * CYCLE_SECONDS);
      expect(report.result).toBe('ok');
    }
    await t.daemon.stop();
    const dir = join(t.dir, 'recording');
    expect(await readdir(dir)).toEqual(['recording-2011-03-03.ndjson.gz']);

    const replay = await consolidator('simulate', '--recording', dir, '--policy', DEMO_POLICY, '--json');
    expect(replay.stderr).toBe('');
    expect(replay.code).toBe(0);
    const s = JSON.parse(replay.stdout.trimEnd().split('\n').pop() ?? '') as Record<string, unknown>;
    expect(s).toMatchObject({ cycles: 36, intervalSeconds: CYCLE_SECONDS, hosts: 12, vms: 48, recordedModes: ['dry-run'], from: expect.stringMatching(/^2011-03-03T/) });
    // In dry-run nothing was powered off; under the demo policy the replay consolidates and saves.
    expect(s['savedPct']).toBeGreaterThan(10);
    expect(s['migrations']).toBeGreaterThan(0);
    expect(s['powerOffs']).toBeGreaterThan(0);
    expect((s['perHost'] as unknown[]).length).toBe(12);

    const human = await consolidator('simulate', '--recording', dir, '--policy', DEMO_POLICY, '--plot', join(t.dir, 'replay.svg'));
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/saving\s+\d+\.\d\d kWh, \d+\.\d %/);
    expect(human.stdout).toMatch(/^demo-01\s+\d+\s+\d+\s+\d+%\s+\d+%\s+\d+\.\d h$/m);
  });
});
