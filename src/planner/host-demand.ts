import type { HostCpuPredictor } from '../config/schema.js';
import type { ResourceVector } from '../model/resources.js';
import type { HostSnapshot, UsageSample, VmSnapshot } from '../model/snapshot.js';
import { hostUse, summarize, vmDemand } from './demand.js';
import type { PlannerPolicy } from './types.js';

/**
 * A host's CPU demand predicted from the VMs placed on it (policy hostDemand.cpu). The default,
 * `sum-of-vms`, adds up each VM's own statistic (its 30-minute peak with max): it assumes every VM
 * peaks at the same moment, which they rarely do. `peak-of-sum` and `n-sigma` look instead at the sum
 * of the VMs' samples, moment by moment, over the window (Bashir et al., "Take it to the limit",
 * EuroSys 2021: borg-default, RC-like = sum of per-task percentiles, N-sigma of the machine's usage,
 * and the max of several). The host is sized for the largest of the listed predictors and never
 * below what its VMs use right now. Memory is not predicted here: it stays the sum of each VM's
 * statistic, so no host is ever planned over its memory target.
 *
 * Samples of different VMs are aligned by recency (the latest of each, then the one before, ...):
 * every cycle observes all VMs at about the same moment, so the k-th latest samples describe the
 * same five (or one) minutes. A VM with fewer samples than the longest series in the snapshot (just
 * started, or just measured) counts its highest sample in the older positions. Pure.
 */

const DEFAULT_CPU_PREDICTORS: readonly HostCpuPredictor[] = [{ kind: 'sum-of-vms' }];
/** Longer series than this are cut to their latest samples (a week of 1-minute samples is not a window). */
const MAX_SERIES = 1024;

export function cpuPredictors(policy: PlannerPolicy): readonly HostCpuPredictor[] {
  return policy.hostDemand?.cpu ?? DEFAULT_CPU_PREDICTORS;
}

/** The window the predictors read (hostDemand.windowSeconds, else the CPU thresholds' window). */
export function predictorWindowSeconds(policy: PlannerPolicy): number {
  return policy.hostDemand?.windowSeconds ?? policy.thresholds.cpu.windowSeconds;
}

/** True when a host's demand is the plain sum of its VMs' demands: the planner's additive fast path. */
export function isAdditiveCpu(policy: PlannerPolicy): boolean {
  const predictors = cpuPredictors(policy);
  const only = predictors[0];
  return predictors.length === 1 && only?.kind === 'sum-of-vms' && (only.statistic === undefined || only.statistic === policy.thresholds.cpu.statistic);
}

/** CPU values in the window, oldest first; the latest sample when none is in it (as the statistic does). */
function windowCpu(samples: readonly UsageSample[], windowSeconds: number, nowMs: number): number[] {
  const fromMs = nowMs - windowSeconds * 1000;
  const out: number[] = [];
  for (const s of samples) if (s.atMs >= fromMs && s.atMs <= nowMs) out.push(s.use.cpu);
  if (out.length === 0 && samples.length > 0) out.push((samples[samples.length - 1] as UsageSample).use.cpu);
  return out.length > MAX_SERIES ? out.slice(out.length - MAX_SERIES) : out;
}

/** The length of the aligned series for a snapshot: its longest VM series in the window. */
export function seriesLength(vms: readonly VmSnapshot[], policy: PlannerPolicy, nowMs: number): number {
  const fromMs = nowMs - predictorWindowSeconds(policy) * 1000;
  let longest = 1;
  for (const vm of vms) {
    let n = 0;
    for (const s of vm.samples) if (s.atMs >= fromMs && s.atMs <= nowMs) n++;
    if (n > longest) longest = n;
  }
  return Math.min(longest, MAX_SERIES);
}

/** Writes a VM's (or host's) aligned series of `length` values at out[offset..]: latest last, older gaps at its highest value. */
function fillSeries(values: readonly number[], fallback: number, length: number, out: Float64Array, offset: number): void {
  if (values.length === 0) {
    out.fill(fallback, offset, offset + length);
    return;
  }
  let highest = Number.NEGATIVE_INFINITY;
  for (const v of values) if (v > highest) highest = v;
  const known = Math.min(values.length, length);
  const gap = length - known;
  out.fill(highest, offset, offset + gap);
  for (let i = 0; i < known; i++) out[offset + gap + i] = values[values.length - known + i] as number;
}

/** The additive parts (one per sum-of-vms predictor) for one VM. */
function additiveParts(predictors: readonly HostCpuPredictor[], vm: VmSnapshot, values: readonly number[], policy: PlannerPolicy, nowMs: number): number[] {
  const parts: number[] = [];
  for (const p of predictors) {
    if (p.kind !== 'sum-of-vms') continue;
    if (vm.samples.length === 0) parts.push(vm.vcpus);
    else if (p.statistic === undefined || p.statistic === policy.thresholds.cpu.statistic) parts.push(vmDemand(vm, policy, nowMs).cpu);
    else parts.push(summarize(values, p.statistic));
  }
  return parts;
}

