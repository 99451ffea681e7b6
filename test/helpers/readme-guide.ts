import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { DaemonClient } from '../../src/cli/daemon-client.js';
import { DEMO_CONTROL_SOCKET } from '../../src/config/defaults.js';
import { freePort } from './free-port.js';
import { pause, waitFor } from './wait-for.js';

/**
 * The README's operator guide, as data and as real runs against the demo daemon.
 *
 * Convention: in the README's "Operator's guide" section, every fenced block whose first line starts
 * with `$ npx consolidator ` is an example. Each `$ ` line is a command (run as written, with the
 * built CLI, `node dist/main.js`); the lines up to the next `$ ` line are its stdout (blank lines
 * between commands are separators). Host names in the commands are the hosts of this run: each host
 * a command names is replaced, where it first appears, by a host of the run fit for that command
 * (see runGuide). A drain refused for want of room (the running daemon took it) is tried again after
 * waking one more host consolidator powered off, unshown. `scripts/readme-examples.ts` rewrites those blocks from a real run;
 * test/integration/readme-operator-guide.test.ts checks a fresh run against them with `matchesBlock`.
 */

export const GUIDE_HEADING = "## Operator's guide";
const PROMPT = '$ npx consolidator ';
const HOST = /^demo-\d+$/;
/** `drain`'s exit code when it refuses (nothing done), and how often a refused drain is tried again. */
const REFUSED = 2;
const DRAIN_ATTEMPTS = 4;
/** Commands that change nothing, so may be asked again until they show a moment like the README's. */
const READ_ONLY = new Set(['status', 'plan']);
const READ_ONLY_ATTEMPTS = 10;
/** config/demo.yaml runs a cycle every 2 s. */
const DEMO_CYCLE_MS = 2_500;
const PROBE_TIMEOUT_MS = 30_000;
/** The guide starts once the demo has consolidated this far (it gets there within its first minute). */
const SETTLED_HOSTS_OFF = 4;

export interface GuideCommand {
  /** The arguments after `consolidator`, as written in the README. */
  readonly args: readonly string[];
  /** The stdout the README shows. */
  readonly expected: readonly string[];
}

export interface GuideBlock {
  /** Line indices in the README of the block's first content line and of its closing fence. */
  readonly from: number;
  readonly to: number;
  readonly commands: readonly GuideCommand[];
}

/** The example blocks of the README's operator guide, in order. */
export function parseGuide(readme: string): GuideBlock[] {
  const lines = readme.split('\n');
  const start = lines.findIndex((l) => l.startsWith(GUIDE_HEADING));
  if (start < 0) throw new Error(`the README has no "${GUIDE_HEADING}" section`);
  let end = lines.findIndex((l, i) => i > start && l.startsWith('## '));
  if (end < 0) end = lines.length;
  const blocks: GuideBlock[] = [];
  for (let i = start; i < end; i++) {
    if (!(lines[i] ?? '').startsWith('```') || !(lines[i + 1] ?? '').startsWith(PROMPT)) continue;
    const from = i + 1;
    let to = from;
    while (to < end && !(lines[to] ?? '').startsWith('```')) to++;
    const commands: GuideCommand[] = [];
    for (const line of lines.slice(from, to)) {
      if (line.startsWith(PROMPT)) commands.push({ args: line.slice(PROMPT.length).trim().split(/\s+/), expected: [] });
      else (commands[commands.length - 1]?.expected as string[]).push(line);
    }
    blocks.push({ from, to, commands: commands.map((c) => ({ ...c, expected: trimBlank(c.expected) })) });
    i = to;
  }
  return blocks;
}

function trimBlank(lines: readonly string[]): string[] {
  const out = [...lines];
  while (out.length > 0 && (out[out.length - 1] ?? '').trim() === '') out.pop();
  return out;
}

/** The README with each block's commands shown as `runs` (same order) printed them. */
export function renderGuide(readme: string, blocks: readonly GuideBlock[], runs: readonly (readonly GuideRun[])[]): string {
  const lines = readme.split('\n');
  for (let b = blocks.length - 1; b >= 0; b--) {
    const block = blocks[b] as GuideBlock;
    const body = (runs[b] ?? []).flatMap((run, i) => [...(i > 0 ? [''] : []), `${PROMPT}${run.args.join(' ')}`, ...trimBlank(run.stdout.replace(/\n$/, '').split('\n'))]);
    lines.splice(block.from, block.to - block.from, ...body);
  }
  return lines.join('\n');
}

/**
 * A line with what varies from run to run taken out: timestamps, numbers (host and VM numbers,
 * percentages, sizes, durations), lists of names and column padding.
 */
export function normaliseLine(line: string): string {
  return line
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
    .replace(/\d+(\.\d+)?/g, 'N')
    .replace(/^([a-z][a-z ]*): (-|[\w-]+(, [\w-]+)*)$/, '$1: <list>')
    .replace(/\s+/g, ' ')
    .trim();
}

