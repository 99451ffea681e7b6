import type { ResourceThresholds } from '../config/schema.js';
import { RESOURCES, type ResourceVector } from '../model/resources.js';
import type { HostSnapshot, UsageSample, VmSnapshot } from '../model/snapshot.js';
import { columnsOf } from '../model/usage-columns.js';
import type { PlannerPolicy } from './types.js';

/**
 * Demand estimation: one figure per resource from the samples in the observation window, with the
 * statistic the policy names. Pure.
 */
export function summarize(values: readonly number[], statistic: string): number {
  if (values.length === 0) return 0;
  if (statistic === 'mean') {
    let total = 0;
    for (const v of values) total += v;
    return total / values.length;
  }
  if (statistic === 'max') {
    let max = Number.NEGATIVE_INFINITY;
    for (const v of values) if (v > max) max = v;
    return max;
  }
  const percentile = Number(statistic.slice(1));
  return percentileOf(values, percentile);
}

/** Nearest-rank percentile: the smallest value with at least p % of the values at or below it. */
export function percentileOf(values: readonly number[], percentile: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((percentile / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1] as number;
}

/**
 * Scratch space for the window's values: the planner runs synchronously, one statistic at a time, and
 * computes tens of thousands of them per cycle; reusing typed arrays spares the allocations and sorts
 * without a comparator (the same order, so the same figures). Only ever read within one call.
 */
let scratchCpu = new Float64Array(64);
let scratchMemory = new Float64Array(64);

/** One resource's window rule for one moment, parsed once per cycle. */
interface WindowRule {
  readonly fromMs: number;
  /** 0 mean, 1 max, 2 percentile. */
  readonly kind: 0 | 1 | 2;
  readonly percent: number;
}

interface WindowRules {
  readonly nowMs: number;
  readonly cpu: WindowRule;
  readonly memory: WindowRule;
}

function windowRules(thresholds: PlannerPolicy['thresholds'], nowMs: number): WindowRules {
  const rule = (t: ResourceThresholds): WindowRule => ({
    fromMs: nowMs - t.windowSeconds * 1000,
    kind: t.statistic === 'mean' ? 0 : t.statistic === 'max' ? 1 : 2,
    percent: t.statistic === 'mean' || t.statistic === 'max' ? 0 : percentOf(t.statistic),
  });
  return { nowMs, cpu: rule(thresholds.cpu), memory: rule(thresholds.memory) };
}

/**
 * The window's statistic for both resources, in one pass over the samples. A single sample is its
 * own statistic (the common case at scale). Samples that come with columns (the simulator's) are
 * read from those: on a large cluster the planner's time goes into fetching sample objects from memory.
 */
function windowUse(samples: readonly UsageSample[], rules: WindowRules): ResourceVector {
  const count = samples.length;
  if (count === 0) return { cpu: 0, memory: 0 };
  if (count === 1) {
    const only = (samples[0] as UsageSample).use;
    return { cpu: only.cpu, memory: only.memory };
  }
  if (scratchCpu.length < count) {
    scratchCpu = new Float64Array(count * 2);
    scratchMemory = new Float64Array(count * 2);
  }
  const { nowMs } = rules;
  const cpuFromMs = rules.cpu.fromMs;
  const memoryFromMs = rules.memory.fromMs;
  let nCpu = 0;
  let nMemory = 0;
  let latestCpu: number;
  let latestMemory: number;
  const columns = columnsOf(samples);
  if (columns !== undefined && columns.length === count) {
    const { atMs, cpu, memory, offset } = columns;
    for (let i = offset; i < offset + count; i++) {
      const at = atMs[i] as number;
      if (at > nowMs) continue;
      if (at >= cpuFromMs) scratchCpu[nCpu++] = cpu[i] as number;
      if (at >= memoryFromMs) scratchMemory[nMemory++] = memory[i] as number;
    }
    latestCpu = cpu[offset + count - 1] as number;
    latestMemory = memory[offset + count - 1] as number;
  } else {
    // Property reads by name (use.cpu, use.memory), not use[resource]: several times faster here.
    for (let i = 0; i < count; i++) {
      const s = samples[i] as UsageSample;
      const at = s.atMs;
      if (at > nowMs) continue;
      const use = s.use;
      if (at >= cpuFromMs) scratchCpu[nCpu++] = use.cpu;
      if (at >= memoryFromMs) scratchMemory[nMemory++] = use.memory;
    }
    const latest = (samples[count - 1] as UsageSample).use;
    latestCpu = latest.cpu;
    latestMemory = latest.memory;
  }
  // With nothing in the window, the latest sample is better than nothing.
  return {
    cpu: nCpu === 0 ? latestCpu : statisticOf(scratchCpu, nCpu, rules.cpu),
    memory: nMemory === 0 ? latestMemory : statisticOf(scratchMemory, nMemory, rules.memory),
  };
}

/** The statistic of values[0..n) (n >= 1); may reorder them. */
function statisticOf(values: Float64Array, n: number, rule: WindowRule): number {
  if (rule.kind === 0) {
    let total = 0;
    for (let i = 0; i < n; i++) total += values[i] as number;
    return total / n;
  }
  if (rule.kind === 1) {
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) if ((values[i] as number) > max) max = values[i] as number;
    return max;
  }
  const rank = Math.min(n, Math.max(1, Math.ceil((rule.percent / 100) * n)));
  // A high percentile (p90, p95 of a few dozen samples) is one of the few largest: keep those.
  const fromTop = n - rank + 1;
  if (fromTop <= TOP_K_LIMIT) return kthLargest(values, n, fromTop);
  return values.subarray(0, n).sort()[rank - 1] as number;
}

