import type { Policy } from '../config/schema.js';
import type { HostId, VmId } from '../model/ids.js';
import type { ResourceVector } from '../model/resources.js';
import type { ClusterSnapshot } from '../model/snapshot.js';

/** The parts of the policy the planner reads (hostDemand absent: the sum of each VM's statistic). */
export type PlannerPolicy = Pick<Policy, 'thresholds' | 'consolidation' | 'safety' | 'migration' | 'windows' | 'timeZone'> &
  Partial<Pick<Policy, 'hostDemand'>> & {
    /** Only power.proofOfBoot is read; optional so that callers with a planner-only policy need not carry the rest. */
    readonly power?: { readonly proofOfBoot: Policy['power']['proofOfBoot'] };
  };

/** What the planner remembers between cycles; returned as data for the state store. */
export interface PlannerMemory {
  /** When each host was first seen underloaded, without a break since. */
  readonly underloadedSinceMs: Readonly<Record<HostId, number>>;
  /** Hosts left alone until then; `failed` ones are not even destinations. */
  readonly hostCooldowns: Readonly<Record<HostId, HostCooldown>>;
  /** VMs that moved recently stay put until then. */
  readonly vmCooldownUntilMs: Readonly<Record<VmId, number>>;
}

export interface HostCooldown {
  readonly untilMs: number;
  readonly reason: 'drained' | 'woken' | 'failed';
}

export const EMPTY_MEMORY: PlannerMemory = Object.freeze({ underloadedSinceMs: {}, hostCooldowns: {}, vmCooldownUntilMs: {} });

/** An action the actuator is still running (or that a restart found half done). */
export type InFlightAction =
  | { readonly type: 'migrate'; readonly vm: VmId; readonly from: HostId; readonly to: HostId }
  | { readonly type: 'power-off' | 'power-on'; readonly host: HostId };

export interface PlanInput {
  readonly snapshot: ClusterSnapshot;
  readonly policy: PlannerPolicy;
  readonly memory: PlannerMemory;
  readonly inFlight: readonly InFlightAction[];
  /** Hosts consolidator itself powered off: the only ones it ever powers on. */
  readonly poweredOffByUs: readonly HostId[];
  /** Power actions (off + on) per host over the last 24 h. */
  readonly powerActionsLast24h: Readonly<Record<HostId, number>>;
  /** Hosts that failed to power on: never powered off or on automatically until an operator clears them. */
  readonly needsAttention: readonly HostId[];
  /**
   * Hosts woken to make room for a drain, with the host drained: never emptied by a cycle while that
   * host is in maintenance (absent: none).
   */
  readonly wokenForMaintenance?: Readonly<Record<HostId, HostId>>;
  /** What proof of boot needs (power.proofOfBoot); absent: no proof of boot is planned (a simulation, a drain). */
  readonly proofOfBoot?: ProofOfBootInput;
  readonly nowMs: number;
}

export interface ProofOfBootInput {
  /** When consolidator powered each host of poweredOffByUs off (ms since the epoch): a host off since then has not booted. */
  readonly poweredOffAtMs: Readonly<Record<HostId, number>>;
  /** Proofs of boot started in the 24 h before now (failed ones too): power.proofOfBoot.maxHostsPerDay. */
  readonly startedLast24h: number;
}

export type MigrationPurpose = 'consolidate' | 'relieve-overload' | 'drain';

export interface MigrateAction {
  readonly id: string;
  readonly type: 'migrate';
  readonly vm: VmId;
  readonly from: HostId;
  readonly to: HostId;
  readonly purpose: MigrationPurpose;
  readonly memoryMiB: number;
  readonly estimatedSeconds: number;
  readonly dependsOn: readonly string[];
}

export interface PowerOffAction {
  readonly id: string;
  readonly type: 'power-off';
  readonly host: HostId;
  /** Estimated watts saved once off (its draw, less what its VMs add on their destinations). */
  readonly estimatedSavingWatts: number;
  readonly dependsOn: readonly string[];
}

export const POWER_ON_REASONS = ['Overload', 'MinHostsOn', 'ProofOfBoot'] as const;
export type PowerOnReason = (typeof POWER_ON_REASONS)[number];

export interface PowerOnAction {
  readonly id: string;
  readonly type: 'power-on';
  readonly host: HostId;
  /** ProofOfBoot: kept off for power.proofOfBoot.afterDays, woken to show that it still boots (and then left on). */
  readonly reason: PowerOnReason;
  /** When the host is expected to answer, from its boot time. */
  readonly expectedReadyAtMs: number;
  readonly dependsOn: readonly string[];
}

export type Action = MigrateAction | PowerOffAction | PowerOnAction;

/** Why a host stays as it is: a closed list, used in logs and as a metric label. */
export const KEEP_REASONS = [
  'NotUnderloaded',
  'NotUnderloadedLongEnough',
  'PinnedVm',
  'ProtectedVm',
  'NoRoomForVms',
  'MinHostsOn',
  'SpareCapacity',
  'Cooldown',
  'VmCooldown',
  'ActionInFlight',
  'Unreachable',
  'Maintenance',
  'Excluded',
  'NotWorthIt',
  'BudgetExhausted',
  'PowerBudgetExhausted',
  'NeedsAttention',
  'QuietWindow',
  'OutsideActiveWindow',
  'ConsolidationDisabled',
  'ReceivesVms',
  'OverloadNotRelieved',
  'PoweredOff',
  'PoweredOffByOperator',
  'WarmingUp',
  'WokenForMaintenance',
] as const;
export type KeepReason = (typeof KEEP_REASONS)[number];

export interface HostVerdict {
  readonly host: HostId;
  /** draining: emptied and powered off; relieving: sheds VMs; powering-on: woken; kept-on / stays-off: as is. */
  readonly outcome: 'draining' | 'relieving' | 'powering-on' | 'kept-on' | 'stays-off';
  /** Set when the host stays as it is. */
  readonly reason?: KeepReason;
  /** One sentence with the figures behind the verdict. */
  readonly detail: string;
  /** Estimated use over capacity per resource once this plan's moves are done (the planner's view, from the window's statistic). */
  readonly utilisation: ResourceVector;
  /** Observed use over capacity per resource (the window's statistic): the figures the verdict is about. */
  readonly observed: ResourceVector;
  /** Above an overload ratio (observed, or predicted when overloadPredictionSeconds is set). */
  readonly overloaded: boolean;
}

export interface PlanSummary {
  readonly activeHostsBefore: number;
  readonly activeHostsAfter: number;
  readonly migrations: number;
  readonly powerOffs: number;
  readonly powerOns: number;
  readonly estimatedSavingWatts: number;
  readonly memoryToMoveMiB: number;
  /** True when a per-cycle cap stopped the planner from doing more. */
  readonly budgetLimited: boolean;
}

export interface PlanResult {
  readonly actions: readonly Action[];
  readonly verdicts: readonly HostVerdict[];
  readonly memory: PlannerMemory;
  readonly summary: PlanSummary;
  /** The window statistic each resource's figures are (thresholds.*.statistic), for display. */
  readonly statistics: { readonly cpu: string; readonly memory: string };
}
