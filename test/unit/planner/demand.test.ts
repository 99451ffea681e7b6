import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { UsageSample, VmSnapshot } from '../../../src/model/snapshot.js';
import { attachColumns, columnsOf } from '../../../src/model/usage-columns.js';
import { CycleDemands, hostUse, summarize, vmDemand } from '../../../src/planner/demand.js';
import type { PlannerPolicy } from '../../../src/planner/types.js';
import { host, NOW, plannerPolicy, vm } from '../../helpers/cluster.js';

/** The statistic as the documentation states it, the slow way: the samples in the window, else the latest. */
function reference(samples: readonly UsageSample[], policy: PlannerPolicy, nowMs: number): { cpu: number; memory: number } {
  if (samples.length === 1) return { ...(samples[0] as UsageSample).use };
  const of = (r: 'cpu' | 'memory') => {
    const fromMs = nowMs - policy.thresholds[r].windowSeconds * 1000;
    const inWindow = samples.filter((s) => s.atMs >= fromMs && s.atMs <= nowMs).map((s) => s.use[r]);
    if (inWindow.length === 0) return (samples[samples.length - 1] as UsageSample).use[r];
    return summarize(inWindow, policy.thresholds[r].statistic);
  };
  return { cpu: of('cpu'), memory: of('memory') };
}

const sampleArb = fc.record({
  ageSeconds: fc.integer({ min: -120, max: 4000 }),
  cpu: fc.double({ min: 0, max: 64, noNaN: true }),
  memory: fc.double({ min: 0, max: 65536, noNaN: true }),
});

/** The samples with columns attached, stored from `offset` in buffers with other values around them. */
function withColumnsAt(samples: UsageSample[], offset: number): UsageSample[] {
  const column = (of: (s: UsageSample) => number) => Float64Array.from([...Array<number>(offset).fill(-1), ...samples.map(of), -1]);
  return attachColumns(samples.slice(), { atMs: column((s) => s.atMs), cpu: column((s) => s.use.cpu), memory: column((s) => s.use.memory), offset, length: samples.length }) as UsageSample[];
}

function withSamples(samples: UsageSample[], id = 'v1'): VmSnapshot {
  return { ...vm({ id, host: 'h1', cpu: 1, memoryMiB: 1024 }), samples };
}

describe('demand estimation', () => {
  it('is the window statistic of each resource, both computed in one pass', () => {
    fc.assert(
      fc.property(
        fc.array(sampleArb, { maxLength: 40 }),
        fc.constantFrom('mean', 'max', 'p50', 'p90', 'p95', 'p99.9', 'p10'),
        fc.constantFrom('mean', 'max', 'p80', 'p95'),
        fc.constantFrom(300, 1800, 3600),
        fc.constantFrom(60, 1800),
        (raw, cpuStatistic, memoryStatistic, cpuWindow, memoryWindow) => {
          const samples = raw.map((s) => ({ atMs: NOW - s.ageSeconds * 1000, use: { cpu: s.cpu, memory: s.memory } }));
          const policy = plannerPolicy({
            thresholds: { cpu: { statistic: cpuStatistic, windowSeconds: cpuWindow }, memory: { statistic: memoryStatistic, windowSeconds: memoryWindow } },
          });
          const expected = samples.length === 0 ? { cpu: 1, memory: 1024 } : reference(samples, policy, NOW);
          expect(vmDemand(withSamples(samples), policy, NOW)).toEqual(expected);
          expect(CycleDemands.of({ policy, nowMs: NOW }).vm(withSamples(samples))).toEqual(expected);
          // The same samples with columns attached (as the simulator hands them), inside a larger buffer.
          expect(vmDemand(withSamples(withColumnsAt(samples, 3)), policy, NOW)).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads the columns attached to the sample array, and a copy of the samples has none', () => {
    const policy = plannerPolicy({ thresholds: { cpu: { statistic: 'max', windowSeconds: 1800 } } });
    const samples = [
      { atMs: NOW - 60_000, use: { cpu: 1, memory: 10 } },
      { atMs: NOW, use: { cpu: 2, memory: 20 } },
    ];
    // Columns that disagree with the objects show which one was read.
    const attached = attachColumns(samples.slice(), { atMs: new Float64Array([NOW - 60_000, NOW]), cpu: new Float64Array([7, 3]), memory: new Float64Array([70, 30]), offset: 0, length: 2 });
    expect(vmDemand(withSamples([...attached]), policy, NOW).cpu).toBe(2);
    expect(vmDemand(withSamples(attached as UsageSample[]), policy, NOW).cpu).toBe(7);
    expect(columnsOf(attached.map((s) => s))).toBeUndefined();
    expect(columnsOf({ ...withSamples(attached as UsageSample[]), samples: attached.slice() }.samples)).toBeUndefined();
    // Not enumerable: comparisons and JSON see the samples only.
    expect(attached).toEqual(samples);
    expect(JSON.stringify(attached)).toBe(JSON.stringify(samples));
  });

  it('computes each demand of a cycle once, and never answers for another object of the same name', () => {
    const policy = plannerPolicy();
    const demands = CycleDemands.of({ policy, nowMs: NOW });
    const a = withSamples([{ atMs: NOW, use: { cpu: 2, memory: 100 } }]);
    const first = demands.vm(a);
    expect(demands.vm(a)).toBe(first);
    // The same VM in a plan's post-state, or another snapshot: its own samples count.
    const b = withSamples([{ atMs: NOW, use: { cpu: 5, memory: 300 } }]);
    expect(demands.vm(b)).toEqual({ cpu: 5, memory: 300 });
    const h = { ...host({ id: 'h1', cpu: 8, memoryMiB: 32768 }), samples: [{ atMs: NOW, use: { cpu: 3, memory: 50 } }] };
    expect(demands.host(h)).toEqual(hostUse(h, policy, NOW));
    expect(demands.host({ ...h, samples: [] })).toBeUndefined();
  });

  it('is for one moment and one set of thresholds', () => {
    const policy = plannerPolicy();
    const demands = CycleDemands.of({ policy, nowMs: NOW });
    expect(demands.isFor({ policy, nowMs: NOW })).toBe(true);
    expect(demands.isFor({ policy, nowMs: NOW + 60_000 })).toBe(false);
    expect(demands.isFor({ policy: plannerPolicy(), nowMs: NOW })).toBe(false);
  });
});
