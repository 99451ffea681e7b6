import type { ResourceThresholds } from '../config/schema.js';
import { RESOURCES, type Resource, type ResourceVector } from '../model/resources.js';
import type { HostSnapshot, UsageSample, VmSnapshot } from '../model/snapshot.js';
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

function windowValues(samples: readonly UsageSample[], resource: Resource, thresholds: ResourceThresholds, nowMs: number): number[] {
  const fromMs = nowMs - thresholds.windowSeconds * 1000;
  const values: number[] = [];
  for (const s of samples) if (s.atMs >= fromMs && s.atMs <= nowMs) values.push(s.use[resource]);
  // With nothing in the window, the latest sample is better than nothing.
  if (values.length === 0 && samples.length > 0) values.push((samples[samples.length - 1] as UsageSample).use[resource]);
  return values;
}

/** The window's statistic for one resource; a single sample is its own statistic (the common case at scale). */
function statisticOf(samples: readonly UsageSample[], resource: Resource, thresholds: ResourceThresholds, nowMs: number): number {
  if (samples.length === 1) return (samples[0] as UsageSample).use[resource];
  return summarize(windowValues(samples, resource, thresholds, nowMs), thresholds.statistic);
}

/**
 * What a VM needs on a destination. With no sample at all, the worst case: every vCPU busy and all
 * of its memory.
 */
export function vmDemand(vm: VmSnapshot, policy: PlannerPolicy, nowMs: number): ResourceVector {
  if (vm.samples.length === 0) return { cpu: vm.vcpus, memory: vm.memoryMiB };
  return {
    cpu: statisticOf(vm.samples, 'cpu', policy.thresholds.cpu, nowMs),
    memory: statisticOf(vm.samples, 'memory', policy.thresholds.memory, nowMs),
  };
}

/** Host-level use over the window (includes what its VMs use), undefined without samples. */
export function hostUse(host: HostSnapshot, policy: PlannerPolicy, nowMs: number): ResourceVector | undefined {
  if (host.samples.length === 0) return undefined;
  return {
    cpu: statisticOf(host.samples, 'cpu', policy.thresholds.cpu, nowMs),
    memory: statisticOf(host.samples, 'memory', policy.thresholds.memory, nowMs),
  };
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
