import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { UsageColumns } from '../../../src/model/usage-columns.js';
import { SlidingColumns } from '../../../src/sim/sliding-columns.js';

function valuesOf(view: UsageColumns): number[][] {
  const out: number[][] = [];
  for (let i = view.offset; i < view.offset + view.length; i++) out.push([view.atMs[i] as number, view.cpu[i] as number, view.memory[i] as number]);
  return out;
}

describe('SlidingColumns', () => {
  it('holds the last `limit` samples, and a view handed out never changes afterwards', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 300 }), (limit, pushes) => {
        const columns = new SlidingColumns();
        const pushed: number[][] = [];
        const views: { view: UsageColumns; values: number[][] }[] = [];
        for (let i = 0; i < pushes; i++) {
          columns.push(i * 60_000, i / 7, i * 3, limit);
          pushed.push([i * 60_000, i / 7, i * 3]);
          const view = columns.view();
          expect(valuesOf(view)).toEqual(pushed.slice(-limit));
          expect(columns.length).toBe(Math.min(i + 1, limit));
          if (i % 5 === 0) views.push({ view, values: valuesOf(view) });
        }
        for (const { view, values } of views) expect(valuesOf(view)).toEqual(values);
      }),
      { numRuns: 200 },
    );
  });
});
