import type { ActionOutcome, ExecutionBudget, ExecutionContext } from '../actuator/actuator.js';
import type { LoadedPolicy } from '../config/load.js';
import type { HostId } from '../model/ids.js';
import type { VmSnapshot } from '../model/snapshot.js';
import { CycleDemands } from '../planner/demand.js';
import { hostDemandEstimator } from '../planner/host-demand.js';
import type { PlanInput } from '../planner/types.js';
import { stepOf, type StateKeeper } from '../state/state-keeper.js';

export interface ContextOptions {
  readonly keeper: StateKeeper;
  /** The policy snapshot the plan was made with (the cycle's, or the operator job's). */
  readonly loaded: LoadedPolicy;
  readonly budget: ExecutionBudget;
  /** The input the actions were planned from: demands, overheads and hosts on come from it. */
  readonly input: PlanInput;
  readonly cycle: string;
  readonly signal: AbortSignal;
  readonly drainSignal: AbortSignal;
  readonly onStepDone?: () => void;
  /** A host being drained by an operator: its own steps run although it is in maintenance. */
  readonly drainingHost?: HostId;
}

/** The budget of a cycle: the policy's per-cycle migration cap. */
export function cycleBudget(loaded: LoadedPolicy): ExecutionBudget {
  return { maxMigrations: loaded.policy.safety.maxMigrationsPerCycle };
}

/** A step's end as history records it: the closed code (skip reason or error code) and the words. */
function stepEnd(outcome: ActionOutcome): Parameters<StateKeeper['recordOutcome']>[2] {
  switch (outcome.result) {
    case 'skipped':
      return { result: 'skipped', code: outcome.reason, detail: outcome.detail, durationMs: outcome.durationMs };
    case 'failed':
      return { result: 'failed', code: outcome.errorCode, detail: outcome.detail, durationMs: outcome.durationMs };
    default:
      // A power-on says what it was for (Overload, MinHostsOn, ProofOfBoot): `history` shows why a host came on.
      return { result: outcome.result, ...(outcome.action.type === 'power-on' ? { detail: outcome.action.reason } : {}), durationMs: outcome.durationMs };
  }
}

/**
 * A proof of boot that ran (ok, or failed: the power-on or the wait for the hypervisor) is kept as the
 * host's last one; a skipped one did nothing, a dry-run one only says what it would do, and an aborted
 * one was cut short by a stop.
 */
function recordProofOfBoot(keeper: StateKeeper, outcome: ActionOutcome): void {
  const { action } = outcome;
  if (action.type !== 'power-on' || action.reason !== 'ProofOfBoot') return;
  if (outcome.result !== 'ok' && outcome.result !== 'failed') return;
  // The daemon stopping during the boot says nothing about the host: the next cycle looks again.
  if (outcome.result === 'failed' && outcome.errorCode === 'ABORTED') return;
  keeper.recordProofOfBoot(action.host, {
    result: outcome.result,
    durationMs: outcome.durationMs,
    ...(outcome.result === 'failed' ? { code: outcome.errorCode } : {}),
  });
}

/**
 * What the actuator asks the daemon while it carries out a plan: live facts from the state keeper,
 * the planner's estimates, and the hooks that save each step's outcome as it happens.
 */
export function buildExecutionContext(o: ContextOptions): ExecutionContext {
  const { keeper, loaded, input, cycle } = o;
  const hostsById = new Map(loaded.hosts.map((h) => [h.name, h]));
  const vmsById = new Map(input.snapshot.vms.map((vm) => [vm.id, vm]));
  const snapshotHosts = new Map(input.snapshot.hosts.map((h) => [h.id, h]));
  let hostsOn = input.snapshot.hosts.filter((h) => h.power === 'on' && h.reachable).length;
  // The planner's estimates for this input, each computed once however often a step asks.
  const demands = CycleDemands.of(input);
  // With peak-of-sum predictors (hostDemand.cpu) a host's load is predicted for its VMs together, as the planner did.
  const together = hostDemandEstimator(input.snapshot.vms, input.policy, input.nowMs);
  return {
    cycle,
    policy: loaded.policy,
    budget: o.budget,
    signal: o.signal,
    drainSignal: o.drainSignal,
    isMaintenance: (h) => h !== o.drainingHost && keeper.isInMaintenance(h),
    isExcluded: (h) => hostsById.get(h)?.exclude ?? true,
    wasPoweredOffByUs: (h) => keeper.wasPoweredOffByUs(h),
    powerActionsLast24h: (h) => keeper.powerActionsLast24h()[h] ?? 0,
    hostsOn: () => hostsOn,
    usableCapacity: (h, total) => {
      const reserve = hostsById.get(h)?.reserve ?? { cpus: 0, memoryMiB: 0 };
      return { cpu: Math.max(0, total.cpu - reserve.cpus), memory: Math.max(0, total.memory - reserve.memoryMiB) };
    },
    vmDemand: (vm) => {
      const known = vmsById.get(vm);
      return known ? demands.vm(known) : undefined;
    },
    ...(together
      ? {
          demandTogether: (names: readonly string[]) => {
            const vms = names.map((name) => vmsById.get(name));
            return vms.every((vm) => vm !== undefined) ? together.ofVms(vms as VmSnapshot[]) : undefined;
          },
        }
      : {}),
    hostOverhead: (h) => {
      const host = snapshotHosts.get(h);
      if (host && together) {
        const own = together.ofHost(host);
        if (!own) return { cpu: 0, memory: 0 };
        const planned = together.ofVms(input.snapshot.vms.filter((vm) => vm.host === h));
        return { cpu: Math.max(0, own.cpu - planned.cpu), memory: Math.max(0, own.memory - planned.memory) };
      }
      const observed = host ? demands.host(host) : undefined;
      if (!host || !observed) return { cpu: 0, memory: 0 };
      let cpu = 0;
      let memory = 0;
      for (const vm of input.snapshot.vms) {
        if (vm.host !== h) continue;
        const d = demands.vm(vm);
        cpu += d.cpu;
        memory += d.memory;
      }
      return { cpu: Math.max(0, observed.cpu - cpu), memory: Math.max(0, observed.memory - memory) };
    },
    stepStarted: async (action) => {
      keeper.stepChanged(action.id, 'running');
      await keeper.save();
    },
    stepEnded: async (outcome) => {
      if (outcome.result !== 'dry-run') keeper.stepChanged(outcome.action.id, outcome.result);
      o.onStepDone?.();
      keeper.recordOutcome(cycle, stepOf(outcome.action), stepEnd(outcome));
      recordProofOfBoot(keeper, outcome);
      await keeper.save();
    },
    onPoweredOff: (h) => {
      // A host an operator drained and powered off is theirs: never woken automatically.
      if (h !== o.drainingHost) keeper.markPoweredOff(h);
      hostsOn--;
    },
    onPoweredOn: (h) => {
      keeper.forgetPoweredOff(h);
      hostsOn++;
    },
    coolDown: (h) => keeper.coolDown(h, loaded.policy.safety.hostCooldownSeconds),
    markAttention: (h, reason, error) => keeper.markAttention(h, reason, error),
  };
}
