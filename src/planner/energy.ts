import { powerAt, type HostSnapshot, type VmSnapshot } from '../model/snapshot.js';
import type { PlannerPolicy } from './types.js';

/** Below this share of the link left after dirtying, pre-copy is taken not to converge. */
const CONVERGENCE_FLOOR = 0.1;
/** A non-converging migration is estimated at this many full memory copies (throttling or post-copy). */
const NON_CONVERGING_COPIES = 3;

/** The link speed one migration gets: the policy's cap, or the expected link speed. */
export function migrationLinkMiBps(policy: PlannerPolicy): number {
  return policy.migration.bandwidthMiBps > 0 ? Math.min(policy.migration.bandwidthMiBps, policy.migration.expectedLinkMiBps) : policy.migration.expectedLinkMiBps;
}

/** Seconds a live migration of this VM is expected to take under the policy's bandwidth. */
export function estimateMigrationSeconds(vm: VmSnapshot, policy: PlannerPolicy): number {
  const link = migrationLinkMiBps(policy);
  const dirty = vm.dirtyRateMiBps ?? 0;
  const effective = link - dirty;
  if (effective <= link * CONVERGENCE_FLOOR) return (vm.memoryMiB * NON_CONVERGING_COPIES) / link;
  return vm.memoryMiB / effective;
}

/** Watts a host draws at a CPU load (cores) on its capacity. */
export function hostWatts(host: HostSnapshot, cpuLoad: number): number {
  return powerAt(host.powerModel, host.capacity.cpu > 0 ? cpuLoad / host.capacity.cpu : 0);
}

/** Energy (J) a set of migrations costs: extra draw on both hosts while each one runs. */
export function migrationCostJoules(seconds: number, policy: PlannerPolicy): number {
  return seconds * policy.consolidation.migrationOverheadWatts;
}
