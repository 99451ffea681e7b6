import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HostCpuPredictor, PolicyInput } from '../../../src/config/schema.js';
import type { HostSnapshot, VmSnapshot } from '../../../src/model/snapshot.js';
import { vmDemand } from '../../../src/planner/demand.js';
import { hostDemandEstimator, isAdditiveCpu } from '../../../src/planner/host-demand.js';
import { checkPlan, planCycle } from '../../../src/planner/index.js';
import type { PlanInput } from '../../../src/planner/types.js';
import { host, NOW, planInput, plannerPolicy, snapshot, underloadedFor } from '../../helpers/cluster.js';

const STEP_MS = 300_000;

/** A VM with a CPU series (cores, oldest first, the last at NOW, 5 minutes apart) and constant memory. */
function seriesVm(id: string, hostId: string, cpu: readonly number[], memoryMiB = 1024, vcpus = 4): VmSnapshot {
  return {
    id,
    host: hostId,
    state: 'running',
    vcpus,
    memoryMiB,
    samples: cpu.map((c, i) => ({ atMs: NOW - (cpu.length - 1 - i) * STEP_MS, use: { cpu: c, memory: memoryMiB } })),
    pinned: false,
    antiAffinityGroups: [],
  };
}

function policyWith(cpu: HostCpuPredictor[], extra: Partial<PolicyInput> = {}) {
  return plannerPolicy({
    thresholds: { cpu: { statistic: 'max', windowSeconds: 1800, underloadRatio: 0.6, targetRatio: 0.8, overloadRatio: 0.95 } },
    hostDemand: { cpu },
    ...extra,
  });
}

// Two VMs that take turns: each peaks at 4 cores while the other idles at 1.
const a = seriesVm('a', 'h1', [4, 1, 4, 1, 4, 1, 4]);
const b = seriesVm('b', 'h1', [1, 4, 1, 4, 1, 4, 1]);

