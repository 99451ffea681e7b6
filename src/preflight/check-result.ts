import type { HostId } from '../model/ids.js';

/**
 * The checks `consolidator check` runs, in the order it reports them. Host checks: `ssh` (reachable,
 * host key verified), `libvirt` and `qemu` (versions), and per power path `bmc-power`, `bmc-reading`,
 * `bmc-identity`. Pair checks, from host to peer (the direction of a migration): `peer-resolves`,
 * `peer-storage`, `peer-versions`.
 */
export const CHECK_NAMES = ['ssh', 'libvirt', 'qemu', 'bmc-power', 'bmc-reading', 'bmc-identity', 'peer-resolves', 'peer-storage', 'peer-versions'] as const;
export type CheckName = (typeof CHECK_NAMES)[number];

/** `skip`: not run (what it needs failed) or nothing to compare; it does not fail the check. */
export type CheckOutcome = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  readonly host: HostId;
  readonly check: CheckName;
  readonly result: CheckOutcome;
  /** What was seen, or why it failed; never a secret. */
  readonly detail: string;
  /** For a failure: what to do about it. */
  readonly fix?: string;
  /** bmc-* checks: the power path (driver name) it went through. */
  readonly path?: string;
  /** peer-* checks: the destination; `host` is the source. */
  readonly peer?: HostId;
}

export interface FleetCheckReport {
  /** The hosts checked, in policy order. */
  readonly hosts: readonly HostId[];
  /** Host checks grouped by host, then pair checks by source and destination. */
  readonly results: readonly CheckResult[];
  readonly durationMs: number;
}

export const pass = (base: Pick<CheckResult, 'host' | 'check' | 'path' | 'peer'>, detail: string): CheckResult => ({ ...clean(base), result: 'pass', detail });
export const skip = (base: Pick<CheckResult, 'host' | 'check' | 'path' | 'peer'>, detail: string): CheckResult => ({ ...clean(base), result: 'skip', detail });
export const fail = (base: Pick<CheckResult, 'host' | 'check' | 'path' | 'peer'>, detail: string, fix: string): CheckResult => ({
  ...clean(base),
  result: 'fail',
  detail,
  fix,
});

/** Drops undefined keys, so the JSON carries `path` and `peer` only where they mean something. */
function clean(base: Pick<CheckResult, 'host' | 'check' | 'path' | 'peer'>): Pick<CheckResult, 'host' | 'check' | 'path' | 'peer'> {
  return {
    host: base.host,
    check: base.check,
    ...(base.path !== undefined ? { path: base.path } : {}),
    ...(base.peer !== undefined ? { peer: base.peer } : {}),
  };
}

export function isFleetHealthy(report: FleetCheckReport): boolean {
  return report.results.every((r) => r.result !== 'fail');
}
