import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/config/defaults.js';

/**
 * The shipped unit checked by systemd's own tools (Debian package `systemd`; no systemd runs here):
 * `systemd-analyze verify` and `systemd-analyze security --offline`, in a throw-away root that holds
 * systemd's stock units (sysinit.target, ...) and stand-ins for the binaries the unit runs, so the
 * check does not depend on consolidator being installed on the machine that runs the tests.
 */

const run = promisify(execFile);
const UNIT_FILE = 'systemd/consolidator.service';
const SYSUSERS_FILE = 'systemd/consolidator.sysusers.conf';
const UNIT_PATH_IN_ROOT = '/etc/systemd/system/consolidator.service';
const SOCKET_FILE = 'systemd/consolidator.socket';
const SOCKET_PATH_IN_ROOT = '/etc/systemd/system/consolidator.socket';
/** `systemd-analyze security` scores exposure 0..10 (threshold in tenths): ours must stay "OK" and at most 2.0. */
const MAX_EXPOSURE_TENTHS = 20;
/** The default schedule, every 5 minutes (DEFAULTS.schedule). */
const DEFAULT_SCHEDULE_INTERVAL_SECONDS = 300;
const WATCHDOG_MIN_INTERVALS = 3;

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.splice(0).map((root) => rm(root, { recursive: true, force: true })));
});

interface ToolResult {
  code: number;
  output: string;
}

async function tool(command: string, args: string[]): Promise<ToolResult> {
  try {
    const { stdout, stderr } = await run(command, args);
    return { code: 0, output: stdout + stderr };
  } catch (e) {
    const failure = e as { code: number; stdout: string; stderr: string };
    return { code: failure.code, output: failure.stdout + failure.stderr };
  }
}

/** A root with systemd's stock units, the unit under test, and (unless told otherwise) its binaries. */
async function rootWith(unitText: string, options: { binaries?: boolean; socketText?: string } = {}): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'consolidator-unit-'));
  roots.push(root);
  await mkdir(join(root, 'usr/lib/systemd'), { recursive: true });
  await cp('/usr/lib/systemd/system', join(root, 'usr/lib/systemd/system'), { recursive: true });
  await mkdir(join(root, 'etc/systemd/system'), { recursive: true });
  await writeFile(join(root, UNIT_PATH_IN_ROOT), unitText);
  await writeFile(join(root, SOCKET_PATH_IN_ROOT), options.socketText ?? (await readFile(SOCKET_FILE, 'utf8')));
  await mkdir(join(root, 'usr/bin'), { recursive: true });
  await symlink('usr/bin', join(root, 'bin')); // merged /usr, as on Debian 12
  if (options.binaries !== false) {
    for (const binary of ['usr/bin/consolidator', 'usr/bin/kill']) {
      await writeFile(join(root, binary), '#!/bin/sh\n');
      await chmod(join(root, binary), 0o755);
    }
  }
  return root;
}

/** `systemd-analyze verify`: passes only with exit 0 and not a single warning (unknown keys, bad values only warn). */
async function verify(unitText: string, options: { binaries?: boolean; socketText?: string; unit?: string } = {}): Promise<ToolResult & { ok: boolean }> {
  const root = await rootWith(unitText, options);
  const result = await tool('systemd-analyze', ['verify', '--man=no', '--generators=no', `--root=${root}`, options.unit ?? UNIT_PATH_IN_ROOT]);
  return { ...result, ok: result.code === 0 && result.output.trim() === '' };
}

/** Every `Key=value` of one section, in order (a key may repeat). */
function directives(unitText: string, section: string): [string, string][] {
  const out: [string, string][] = [];
  let current = '';
  for (const raw of unitText.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header?.[1] !== undefined) current = header[1];
    else if (current === section) {
      const eq = line.indexOf('=');
      out.push([line.slice(0, eq), line.slice(eq + 1)]);
    }
  }
  return out;
}

function values(unitText: string, key: string, section = 'Service'): string[] {
  return directives(unitText, section)
    .filter(([k]) => k === key)
    .map(([, v]) => v);
}

function seconds(timespan: string): number {
  const match = /^(\d+)(s|min|h)?$/.exec(timespan);
  if (match?.[1] === undefined) throw new Error(`unexpected time span ${timespan}`);
  const factor = match[2] === 'h' ? 3600 : match[2] === 'min' ? 60 : 1;
  return Number(match[1]) * factor;
}