describe('host demand predictors', () => {
  it('the default is the plain sum of each VM statistic, on the additive fast path', () => {
    expect(isAdditiveCpu(plannerPolicy())).toBe(true);
    expect(hostDemandEstimator([a, b], plannerPolicy(), NOW)).toBeUndefined();
    expect(isAdditiveCpu(policyWith([{ kind: 'sum-of-vms', statistic: 'p50' }]))).toBe(false);
  });

  it('sum-of-vms adds the peaks; peak-of-sum sees that the VMs never peak together', () => {
    const sum = hostDemandEstimator([a, b], policyWith([{ kind: 'sum-of-vms', statistic: 'p50' }, { kind: 'sum-of-vms' }]), NOW);
    expect(sum?.ofVms([a, b]).cpu).toBe(8);
    const peak = hostDemandEstimator([a, b], policyWith([{ kind: 'peak-of-sum', statistic: 'max' }]), NOW);
    expect(peak?.ofVms([a, b]).cpu).toBe(5);
    expect(peak?.ofVms([a]).cpu).toBe(4);
  });

  it('n-sigma is the mean plus N standard deviations of the summed samples; max-of takes the largest', () => {
    const c = seriesVm('c', 'h1', [1, 3, 1, 3, 1, 3, 1, 3]);
    // mean 2, population sd 1
    expect(hostDemandEstimator([c], policyWith([{ kind: 'n-sigma', sigmas: 2 }], { thresholds: { cpu: { windowSeconds: 2400 } } }), NOW)?.ofVms([c]).cpu).toBeCloseTo(4, 12);
    const both = policyWith([{ kind: 'n-sigma', sigmas: 0 }, { kind: 'sum-of-vms', statistic: 'p50' }]);
    // n-sigma 0 = the mean of the sum (a + b is 5 at every sample) against the sum of their medians (4 + 1).
    const est = hostDemandEstimator([a, b], both, NOW);
    expect(est?.ofVms([a, b]).cpu).toBe(Math.max(5, vmMedian(a) + vmMedian(b)));
  });

  it('never predicts below what the VMs use together right now', () => {
    // A sharp rise at the last sample: the mean of the window is far below it.
    const rising = seriesVm('r', 'h1', [0, 0, 0, 0, 0, 0, 6]);
    const est = hostDemandEstimator([rising], policyWith([{ kind: 'n-sigma', sigmas: 0 }]), NOW);
    expect(est?.ofVms([rising]).cpu).toBe(6);
  });

  it('a VM with fewer samples counts its highest one in the older positions; one without samples counts all its vCPUs', () => {
    const young = seriesVm('y', 'h1', [2, 3]);
    const unmeasured: VmSnapshot = { ...seriesVm('u', 'h1', []), vcpus: 2 };
    const est = hostDemandEstimator([a, young, unmeasured], policyWith([{ kind: 'peak-of-sum', statistic: 'max' }]), NOW);
    // a: 4,1,4,1,4,1,4; young padded: 3,3,3,3,3,2,3; unmeasured: 2 everywhere
    expect(est?.ofVms([a, young]).cpu).toBe(7);
    expect(est?.ofVms([a, young, unmeasured]).cpu).toBe(9);
  });

  it('hostDemand.windowSeconds reads the summed samples over its own window', () => {
    // 13 samples (an hour): the two VMs peaked together 50 minutes ago, never in the last 30 minutes.
    const early = seriesVm('e', 'h1', [4, 1, 1, 1, 1, 1, 1, 4, 1, 4, 1, 4, 1]);
    const late = seriesVm('l', 'h1', [4, 1, 1, 1, 1, 1, 1, 1, 4, 1, 4, 1, 4]);
    const short = hostDemandEstimator([early, late], policyWith([{ kind: 'peak-of-sum', statistic: 'max' }]), NOW);
    expect(short?.ofVms([early, late]).cpu).toBe(5);
    const long = hostDemandEstimator([early, late], policyWith([{ kind: 'peak-of-sum', statistic: 'max' }], { hostDemand: { cpu: [{ kind: 'peak-of-sum', statistic: 'max' }], windowSeconds: 3600 } }), NOW);
    expect(long?.ofVms([early, late]).cpu).toBe(8);
  });

  it('memory is never predicted: it is the sum of each VM statistic', () => {
    const policy = policyWith([{ kind: 'peak-of-sum', statistic: 'p50' }]);
    const est = hostDemandEstimator([a, b], policy, NOW);
    expect(est?.ofVms([a, b]).memory).toBe(vmDemand(a, policy, NOW).memory + vmDemand(b, policy, NOW).memory);
  });

  it('is deterministic: the same figures whatever the order of the VMs', () => {
    const policy = policyWith([{ kind: 'n-sigma', sigmas: 3 }, { kind: 'peak-of-sum', statistic: 'p90' }]);
    const c = seriesVm('c', 'h1', [0.5, 2.5, 1.5, 0.25, 3, 1, 2]);
    const est = hostDemandEstimator([a, b, c], policy, NOW);
    expect(est?.ofVms([c, b, a]).cpu).toBeCloseTo(est?.ofVms([a, b, c]).cpu ?? Number.NaN, 12);
  });

  it('packs VMs that take turns on one host, where the sum of their peaks would not fit', () => {
    // Two hosts of 8 CPUs at 80 %: 6.4 each. a + b peak together at 5, their peaks sum to 8.
    const hosts = [host({ id: 'h1', cpu: 8, memoryMiB: 65_536 }), host({ id: 'h2', cpu: 8, memoryMiB: 65_536 })];
    const vms = [a, { ...b, host: 'h2' }];
    const perVm = planCycle(planInput(snapshot(hosts, vms), policyWith([{ kind: 'sum-of-vms' }]), { memory: underloadedFor(60, ['h1', 'h2']) }));
    expect(perVm.summary.powerOffs).toBe(0);
    const input = planInput(snapshot(hosts, vms), policyWith([{ kind: 'peak-of-sum', statistic: 'max' }]), { memory: underloadedFor(60, ['h1', 'h2']) });
    const together = planCycle(input);
    expect(together.summary.powerOffs).toBe(1);
    expect(checkPlan(input, together.actions).violations).toEqual([]);
    // checkPlan judges with the same predictor: under the per-VM sum the same plan overfills the host.
    const strict = checkPlan({ ...input, policy: policyWith([{ kind: 'sum-of-vms' }]) }, together.actions).violations.map((v) => v.invariant);
    expect(strict).toContain('destination-over-target');
  });
});

function vmMedian(vm: VmSnapshot): number {
  const xs = vm.samples.map((s) => s.use.cpu).sort((x, y) => x - y);
  return xs[Math.ceil(0.5 * xs.length) - 1] as number;
}

// ---- properties -------------------------------------------------------------------------------

