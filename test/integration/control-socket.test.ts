import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines, startTestDaemon, testSetup, type TestDaemon } from '../helpers/sim-daemon.js';
import { stopProcess } from '../helpers/stop-process.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The operator socket with real sockets and real processes: the built CLI (`npm run build` first)
 * run as another user with setpriv, a non-member of the socket's group refused, a member served;
 * every command audited with the caller's uid from the kernel; a stale socket file from a killed
 * process replaced, a live daemon's never; the socket taken from systemd socket activation
 * (systemd's own systemd-socket-activate). The group is made here with groupadd and deleted after.
 */

const run = promisify(execFile);
const NOBODY = 65_534;
const CLI = resolve('dist/main.js');
const EXIT_NOPERM = 77;

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The built CLI as uid/gid 65534, with only the supplementary groups given. */
async function cliAs(groups: readonly number[], args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  const ids = [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, ...(groups.length > 0 ? [`--groups=${groups.join(',')}`] : ['--clear-groups'])];
  try {
    const { stdout, stderr } = await run('setpriv', [...ids, process.execPath, CLI, ...args], { env: { PATH: '/usr/bin:/bin', ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failure = e as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

/** A directory anyone may traverse (the socket's permissions are then what decides). */
async function openDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const SETUP = testSetup([{ id: 'h1' }, { id: 'h2' }, { id: 'h3' }], [{ id: 'a', host: 'h1', load: 0.3 }, { id: 'b', host: 'h2', load: 0.3 }]);

describe('the operator socket', () => {
  const group = `cons-test-${randomBytes(3).toString('hex')}`;
  let gid = 0;
  let dir = '';
  let socket = '';
  let t: TestDaemon;

  beforeAll(async () => {
    await run('groupadd', ['--system', group]);
    cleanups.push(async () => void (await run('groupdel', [group])));
    gid = Number((await run('getent', ['group', group])).stdout.split(':')[2]);
    dir = await openDir('consolidator-socket-');
    socket = join(dir, 'control.sock');
    t = await startTestDaemon({ setup: SETUP, policy: { control: { socket, group }, consolidation: { enabled: false } } });
    cleanups.push(() => t.daemon.stop());
    // The member's CLI reads the policy for drain/plan (status needs only the socket).
    await chmod(t.dir, 0o755);
    await chmod(t.policyFile, 0o644);
  });

  it('is a socket of the daemon user and the operator group, mode 0660', async () => {
    const info = await stat(socket);
    expect(info.isSocket()).toBe(true);
    expect(info.mode & 0o777).toBe(0o660);
    expect(info.uid).toBe(process.getuid?.());
    expect(info.gid).toBe(gid);
  });

  it('refuses a user outside the group, saying which group to join (exit 77)', async () => {
    const result = await cliAs([], ['status', '--socket', socket]);
    expect(result.stderr).toContain(`permission denied on ${socket}: add yourself to group ${group}`);
    expect(result.code).toBe(EXIT_NOPERM);
    const drain = await cliAs([], ['drain', 'h1', '--power-off', '--policy', t.policyFile]);
    expect(drain.code).toBe(EXIT_NOPERM);
    expect(t.daemon.state.isInMaintenance('h1')).toBe(false);
  });

  it('serves `consolidator status` to a non-root member, with --socket or CONSOLIDATOR_SOCKET', async () => {
    const result = await cliAs([gid], ['status', '--socket', socket]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^consolidator test, mode enforce/);
    const fromEnv = await cliAs([gid], ['status', '--json'], { CONSOLIDATOR_SOCKET: socket });
    expect(fromEnv.code).toBe(0);
    expect((JSON.parse(fromEnv.stdout) as { mode: string }).mode).toBe('enforce');
  });

  it('audits every operator command with the caller uid, gid and pid from the kernel, its outcome and duration', async () => {
    const plan = await cliAs([gid], ['plan', '--policy', t.policyFile, '--json']);
    expect(plan.code).toBe(0);
    const refused = await cliAs([gid], ['drain', 'h9', '--policy', t.policyFile]);
    expect(refused.code).toBe(2);
    const audit = logLines(t).filter((l) => l['message'] === 'operator command');
    expect(audit, JSON.stringify(audit) + refused.stdout + refused.stderr).toHaveLength(2);
    expect(audit[0]).toMatchObject({ command: 'plan', callerUid: NOBODY, callerGid: NOBODY, callerIdFrom: 'kernel', outcome: 'ok', status: 200 });
    expect(audit[1]).toMatchObject({ command: 'drain', args: { host: 'h9', powerOff: false, dryRun: false }, callerUid: NOBODY, callerIdFrom: 'kernel', outcome: 'refused', status: 409 });
    for (const line of audit) {
      expect(line['callerPid']).toEqual(expect.any(Number));
      expect(line['durationMs']).toEqual(expect.any(Number));
    }
    // Who asked is written before the command runs, too (a drain can take hours, and the daemon may die).
    const lines = logLines(t);
    const received = lines.filter((l) => l['message'] === 'operator command received');
    expect(received.map((l) => l['command'])).toEqual(['plan', 'drain']);
    expect(received[1]).toMatchObject({ args: { host: 'h9' }, callerUid: NOBODY, callerIdFrom: 'kernel' });
    const at = (message: string) => lines.findIndex((l) => l['message'] === message && l['command'] === 'drain');
    expect(at('operator command received')).toBeLessThan(at('operator command'));
    // /status is read-only and not audited.
    await cliAs([gid], ['status', '--socket', socket]);
    expect(logLines(t).filter((l) => l['message'] === 'operator command')).toHaveLength(2);
  });

  it('is never taken over from a daemon that still answers on it', async () => {
    await expect(startTestDaemon({ setup: SETUP, policy: { control: { socket, group } } })).rejects.toThrow(`another consolidator daemon answers on ${socket}`);
    expect((await cliAs([gid], ['status', '--socket', socket])).code).toBe(0);
  });
});

describe('a stale operator socket', () => {
  it('left by a killed process is replaced at start', async () => {
    const dir = await openDir('consolidator-stale-');
    const socket = join(dir, 'control.sock');
    const holder = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(socket)}, () => console.log('listening'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolveListening) => holder.stdout?.once('data', () => resolveListening()));
    holder.kill('SIGKILL');
    await new Promise((resolveExit) => holder.once('exit', resolveExit));
    expect((await stat(socket)).isSocket()).toBe(true);

    const t = await startTestDaemon({ setup: SETUP, policy: { control: { socket } } });
    cleanups.push(() => t.daemon.stop());
    const { stdout } = await run(process.execPath, [CLI, 'status', '--socket', socket, '--json']);
    expect((JSON.parse(stdout) as { mode: string }).mode).toBe('enforce');
    // No group "consolidator" here: owner only, and a warning that says how to fix it.
    const missing = logLines(t).find((l) => l['message'] === 'operator group missing: operator socket left to its owner');
    if (missing) expect((await stat(socket)).mode & 0o777).toBe(0o600);
  });

  it('that is not a socket stops the start with a clear error', async () => {
    const dir = await openDir('consolidator-notsocket-');
    const path = join(dir, 'control.sock');
    await writeFile(path, 'not a socket');
    await expect(startTestDaemon({ setup: SETUP, policy: { control: { socket: path } } })).rejects.toThrow(`${path} exists and is not a socket`);
  });
});

describe('systemd socket activation', () => {
  let daemon: ChildProcess | undefined;
  afterAll(async () => {
    if (daemon) await stopProcess(daemon, 5_000);
  });

  it('takes the socket named "control" from LISTEN_FDS and serves the CLI on it', async () => {
    const dir = await openDir('consolidator-activated-');
    const socket = join(dir, 'activated.sock');
    const demo = (await readFile('config/demo.yaml', 'utf8'))
      .replace('listen: 127.0.0.1:9464', 'listen: 127.0.0.1:0')
      .replace('workload: demo-workload', `workload: ${resolve('config/demo-workload')}`)
      .replace('socket: /tmp/consolidator-demo.sock', `socket: ${join(dir, 'not-used.sock')}`)
      .replace('format: pretty', 'format: json');
    const policyFile = join(dir, 'demo.yaml');
    await writeFile(policyFile, demo);
    daemon = spawn('systemd-socket-activate', ['--listen', socket, '--fdname=control', process.execPath, CLI, 'run', '--policy', policyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    daemon.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    daemon.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    // systemd-socket-activate starts the daemon on the first connection (as systemd does on demand).
    await waitFor('the socket to be listened on', { timeoutMs: 10_000, intervalMs: 200 }, async () => (await stat(socket).catch(() => undefined))?.isSocket());
    const trigger = connect({ path: socket });
    trigger.on('error', () => undefined);
    await waitFor('the activated daemon to start', { timeoutMs: 20_000, intervalMs: 200 }, async () => (output.includes('"message":"started"') ? true : undefined));
    trigger.destroy();
    expect(output).toContain('operator socket from systemd');
    const { stdout } = await run(process.execPath, [CLI, 'status', '--socket', socket, '--json']);
    expect((JSON.parse(stdout) as { mode: string }).mode).toBe('enforce');
    // The file the daemon would have made itself is not there.
    await expect(stat(join(dir, 'not-used.sock'))).rejects.toThrow(/ENOENT/);
  });
});
