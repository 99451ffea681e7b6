import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { waitFor } from './wait-for.js';

/**
 * A booted systemd container: `systemd-nspawn --boot` on a root directory, systemd as PID 1 inside,
 * commands run in it with nsenter (no machined needed: the container is not registered).
 *
 * The image is never changed: `--volatile=overlay` mounts it read-only under an overlay whose upper
 * layer is a tmpfs of nspawn's own, gone when the container stops. `--private-network`: the
 * container has only its own loopback.
 */

export interface ExecResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ExecOptions {
  /** Written to the command's stdin. */
  readonly input?: string;
  /** Killed (inside, by coreutils' timeout) after this long; default DEFAULT_EXEC_TIMEOUT_SECONDS. */
  readonly timeoutSeconds?: number;
}

export interface BootOptions {
  /** The root directory to boot (scripts/build-test-image.sh). */
  readonly image: string;
  /** Host directories mounted read-only into the container, host path -> container path. */
  readonly bindReadOnly?: Readonly<Record<string, string>>;
  /** The container's console goes here (what systemd prints while booting). */
  readonly consoleLog: string;
  readonly bootTimeoutMs: number;
}

const DEFAULT_EXEC_TIMEOUT_SECONDS = 60;
/** The environment of every command inside: nothing of the test runner's leaks in. */
const INSIDE_ENV = {
  PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
  LANG: 'C.UTF-8',
  TERM: 'dumb',
  SYSTEMD_COLORS: '0',
  SYSTEMD_PAGER: '',
  DEBIAN_FRONTEND: 'noninteractive',
};
const FIND_INIT_TIMEOUT_MS = 30_000;
const HALT_TIMEOUT_MS = 30_000;
const KILL_TIMEOUT_MS = 10_000;
const POLL_MS = 100;
/** The states `systemctl is-system-running --wait` ends in once boot is over. */
const BOOTED_STATES = new Set(['running', 'degraded']);

export class NspawnContainer {
  private constructor(
    private readonly nspawn: ChildProcess,
    private readonly exited: Promise<void>,
    /** The container's PID 1 (systemd), as the host sees it. */
    readonly initPid: number,
    private readonly consoleLog: string,
  ) {}

