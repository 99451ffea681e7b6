import type { HostId } from '../model/ids.js';
import type { HistoryEntry } from '../state/persisted-state.js';
import type { DrainResult, PlanNowResult, WakeResult } from './operator-jobs.js';

/**
 * What an operator may ask of the running daemon. The daemon implements it; the operator endpoint
 * (routes) depends on this interface only, so neither imports the other.
 */
export interface OperatorApi {
  /** One observation and plan, executing nothing. */
  planNow(): Promise<PlanNowResult>;
  /** Evacuates a host for maintenance (optionally powering it off); never at the same time as a cycle. */
  drain(host: HostId, options: { readonly powerOff: boolean; readonly dryRun: boolean }): Promise<DrainResult>;
  undrain(host: HostId): Promise<{ readonly ok: boolean; readonly message: string }>;
  wake(host: HostId): Promise<WakeResult>;
  /** The newest history entries, oldest first. */
  history(limit: number): readonly HistoryEntry[];
}
