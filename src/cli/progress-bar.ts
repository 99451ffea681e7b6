import type { Writable } from 'node:stream';

/**
 * A one-line progress bar for a terminal: `[#########.........]  45%  130/287 decisions  3.2 s`,
 * redrawn in place with a carriage return, at most every `minIntervalMs`, and erased by done().
 * Only for a TTY: the caller decides (never in --json mode).
 */
export interface ProgressBarOptions {
  readonly label: string;
  readonly width?: number;
  readonly minIntervalMs?: number;
  readonly nowMs?: () => number;
}

const DEFAULT_WIDTH = 30;
const DEFAULT_INTERVAL_MS = 100;
const MS_PER_SECOND = 1000;
const PERCENT = 100;

export class ProgressBar {
  private readonly width: number;
  private readonly minIntervalMs: number;
  private readonly nowMs: () => number;
  private readonly startedMs: number;
  private lastDrawMs = Number.NEGATIVE_INFINITY;
  private drawn = false;

  constructor(
    private readonly out: Writable,
    private readonly options: ProgressBarOptions,
  ) {
    this.width = options.width ?? DEFAULT_WIDTH;
    this.minIntervalMs = options.minIntervalMs ?? DEFAULT_INTERVAL_MS;
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.startedMs = this.nowMs();
  }

  update(done: number, total: number): void {
    const now = this.nowMs();
    if (done < total && now - this.lastDrawMs < this.minIntervalMs) return;
    this.lastDrawMs = now;
    this.out.write(`\r${this.render(done, total, now)}`);
    this.drawn = true;
  }

  /** Erases the bar so the next output starts on a clean line. */
  done(): void {
    if (!this.drawn) return;
    this.out.write('\r\u001b[2K');
    this.drawn = false;
  }

  render(done: number, total: number, now = this.nowMs()): string {
    const share = total > 0 ? Math.min(1, Math.max(0, done / total)) : 1;
    const filled = Math.round(share * this.width);
    const seconds = ((now - this.startedMs) / MS_PER_SECOND).toFixed(1);
    const pct = `${Math.floor(share * PERCENT)}%`.padStart(4);
    return `${this.options.label} [${'#'.repeat(filled)}${'.'.repeat(this.width - filled)}] ${pct}  ${done}/${total} decisions  ${seconds} s`;
  }
}
