import type { LoadedPolicy } from '../config/load.js';
import type { HostId } from '../model/ids.js';
import type { HealthReport } from '../observability/http-server.js';
import type { StateKeeper } from '../state/state-keeper.js';
import type { CycleReport } from './cycle-report.js';
import type { JobProgress } from './operator-jobs.js';

const MS_PER_SECOND = 1000;

export interface CycleHealthInput {
  readonly nowMs: number;
  /** When the daemon started: before its first successful cycle, it gets the same grace from here. */
  readonly startedAtMs: number;
  readonly lastSuccessfulCycleMs: number | undefined;
  /**
   * When that cycle started on the daemon's clock, which is what the report shows (the simulated
   * clock in the demo; the rule itself counts wall time, as the schedule does). Default: lastSuccessfulCycleMs.
   */
  readonly lastSuccessfulCycleShownMs?: number | undefined;
  readonly scheduleIntervalMs: number;
  /** Unhealthy once this many schedule intervals passed without a successful cycle. */
  readonly maxMissedIntervals: number;
}

/** The health rule: a successful cycle within the last `maxMissedIntervals` schedule intervals. */
export function healthFromLastCycle(input: CycleHealthInput): HealthReport {
  const allowedMs = input.maxMissedIntervals * input.scheduleIntervalMs;
  const last = input.lastSuccessfulCycleMs;
  const sinceMs = input.nowMs - (last ?? input.startedAtMs);
  const withLast = last === undefined ? {} : { lastSuccessfulCycleMs: input.lastSuccessfulCycleShownMs ?? last };
  if (sinceMs <= allowedMs) return { healthy: true, ...withLast, ...(last === undefined ? { reason: 'starting: no cycle has completed yet' } : {}) };
  const what = last === undefined ? 'no successful cycle since start' : 'no successful cycle';
  return {
    healthy: false,
    ...withLast,
    reason: `${what} for ${Math.round(sinceMs / MS_PER_SECOND)} s (more than ${input.maxMissedIntervals} schedule intervals)`,
  };
}

/** What the daemon knows at one moment, for `consolidator status` and GET /status. */
export interface DaemonView {
  readonly version: string;
  readonly policyFile: string;
  readonly loaded: LoadedPolicy;
  readonly health: HealthReport;
  readonly lastReport: CycleReport | undefined;
  readonly cycleRunning: boolean;
  readonly jobProgress: JobProgress | undefined;
  /** Undefined before the state is loaded. */
  readonly keeper: StateKeeper | undefined;
}

export type HostStateName = 'on' | 'off' | 'unknown' | 'maintenance';

/** The status document: read-only, JSON, the same for the CLI and for whoever scrapes it. */
export function daemonStatus(view: DaemonView): Record<string, unknown> {
  const { lastReport: report, keeper } = view;
  const maintenance = keeper?.inMaintenance() ?? new Set<HostId>();
  const poweredOffByUs = keeper?.poweredOffByUs() ?? [];
  const hostsByState: Record<HostStateName, string[]> = { on: [], off: [], unknown: [], maintenance: [] };
  for (const [host, state] of hostStates(report, poweredOffByUs, maintenance)) hostsByState[state].push(host);
  return {
    version: view.version,
    mode: view.loaded.policy.mode,
    policyFile: view.policyFile,
    health: view.health,
    lastCycle: report
      ? {
          cycle: report.cycle,
          startedAt: new Date(report.startedAtMs).toISOString(),
          result: report.result,
          ...(report.error ? { error: { code: report.error.code, message: report.error.message } } : {}),
          summary: report.plan?.summary,
          outcomes: report.outcomes.map((o) => ({
            action: o.action.id,
            type: o.action.type,
            result: o.result,
            ...(o.result === 'skipped' ? { reason: o.reason, detail: o.detail } : o.result === 'failed' ? { errorCode: o.errorCode, detail: o.detail } : {}),
          })),
        }
      : undefined,
    cycleRunning: view.cycleRunning,
    operatorJob: view.jobProgress,
    hostsByState,
    actionsInFlight: keeper?.interrupted?.steps.filter((s) => s.status === 'running' || s.status === 'pending') ?? [],
    poweredOffByUs,
    needsAttention: keeper ? keeper.state.attention.hosts : {},
    maintenance: [...maintenance].sort(),
    /** Hosts a drain woke to make room, with the host drained: kept on until it is undrained. */
    wokenForMaintenance: keeper?.wokenForMaintenance() ?? {},
    /** The last proof of boot per host (power.proofOfBoot): when it started, ok or failed. */
    proofOfBoot: keeper?.proofsOfBoot() ?? {},
  };
}

/**
 * Each host's state now: what the last cycle observed, then what that cycle's power actions did (the
 * snapshot is taken before they run), then what the daemon knows it powered off since (a cycle or an
 * operator command): a host consolidator powered off is never listed as on.
 */
export function hostStates(report: CycleReport | undefined, poweredOffByUs: readonly HostId[], maintenance: ReadonlySet<HostId>): Map<HostId, HostStateName> {
  const states = new Map<HostId, HostStateName>();
  for (const h of report?.snapshot?.hosts ?? []) states.set(h.id, h.power === 'on' && h.reachable ? 'on' : h.power === 'off' ? 'off' : 'unknown');
  for (const o of report?.outcomes ?? []) {
    if (o.result !== 'ok' || o.action.type === 'migrate' || !states.has(o.action.host)) continue;
    states.set(o.action.host, o.action.type === 'power-off' ? 'off' : 'on');
  }
  const off = new Set(poweredOffByUs);
  for (const host of states.keys()) {
    if (maintenance.has(host)) states.set(host, 'maintenance');
    else if (off.has(host)) states.set(host, 'off');
  }
  return states;
}
