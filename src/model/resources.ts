/**
 * Resource vectors. CPU is in cores (fractional: 0.5 = half a core busy), memory in MiB.
 * The planner packs every resource listed in RESOURCES; adding one (say, network) is a matter of
 * extending this list, the policy's thresholds and the collectors.
 */
export const RESOURCES = ['cpu', 'memory'] as const;
export type Resource = (typeof RESOURCES)[number];

export type ResourceVector = Readonly<Record<Resource, number>>;

/** Float tolerance for comparisons of summed demands, far below any meaningful CPU or memory figure. */
export const EPSILON = 1e-9;
