/**
 * Resource vectors. CPU is in cores (fractional: 0.5 = half a core busy), memory in MiB.
 * The planner packs every resource listed in RESOURCES; adding one (say, network) is a matter of
 * extending this list, the policy's thresholds and the collectors.
 */
export const RESOURCES = ['cpu', 'memory'] as const;
export type Resource = (typeof RESOURCES)[number];

export type ResourceVector = Readonly<Record<Resource, number>>;

export const ZERO: ResourceVector = Object.freeze({ cpu: 0, memory: 0 });

export function vector(cpu: number, memory: number): ResourceVector {
  return { cpu, memory };
}

export function add(a: ResourceVector, b: ResourceVector): ResourceVector {
  return { cpu: a.cpu + b.cpu, memory: a.memory + b.memory };
}

export function subtract(a: ResourceVector, b: ResourceVector): ResourceVector {
  return { cpu: a.cpu - b.cpu, memory: a.memory - b.memory };
}

export function scale(a: ResourceVector, factor: number): ResourceVector {
  return { cpu: a.cpu * factor, memory: a.memory * factor };
}

export function sum(vectors: Iterable<ResourceVector>): ResourceVector {
  let cpu = 0;
  let memory = 0;
  for (const v of vectors) {
    cpu += v.cpu;
    memory += v.memory;
  }
  return { cpu, memory };
}

/** use / capacity per resource; a resource with no capacity counts as full when anything uses it. */
export function ratios(use: ResourceVector, capacity: ResourceVector): ResourceVector {
  return { cpu: ratioOf(use.cpu, capacity.cpu), memory: ratioOf(use.memory, capacity.memory) };
}

function ratioOf(use: number, capacity: number): number {
  if (capacity > 0) return use / capacity;
  return use > 0 ? Number.POSITIVE_INFINITY : 0;
}

/** True when use stays at or under capacity x limit on every resource (with a tiny float tolerance). */
export function fitsUnder(use: ResourceVector, capacity: ResourceVector, limit: ResourceVector): boolean {
  for (const r of RESOURCES) {
    if (use[r] > capacity[r] * limit[r] + EPSILON) return false;
  }
  return true;
}

/** Float tolerance for comparisons of summed demands, far below any meaningful CPU or memory figure. */
export const EPSILON = 1e-9;

export function maxRatio(use: ResourceVector, capacity: ResourceVector): number {
  const r = ratios(use, capacity);
  return Math.max(r.cpu, r.memory);
}
