import { withPowerAction, emptyPowerRecord, powerActionsLast24hByHost, type PowerRecord } from '../state/power-record.js';
import type { HostId } from '../model/ids.js';
import type { Violation } from '../model/simulate.js';
import type { ClusterSnapshot, HostSnapshot, UsageSample, VmSnapshot } from '../model/snapshot.js';
import { checkPlan } from '../planner/check-plan.js';
import { CycleDemands } from '../planner/demand.js';
import { planCycle } from '../planner/plan-cycle.js';
import { EMPTY_MEMORY, type InFlightAction, type PlanInput, type PlannerMemory, type PlannerPolicy, type PlanResult } from '../planner/types.js';
import type { SimulationDecision, SimulationInput, SimulationMigration, SimulationPolicy } from './simulation-policy.js';
import type { SimulationSetup } from './simulation-setup.js';

/**
 * How the planner sees memory in a simulation.
 * 'observed': what the VMs hold (the simulated hosts report it honestly, as a real host would).
 * 'admitted': what the setup's admission rule counts. Differs only under 'reserve-at-creation'
 * (CloudSim 3.0.3 as its PlanetLab examples run it), where a VM holds memory only while it is created
 * and nothing afterwards: the planner then packs on CPU alone, exactly like the reference baselines.
 * The report's memoryOverloadHostSeconds still counts what the VMs really hold.
 */
export type MemoryView = 'observed' | 'admitted';

export interface PlannerPolicyOptions {
  /** The policy as loaded from a YAML file (only the planner's parts are read). */
  readonly policy: PlannerPolicy;
  readonly setup: Pick<SimulationSetup, 'idleHostsAreOff' | 'memoryAdmission'>;
  /** Shown in reports; defaults to "consolidator". */
  readonly name?: string;
  /** Defaults to 'observed'. */
  readonly memoryView?: MemoryView;
  /** Called with every plan (tests, traces). */
  readonly onPlan?: (input: PlanInput, plan: PlanResult, violations: readonly Violation[]) => void;
}

/** What the adapter carries from one decision to the next, as the daemon's state keeper does. */
export interface PlannerPolicyState {
  readonly memory: PlannerMemory;
  readonly poweredOffByUs: readonly HostId[];
  readonly powerRecord: PowerRecord;
}

export interface PlannerPolicyStats {
  readonly plans: number;
  /** Plans that broke an invariant (checkPlan): nothing of them ran, as in the daemon. */
  readonly rejectedPlans: number;
  readonly plannedMigrations: number;
  readonly plannedPowerOffs: number;
  readonly plannedPowerOns: number;
  /** Wall time spent in planCycle + checkPlan. */
  readonly planSeconds: number;
}

export interface PlannerSimulationPolicy extends SimulationPolicy {
  state(): PlannerPolicyState;
  stats(): PlannerPolicyStats;
}

const MS_PER_SECOND = 1000;

/**
 * consolidator's own planner as a simulation policy: each decision builds the PlanInput the daemon
 * builds (src/daemon/cycle.ts) from the simulated datacenter's snapshot, calls the same planCycle,
 * checks the plan with the same checkPlan (a plan that breaks an invariant runs nothing), keeps the
 * planner's memory the way the daemon persists it, and turns the actions into the engine's decision.
 * Between decisions it carries what the daemon's StateKeeper carries: planner memory (underloaded
 * since, cooldowns), the hosts consolidator powered off, and the power record behind
 * safety.maxPowerActionsPerHostPerDay. No host is ever in needsAttention (simulated power never fails).
 *
 * Hosts powered off by us: a host is added when a power-off is planned for it (the actuator marks it
 * once the BMC confirms; the engine refuses a power-off of a host that still runs VMs, and such a host
 * is forgotten at the next decision because it reads on), and forgotten when it reads on and reachable,
 * as the daemon does. In setups where idle hosts are off by themselves (CloudSim), the setup's power
 * manager stands in for consolidator: every host that reads off is one consolidator may wake.
 */
