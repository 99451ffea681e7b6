import { describe, expect, it } from 'vitest';
import { PolicySchema } from '../../../src/config/schema.js';
import type { ClusterSnapshot } from '../../../src/model/snapshot.js';
import type { PlanResult } from '../../../src/planner/types.js';
import { withForesight } from '../../../src/sim/foresight-policy.js';
import { createPlannerPolicy } from '../../../src/sim/planner-policy.js';
import { runSimulation } from '../../../src/sim/run-simulation.js';
import type { SimulationPolicy } from '../../../src/sim/simulation-policy.js';
import { host, tinySetup, vm } from './tiny-setup.js';

/** A policy that only records what it was shown. */
function recorder(historySeconds?: number): SimulationPolicy & { readonly seen: ClusterSnapshot[] } {
  const seen: ClusterSnapshot[] = [];
  return { name: 'recorder', seen, ...(historySeconds === undefined ? {} : { historySeconds }), decide: (input) => (seen.push(input.snapshot), { migrations: [], powerOff: [], powerOn: [] }) };
}

describe('withForesight: the planner shown the future instead of the past (a benchmark bound)', () => {
  it("shows each VM its trace's next points, labelled as the end of its window, and each host the sum of its VMs'", () => {
    const setup = tinySetup([host('h0', { cpu: 2000 })], [vm('a', [10, 20, 90, 30, 40]), vm('b', [50, 50, 10, 70, 0.5])], { horizonSeconds: 700 });
    const inner = recorder();
    runSimulation(setup, withForesight(inner, setup, 600), { maxDecisions: 1 });
    const seen = inner.seen[0] as ClusterSnapshot;
    const now = 300_000;
    const cpuOf = (id: string) => seen.vms.find((v) => v.id === id)?.samples.map((s) => [s.atMs, s.use.cpu]);
    // Decision at 300 s: the trace at 300, 600 and 900 s, labelled 600 and 300 s before now, and now.
    expect(cpuOf('a')).toEqual([[now - 600_000, 200], [now - 300_000, 900], [now, 300]]);
    expect(cpuOf('b')).toEqual([[now - 600_000, 500], [now - 300_000, 100], [now, 700]]);
    expect(seen.hosts[0]?.samples.map((s) => s.use.cpu)).toEqual([700, 1000, 1000]);
  });

  it('refuses a lookahead shorter than a sample or longer than the samples the policy reads', () => {
    const setup = tinySetup([host('h0')], [vm('a', [10])]);
    expect(() => withForesight(recorder(), setup, 60)).toThrow(/shorter than one trace sample/);
    expect(() => withForesight(recorder(1800), setup, 3600)).toThrow(/longer than the 1800 s/);
  });

  it('lets the planner relieve a host before the overload its VMs are about to cause, which it cannot see without it', () => {
    // Two VMs of 500 on one 1000 host: 40 % each, then both at 100 % from 900 s (the host at 100 %).
    const setup = tinySetup([host('h0'), host('h1')], [vm('a', [40, 40, 40, 100], { cpu: 500, initialHost: 'h0' }), vm('b', [40, 40, 40, 100], { cpu: 500, initialHost: 'h0' })], {
      initialPlacement: 'as-specified',
      horizonSeconds: 700,
    });
    const policy = PolicySchema.parse({
      version: 1,
      hosts: [{ name: 'sim' }],
      hypervisor: { driver: 'simulated' },
      power: { driver: 'simulated' },
      thresholds: { cpu: { underloadRatio: 0.2, targetRatio: 0.8, overloadRatio: 0.9, windowSeconds: 600, statistic: 'max' } },
    });
    const plansAt300 = (foresight: boolean): PlanResult => {
      const plans: PlanResult[] = [];
      const planner = createPlannerPolicy({ policy, setup, onPlan: (_input, plan) => plans.push(plan) });
      runSimulation(setup, foresight ? withForesight(planner, setup, 600) : planner, { maxDecisions: 1 });
      return plans[0] as PlanResult;
    };
    expect(plansAt300(false).actions.filter((a) => a.type === 'migrate')).toEqual([]);
    expect(plansAt300(true).actions.filter((a) => a.type === 'migrate')).toHaveLength(1);
  });
});
