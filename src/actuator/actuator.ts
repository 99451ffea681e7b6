import type { HostId } from '../model/ids.js';
import type { ResourceVector } from '../model/resources.js';
import type { Action } from '../planner/types.js';

export type ActionResult = 'ok' | 'failed' | 'skipped' | 'dry-run';

export interface ActionOutcome {
  readonly action: Action;
  readonly result: ActionResult;
  /** Why it was skipped or failed, in words an operator can act on. */
  readonly reason?: string;
  readonly errorCode?: string;
  readonly durationMs: number;
}

export type StepStatus = 'running' | 'ok' | 'failed' | 'skipped';

/**
 * What the actuator needs from the daemon while it works: live facts that may have changed since the
 * plan (maintenance, who powered what off) and where to report each step, so state is saved as the
 * cycle goes and a crash at any point leaves an honest record.
 */
export interface ExecutionContext {
  readonly cycle: string;
  /** Aborted when the daemon stops: running steps are aborted (migrations with domjobabort). */
  readonly signal: AbortSignal;
  /** Aborted first on a graceful stop: no new step starts; running ones may finish. */
  readonly drainSignal: AbortSignal;
  isMaintenance(host: HostId): boolean;
  isExcluded(host: HostId): boolean;
  wasPoweredOffByUs(host: HostId): boolean;
  powerActionsLast24h(host: HostId): number;
  /** Hosts known to be on right now (for minHostsOn before a power-off). */
  hostsOn(): number;
  /** Capacity of a host after the policy's reserve, from its total. */
  usableCapacity(host: HostId, total: ResourceVector): ResourceVector;
  /** The planner's demand estimate for a VM it knows; undefined for one it did not see. */
  vmDemand(vm: string): ResourceVector | undefined;
  /** What a host uses besides its VMs, as the planner estimated it. */
  hostOverhead(host: HostId): ResourceVector;
  /** Persist a step's progress before and after it runs. */
  stepChanged(action: Action, status: StepStatus, reason?: string): Promise<void>;
  onPoweredOff(host: HostId): void;
  onPoweredOn(host: HostId): void;
  /** A step on this host failed: leave it alone for the policy's cooldown. */
  coolDown(host: HostId): void;
  markBootTimeout(host: HostId, error: unknown): void;
}

/** Carries out a checked plan. Never throws for a failed step: each one ends as an outcome. */
export interface Actuator {
  execute(actions: readonly Action[], ctx: ExecutionContext): Promise<ActionOutcome[]>;
}
