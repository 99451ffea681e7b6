import type { HostId, VmId } from './ids.js';
import type { ResourceVector } from './resources.js';

export type PowerState = 'on' | 'off' | 'unknown';
/**
 * running and paused guests hold memory and move with live migration; shutoff is a definition only;
 * other (crashed, pmsuspended, shutting down) is a guest that still exists but cannot be moved: its
 * host is never emptied or powered off.
 */
export type VmState = 'running' | 'paused' | 'shutoff' | 'other';

/** One observation of use: CPU in cores, memory in MiB, at a wall-clock time in ms. */
export interface UsageSample {
  readonly atMs: number;
  readonly use: ResourceVector;
}

/** Power draw of a host, in watts, as a function of CPU utilisation (0..1). */
export type PowerModel =
  | { readonly kind: 'linear'; readonly idleWatts: number; readonly maxWatts: number }
  /** Watts at 0 %, 10 %, ..., 100 % CPU (SPECpower style), linearly interpolated. */
  | { readonly kind: 'curve'; readonly wattsAtTenths: readonly number[] };

export interface HostSnapshot {
  readonly id: HostId;
  readonly power: PowerState;
  /** The hypervisor answered this cycle; a host that did not is never a source or a destination. */
  readonly reachable: boolean;
  /** Schedulable capacity: CPU cores and memory MiB. */
  readonly capacity: ResourceVector;
  /** Host-level use over the observation window, oldest first (includes what VMs use). */
  readonly samples: readonly UsageSample[];
  /** Excluded by the policy: observed, never a source, destination or power target. */
  readonly excluded: boolean;
  /** In maintenance (drained by an operator): never a destination, never powered on or off. */
  readonly maintenance: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly powerModel: PowerModel;
  /** Expected time from power-on to a hypervisor that answers. */
  readonly bootSeconds: number;
}

export interface VmSnapshot {
  readonly id: VmId;
  readonly host: HostId;
  readonly state: VmState;
  readonly vcpus: number;
  /** Memory the VM holds on its host, MiB (what a migration moves and what a destination must have). */
  readonly memoryMiB: number;
  /** Use over the observation window, oldest first. */
  readonly samples: readonly UsageSample[];
  /** Pinned by a policy rule or by libvirt metadata: never moved. */
  readonly pinned: boolean;
  /**
   * The controller's own VM or its infrastructure (vmRules.protected): pinned, and its host is never
   * emptied or powered off.
   */
  readonly protected?: boolean;
  /** Memory dirtying rate where known (MiB/s); drives migration cost. */
  readonly dirtyRateMiBps?: number;
  /** Anti-affinity groups the VM belongs to (names from the policy). */
  readonly antiAffinityGroups: readonly string[];
}

/** A read-only picture of the cluster at one moment; planners and simulations never mutate it. */
export interface ClusterSnapshot {
  readonly takenAtMs: number;
  readonly hosts: readonly HostSnapshot[];
  readonly vms: readonly VmSnapshot[];
}

/** Watts drawn at a CPU utilisation in [0, 1] (clamped); an off host draws nothing. */
export function powerAt(model: PowerModel, cpuUtilisation: number): number {
  const u = Math.min(1, Math.max(0, cpuUtilisation));
  if (model.kind === 'linear') return model.idleWatts + (model.maxWatts - model.idleWatts) * u;
  const points = model.wattsAtTenths;
  const last = points.length - 1;
  const position = u * last;
  const below = Math.floor(position);
  const low = points[below] ?? 0;
  const high = points[Math.min(last, below + 1)] ?? low;
  return low + (high - low) * (position - below);
}
