import type { UsageColumns } from '../model/usage-columns.js';

/**
 * The last samples of one simulated host or VM as columns, kept next to its sample objects so that
 * snapshots can hand the planner both (see UsageColumns) without copying: a range handed out is never
 * written again. Pushes write past it, and a full buffer is replaced, not slid back, so earlier
 * snapshots keep theirs. Buffers hold twice the limit: a new one every `limit` pushes.
 */
export class SlidingColumns {
  private atMs: Float64Array = new Float64Array(0);
  private cpu: Float64Array = new Float64Array(0);
  private memory: Float64Array = new Float64Array(0);
  private start = 0;
  private end = 0;

  get length(): number {
    return this.end - this.start;
  }

  /** Appends a sample, keeping the last `limit`. */
  push(atMs: number, cpu: number, memory: number, limit: number): void {
    if (this.end === this.atMs.length) this.replace(Math.min(this.length, limit - 1), 2 * Math.max(1, limit));
    this.atMs[this.end] = atMs;
    this.cpu[this.end] = cpu;
    this.memory[this.end] = memory;
    this.end++;
    if (this.length > limit) this.start = this.end - limit;
  }

  /** The samples now, as columns that stay as they are. */
  view(): UsageColumns {
    return { atMs: this.atMs, cpu: this.cpu, memory: this.memory, offset: this.start, length: this.length };
  }

  /** New buffers of `capacity` holding the last `keep` samples. */
  private replace(keep: number, capacity: number): void {
    const from = this.end - keep;
    const move = (old: Float64Array): Float64Array => {
      const next = new Float64Array(capacity);
      for (let i = 0; i < keep; i++) next[i] = old[from + i] as number;
      return next;
    };
    this.atMs = move(this.atMs);
    this.cpu = move(this.cpu);
    this.memory = move(this.memory);
    this.start = 0;
    this.end = keep;
  }
}