let sorted = new Float64Array(64);

/** A statistic ('mean', 'max', 'pNN') of series[offset .. offset+length). */
function seriesStatistic(series: Float64Array, offset: number, length: number, statistic: string): number {
  if (statistic === 'max') {
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < length; i++) if ((series[offset + i] as number) > max) max = series[offset + i] as number;
    return max;
  }
  if (statistic === 'mean') {
    let total = 0;
    for (let i = 0; i < length; i++) total += series[offset + i] as number;
    return total / length;
  }
  if (sorted.length < length) sorted = new Float64Array(length * 2);
  const view = sorted.subarray(0, length);
  view.set(series.subarray(offset, offset + length));
  view.sort();
  const rank = Math.min(length, Math.max(1, Math.ceil((Number(statistic.slice(1)) / 100) * length)));
  return view[rank - 1] as number;
}

function meanAndDeviation(series: Float64Array, offset: number, length: number): { mean: number; deviation: number } {
  let total = 0;
  for (let i = 0; i < length; i++) total += series[offset + i] as number;
  const mean = total / length;
  let squares = 0;
  for (let i = 0; i < length; i++) {
    const d = (series[offset + i] as number) - mean;
    squares += d * d;
  }
  return { mean, deviation: Math.sqrt(squares / length) };
}

/**
 * The predicted CPU demand of VMs whose aligned series sum to series[offset..offset+length) and
 * whose additive parts sum to sums[sumsOffset..]: the largest predictor, and at least the current sum.
 */
export function predictCpu(
  predictors: readonly HostCpuPredictor[],
  series: Float64Array,
  offset: number,
  length: number,
  sums: Float64Array,
  sumsOffset: number,
): number {
  let best = series[offset + length - 1] as number;
  let k = 0;
  for (const p of predictors) {
    let value: number;
    if (p.kind === 'sum-of-vms') value = sums[sumsOffset + k++] as number;
    else if (p.kind === 'peak-of-sum') value = seriesStatistic(series, offset, length, p.statistic);
    else {
      const { mean, deviation } = meanAndDeviation(series, offset, length);
      value = mean + p.sigmas * deviation;
    }
    if (value > best) best = value;
  }
  return best;
}

/**
 * Per-host summed series for the planner's workspace: VMs are added to and removed from hosts as
 * moves are planned, and a host's predicted CPU is read, or tried with one more VM, in O(window).
 */
export class HostCpuModel {
  private readonly additive: number;
  private readonly vmSeries: Float64Array;
  private readonly vmSums: Float64Array;
  private readonly vmLowerBound: Float64Array;
  private readonly hostSeries: Float64Array;
  private readonly hostSums: Float64Array;
  private readonly trySeries: Float64Array;
  private readonly trySums: Float64Array;

  constructor(
    private readonly predictors: readonly HostCpuPredictor[],
    vms: readonly VmSnapshot[],
    hostCount: number,
    private readonly length: number,
    policy: PlannerPolicy,
    nowMs: number,
  ) {
    const L = length;
    this.additive = predictors.filter((p) => p.kind === 'sum-of-vms').length;
    const A = this.additive;
    this.vmSeries = new Float64Array(vms.length * L);
    this.vmSums = new Float64Array(vms.length * A);
    this.vmLowerBound = new Float64Array(vms.length);
    this.hostSeries = new Float64Array(hostCount * L);
    this.hostSums = new Float64Array(hostCount * A);
    this.trySeries = new Float64Array(L);
    this.trySums = new Float64Array(A);
    vms.forEach((vm, v) => {
      const values = windowCpu(vm.samples, predictorWindowSeconds(policy), nowMs);
      fillSeries(values, vm.vcpus, L, this.vmSeries, v * L);
      const parts = additiveParts(predictors, vm, values, policy, nowMs);
      parts.forEach((x, k) => (this.vmSums[v * A + k] = x));
      this.vmLowerBound[v] = this.lowerBoundOf(v, parts);
    });
  }

  add(v: number, h: number): void {
    this.shift(v, h, 1);
  }

  remove(v: number, h: number): void {
    this.shift(v, h, -1);
  }

  /** Predicted CPU of the VMs on h (without what the host uses besides them). */
  predict(h: number): number {
    return predictCpu(this.predictors, this.hostSeries, h * this.length, this.length, this.hostSums, h * this.additive);
  }

