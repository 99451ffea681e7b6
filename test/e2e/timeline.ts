/**
 * The run's timeline: what the test did, what the BMCs saw, and the daemon's decisions (its JSON log
 * lines, condensed), in order, with seconds since the start. Written to test-results/ at the end of
 * every run and printed when a test fails.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'vitest';
import type { DaemonLogLine } from './daemon-process.js';

const RESULTS_DIR = join(import.meta.dirname, '..', '..', 'test-results');
/** Log fields that add nothing to a timeline line. */
const DROPPED_FIELDS = new Set(['level', 'message', 'timestamp', 'component']);

export class Timeline {
  private readonly entries: string[] = [];
  private readonly t0 = Date.now();
  readonly file: string;

  constructor(name: string) {
    this.file = join(RESULTS_DIR, `e2e-${name}-timeline.txt`);
  }

  add(source: string, text: string): void {
    this.entries.push(`${((Date.now() - this.t0) / 1000).toFixed(1).padStart(7)}s ${source.padEnd(10)} ${text}`);
  }

  /** A daemon log line: level, event, then its fields as compact JSON. */
  daemonLine(source: string, line: DaemonLogLine): void {
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(line)) if (!DROPPED_FIELDS.has(k)) fields[k] = v;
    const component = typeof line['component'] === 'string' ? `${line['component']}: ` : '';
    this.add(source, `${line.level.padEnd(5)} ${component}${line.message} ${JSON.stringify(fields)}`);
  }

  /** A block of text (metrics, a status), indented under one heading line. */
  block(source: string, heading: string, text: string): void {
    this.add(source, heading);
    for (const line of text.split('\n')) if (line.trim()) this.entries.push(`${' '.repeat(20)}${line}`);
  }

  text(): string {
    return `${this.entries.join('\n')}\n`;
  }

  /** For afterEach: after a failed test, writes the timeline and prints it, to show what led to the failure. */
  printIfFailed(ctx: TestContext): void {
    if (ctx.task.result?.state !== 'fail') return;
    const file = this.write();
    console.error(`\n----- e2e timeline (${file}) -----\n${this.text()}----- end of timeline -----`);
  }

  write(): string {
    mkdirSync(RESULTS_DIR, { recursive: true });
    writeFileSync(this.file, this.text());
    return this.file;
  }
}
