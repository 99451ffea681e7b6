import type { UsageSample } from './snapshot.js';

/**
 * A window of samples as columns of typed arrays: entries [offset, offset + length) of each. A
 * producer that keeps its samples so (the simulator) attaches them to the sample array it hands
 * out, and the planner reads the columns instead of the objects: on a long replay, fetching
 * scattered sample objects from memory was most of the planning time.
 */
export interface UsageColumns {
  readonly atMs: Float64Array;
  readonly cpu: Float64Array;
  readonly memory: Float64Array;
  readonly offset: number;
  readonly length: number;
}

// A property of the array itself, not enumerable (comparisons and JSON ignore it): a snapshot copied
// with other samples (`{...vm, samples: [...]}`) loses its columns with the array, so columns never
// describe samples they were not made from. (A WeakMap did the same at several times the cost.)
const COLUMNS = Symbol('usage columns');

type WithColumns = readonly UsageSample[] & { readonly [COLUMNS]?: UsageColumns };

/**
 * Attaches columns to a sample array. The caller promises they hold the same values in the same
 * order, and that neither the array nor the columns' range change afterwards.
 */
export function attachColumns(samples: readonly UsageSample[], columns: UsageColumns): readonly UsageSample[] {
  Object.defineProperty(samples, COLUMNS, { value: columns, enumerable: false });
  return samples;
}

export function columnsOf(samples: readonly UsageSample[]): UsageColumns | undefined {
  return (samples as WithColumns)[COLUMNS];
}