  /** Predicted CPU of the VMs on h with v added. */
  predictWith(h: number, v: number): number {
    const L = this.length;
    const A = this.additive;
    for (let i = 0; i < L; i++) this.trySeries[i] = (this.hostSeries[h * L + i] as number) + (this.vmSeries[v * L + i] as number);
    for (let k = 0; k < A; k++) this.trySums[k] = (this.hostSums[h * A + k] as number) + (this.vmSums[v * A + k] as number);
    return predictCpu(this.predictors, this.trySeries, 0, L, this.trySums, 0);
  }

  /** A lower bound (>= 0) of what adding v raises any host's prediction by: the destination index's search key. */
  lowerBound(v: number): number {
    return this.vmLowerBound[v] as number;
  }

  private shift(v: number, h: number, sign: 1 | -1): void {
    const L = this.length;
    const A = this.additive;
    for (let i = 0; i < L; i++) this.hostSeries[h * L + i] = (this.hostSeries[h * L + i] as number) + sign * (this.vmSeries[v * L + i] as number);
    for (let k = 0; k < A; k++) this.hostSums[h * A + k] = (this.hostSums[h * A + k] as number) + sign * (this.vmSums[v * A + k] as number);
  }

  /**
   * Each predictor of S + s is at least its value of S plus: the VM's part (sum-of-vms), its lowest
   * sample (an order statistic of the sum), mean(s) - N sd(s) (n-sigma); the current sum rises by the
   * VM's latest sample. The prediction, their maximum, rises by at least the least of these.
   */
  private lowerBoundOf(v: number, parts: readonly number[]): number {
    const L = this.length;
    const offset = v * L;
    let bound = this.vmSeries[offset + L - 1] as number;
    let k = 0;
    for (const p of this.predictors) {
      let rise: number;
      if (p.kind === 'sum-of-vms') rise = parts[k++] as number;
      else if (p.kind === 'peak-of-sum') {
        rise = Number.POSITIVE_INFINITY;
        for (let i = 0; i < L; i++) rise = Math.min(rise, this.vmSeries[offset + i] as number);
      } else {
        const { mean, deviation } = meanAndDeviation(this.vmSeries, offset, L);
        rise = mean - p.sigmas * deviation;
      }
      bound = Math.min(bound, rise);
    }
    return Math.max(0, bound);
  }
}

/** The planner's host-demand predictions outside the workspace: checkPlan and the actuator's re-check. */
export interface HostDemandEstimator {
  /** What these VMs need together on one host (CPU by the predictors, memory summed). */
  ofVms(vms: readonly VmSnapshot[]): ResourceVector;
  /** The predictors applied to the host's own samples (what it uses, its VMs included); undefined without samples. */
  ofHost(host: HostSnapshot): ResourceVector | undefined;
}

/**
 * An estimator for one snapshot (the series length comes from all its VMs), or undefined when the
 * policy's host demand is the plain sum of VM demands (then vmDemand and hostUse say it all).
 */
export function hostDemandEstimator(allVms: readonly VmSnapshot[], policy: PlannerPolicy, nowMs: number): HostDemandEstimator | undefined {
  if (isAdditiveCpu(policy)) return undefined;
  const predictors = cpuPredictors(policy);
  const L = seriesLength(allVms, policy, nowMs);
  const additive = predictors.filter((p) => p.kind === 'sum-of-vms').length;
  const windowSeconds = predictorWindowSeconds(policy);
  const one = new Float64Array(L);
  return {
    ofVms(vms) {
      const series = new Float64Array(L);
      const sums = new Float64Array(additive);
      let memory = 0;
      for (const vm of vms) {
        const values = windowCpu(vm.samples, windowSeconds, nowMs);
        fillSeries(values, vm.vcpus, L, one, 0);
        for (let i = 0; i < L; i++) series[i] = (series[i] as number) + (one[i] as number);
        additiveParts(predictors, vm, values, policy, nowMs).forEach((x, k) => (sums[k] = (sums[k] as number) + x));
        memory += vmDemand(vm, policy, nowMs).memory;
      }
      return { cpu: vms.length === 0 ? 0 : predictCpu(predictors, series, 0, L, sums, 0), memory };
    },
    ofHost(host) {
      const observed = hostUse(host, policy, nowMs);
      if (observed === undefined) return undefined;
      const values = windowCpu(host.samples, windowSeconds, nowMs);
      const series = new Float64Array(L);
      fillSeries(values, 0, L, series, 0);
      const sums = new Float64Array(additive);
      let k = 0;
      for (const p of predictors) {
        if (p.kind !== 'sum-of-vms') continue;
        sums[k++] = p.statistic === undefined || p.statistic === policy.thresholds.cpu.statistic ? observed.cpu : summarize(values, p.statistic);
      }
      return { cpu: predictCpu(predictors, series, 0, L, sums, 0), memory: observed.memory };
    },
  };
}
