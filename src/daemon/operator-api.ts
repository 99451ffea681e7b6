import type { HostId } from '../model/ids.js';
import type { HistoryEntry } from '../state/persisted-state.js';
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
}