const percents = new Map<string, number>();

/** The percent of a "pNN" statistic, parsed once. */
function percentOf(statistic: string): number {
  let p = percents.get(statistic);
  if (p === undefined) {
    p = Number(statistic.slice(1));
    percents.set(statistic, p);
  }
  return p;
}

/** Up to this many from the top, a running top-k beats a sort. */
const TOP_K_LIMIT = 8;
const top = new Float64Array(TOP_K_LIMIT);

/** The k-th largest of values[0..n) (k <= TOP_K_LIMIT): insertion into a descending top-k list. */
function kthLargest(values: Float64Array, n: number, k: number): number {
  let size = 0;
  for (let i = 0; i < n; i++) {
    const v = values[i] as number;
    if (size === k && v <= (top[k - 1] as number)) continue;
    let j = size < k ? size++ : k - 1;
    while (j > 0 && (top[j - 1] as number) < v) {
      top[j] = top[j - 1] as number;
      j--;
    }
    top[j] = v;
  }
  return top[k - 1] as number;
}

/**
 * What a VM needs on a destination. With no sample at all, the worst case: every vCPU busy and all
 * of its memory.
 */
export function vmDemand(vm: VmSnapshot, policy: PlannerPolicy, nowMs: number): ResourceVector {
  if (vm.samples.length === 0) return { cpu: vm.vcpus, memory: vm.memoryMiB };
  return windowUse(vm.samples, windowRules(policy.thresholds, nowMs));
}

/** Host-level use over the window (includes what its VMs use), undefined without samples. */
export function hostUse(host: HostSnapshot, policy: PlannerPolicy, nowMs: number): ResourceVector | undefined {
  if (host.samples.length === 0) return undefined;
  return windowUse(host.samples, windowRules(policy.thresholds, nowMs));
}

/**
 * One cycle's demands, each computed once: planCycle, its phases and checkPlan ask for the same ones,
 * and on large clusters computing them is most of the planner's time. Snapshots are read-only, so a
 * demand depends only on the snapshot object, the thresholds and the time this was made for; make one
 * per PlanInput (`CycleDemands.of(input)`) and hand it to planCycle and checkPlan, then drop it. A
 * snapshot object it has not seen is computed on first use, so it never answers for another moment.
 */
export class CycleDemands {
  // Keyed by id (strings hash once), checked against the object itself, so an object never answers for another.
  private readonly vms = new Map<string, { readonly of: VmSnapshot; readonly value: ResourceVector }>();
  private readonly hosts = new Map<string, { readonly of: HostSnapshot; readonly value: ResourceVector | undefined }>();
  private readonly rules: WindowRules;

  constructor(
    private readonly policy: PlannerPolicy,
    readonly nowMs: number,
  ) {
    this.rules = windowRules(policy.thresholds, nowMs);
  }

  static of(input: { readonly policy: PlannerPolicy; readonly nowMs: number }): CycleDemands {
    return new CycleDemands(input.policy, input.nowMs);
  }

  /** True when this was made for that policy's thresholds at that time (else the caller must not reuse it). */
  isFor(input: { readonly policy: PlannerPolicy; readonly nowMs: number }): boolean {
    return input.nowMs === this.nowMs && input.policy.thresholds === this.policy.thresholds;
  }

  vm(vm: VmSnapshot): ResourceVector {
    const known = this.vms.get(vm.id);
    if (known !== undefined && known.of === vm) return known.value;
    const value = vm.samples.length === 0 ? { cpu: vm.vcpus, memory: vm.memoryMiB } : windowUse(vm.samples, this.rules);
    if (known === undefined) this.vms.set(vm.id, { of: vm, value });
    return value;
  }

  host(host: HostSnapshot): ResourceVector | undefined {
    const known = this.hosts.get(host.id);
    if (known !== undefined && known.of === host) return known.value;
    const value = host.samples.length === 0 ? undefined : windowUse(host.samples, this.rules);
    if (known === undefined) this.hosts.set(host.id, { of: host, value });
    return value;
  }
}

/**
 * Predicted host use `aheadSeconds` from now by least-squares over the window's samples; undefined
 * with fewer than three samples (no trend to speak of).
 */
export function predictedHostUse(host: HostSnapshot, policy: PlannerPolicy, nowMs: number, aheadSeconds: number): ResourceVector | undefined {
  const out = { cpu: 0, memory: 0 };
  for (const r of RESOURCES) {
    const fromMs = nowMs - policy.thresholds[r].windowSeconds * 1000;
    const points = host.samples.filter((s) => s.atMs >= fromMs && s.atMs <= nowMs);
    if (points.length < 3) return undefined;
    const xs = points.map((p) => (p.atMs - nowMs) / 1000);
    const ys = points.map((p) => p.use[r]);
    const n = xs.length;
    const meanX = xs.reduce((a, b) => a + b, 0) / n;
    const meanY = ys.reduce((a, b) => a + b, 0) / n;
    let sxy = 0;
    let sxx = 0;
    for (let i = 0; i < n; i++) {
      const dx = (xs[i] as number) - meanX;
      sxy += dx * ((ys[i] as number) - meanY);
      sxx += dx * dx;
    }
    const slope = sxx > 0 ? sxy / sxx : 0;
    out[r] = meanY + slope * (aheadSeconds - meanX);
  }
  return out;
}
