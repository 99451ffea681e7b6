import { describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/config/schema.js';
import { INVARIANTS, type Invariant } from '../../../src/model/simulate.js';
import type { HostSnapshot, VmSnapshot } from '../../../src/model/snapshot.js';
import { checkPlan } from '../../../src/planner/index.js';
import type { Action, MigrateAction, PlanInput, PowerOffAction, PowerOnAction } from '../../../src/planner/types.js';
import { host, NOW, planInput, plannerPolicy, snapshot, vm } from '../../helpers/cluster.js';

/**
 * The checker proven by what it rejects: for every invariant, a hand-built plan that breaks that one
 * invariant, and the violation asserted by name. The cluster is small and roomy so that nothing else
 * is in the way:
 *
 *   a (on)  v1     b (on)  v2     c (on)  empty    e (on, excluded) empty
 *   d (off, powered off by us)    f (off, by an operator)
 */
function migrate(id: string, vmId: string, from: string, to: string, dependsOn: string[] = []): MigrateAction {
  return { id, type: 'migrate', vm: vmId, from, to, purpose: 'consolidate', memoryMiB: 4096, estimatedSeconds: 30, dependsOn };
}
function powerOff(id: string, hostId: string, dependsOn: string[] = []): PowerOffAction {
  return { id, type: 'power-off', host: hostId, estimatedSavingWatts: 150, dependsOn };
}
function powerOn(id: string, hostId: string, dependsOn: string[] = []): PowerOnAction {
  return { id, type: 'power-on', host: hostId, reason: 'Overload', expectedReadyAtMs: NOW + 180_000, dependsOn };
}

interface ClusterChanges {
  hosts?: Partial<Record<string, Partial<HostSnapshot>>>;
  vms?: Partial<Record<string, Partial<VmSnapshot>>>;
  extraVms?: VmSnapshot[];
  policy?: Partial<PolicyInput>;
  input?: Partial<PlanInput>;
}

function cluster(changes: ClusterChanges = {}): PlanInput {
  const hosts = [
    host({ id: 'a' }),
    host({ id: 'b' }),
    host({ id: 'c' }),
    host({ id: 'd', power: 'off' }),
    host({ id: 'e', excluded: true }),
    host({ id: 'f', power: 'off' }),
  ].map((h) => ({ ...h, ...changes.hosts?.[h.id] }));
  const vms = [vm({ id: 'v1', host: 'a', cpu: 2, memoryMiB: 4096 }), vm({ id: 'v2', host: 'b', cpu: 2, memoryMiB: 4096 })]
    .map((v) => ({ ...v, ...changes.vms?.[v.id] }))
    .concat(changes.extraVms ?? []);
  return planInput(snapshot(hosts, vms), plannerPolicy(changes.policy), { poweredOffByUs: ['d'], ...changes.input });
}

interface BreakingCase {
  readonly input: PlanInput;
  readonly plan: readonly Action[];
  /**
   * Invariants a plan breaking this one necessarily breaks too (empty for almost all): the test
   * asserts the exact set, so a checker that reports too much fails as well as one that reports too
   * little.
   */
  readonly alsoBroken?: readonly Invariant[];
}

/** One case per invariant; the Record type makes a missing one a compile error, the test below a test failure. */
const BREAKING: Record<Invariant, BreakingCase> = {
  'action-order': {
    input: cluster(),
    // m1 waits for m2, which comes after it.
    plan: [migrate('m1', 'v1', 'a', 'c', ['m2']), migrate('m2', 'v2', 'b', 'c')],
  },
  'unique-ids': {
    input: cluster(),
    plan: [migrate('m1', 'v1', 'a', 'c'), migrate('m1', 'v2', 'b', 'c')],
  },
  'vm-location': {
    input: cluster(),
    // v1 runs on a, not on b.
    plan: [migrate('m1', 'v1', 'b', 'c')],
  },
  'vm-moves-once': {
    input: cluster(),
    plan: [migrate('m1', 'v1', 'a', 'b'), migrate('m2', 'v1', 'b', 'c', ['m1'])],
    // Its second move leaves from where the first put it (or vm-location breaks), so that host both
    // receives and sends.
    alsoBroken: ['source-and-destination'],
  },
  'source-usable': {
    // e is excluded by the policy: observed only, never a source (safety rule 4).
    input: cluster({ vms: { v1: { host: 'e' } } }),
    plan: [migrate('m1', 'v1', 'e', 'c')],
  },
  'source-and-destination': {
    input: cluster(),
    plan: [migrate('m1', 'v1', 'a', 'b'), migrate('m2', 'v2', 'b', 'c')],
  },
  'destination-usable': {
    input: cluster(),
    // e is on and empty but excluded by the policy.
    plan: [migrate('m1', 'v1', 'a', 'e')],
  },
  'woken-before-use': {
    input: cluster(),
    // d is woken in this plan, but the migration onto it does not wait for the power-on.
    plan: [powerOn('p1', 'd'), migrate('m1', 'v1', 'a', 'd')],
  },
  'pinned-moved': {
    input: cluster({ vms: { v1: { pinned: true } } }),
    plan: [migrate('m1', 'v1', 'a', 'c')],
  },
  'protected-moved': {
    input: cluster({ vms: { v1: { protected: true } } }),
    plan: [migrate('m1', 'v1', 'a', 'c')],
  },
  'power-off-protected': {
    // Its host can only be emptied by moving the protected VM, which breaks protected-moved too.
    input: cluster({ vms: { v1: { protected: true } } }),
    plan: [migrate('m1', 'v1', 'a', 'c'), powerOff('o1', 'a', ['m1'])],
    alsoBroken: ['protected-moved'],
  },
  'anti-affinity': {
    input: cluster({ vms: { v1: { antiAffinityGroups: ['db'] }, v2: { antiAffinityGroups: ['db'] } } }),
    plan: [migrate('m1', 'v1', 'a', 'b')],
  },
  'destination-over-target': {
    // 24 of c's 32 cores is 75 %, above the default CPU target of 70 %.
    input: cluster({ vms: { v1: vm({ id: 'v1', host: 'a', cpu: 24, memoryMiB: 4096 }) } }),
    plan: [migrate('m1', 'v1', 'a', 'c')],
  },
  'power-off-not-empty': {
    input: cluster(),
    plan: [powerOff('o1', 'a')],
  },
  'power-off-before-migrations': {
    input: cluster(),
    // a is empty by the time it goes off, but its power-off does not wait for the migration.
    plan: [migrate('m1', 'v1', 'a', 'c'), powerOff('o1', 'a')],
  },
  'power-off-unmanaged': {
    input: cluster(),
    // e is empty but excluded: consolidator never touches it.
    plan: [powerOff('o1', 'e')],
  },
  'power-on-not-ours': {
    input: cluster(),
    // f is off, but an operator switched it off.
    plan: [powerOn('p1', 'f')],
  },
  'min-hosts-on': {
    // a, b, c and e are on; powering c off leaves 3.
    input: cluster({ policy: { safety: { minHostsOn: 4 } } }),
    plan: [powerOff('o1', 'c')],
  },
  'migration-cap': {
    input: cluster({ policy: { safety: { maxMigrationsPerCycle: 1 } } }),
    plan: [migrate('m1', 'v1', 'a', 'c'), migrate('m2', 'v2', 'b', 'c')],
  },
  'power-budget': {
    // c was powered off and on twice in the last 24 h already (the default limit is 4).
    input: cluster({ input: { powerActionsLast24h: { c: 4 } } }),
    plan: [powerOff('o1', 'c')],
  },
  'vm-exactly-once': {
    // v1 is reported by both a and c (a migration someone else started is half way). No plan on such a
    // snapshot can say where v1 ends; powering off a, which the simulation's one location for v1 (c)
    // would make look empty, must be refused.
    input: cluster({ extraVms: [vm({ id: 'v1', host: 'c', cpu: 2, memoryMiB: 4096, state: 'paused' })] }),
    plan: [powerOff('o1', 'a')],
  },
};

function brokenBy(c: BreakingCase): Invariant[] {
  return [...new Set(checkPlan(c.input, c.plan).violations.map((v) => v.invariant))].sort();
}

describe('checkPlan rejects a plan that breaks an invariant, by name', () => {
  it('has a breaking case for every invariant in INVARIANTS', () => {
    expect(Object.keys(BREAKING).sort()).toEqual([...INVARIANTS].sort());
  });

  it('accepts the base cluster with an empty plan and a harmless one', () => {
    expect(checkPlan(cluster(), []).violations).toEqual([]);
    expect(checkPlan(cluster(), [migrate('m1', 'v1', 'a', 'c'), powerOff('o1', 'a', ['m1'])]).violations).toEqual([]);
    expect(checkPlan(cluster(), [powerOn('p1', 'd'), migrate('m1', 'v1', 'a', 'd', ['p1'])]).violations).toEqual([]);
  });

  it.each(INVARIANTS.map((name) => [name] as const))('%s', (name) => {
    const c = BREAKING[name];
    const violations = checkPlan(c.input, c.plan).violations;
    const named = violations.filter((v) => v.invariant === name);
    expect(named.length, `expected a ${name} violation, got ${JSON.stringify(violations)}`).toBeGreaterThan(0);
    for (const v of named) expect(v.message.length).toBeGreaterThan(0);
    expect(brokenBy(c)).toEqual([name, ...(c.alsoBroken ?? [])].sort());
  });
});

/**
 * Plans the planner never makes and the safety rules forbid, which the checker let through: each is
 * asserted by name, so the gap cannot reopen.
 */
describe('checkPlan rejects what the safety rules forbid beyond the first list', () => {
  it.each([
    ['a migration off an excluded host (rule 4)', cluster({ vms: { v1: { host: 'e' } } }), [migrate('m1', 'v1', 'e', 'c')], 'source-usable'],
    ['a migration off a host in maintenance (rule 4)', cluster({ hosts: { a: { maintenance: true } } }), [migrate('m1', 'v1', 'a', 'c')], 'source-usable'],
    ['a migration off a host whose hypervisor did not answer', cluster({ hosts: { a: { reachable: false } } }), [migrate('m1', 'v1', 'a', 'c')], 'source-usable'],
    ['a power-off of a host whose hypervisor did not answer, so its VMs are unknown (rule 1)', cluster({ hosts: { c: { reachable: false } } }), [powerOff('o1', 'c')], 'power-off-unmanaged'],
    ['a power-off of the destination of a migration still in flight (rule 1)', cluster({ input: { inFlight: [{ type: 'migrate', vm: 'v1', from: 'a', to: 'c' }] } }), [powerOff('o1', 'c')], 'power-off-not-empty'],
    ['a migration of a VM already moving by a migration in flight', cluster({ input: { inFlight: [{ type: 'migrate', vm: 'v1', from: 'a', to: 'b' }] } }), [migrate('m1', 'v1', 'a', 'c')], 'vm-moves-once'],
    ['a migration onto a host whose power-off is in flight', cluster({ input: { inFlight: [{ type: 'power-off', host: 'c' }] } }), [migrate('m1', 'v1', 'a', 'c')], 'destination-usable'],
    ['a power-off of a host that needs attention (failed to power on)', cluster({ input: { needsAttention: ['c'] } }), [powerOff('o1', 'c')], 'power-off-unmanaged'],
    ['a power-on of a host that needs attention, though we powered it off', cluster({ input: { needsAttention: ['d'] } }), [powerOn('p1', 'd')], 'power-on-not-ours'],
  ] as const)('refuses %s', (_what, input, plan, name) => {
    expect(brokenBy({ input, plan })).toEqual([name]);
  });
});