/** A table's header: capitalised column names (perhaps with a lower-case note in brackets), two spaces apart. */
function isHeader(line: string): boolean {
  const cells = line.trim().split(/\s{2,}/);
  return cells.length >= 2 && cells.every((c) => /^[A-Z#][A-Z.#/]*( \([a-z0-9]+\))?$/.test(c));
}

/**
 * Whether `actual` (stdout) shows what the README block `expected` shows, modulo what varies: every
 * line outside tables appears, normalised, in the same order; every table (a header line, then rows
 * up to the next blank line) has the same header and, if the README shows rows, at least one row:
 * which hosts and VMs a run lists varies. A README line `...` stands for lines left out.
 */
export function matchesBlock(expected: readonly string[], actual: string): { ok: true } | { ok: false; why: string } {
  const got = actual.replace(/\n$/, '').split('\n');
  const gotNorm = got.map(normaliseLine);
  let at = 0;
  for (let i = 0; i < expected.length; i++) {
    const line = expected[i] as string;
    if (line.trim() === '...' || line.trim() === '') continue;
    const want = normaliseLine(line);
    const found = gotNorm.indexOf(want, at);
    if (found < 0) return { ok: false, why: `no line like ${JSON.stringify(line)} (normalised ${JSON.stringify(want)}) at or after line ${at + 1} of:\n${actual}` };
    at = found + 1;
    if (isHeader(line)) {
      let rows = 0;
      while (i + 1 < expected.length && (expected[i + 1] ?? '').trim() !== '' && !isHeader(expected[i + 1] as string)) {
        i++;
        rows++;
      }
      let gotRows = 0;
      while (at < got.length && (got[at] ?? '').trim() !== '' && !isHeader(got[at] as string)) {
        at++;
        gotRows++;
      }
      if (rows > 0 && gotRows === 0) return { ok: false, why: `the table ${JSON.stringify(line)} has no row in:\n${actual}` };
    }
  }
  return { ok: true };
}

export interface GuideRun {
  readonly args: readonly string[];
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface DemoDaemon {
  readonly socket: string;
  /** The run's own copy of the demo policy (in a temp folder): shown as config/demo.yaml. */
  readonly policyFile: string;
  readonly output: () => string;
  stop(): Promise<void>;
}

/**
 * The built daemon on config/demo.yaml as the README starts it, on a copy whose socket and metrics
 * port are the test's own (so it runs beside someone's demo), until it has powered hosts off.
 */
export async function startDemo(timeoutMs: number): Promise<DemoDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'consolidator-readme-'));
  const socket = join(dir, 'control.sock');
  const port = await freePort();
  const demo = await readFile('config/demo.yaml', 'utf8');
  const policy = demo
    .replace('listen: 127.0.0.1:9464', `listen: 127.0.0.1:${port}`)
    .replace('socket: /tmp/consolidator-demo.sock', `socket: ${socket}`)
    .replace('workload: demo-workload', `workload: ${resolve('config/demo-workload')}`);
  if (!policy.includes(socket)) throw new Error('config/demo.yaml no longer has the control.socket line this expects');
  const policyFile = join(dir, 'demo.yaml');
  await writeFile(policyFile, policy);
  const child = spawn('node', ['dist/main.js', 'run', '--policy', policyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await Promise.race([exitOf(child), new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(`the demo daemon powering ${SETTLED_HOSTS_OFF} hosts off`, { timeoutMs, intervalMs: 500, onProbeError: 'throw' }, async () => {
      if (child.exitCode !== null) throw new Error(`the demo daemon exited ${child.exitCode}:\n${output}`);
      const status = await statusJson(socket);
      const off = (status?.['hostsByState'] as { off?: string[] } | undefined)?.off ?? [];
      const inFlight = (status?.['actionsInFlight'] as unknown[] | undefined) ?? [];
      return off.length >= SETTLED_HOSTS_OFF && inFlight.length === 0 && status?.['cycleRunning'] === false ? true : undefined;
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { socket, policyFile, output: () => output, stop };
}

function exitOf(child: ChildProcess): Promise<unknown> {
  return new Promise((r) => child.once('exit', r));
}

/**
 * `consolidator ARGS` with the built CLI, talking to the demo (its socket as $CONSOLIDATOR_SOCKET).
 * The run's temp copy of the policy and its socket are shown as the demo's own (config/demo.yaml,
 * DEMO_CONTROL_SOCKET), what an operator of the real demo sees.
 */
export async function demoCli(demo: Pick<DemoDaemon, 'socket' | 'policyFile'>, args: readonly string[]): Promise<GuideRun> {
  const run = await cli(demo.socket, args);
  const shown = (text: string) => text.split(demo.policyFile).join('config/demo.yaml').split(demo.socket).join(DEMO_CONTROL_SOCKET);
  return { ...run, stdout: shown(run.stdout), stderr: shown(run.stderr) };
}

/** `consolidator ARGS` with the built CLI, talking to the daemon on `socket` (as $CONSOLIDATOR_SOCKET). */
export function cli(socket: string, args: readonly string[]): Promise<GuideRun> {
  return new Promise((done, fail) => {
    const child = spawn('node', ['dist/main.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONSOLIDATOR_SOCKET: socket } });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', fail);
    child.on('close', (code) => done({ args, code, stdout, stderr }));
  });
}

/** The daemon's status, asked in-process (fast: the guide's hosts are chosen between two commands). */
function statusJson(socket: string): Promise<Record<string, unknown> | undefined> {
  return DaemonClient.forSocket(socket).status();
}

/** A host that is on and whose drain would not be refused now (the last named first), if any. */
async function drainableHosts(socket: string, taken: ReadonlySet<string>): Promise<string[]> {
  const on = ((await statusJson(socket))?.['hostsByState'] as { on?: string[] } | undefined)?.on ?? [];
  for (const host of [...on].reverse().filter((h) => !taken.has(h))) {
    const answer = await DaemonClient.forSocket(socket).post('/operator/drain', { host, dryRun: true }, PROBE_TIMEOUT_MS);
    // The first will do: the daemon keeps consolidating, the room seen now is gone in a few cycles.
    if (answer.status === 200 && (answer.body as { refused?: boolean }).refused !== true) return [host];
  }
  return [];
}

/** Hosts consolidator powered off, to wake. */
async function wakeableHosts(socket: string, taken: ReadonlySet<string>): Promise<string[]> {
  const status = await statusJson(socket);
  const off = new Set((status?.['hostsByState'] as { off?: string[] } | undefined)?.off ?? []);
  return ((status?.['poweredOffByUs'] as string[] | undefined) ?? []).filter((h) => off.has(h) && !taken.has(h));
}

/**
 * Runs every command of the guide, in order, against the demo, with the README's host names replaced
 * by hosts of this run, chosen when a command first names them: for `wake`, a host consolidator
 * powered off; for `drain` (and anything else), a host that is on and can be drained at that moment.
 */
export async function runGuide(demo: Pick<DemoDaemon, 'socket' | 'policyFile'>, blocks: readonly GuideBlock[]): Promise<GuideRun[][]> {
  const chosen = new Map<string, string>();
  // README host names a drain has acted on: their host is kept from then on.
  const drained = new Set<string>();
  const runs: GuideRun[][] = [];
  for (const block of blocks) {
    const blockRuns: GuideRun[] = [];
    for (const command of block.commands) {
      for (const named of command.args.filter((a) => HOST.test(a) && !chosen.has(a))) {
        const taken = new Set(chosen.values());
        const candidates = command.args[0] === 'wake' ? await wakeableHosts(demo.socket, taken) : await drainableHosts(demo.socket, taken);
        const host = candidates[0];
        if (host === undefined) throw new Error(`no host of this run can stand for ${named} in "consolidator ${command.args.join(' ')}" now`);
        chosen.set(named, host);
      }
      let args = command.args.map((a) => chosen.get(a) ?? a);
      let run = await demoCli(demo, args);
      // The daemon keeps consolidating meanwhile: the room a wake made may be taken by its next cycle
      // (moved onto, or the empty host powered off again), and the host chosen may have been emptied
      // and powered off by the daemon itself. Then another host is woken and, while no drain has
      // acted on them, the command's hosts are chosen again (neither shown).
      for (let attempt = 1; run.code === REFUSED && args[0] === 'drain' && attempt < DRAIN_ATTEMPTS; attempt++) {
        const extra = (await wakeableHosts(demo.socket, new Set(chosen.values())))[0];
        if (extra !== undefined) await cli(demo.socket, ['wake', extra]);
        for (const named of command.args.filter((a) => HOST.test(a) && !drained.has(a))) {
          const others = new Set([...chosen].filter(([n]) => n !== named).map(([, h]) => h));
          const again = (await drainableHosts(demo.socket, others))[0];
          if (again !== undefined) chosen.set(named, again);
        }
        args = command.args.map((a) => chosen.get(a) ?? a);
        run = await demoCli(demo, args);
      }
      // A read-only command shows the moment it runs: the demo's load moves, and a cycle may be relieving
      // an overloaded host just then where the README shows a quiet one. It is asked again, a cycle later.
      for (let attempt = 1; READ_ONLY.has(args[0] ?? '') && run.code === 0 && !matchesBlock(command.expected, run.stdout).ok && attempt < READ_ONLY_ATTEMPTS; attempt++) {
        await pause(DEMO_CYCLE_MS);
        run = await demoCli(demo, args);
      }
      if (args[0] === 'drain' && !args.includes('--dry-run') && run.code !== REFUSED) for (const a of command.args) if (HOST.test(a)) drained.add(a);
      blockRuns.push(run);
    }
    runs.push(blockRuns);
  }
  return runs;
}
