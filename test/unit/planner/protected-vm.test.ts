import { describe, expect, it } from 'vitest';
import { checkPlan } from '../../../src/planner/check-plan.js';
import { planCycle } from '../../../src/planner/plan-cycle.js';
import { planDrain } from '../../../src/planner/plan-drain.js';
import type { Action } from '../../../src/planner/types.js';
import { host, planInput, plannerPolicy, snapshot, underloadedFor, vm } from '../../helpers/cluster.js';

// Three underloaded hosts; h1 runs the controller's own VM (or its etcd), h2 and h3 ordinary ones.
const cluster = () =>
  snapshot(
    [host({ id: 'h1' }), host({ id: 'h2' }), host({ id: 'h3' })],
    [
      vm({ id: 'controller', host: 'h1', cpu: 0.5, memoryMiB: 4096, protected: true }),
      vm({ id: 'web', host: 'h2', cpu: 0.5, memoryMiB: 4096 }),
      vm({ id: 'db', host: 'h3', cpu: 0.5, memoryMiB: 4096 }),
    ],
  );
const policy = plannerPolicy({ safety: { minHostsOn: 1 } });

describe('a protected VM (the controller itself, or vmRules.protected)', () => {
  it('keeps its host on with the reason ProtectedVm, and is never moved, while other hosts are emptied', () => {
    const input = planInput(cluster(), policy, { memory: underloadedFor(60, ['h1', 'h2', 'h3']) });
    const plan = planCycle(input);
    expect(plan.verdicts.find((v) => v.host === 'h1')).toMatchObject({ outcome: 'kept-on', reason: 'ProtectedVm' });
    expect(plan.actions.some((a) => a.type === 'migrate' && a.vm === 'controller')).toBe(false);
    expect(plan.actions.some((a) => a.type === 'power-off' && a.host === 'h1')).toBe(false);
    // It saves what it can elsewhere: the others are emptied onto h1 or each other.
    expect(plan.actions.some((a) => a.type === 'power-off')).toBe(true);
    expect(checkPlan(input, plan.actions).violations).toEqual([]);
  });

  it('refuses an operator drain of its host, saying why', () => {
    const result = planDrain(planInput(cluster(), policy), 'h1', { powerOff: true });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reasons.join('\n')).toMatch(/controller is protected/);
  });

  it('the checker rejects a plan that moves it (protected-moved) or powers its host off (power-off-protected)', () => {
    const input = planInput(cluster(), policy);
    const actions: Action[] = [
      { id: '1-migrate-controller', type: 'migrate', vm: 'controller', from: 'h1', to: 'h2', purpose: 'consolidate', memoryMiB: 4096, estimatedSeconds: 5, dependsOn: [] },
      { id: '2-power-off-h1', type: 'power-off', host: 'h1', estimatedSavingWatts: 150, dependsOn: ['1-migrate-controller'] },
    ];
    const invariants = checkPlan(input, actions).violations.map((v) => v.invariant);
    expect(invariants).toContain('protected-moved');
    expect(invariants).toContain('power-off-protected');
  });
});
