import { spawn } from 'node:child_process';
import { setPriority } from 'node:os';
import type { ReplayFigures, ReplayRunner } from '../daemon/operator-api.js';
import { ConsolidatorError } from '../errors.js';

/** A week of a large cluster replays in about a minute; a replay that runs longer than this is stopped. */
const REPLAY_TIMEOUT_MS = 15 * 60_000;
/** Enough for the JSON figures of a large cluster; more is a fault. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
const LOWEST_PRIORITY = 19;

/**
 * The daemon's replays for `consolidator report` in dry-run: `consolidator simulate --recording`, run
 * by the same program in a child process (at the lowest CPU priority), so the daemon's cycles and its
 * watchdog never wait for it. `entry` is the program's main script (process.argv[1] of the daemon) and
 * `execArgv` how node ran it (a loader in development).
 */
export function replayInChild(entry: string, execArgv: readonly string[] = process.execArgv): ReplayRunner {
  return async ({ recordingDir, policyFile, range }) => {
    const args = [...execArgv, entry, 'simulate', '--recording', recordingDir, '--policy', policyFile, '--json', '--plot', 'none'];
    if (range.fromMs !== undefined) args.push('--from', new Date(range.fromMs).toISOString());
    if (range.toMs !== undefined) args.push('--to', new Date(range.toMs).toISOString());
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      if (child.pid !== undefined) setPriority(child.pid, LOWEST_PRIORITY);
    } catch {
      // Only a nicety: the replay runs at normal priority.
    }
    const out: Buffer[] = [];
    let size = 0;
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      size += b.length;
      if (size > MAX_OUTPUT_BYTES) child.kill('SIGKILL');
      else out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      err = (err + b.toString('utf8')).slice(-4000);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), REPLAY_TIMEOUT_MS);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c) => resolve(c));
    }).finally(() => clearTimeout(timer));
    if (code !== 0) {
      const last = err.trim().split('\n').filter((l) => !l.startsWith('warning:')).pop() ?? '';
      throw new ConsolidatorError('INTERNAL', `the replay stopped (exit ${code ?? 'killed'})${last ? `: ${last}` : ''}`);
    }
    try {
      return JSON.parse(Buffer.concat(out).toString('utf8')) as ReplayFigures;
    } catch {
      throw new ConsolidatorError('INTERNAL', 'the replay printed no JSON');
    }
  };
}
