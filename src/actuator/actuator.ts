import type { Policy } from '../config/schema.js';
import type { ErrorCode } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { AttentionReason, SkipReason } from '../model/reasons.js';
import type { ResourceVector } from '../model/resources.js';
import type { Action } from '../planner/types.js';

/**
 * How one planned step ended, as data like the planner's verdicts: a skip carries a reason from the
 * closed SKIP_REASONS list, a failure the project's error code; `detail` says it in words an operator
 * can act on.
 */
export type ActionOutcome =
  | { readonly action: Action; readonly result: 'ok'; readonly durationMs: number }
  | { readonly action: Action; readonly result: 'dry-run'; readonly durationMs: number }
  | { readonly action: Action; readonly result: 'skipped'; readonly reason: SkipReason; readonly detail: string; readonly durationMs: number }
  | { readonly action: Action; readonly result: 'failed'; readonly errorCode: ErrorCode; readonly detail: string; readonly durationMs: number };

/** A skip decided by a live re-check. */
export interface Skip {
  readonly reason: SkipReason;
  readonly detail: string;
}

/** Limits of one execution: a cycle's come from the policy; an operator's drain has its own. */
export interface ExecutionBudget {
  /** Migrations that may start in this execution. */
  readonly maxMigrations: number;
}

/**
 * What the actuator needs from the daemon while it works: the one policy snapshot of this cycle, the
 * budget, live facts that may have changed since the plan (maintenance, who powered what off) and
 * where to report each step, so state is saved as the cycle goes and a crash at any point leaves an
 * honest record.
 */
export interface ExecutionContext {
  readonly cycle: string;
  /** The policy the plan was made with; the actuator never reads another one mid-cycle. */
  readonly policy: Policy;
  readonly budget: ExecutionBudget;
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
  /**
   * What these VMs (by name) need together on one host, when the policy predicts a host's demand
   * from its VMs together (hostDemand.cpu); undefined for a VM the planner did not see. Absent: the
   * sum of vmDemand.
   */
  demandTogether?(vms: readonly string[]): ResourceVector | undefined;
  /** What a host uses besides its VMs, as the planner estimated it. */
  hostOverhead(host: HostId): ResourceVector;
  /** Persisted before a step touches anything, so a restart knows it was under way. */
  stepStarted(action: Action): Promise<void>;
  /** Every step's end, whatever the actuator (live or dry-run): saved, and written to history. */
  stepEnded(outcome: ActionOutcome): Promise<void>;
  onPoweredOff(host: HostId): void;
  onPoweredOn(host: HostId): void;
  /** A step on this host failed: leave it alone for the policy's cooldown. */
  coolDown(host: HostId): void;
  /** The host needs an operator: nothing automatic touches its power until one clears it. */
  markAttention(host: HostId, reason: AttentionReason, error: unknown): void;
}

/** Carries out a checked plan. Never throws for a failed step: each one ends as an outcome. */
export interface Actuator {
  execute(actions: readonly Action[], ctx: ExecutionContext): Promise<ActionOutcome[]>;
}