  /** Boots the image and waits until systemd says boot is over; the returned state is 'running' or 'degraded'. */
  static async boot(options: BootOptions): Promise<{ container: NspawnContainer; state: string; failedUnits: string }> {
    const binds = Object.entries(options.bindReadOnly ?? {}).map(([host, inside]) => `--bind-ro=${host}:${inside}`);
    const args = ['--quiet', '--keep-unit', '--register=no', '--boot', '--private-network', '--volatile=overlay', '--console=read-only', ...binds, `--directory=${options.image}`];
    const log = createWriteStream(options.consoleLog);
    const nspawn = spawn('systemd-nspawn', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    nspawn.stdout.pipe(log);
    nspawn.stderr.pipe(log);
    const exited = new Promise<void>((resolve) => nspawn.once('exit', () => resolve()));
    const spawnFailed = new Promise<never>((_, reject) => nspawn.once('error', reject));
    const initPid = await Promise.race([
      spawnFailed,
      waitFor('the container\'s PID 1 (a child of systemd-nspawn in a PID namespace of its own)', { timeoutMs: FIND_INIT_TIMEOUT_MS, intervalMs: POLL_MS, onProbeError: 'retry' }, async () => {
        if (nspawn.exitCode !== null || nspawn.signalCode !== null) throw new Error(`systemd-nspawn exited (${nspawn.exitCode ?? nspawn.signalCode}): ${await tail(options.consoleLog)}`);
        return containerInit(nspawn.pid ?? 0);
      }),
    ]);
    const container = new NspawnContainer(nspawn, exited, initPid, options.consoleLog);
    try {
      const state = await waitFor('the container to finish booting (systemctl is-system-running --wait)', { timeoutMs: options.bootTimeoutMs, intervalMs: POLL_MS * 5 }, async () => {
        // Fails (no bus yet) until systemd is far enough; then waits for the end of boot itself.
        const r = await container.exec(['systemctl', 'is-system-running', '--wait'], { timeoutSeconds: Math.ceil(options.bootTimeoutMs / 1000) });
        const said = r.stdout.trim();
        return BOOTED_STATES.has(said) ? said : undefined;
      });
      const failedUnits = state === 'running' ? '' : (await container.exec(['systemctl', '--failed', '--no-legend', '--plain'])).stdout.trim();
      return { container, state, failedUnits };
    } catch (e) {
      await container.halt();
      throw new Error(`the container did not boot: ${e instanceof Error ? e.message : String(e)}\nconsole: ${await tail(options.consoleLog)}`, { cause: e });
    }
  }

  /** Runs a command inside as root, in all of the container's namespaces. Never throws on a non-zero exit. */
  exec(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const timeout = String(options.timeoutSeconds ?? DEFAULT_EXEC_TIMEOUT_SECONDS);
    const child = spawn('nsenter', ['--target', String(this.initPid), '--all', '--', 'timeout', '--kill-after=5', timeout, ...argv], {
      env: INSIDE_ENV,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (options.input !== undefined) child.stdin?.end(options.input);
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    });
  }

  /** Like exec, but a non-zero exit throws with the command's output. */
  async run(argv: readonly string[], options: ExecOptions = {}): Promise<string> {
    const r = await this.exec(argv, options);
    if (r.code !== 0) throw new Error(`in the container, \`${argv.join(' ')}\` exited ${r.code}: ${(r.stderr || r.stdout).trim()}`);
    return r.stdout;
  }

  /** Writes a file inside (as root), with this mode. */
  async writeFile(path: string, content: string, mode: string): Promise<void> {
    await this.run(['sh', '-c', 'umask 077 && cat > "$1" && chmod "$2" "$1"', 'sh', path, mode], { input: content });
  }

  /** `systemctl show` of one unit: the properties asked for, by name. */
  async show(unit: string, properties: readonly string[]): Promise<Record<string, string>> {
    const out = await this.run(['systemctl', 'show', unit, ...properties.map((p) => `--property=${p}`)]);
    const values: Record<string, string> = {};
    for (const line of out.split('\n')) {
      const eq = line.indexOf('=');
      if (eq > 0) values[line.slice(0, eq)] = line.slice(eq + 1);
    }
    return values;
  }

  /**
   * Stops the container: SIGTERM to nspawn (which asks systemd inside to halt), then SIGKILL to the
   * container's PID 1 (taking every process of its PID namespace with it) and to nspawn. Safe to call twice.
   */
  async halt(): Promise<void> {
    if (this.nspawn.exitCode !== null || this.nspawn.signalCode !== null) return;
    this.nspawn.kill('SIGTERM');
    if (await exitsWithin(this.exited, HALT_TIMEOUT_MS)) return;
    killQuietly(this.initPid);
    if (await exitsWithin(this.exited, KILL_TIMEOUT_MS)) return;
    this.nspawn.kill('SIGKILL');
    await this.exited;
  }

  /** The last lines the container printed on its console. */
  consoleTail(): Promise<string> {
    return tail(this.consoleLog);
  }
}

/** The child of `parentPid` that is PID 1 of a PID namespace of its own, if there is one yet. */
async function containerInit(parentPid: number): Promise<number | undefined> {
  const children = (await readFile(`/proc/${parentPid}/task/${parentPid}/children`, 'utf8')).trim().split(/\s+/).filter(Boolean);
  for (const child of children) {
    const status = await readFile(`/proc/${child}/status`, 'utf8').catch(() => '');
    const nspid = /^NSpid:\s+(.+)$/m.exec(status)?.[1]?.trim().split(/\s+/);
    if (nspid !== undefined && nspid.length > 1 && nspid.at(-1) === '1') return Number(child);
  }
  return undefined;
}

async function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const result = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
  clearTimeout(timer);
  return result;
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (e) {
    // Already gone (ESRCH) is what we wanted.
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

async function tail(file: string, lines = 30): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-lines).join('\n');
}
