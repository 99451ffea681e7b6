import { describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/config/schema.js';
import { checkPlan, planCycle } from '../../../src/planner/index.js';
import { host, planInput, plannerPolicy, snapshot, underloadedFor, vm } from '../../helpers/cluster.js';

/**
 * Two underloaded hosts and a budget for one drain: `big` holds one VM of 16 GiB, `small` two of
 * 1 GiB, at the same CPU. `fill` has room for either.
 */
function input(drainOrder: 'fewest-vms' | 'energy-per-gib', extra: Partial<PolicyInput> = {}) {
  const hosts = [host({ id: 'big', cpu: 32 }), host({ id: 'fill', cpu: 32 }), host({ id: 'small', cpu: 32 })];
  const vms = [
    vm({ id: 'b1', host: 'big', cpu: 2, memoryMiB: 16_384 }),
    vm({ id: 'f1', host: 'fill', cpu: 16, memoryMiB: 8192 }),
    vm({ id: 's1', host: 'small', cpu: 1, memoryMiB: 1024 }),
    vm({ id: 's2', host: 'small', cpu: 1, memoryMiB: 1024 }),
  ];
  const policy = plannerPolicy({
    thresholds: { cpu: { underloadRatio: 0.3, targetRatio: 0.8, overloadRatio: 0.9 } },
    consolidation: { drainOrder, worthItMargin: 1 },
    safety: { maxMigrationsPerCycle: 2, minHostsOn: 1 },
    ...extra,
  });
  return planInput(snapshot(hosts, vms), policy, { memory: underloadedFor(60, ['big', 'small']) });
}

const drained = (i: ReturnType<typeof input>) =>
  planCycle(i)
    .actions.filter((a) => a.type === 'power-off')
    .map((a) => (a.type === 'power-off' ? a.host : ''));

describe('which underloaded host is emptied first (consolidation.drainOrder)', () => {
  it('fewest-vms empties the host with one VM, whatever its size', () => {
    expect(drained(input('fewest-vms'))).toEqual(['big']);
  });

  it('energy-per-gib empties the host that saves the same watts for an eighth of the memory copied', () => {
    const i = input('energy-per-gib');
    expect(drained(i)).toEqual(['small']);
    expect(checkPlan(i, planCycle(i).actions).violations).toEqual([]);
  });

  it('energy-per-gib counts the dirty rate: memory that is rewritten while it is copied costs more', () => {
    const i = input('energy-per-gib', { migration: { expectedLinkMiBps: 1000 } });
    // The two small VMs dirty 950 MiB/s of a 1000 MiB/s link: each copy is three times its memory, 6 GiB in all; still less than 16.
    const dirty = { ...i, snapshot: { ...i.snapshot, vms: i.snapshot.vms.map((v) => (v.host === 'small' ? { ...v, dirtyRateMiBps: 950 } : v)) } };
    expect(drained(dirty)).toEqual(['small']);
    const dirtier = { ...i, snapshot: { ...i.snapshot, vms: i.snapshot.vms.map((v) => (v.host === 'small' ? { ...v, memoryMiB: 4096, dirtyRateMiBps: 950 } : v)) } };
    // Now 2 x 3 x 4 GiB = 24 GiB against 16: the big one goes first.
    expect(drained(dirtier)).toEqual(['big']);
  });
});
