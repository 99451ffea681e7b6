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
  readonly scheduleIntervalMs: number;
  /** Unhealthy once this many schedule intervals passed without a successful cycle. */
  readonly maxMissedIntervals: number;
}

/** The health rule: a successful cycle within the last `maxMissedIntervals` schedule intervals. */
export function healthFromLastCycle(input: CycleHealthInput): HealthReport {
  const allowedMs = input.maxMissedIntervals * input.scheduleIntervalMs;
  const last = input.lastSuccessfulCycleMs;
  const sinceMs = input.nowMs - (last ?? input.startedAtMs);
  const withLast = last === undefined ? {} : { lastSuccessfulCycleMs: last };
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
  const hostsByState: Record<HostStateName, string[]> = { on: [], off: [], unknown: [], maintenance: [] };
  for (const h of report?.snapshot?.hosts ?? []) {
    const state: HostStateName = maintenance.has(h.id) ? 'maintenance' : h.power === 'on' && h.reachable ? 'on' : h.power === 'off' ? 'off' : 'unknown';
    hostsByState[state].push(h.id);
  }
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
    poweredOffByUs: keeper?.poweredOffByUs() ?? [],
    needsAttention: keeper ? keeper.state.attention.hosts : {},
    maintenance: [...maintenance].sort(),
  };
}