const predictorArb: fc.Arbitrary<HostCpuPredictor> = fc.oneof(
  fc.record({ kind: fc.constant('sum-of-vms' as const), statistic: fc.constantFrom('p50', 'p80', 'max', 'mean') }),
  fc.record({ kind: fc.constant('peak-of-sum' as const), statistic: fc.constantFrom('p50', 'p90', 'max', 'mean') }),
  fc.record({ kind: fc.constant('n-sigma' as const), sigmas: fc.constantFrom(0, 1, 2, 3) }),
);

const seriesArb = fc.array(fc.double({ min: 0, max: 6, noNaN: true }), { minLength: 0, maxLength: 8 });

describe('host demand predictors (fast-check)', () => {
  it('the predicted demand of any set of VMs is never below their current summed use', () => {
    fc.assert(
      fc.property(fc.array(predictorArb, { minLength: 1, maxLength: 3 }), fc.array(seriesArb, { minLength: 1, maxLength: 6 }), (predictors, series) => {
        const vms = series.map((s, i) => seriesVm(`v${i}`, 'h1', s, 512 * (i + 1), 6));
        const est = hostDemandEstimator(vms, policyWith(predictors), NOW);
        fc.pre(est !== undefined);
        const now = vms.reduce((sum, vm) => sum + (vm.samples.length === 0 ? vm.vcpus : (vm.samples[vm.samples.length - 1]?.use.cpu ?? 0)), 0);
        expect(est?.ofVms(vms).cpu).toBeGreaterThanOrEqual(now - 1e-9);
      }),
      { numRuns: 500 },
    );
  });

  it('plans under any predictor pass every invariant, and no destination is planned over its memory target', () => {
    const clusterArb = fc.record({
      predictors: fc.array(predictorArb, { minLength: 1, maxLength: 3 }),
      hosts: fc.array(fc.record({ cpu: fc.constantFrom(4, 8, 16), memoryGiB: fc.constantFrom(4, 8, 16), underloaded: fc.boolean() }), { minLength: 1, maxLength: 6 }),
      vms: fc.array(fc.record({ slot: fc.nat(), series: seriesArb, memoryGiB: fc.constantFrom(1, 2, 4) }), { maxLength: 16 }),
      targetRatio: fc.constantFrom(0.6, 0.8, 0.9),
    });
    fc.assert(
      fc.property(clusterArb, ({ predictors, hosts, vms, targetRatio }) => {
        const hostSnaps: HostSnapshot[] = hosts.map((h, i) => host({ id: `h${i}`, cpu: h.cpu, memoryMiB: h.memoryGiB * 1024 }));
        const vmSnaps = vms.map((v, i) => {
          const home = hostSnaps[v.slot % hostSnaps.length] as HostSnapshot;
          return seriesVm(`vm${String(i).padStart(2, '0')}`, home.id, v.series.map((c) => Math.min(c, home.capacity.cpu)), Math.min(v.memoryGiB * 1024, home.capacity.memory / 2), 4);
        });
        const policy = policyWith(predictors, {
          thresholds: { cpu: { statistic: 'max', underloadRatio: 0.5, targetRatio, overloadRatio: Math.min(1, targetRatio + 0.1) }, memory: { targetRatio, underloadRatio: 0.5, overloadRatio: Math.min(1, targetRatio + 0.1) } },
          safety: { minHostsOn: 1, maxMigrationsPerCycle: 30 },
          consolidation: { worthItMargin: 1, underloadedForSeconds: 60 },
        });
        const input: PlanInput = planInput(snapshot(hostSnaps, vmSnaps), policy, {
          memory: underloadedFor(60, hostSnaps.filter((_, i) => hosts[i]?.underloaded).map((h) => h.id)),
        });
        const plan = planCycle(input);
        const { violations, postState } = checkPlan(input, plan.actions);
        expect(violations).toEqual([]);
        // Deterministic: the same plan with the snapshot's lists reversed.
        const reversed = planCycle({ ...input, snapshot: { ...input.snapshot, hosts: [...input.snapshot.hosts].reverse(), vms: [...input.snapshot.vms].reverse() } });
        expect(reversed.actions).toEqual(plan.actions);
        const destinations = new Set(plan.actions.flatMap((x) => (x.type === 'migrate' ? [x.to] : [])));
        for (const h of postState.hosts) {
          if (!destinations.has(h.id)) continue;
          const memory = postState.vms.filter((v) => v.host === h.id).reduce((sum, v) => sum + vmDemand(v, policy, NOW).memory, 0);
          expect(memory).toBeLessThanOrEqual(h.capacity.memory * targetRatio + 1e-9);
        }
      }),
      { numRuns: 400 },
    );
  }, 120_000);
});
