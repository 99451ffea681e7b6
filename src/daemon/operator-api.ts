import type { HostId } from '../model/ids.js';
import type { HistoryEntry } from '../state/persisted-state.js';
import type { RecordingRange } from '../state/recording.js';
import type { SavingsReport } from '../state/savings-report.js';
import type { DrainOptions, DrainResult, PlanNowResult, WakeResult } from './operator-jobs.js';

/**
 * What an operator may ask of the running daemon. The daemon implements it; the operator endpoint
 * (routes) depends on this interface only, so neither imports the other.
 */
export interface OperatorApi {
  /** One observation and plan, executing nothing. */
  planNow(): Promise<PlanNowResult>;
  /**
   * Evacuates a host for maintenance (optionally powering it off), waking hosts consolidator powered
   * off when the hosts on lack room (unless noWake); never at the same time as a cycle.
   */
  drain(host: HostId, options: DrainOptions): Promise<DrainResult>;
  undrain(host: HostId): Promise<{ readonly ok: boolean; readonly message: string }>;
  wake(host: HostId): Promise<WakeResult>;
  /** The newest history entries, oldest first. */
  history(limit: number): readonly HistoryEntry[];
  /** What consolidator saved over a period (from its recording), and in dry-run what it would have (a replay, when asked). */
  report(range: RecordingRange, options: ReportOptions): Promise<ReportResult>;
}

export interface ReportOptions {
  /** Run the replay when the period has dry-run cycles. */
  readonly replay: boolean;
  /** The period is the last this many seconds on the daemon's clock (overrides range.fromMs). */
  readonly lastSeconds?: number;
}

/** A replay's figures, as `consolidator simulate --recording --json` prints them. */
export type ReplayFigures = Readonly<Record<string, unknown>>;

/** Runs a replay of the recording under the daemon's policy, off the daemon's event loop. */
export type ReplayRunner = (request: { readonly recordingDir: string; readonly policyFile: string; readonly range: RecordingRange }) => Promise<ReplayFigures>;

export interface ReportResult {
  /** The policy's mode now. */
  readonly mode: 'enforce' | 'dry-run';
  readonly report: SavingsReport;
  /** With dry-run cycles in the period and a replay asked for: what the policy would have saved. */
  readonly replay?: { readonly figures: ReplayFigures } | { readonly error: string };
}
