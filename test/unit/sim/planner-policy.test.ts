import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PolicySchema, type PolicyInput } from '../../../src/config/schema.js';
import type { Violation } from '../../../src/model/simulate.js';
import type { PlanInput, PlanResult } from '../../../src/planner/types.js';
import { buildCloudSimSetup } from '../../../src/sim/cloudsim-setup.js';
import { createPlannerPolicy } from '../../../src/sim/planner-policy.js';
import { runSimulation } from '../../../src/sim/run-simulation.js';
import { SimulatedDatacenter } from '../../../src/sim/simulated-datacenter.js';
import type { SimulationDecision } from '../../../src/sim/simulation-policy.js';
import { loadWorkload } from '../../../src/sim/workload/load-workload.js';
import { host, tinySetup, vm } from './tiny-setup.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures');

function policy(overrides: Partial<PolicyInput> = {}) {
  return PolicySchema.parse({ version: 1, hosts: [{ name: 'sim' }], hypervisor: { driver: 'simulated' }, power: { driver: 'simulated' }, ...overrides });
}

const CPU = { underloadRatio: 0.5, targetRatio: 0.8, overloadRatio: 0.9, windowSeconds: 600, statistic: 'max' } as const;

interface Recorded {
  readonly input: PlanInput;
  readonly plan: PlanResult;
  readonly violations: readonly Violation[];
}

/** Three hosts that really power off (trace-setup rules: 60 s boot, idle hosts draw power); a VM on each. */
function poweredSetup() {
  return tinySetup(
    [host('h0'), host('h1'), host('h2')],
    [vm('a', [50], { initialHost: 'h0' }), vm('b', [10], { initialHost: 'h1' }), vm('c', [10], { initialHost: 'h2' })],
    {
      idleHostsAreOff: false,
      zeroDemandEndsVm: false,
      memoryAdmission: 'overcommit',
      initialPlacement: 'as-specified',
      emptyHostsStartOff: true,
      horizonSeconds: 3000,
      hosts: [host('h0', { bootSeconds: 60, bootWatts: 200 }), host('h1', { bootSeconds: 60, bootWatts: 200 }), host('h2', { bootSeconds: 60, bootWatts: 200 })],
    },
  );
}

