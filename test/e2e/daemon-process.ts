/**
 * The real daemon (`node dist/main.js run --policy FILE`) as a child of the test process: its JSON log
 * lines go to the run's timeline, and the test can wait for one, signal it (SIGHUP, SIGTERM, SIGKILL),
 * and read its resource use from /proc while it runs.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Timeline } from './timeline.js';

export const REPO_ROOT = join(import.meta.dirname, '..', '..');
export const MAIN_JS = join(REPO_ROOT, 'dist', 'main.js');

/** One JSON log line of the daemon, as it wrote it (`message` is the event). */
export interface DaemonLogLine {
  readonly level: string;
  readonly message: string;
  readonly [field: string]: unknown;
}

/** What /proc says about the daemon: RSS now and at its peak, CPU time so far. */
export interface ProcessUsage {
  readonly rssKiB: number;
  readonly peakRssKiB: number;
  readonly cpuSeconds: number;
}

const USER_HZ = 100;
const STOP_TIMEOUT_MS = 30_000;
const SAMPLE_INTERVAL_MS = 1_000;
const KIB_PER_MIB = 1024;
const MS_PER_SECOND = 1000;

/** Every daemon started by this process: killed when it exits, whatever happened to the test. */
const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

export class DaemonProcess {
  readonly lines: DaemonLogLine[] = [];
  readonly startedAtMs = Date.now();
  exitedAtMs: number | undefined;
  /** Last usage read from /proc (kept after the process exits). */
  usage: ProcessUsage | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters = new Set<{ match: (l: DaemonLogLine) => boolean; resolve: (l: DaemonLogLine) => void }>();
  private readonly sampler: NodeJS.Timeout;
  private stdoutRest = '';
  private stderrText = '';

  private constructor(
    readonly label: string,
    private readonly child: ChildProcess,
    private readonly timeline: Timeline,
  ) {
    alive.add(child);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        alive.delete(child);
        this.exitedAtMs = Date.now();
        clearInterval(this.sampler);
        timeline.add(label, `exited (code ${code ?? '-'}, signal ${signal ?? '-'})`);
        resolve({ code, signal });
      }),
    );
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => this.onStdout(chunk));
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderrText += chunk;
      for (const line of chunk.split('\n').filter(Boolean)) timeline.add(`${label}:stderr`, line);
    });
    this.sampler = setInterval(() => void this.sample(), SAMPLE_INTERVAL_MS);
  }

  /** Starts `consolidator run --policy FILE` and resolves once it logged "started". */
  static async start(policyFile: string, timeline: Timeline, label = 'daemon', timeoutMs = 60_000): Promise<DaemonProcess> {
    // setpriv --pdeathsig: the daemon dies with the test process, even one killed with SIGKILL.
    const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', process.execPath, MAIN_JS, 'run', '--policy', policyFile], {
      stdio: ['ignore', 'pipe', 'pipe'],
      cwd: REPO_ROOT,
    });
    const daemon = new DaemonProcess(label, child, timeline);
    timeline.add(label, `spawned pid ${child.pid ?? '?'}: node dist/main.js run --policy ${policyFile}`);
    const started = daemon.waitForLog((l) => l.message === 'started', timeoutMs);
    const exited = daemon.exited.then(({ code, signal }) => {
      throw new Error(`the daemon exited during start-up (code ${code}, signal ${signal}): ${daemon.stderrText}`);
    });
    await Promise.race([started, exited]);
    return daemon;
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** What it wrote to stderr (its logs go to stdout as JSON: nothing is expected here). */
  get stderr(): string {
    return this.stderrText;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  signal(signal: NodeJS.Signals): void {
    this.timeline.add(this.label, `sent ${signal}`);
    this.child.kill(signal);
  }

  /** The first log line (already seen, or to come) that matches; throws naming `what` at the deadline. */
  waitForLog(match: (l: DaemonLogLine) => boolean, timeoutMs: number, what = 'a log line', since = 0): Promise<DaemonLogLine> {
    const seen = this.lines.slice(since).find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const waiter = {
        match,
        resolve: (l: DaemonLogLine) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`${this.label}: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }

  count(match: (l: DaemonLogLine) => boolean, since = 0): number {
    return this.lines.slice(since).filter(match).length;
  }

  /** SIGTERM, then waits for a graceful exit (SIGKILL after a deadline). */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) {
      await this.sample();
      this.signal('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      const result = await this.exited;
      clearTimeout(timer);
      return result;
    }
    return this.exited;
  }

  /** SIGKILL right now (a crash); resolves once it is gone. */
  async kill(): Promise<void> {
    if (!this.running) return;
    await this.sample();
    this.signal('SIGKILL');
    await this.exited;
  }

  /** What it used, for the timeline's perf line: `<label>.cpuSeconds`, `.peakRssMiB`, `.wallSeconds`. */
  perf(): Record<string, number> {
    return {
      [`${this.label}.cpuSeconds`]: this.usage?.cpuSeconds ?? Number.NaN,
      [`${this.label}.peakRssMiB`]: Math.round((this.usage?.peakRssKiB ?? 0) / KIB_PER_MIB),
      [`${this.label}.wallSeconds`]: Math.round(((this.exitedAtMs ?? Date.now()) - this.startedAtMs) / MS_PER_SECOND),
    };
  }

  /** Reads RSS (VmRSS, VmHWM) and CPU time (utime + stime) from /proc. */
  async sample(): Promise<ProcessUsage | undefined> {
    if (!this.running) return this.usage;
    try {
      const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
      const stat = await readFile(`/proc/${this.pid}/stat`, 'utf8');
      const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
      // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
      this.usage = { rssKiB: kib('VmRSS'), peakRssKiB: kib('VmHWM'), cpuSeconds: ticks / USER_HZ };
    } catch {
      // the process ended between the check and the read: keep the last figures
    }
    return this.usage;
  }

  private onStdout(chunk: string): void {
    const text = this.stdoutRest + chunk;
    const parts = text.split('\n');
    this.stdoutRest = parts.pop() ?? '';
    for (const raw of parts) {
      if (!raw.trim()) continue;
      let line: DaemonLogLine;
      try {
        line = JSON.parse(raw) as DaemonLogLine;
      } catch {
        this.timeline.add(this.label, `(not JSON) ${raw}`);
        continue;
      }
      this.lines.push(line);
      this.timeline.daemonLine(this.label, line);
      for (const w of [...this.waiters]) if (w.match(line)) w.resolve(line);
    }
  }
}
