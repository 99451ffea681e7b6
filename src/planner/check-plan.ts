import { simulatePlan, type SimulationOutcome } from '../model/simulate.js';
import { CycleDemands } from './demand.js';
import { hostDemandEstimator } from './host-demand.js';
import type { Action, PlanInput } from './types.js';

export interface CheckOptions {
  /** The execution's migration budget (default: the policy's per-cycle cap less what is in flight). */
  readonly maxMigrations?: number;
  readonly demands?: CycleDemands;
}

/**
 * Simulates a plan on the snapshot it was made from and checks every invariant, with the planner's
 * own demand estimates and the policy's limits. The daemon runs nothing when this finds a violation.
 * `maxMigrations` is the execution's migration budget: the policy's per-cycle cap unless an operator's
 * drain brings its own. `demands`: the cycle's memo that planCycle used (CycleDemands.of(input)), so
 * each window statistic is computed once per cycle.
 */
export function checkPlan(input: PlanInput, actions: readonly Action[], options: CheckOptions = {}): SimulationOutcome {
  const { policy } = input;
  const demands = options.demands !== undefined && options.demands.isFor(input) ? options.demands : CycleDemands.of(input);
  const migrationsInFlight = input.inFlight.filter((a) => a.type === 'migrate').length;
  const maxMigrations = options.maxMigrations ?? Math.max(0, policy.safety.maxMigrationsPerCycle - migrationsInFlight);
  // With peak-of-sum predictors a destination's load is predicted for its VMs together, as the planner did.
  const together = hostDemandEstimator(input.snapshot.vms, policy, input.nowMs);
  return simulatePlan(
    input.snapshot,
    actions,
    together
      ? { vmDemand: (vm) => demands.vm(vm), hostUse: (host) => together.ofHost(host), vmsDemand: (vms) => together.ofVms(vms) }
      : { vmDemand: (vm) => demands.vm(vm), hostUse: (host) => demands.host(host) },
    {
      targetRatio: { cpu: policy.thresholds.cpu.targetRatio, memory: policy.thresholds.memory.targetRatio },
      minHostsOn: policy.safety.minHostsOn,
      maxMigrations,
      maxPowerActionsPerHostPerDay: policy.safety.maxPowerActionsPerHostPerDay,
      powerActionsLast24h: input.powerActionsLast24h,
      poweredOffByUs: input.poweredOffByUs,
      inFlight: input.inFlight,
      needsAttention: input.needsAttention,
    },
  );
}