describe('createPlannerPolicy: the planner as a simulation policy', () => {
  it('carries the planner memory from one decision to the next, as the daemon does', () => {
    const recorded: Recorded[] = [];
    const adapter = createPlannerPolicy({
      policy: policy({ thresholds: { cpu: CPU }, consolidation: { underloadedForSeconds: 600 } }),
      setup: poweredSetup(),
      onPlan: (input, plan, violations) => recorded.push({ input, plan, violations }),
    });
    runSimulation(poweredSetup(), adapter, { maxDecisions: 4 });
    expect(recorded).toHaveLength(4);
    // Each plan starts from the memory the previous one returned.
    for (let i = 1; i < recorded.length; i++) expect(recorded[i]?.input.memory).toEqual(recorded[i - 1]?.plan.memory);
    // h1 and h2 (10 %) are underloaded from the first decision (300 s), h0 (50 %) is not: remembered, not reset.
    expect(recorded[0]?.plan.memory.underloadedSinceMs).toEqual({ h1: 300_000, h2: 300_000 });
    expect(recorded[1]?.plan.memory.underloadedSinceMs).toEqual({ h1: 300_000, h2: 300_000 });
    expect(recorded[1]?.plan.actions).toEqual([]);
    // 600 s later (900 s) both are emptied onto h0 (50 + 10 + 10 % stays under the 80 % target) and powered off.
    const third = recorded[2]?.plan.actions.map((a) => (a.type === 'migrate' ? `migrate ${a.vm} ${a.from}->${a.to}` : `${a.type} ${a.host}`));
    expect(third).toEqual(['migrate b h1->h0', 'power-off h1', 'migrate c h2->h0', 'power-off h2']);
    expect(recorded[2]?.plan.memory.hostCooldowns['h1']?.reason).toBe('drained');
    expect(recorded[3]?.input.memory.vmCooldownUntilMs['b']).toBe(900_000 + 3600 * 1000);
    expect(recorded.every((r) => r.violations.length === 0)).toBe(true);
  });

  it('powers off only hosts left empty, remembers them as its own and records every power action', () => {
    const setup = poweredSetup();
    const adapter = createPlannerPolicy({ policy: policy({ thresholds: { cpu: CPU }, consolidation: { underloadedForSeconds: 0 } }), setup });
    const dc = new SimulatedDatacenter(setup);
    dc.placeInitial(setup.initialPlacement);
    const decisions: SimulationDecision[] = [];
    for (let t = 300; t <= 1500; t += 300) {
      dc.advanceTo(t);
      dc.recordSamples();
      const snapshot = dc.snapshot();
      const decision = adapter.decide({ snapshot, nowMs: t * 1000, inFlight: dc.inFlight() });
      decisions.push(decision);
      for (const off of decision.powerOff) {
        const staying = snapshot.vms.filter((v) => v.host === off && !decision.migrations.some((m) => m.vm === v.id && m.from === off));
        expect(staying).toEqual([]);
      }
      for (const h of decision.powerOn) dc.powerOn(h);
      for (const m of decision.migrations) expect(dc.startMigration(m.vm, m.from, m.to)).toBeUndefined();
      for (const h of decision.powerOff) expect(dc.powerOff(h)).toBeUndefined();
      dc.settle();
    }
    const offs = decisions.flatMap((d) => d.powerOff);
    expect(offs.length).toBeGreaterThan(0);
    dc.advanceTo(1800);
    const state = adapter.state();
    for (const h of offs) {
      expect(dc.hostView(h)?.power).toBe('off');
      expect(state.poweredOffByUs).toContain(h);
      expect(state.powerRecord.hosts[h]?.map((e) => e.action)).toEqual(['off']);
    }
    expect(adapter.stats()).toMatchObject({ rejectedPlans: 0, plannedPowerOffs: offs.length });
  });

  it('wakes only hosts it powered off itself', () => {
    // h1 starts off (empty) but was not powered off by consolidator: an overloaded h0 cannot use it.
    const setup = tinySetup([host('h0'), host('h1', { bootSeconds: 60 })], [vm('a', [60], { initialHost: 'h0' }), vm('b', [60], { initialHost: 'h0' })], {
      idleHostsAreOff: false,
      zeroDemandEndsVm: false,
      memoryAdmission: 'overcommit',
      initialPlacement: 'as-specified',
      emptyHostsStartOff: true,
    });
    const adapter = createPlannerPolicy({ policy: policy({ thresholds: { cpu: CPU } }), setup });
    const report = runSimulation(setup, adapter);
    expect(adapter.stats().plannedPowerOns).toBe(0);
    expect(report.powerOns).toBe(0);
    expect(report.migrations).toBe(0);
  });

  it('is deterministic: the same figures and decisions on every run', async () => {
    const workload = await loadWorkload(join(FIXTURES, 'planetlab-small'));
    const setup = buildCloudSimSetup(workload, { hostCount: 8 });
    const run = () => {
      const decisions: string[] = [];
      const adapter = createPlannerPolicy({
        policy: policy({ thresholds: { cpu: CPU }, consolidation: { underloadedForSeconds: 300 } }),
        setup,
        memoryView: 'admitted',
        onPlan: (_input, plan) => decisions.push(JSON.stringify(plan.actions)),
      });
      const report = runSimulation(setup, adapter);
      return { report: { ...report, wallSeconds: 0 }, decisions, state: adapter.state() };
    };
    const first = run();
    const again = run();
    expect(again).toEqual(first);
    expect(first.report.migrations).toBeGreaterThan(0);
    expect(first.report.unplacedVms).toBe(0);
  });

  it("shows the planner memory as the setup admits it: none after creation under CloudSim's rule", async () => {
    const workload = await loadWorkload(join(FIXTURES, 'planetlab-small'));
    const setup = buildCloudSimSetup(workload, { hostCount: 4 });
    const seen: { admitted: number[]; observed: number[] } = { admitted: [], observed: [] };
    for (const view of ['admitted', 'observed'] as const) {
      const adapter = createPlannerPolicy({
        policy: policy(),
        setup,
        memoryView: view,
        onPlan: (input) => seen[view].push(...input.snapshot.vms.flatMap((v) => v.samples.map((s) => s.use.memory))),
      });
      runSimulation(setup, adapter, { maxDecisions: 2 });
    }
    expect(seen.admitted.length).toBeGreaterThan(0);
    expect(seen.admitted.every((m) => m === 0)).toBe(true);
    expect(seen.observed.every((m) => m > 0)).toBe(true);
  });
});

describe('the planner policy keeps the history its host-demand window reads', () => {
  it('snapshots reach back hostDemand.windowSeconds, beyond the engine default of 30 samples', () => {
    const percents = Array.from({ length: 48 }, (_, i) => 10 + (i % 5));
    const setup = tinySetup([host('h0')], [vm('a', percents, { initialHost: 'h0' })], { horizonSeconds: 40 * 300, zeroDemandEndsVm: false });
    const lengths: number[] = [];
    const planner = createPlannerPolicy({
      policy: policy({ thresholds: { cpu: CPU }, hostDemand: { cpu: [{ kind: 'peak-of-sum', statistic: 'max' }], windowSeconds: 36 * 300 } }),
      setup,
      onPlan: (input) => lengths.push(input.snapshot.vms[0]?.samples.length ?? 0),
    });
    expect(planner.historySeconds).toBe(36 * 300);
    runSimulation(setup, planner);
    expect(Math.max(...lengths)).toBeGreaterThan(30);
  });
});
