import { describe, expect, it } from 'vitest';
import { planCycle } from '../../../src/planner/plan-cycle.js';
import { planDrain } from '../../../src/planner/plan-drain.js';
import { host, planInput, plannerPolicy, snapshot, underloadedFor, vm } from '../../helpers/cluster.js';

const policy = plannerPolicy({
  thresholds: { cpu: { underloadRatio: 0.3, targetRatio: 0.8, overloadRatio: 0.9 }, memory: { underloadRatio: 0.3, targetRatio: 0.8, overloadRatio: 0.9 } },
});
const GiB = 1024;
// 16 CPU, 64 GiB hosts: 12.8 CPU and 51.2 GiB each under the targets. h3 draws more per CPU than h4.
const hosts = (off: 'off' | 'on' = 'off') => [
  host({ id: 'h1', cpu: 16, memoryMiB: 64 * GiB }),
  host({ id: 'h2', cpu: 16, memoryMiB: 64 * GiB }),
  host({ id: 'h3', cpu: 16, memoryMiB: 64 * GiB, power: off, powerModel: { kind: 'linear', idleWatts: 200, maxWatts: 400 } }),
  host({ id: 'h4', cpu: 16, memoryMiB: 64 * GiB, power: off, powerModel: { kind: 'linear', idleWatts: 60, maxWatts: 150 } }),
];
/** h2 has 11.2 GiB free under target; h1's VMs need `count` x 16 GiB. */
const vms = (count: number) => [
  vm({ id: 'big-on-h2', host: 'h2', cpu: 1, memoryMiB: 40 * GiB }),
  ...Array.from({ length: count }, (_, i) => vm({ id: `v${i + 1}`, host: 'h1', cpu: 0.08, memoryMiB: 16 * GiB })),
];

describe('planDrain when the hosts on lack room', () => {
  it('asks for the most power-efficient host consolidator powered off, and no more than needed', () => {
    const input = planInput(snapshot(hosts(), vms(3)), policy, { poweredOffByUs: ['h3', 'h4'] });
    const plan = planDrain(input, 'h1', { powerOff: false });
    expect(plan.ok).toBe(false);
    if (plan.ok) return;
    expect(plan.wake?.hosts.map((w) => w.host)).toEqual(['h4']);
    expect(plan.wake?.hosts[0]?.cpu).toBeCloseTo(12.8);
    expect(plan.wake?.hosts[0]?.memoryMiB).toBeCloseTo(51.2 * GiB);
    expect(plan.wake?.actions.map((a) => (a.type === 'migrate' ? `${a.vm}->${a.to}` : a.type))).toEqual(['v1->h4', 'v2->h4', 'v3->h4']);
    expect(plan.room).toMatchObject({ needCpu: expect.closeTo(0.24) as unknown, needMemoryMiB: 48 * GiB, activeHosts: 1 });
    expect(plan.room?.freeMemoryMiB).toBeCloseTo(11.2 * GiB);
    expect(plan.reasons).toEqual([
      'the VMs on h1 need 0.24 CPU and 49152 MiB; the 1 host(s) on that may receive them have 11.80 CPU and 11469 MiB free under the targets: there is room for every VM once h4 (+12.80 CPU, +52429 MiB) is woken',
    ]);
  });

  it('wakes a second host only when the first is not enough, still most efficient first', () => {
    const plan = planDrain(planInput(snapshot(hosts(), vms(5)), policy, { poweredOffByUs: ['h3', 'h4'] }), 'h1', { powerOff: true });
    expect(!plan.ok && plan.wake?.hosts.map((w) => w.host)).toEqual(['h4', 'h3']);
    expect(!plan.ok && plan.wake?.actions.at(-1)).toMatchObject({ type: 'power-off', host: 'h1' });
  });

  it('never counts a host consolidator did not power off, or one marked for attention', () => {
    const plan = planDrain(planInput(snapshot(hosts(), vms(3)), policy, { poweredOffByUs: ['h3', 'h4'], needsAttention: ['h4'] }), 'h1', { powerOff: false });
    expect(!plan.ok && plan.wake?.hosts.map((w) => w.host)).toEqual(['h3']);
    const none = planDrain(planInput(snapshot(hosts(), vms(3)), policy, { poweredOffByUs: [] }), 'h1', { powerOff: false });
    expect(none.ok).toBe(false);
    if (none.ok) return;
    expect(none.wake).toBeUndefined();
    expect(none.room?.wakeable).toEqual([]);
  });

  it('a refusal gives the figures, not every small VM as fitting nowhere', () => {
    const plan = planDrain(planInput(snapshot(hosts(), vms(12)), policy, { poweredOffByUs: ['h4'] }), 'h1', { powerOff: false });
    expect(plan.ok).toBe(false);
    if (plan.ok) return;
    expect(plan.wake).toBeUndefined();
    expect(plan.reasons).toEqual([
      'the VMs on h1 need 0.96 CPU and 196608 MiB; the 1 host(s) on that may receive them have 11.80 CPU and 11469 MiB free under the targets',
      'waking every host consolidator powered off (h4 (+12.80 CPU, +52429 MiB)) would still not make room',
    ]);
    expect(plan.room?.wakeable.map((w) => w.host)).toEqual(['h4']);
  });

  it('names the VM when the sums would do but no single host takes it', () => {
    const s = snapshot(hosts('on'), [vm({ id: 'huge', host: 'h1', cpu: 14, memoryMiB: 8 * GiB })]);
    const plan = planDrain(planInput(s, policy), 'h1', { powerOff: false });
    expect(!plan.ok && plan.reasons).toEqual([
      'the VMs on h1 need 14.00 CPU and 8192 MiB; the 3 host(s) on that may receive them have 38.40 CPU and 157286 MiB free under the targets',
      'no host consolidator powered off can be woken to make room',
      "VM huge (14.00 cpu, 8192 MiB) fits on no other host under the policy's targets",
    ]);
  });

  it('plans the drain as before when the hosts on have room', () => {
    const plan = planDrain(planInput(snapshot(hosts('on'), vms(3)), policy, { poweredOffByUs: [] }), 'h1', { powerOff: false });
    expect(plan.ok).toBe(true);
  });
});

describe('a host woken for a maintenance', () => {
  it('is kept on by a cycle (WokenForMaintenance) while the mark holds, and emptied again without it', () => {
    const s = snapshot(
      [host({ id: 'h1', maintenance: true }), host({ id: 'h2' }), host({ id: 'h3' })],
      [vm({ id: 'a', host: 'h2', cpu: 1, memoryMiB: 4 * GiB }), vm({ id: 'b', host: 'h3', cpu: 1, memoryMiB: 4 * GiB })],
    );
    const memory = underloadedFor(60, ['h2', 'h3']);
    const marked = planCycle(planInput(s, policy, { memory, wokenForMaintenance: { h3: 'h1' } }));
    const verdict = marked.verdicts.find((v) => v.host === 'h3');
    expect(verdict).toMatchObject({ outcome: 'kept-on', reason: 'WokenForMaintenance' });
    expect(verdict?.detail).toContain('kept on until h1 is undrained');
    expect(marked.actions.some((a) => a.type === 'power-off' && a.host === 'h3')).toBe(false);
    const unmarked = planCycle(planInput(s, policy, { memory }));
    expect(unmarked.actions.some((a) => a.type === 'power-off')).toBe(true);
  });
});
