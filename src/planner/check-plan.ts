import { simulatePlan, type SimulationOutcome } from '../model/simulate.js';
import { hostUse, vmDemand } from './demand.js';
import { hostDemandEstimator } from './host-demand.js';
import type { Action, PlanInput } from './types.js';

/**
 * Simulates a plan on the snapshot it was made from and checks every invariant, with the planner's
 * own demand estimates and the policy's limits. The daemon runs nothing when this finds a violation.
 * `maxMigrations` is the execution's migration budget: the policy's per-cycle cap unless an operator's
 * drain brings its own.
 */
export function checkPlan(input: PlanInput, actions: readonly Action[], budget?: { readonly maxMigrations: number }): SimulationOutcome {
  const { policy, nowMs } = input;
  const migrationsInFlight = input.inFlight.filter((a) => a.type === 'migrate').length;
  const maxMigrations = budget?.maxMigrations ?? Math.max(0, policy.safety.maxMigrationsPerCycle - migrationsInFlight);
  // With peak-of-sum predictors a destination's load is predicted for its VMs together, as the planner did.
  const together = hostDemandEstimator(input.snapshot.vms, policy, nowMs);
  return simulatePlan(
    input.snapshot,
    actions,
    together
      ? { vmDemand: (vm) => vmDemand(vm, policy, nowMs), hostUse: (host) => together.ofHost(host), vmsDemand: (vms) => together.ofVms(vms) }
      : { vmDemand: (vm) => vmDemand(vm, policy, nowMs), hostUse: (host) => hostUse(host, policy, nowMs) },
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