describe('systemd/consolidator.service', async () => {
  const unit = await readFile(UNIT_FILE, 'utf8');

  it('passes systemd-analyze verify without a single warning', async () => {
    const result = await verify(unit);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it.each([
    ['a misspelt directive', ['ProtectSystem=strict', 'ProtectSytem=strict'], /Unknown key 'ProtectSytem'/],
    ['an invalid value', ['Type=notify', 'Type=notfiy'], /Failed to parse service type/],
    ['a directive in the wrong section', ['Wants=network-online.target', 'Wants=network-online.target\nRestart=always'], /Unknown key 'Restart' in section \[Unit\]/],
    ['a misspelt address family', ['AF_UNIX AF_INET AF_INET6', 'AF_UNIX AF_INTE AF_INET6'], /AF_INTE/],
  ] as const)('the same check fails on %s', async (_what, [from, to], message) => {
    expect(unit).toContain(from);
    const result = await verify(unit.replace(from, to));
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(message);
  });

  it('the same check fails when the ExecStart binary is missing', async () => {
    const result = await verify(unit, { binaries: false });
    expect(result.ok).toBe(false);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('Command /usr/bin/consolidator is not executable');
  });

  it(`has an exposure of at most ${MAX_EXPOSURE_TENTHS / 10} in systemd-analyze security`, async () => {
    const root = await rootWith(unit);
    const result = await tool('systemd-analyze', ['security', '--offline=yes', `--threshold=${MAX_EXPOSURE_TENTHS}`, `--root=${root}`, UNIT_PATH_IN_ROOT]);
    expect(result.output).toMatch(/Overall exposure level for consolidator\.service: \d\.\d OK/);
    expect(result.code).toBe(0);
  });

  it('runs the installed binary with the policy from its configuration directory, and reloads with SIGHUP', async () => {
    const pkg = JSON.parse(await readFile('package.json', 'utf8')) as { bin: Record<string, string> };
    expect(Object.keys(pkg.bin)).toContain('consolidator');
    expect(values(unit, 'ExecStart')).toEqual(['/usr/bin/consolidator run --policy /etc/consolidator/consolidator.yaml']);
    expect(values(unit, 'ConfigurationDirectory')).toEqual(['consolidator']);
    expect(values(unit, 'ExecReload')).toEqual(['/bin/kill -HUP $MAINPID']);
  });

  it('notifies systemd through a child process, and does not restart on a policy error', () => {
    expect(values(unit, 'Type')).toEqual(['notify']);
    expect(values(unit, 'NotifyAccess')).toEqual(['all']);
    expect(values(unit, 'Restart')).toEqual(['on-failure']);
    expect(values(unit, 'RestartPreventExitStatus')).toEqual(['78']);
  });

  it('keeps its state where the policy expects it and reads secrets only as credentials', () => {
    expect(values(unit, 'DynamicUser')).toEqual(['yes']);
    expect(values(unit, 'User')).toEqual(['consolidator']);
    expect(values(unit, 'StateDirectory')).toEqual(['consolidator']);
    expect(DEFAULTS.stateDirectory).toBe('/var/lib/consolidator');
    expect(values(unit, 'LoadCredential')).toEqual([
      'ssh-key:/etc/consolidator/credentials/ssh-key',
      'bmc-password:/etc/consolidator/credentials/bmc-password',
    ]);
    expect(values(unit, 'Environment').join(' ')).not.toMatch(/pass|secret|key/i);
  });

  it('gives the watchdog several schedule intervals and a stop long enough for an in-flight step', () => {
    expect(DEFAULTS.schedule).toBe('*/5 * * * *');
    const [watchdog] = values(unit, 'WatchdogSec');
    expect(seconds(watchdog ?? '0')).toBeGreaterThanOrEqual(WATCHDOG_MIN_INTERVALS * DEFAULT_SCHEDULE_INTERVAL_SECONDS);
    expect(seconds(watchdog ?? '0')).toBeGreaterThan(DEFAULTS.migration.timeoutSeconds);
    const [stop] = values(unit, 'TimeoutStopSec');
    expect(seconds(stop ?? '0')).toBeGreaterThan(DEFAULTS.migration.timeoutSeconds);
    expect(seconds(stop ?? '0')).toBeGreaterThan(DEFAULTS.power.softOffTimeoutSeconds + DEFAULTS.power.verifyTimeoutSeconds);
    expect(values(unit, 'KillMode')).toEqual(['mixed']);
  });

  it('is hardened, with AF_UNIX for the notify socket and without MemoryDenyWriteExecute (V8 JIT)', () => {
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'],
      ['ProtectSystem', 'strict'],
      ['ProtectHome', 'yes'],
      ['PrivateTmp', 'yes'],
      ['PrivateDevices', 'yes'],
      ['ProtectKernelTunables', 'yes'],
      ['ProtectKernelModules', 'yes'],
      ['ProtectKernelLogs', 'yes'],
      ['ProtectControlGroups', 'yes'],
      ['RestrictNamespaces', 'yes'],
      ['LockPersonality', 'yes'],
      ['SystemCallArchitectures', 'native'],
      ['CapabilityBoundingSet', ''],
    ] as const) {
      expect(values(unit, key), key).toEqual([value]);
    }
    expect(values(unit, 'RestrictAddressFamilies')).toEqual(['AF_UNIX AF_INET AF_INET6']);
    expect(values(unit, 'MemoryDenyWriteExecute')).toEqual([]);
    expect(unit).toMatch(/MemoryDenyWriteExecute= is deliberately NOT set: V8's JIT/);
  });
});

describe('systemd/consolidator.socket', async () => {
  const unit = await readFile(UNIT_FILE, 'utf8');
  const socket = await readFile(SOCKET_FILE, 'utf8');

  it('passes systemd-analyze verify without a single warning, and the same check fails on a misspelt key', async () => {
    const result = await verify(unit, { unit: SOCKET_PATH_IN_ROOT });
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
    const broken = await verify(unit, { unit: SOCKET_PATH_IN_ROOT, socketText: socket.replace('SocketMode=0660', 'SocketMod=0660') });
    expect(broken.ok).toBe(false);
    expect(broken.output).toMatch(/Unknown key 'SocketMod'/);
  });

  it('is a 0660 socket of root and group consolidator, passed to the daemon under the name "control"', () => {
    expect(values(socket, 'ListenStream', 'Socket')).toEqual([DEFAULTS.control.socket]);
    expect(values(socket, 'FileDescriptorName', 'Socket')).toEqual(['control']);
    expect(values(socket, 'SocketMode', 'Socket')).toEqual(['0660']);
    expect(values(socket, 'SocketUser', 'Socket')).toEqual(['root']);
    expect(values(socket, 'SocketGroup', 'Socket')).toEqual([DEFAULTS.control.group]);
    expect(values(socket, 'Service', 'Socket')).toEqual(['consolidator.service']);
  });

  it('is required by the service, which takes it with Sockets=', () => {
    expect(values(unit, 'Sockets')).toEqual(['consolidator.socket']);
    expect(values(unit, 'Requires', 'Unit')).toEqual(['consolidator.socket']);
    expect(values(unit, 'After', 'Unit').join(' ')).toContain('consolidator.socket');
  });
});

describe('systemd/consolidator.sysusers.conf', () => {
  it('creates the static user and the operator group with systemd-sysusers', async () => {
    const root = await mkdtemp(join(tmpdir(), 'consolidator-sysusers-'));
    roots.push(root);
    await mkdir(join(root, 'usr/lib/sysusers.d'), { recursive: true });
    await mkdir(join(root, 'etc'), { recursive: true });
    await cp(SYSUSERS_FILE, join(root, 'usr/lib/sysusers.d/consolidator.conf'));
    const result = await tool('systemd-sysusers', [`--root=${root}`]);
    expect(result.code).toBe(0);
    const passwd = await readFile(join(root, 'etc/passwd'), 'utf8');
    expect(passwd).toMatch(/^consolidator:x:\d+:\d+:[^:]*:\/var\/lib\/consolidator:\/usr\/sbin\/nologin$/m);
    // The operator socket's group (consolidator.socket's SocketGroup=).
    expect(await readFile(join(root, 'etc/group'), 'utf8')).toMatch(/^consolidator:x:\d+:$/m);
  });
});