export function createPlannerPolicy(options: PlannerPolicyOptions): PlannerSimulationPolicy {
  const { policy, setup } = options;
  const hideMemory = (options.memoryView ?? 'observed') === 'admitted' && setup.memoryAdmission === 'reserve-at-creation';
  let memory: PlannerMemory = EMPTY_MEMORY;
  const poweredOff = new Set<HostId>();
  let powerRecord = emptyPowerRecord();
  let plans = 0;
  let rejectedPlans = 0;
  let plannedMigrations = 0;
  let plannedPowerOffs = 0;
  let plannedPowerOns = 0;
  let planSeconds = 0;

  const decide = (simInput: SimulationInput): SimulationDecision => {
    const nowMs = simInput.nowMs;
    // The engine zeroes memory in its samples when asked (hidesMemoryUse); copying them here is the fallback.
    const snapshot = hideMemory && simInput.memoryUseHidden !== true ? withoutMemoryUse(simInput.snapshot) : simInput.snapshot;
    for (const host of snapshot.hosts) {
      if (host.power === 'on' && host.reachable) poweredOff.delete(host.id);
      else if (setup.idleHostsAreOff && host.power === 'off') poweredOff.add(host.id);
    }
    const input: PlanInput = {
      snapshot,
      policy,
      memory,
      inFlight: simInput.inFlight.map(toInFlightAction),
      poweredOffByUs: [...poweredOff].sort(),
      powerActionsLast24h: powerActionsLast24hByHost(powerRecord, nowMs),
      needsAttention: [],
      nowMs,
    };
    const started = performance.now();
    const demands = CycleDemands.of(input);
    const plan = planCycle(input, demands);
    const violations = checkPlan(input, plan.actions, { demands }).violations;
    planSeconds += (performance.now() - started) / MS_PER_SECOND;
    plans++;
    options.onPlan?.(input, plan, violations);
    if (violations.length > 0) {
      // As the daemon: a rejected plan keeps what the planner learnt about hosts, not the cooldowns of moves it never made.
      rejectedPlans++;
      memory = { ...memory, underloadedSinceMs: plan.memory.underloadedSinceMs };
      return { migrations: [], powerOff: [], powerOn: [] };
    }
    memory = plan.memory;
    const migrations: SimulationMigration[] = [];
    const powerOff: HostId[] = [];
    const powerOn: HostId[] = [];
    for (const action of plan.actions) {
      if (action.type === 'migrate') {
        migrations.push({ vm: action.vm, from: action.from, to: action.to });
      } else if (action.type === 'power-off') {
        powerOff.push(action.host);
        poweredOff.add(action.host);
        powerRecord = withPowerAction(powerRecord, action.host, { atMs: nowMs, action: 'off', mode: 'soft', result: 'ok', durationMs: 0 });
      } else {
        powerOn.push(action.host);
        poweredOff.delete(action.host);
        powerRecord = withPowerAction(powerRecord, action.host, { atMs: nowMs, action: 'on', result: 'ok', durationMs: 0 });
      }
    }
    plannedMigrations += migrations.length;
    plannedPowerOffs += powerOff.length;
    plannedPowerOns += powerOn.length;
    return { migrations, powerOff, powerOn };
  };

  return {
    name: options.name ?? 'consolidator',
    decide,
    ...(hideMemory ? { hidesMemoryUse: true } : {}),
    historySeconds: Math.max(policy.thresholds.cpu.windowSeconds, policy.thresholds.memory.windowSeconds, policy.hostDemand?.windowSeconds ?? 0),
    state: () => ({ memory, poweredOffByUs: [...poweredOff].sort(), powerRecord }),
    stats: () => ({ plans, rejectedPlans, plannedMigrations, plannedPowerOffs, plannedPowerOns, planSeconds }),
  };
}

function toInFlightAction(m: SimulationMigration): InFlightAction {
  return { type: 'migrate', vm: m.vm, from: m.from, to: m.to };
}

/** The snapshot with every memory use at 0 (capacities and VM sizes kept: a migration still copies the VM's memory). */
function withoutMemoryUse(snapshot: ClusterSnapshot): ClusterSnapshot {
  const zero = (samples: readonly UsageSample[]): UsageSample[] => samples.map((s) => ({ atMs: s.atMs, use: { cpu: s.use.cpu, memory: 0 } }));
  return {
    takenAtMs: snapshot.takenAtMs,
    hosts: snapshot.hosts.map((h): HostSnapshot => ({ ...h, samples: zero(h.samples) })),
    vms: snapshot.vms.map((vm): VmSnapshot => ({ ...vm, samples: zero(vm.samples) })),
  };
}
