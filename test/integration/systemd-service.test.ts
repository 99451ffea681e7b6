import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { NspawnContainer } from '../helpers/nspawn-container.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The Debian package under a real systemd: a Debian 13 container (scripts/build-test-image.sh,
 * cached per machine) booted with systemd-nspawn, systemd as its PID 1, the .deb installed with apt
 * (no network: the container has only its loopback), the service started on the demo datacenter and
 * put through what an operator and systemd do to it: start (READY=1), the journal, the operator
 * socket's group, a broken policy on reload, a hung daemon (the watchdog), stop, systemd's own
 * security score, and the package's upgrade, remove and purge with the service running.
 *
 * Timeouts: the first run on a machine builds the image (debootstrap, about a minute here, a few on
 * a slow mirror) and the .deb; beforeAll has BEFORE_ALL_TIMEOUT_MS for both. On a warm cache the file
 * takes well under 3 minutes. The tests run in order and share the one container.
 * Env: CONSOLIDATOR_DEB (a .deb to test instead of building one), CONSOLIDATOR_TEST_CACHE (image cache).
 */

const run = promisify(execFile);
const REPO_ROOT = join(import.meta.dirname, '..', '..');
const UNIT = 'consolidator.service';
const DEB_DIR_INSIDE = '/mnt/consolidator-deb';
const POLICY = '/etc/consolidator/consolidator.yaml';
const DEMO = '/usr/share/consolidator/demo';
const CONTROL_SOCKET = '/run/consolidator/control.sock';
const CREDENTIALS = '/etc/consolidator/credentials';
const OPERATOR_GROUP = 'consolidator';
const EXIT_NOPERM = 77;
/** `systemd-analyze security` of the unit as shipped, measured on Debian 12 offline: no worse. */
const MAX_EXPOSURE = 1.7;
/** Test-only settings (drop-in below): the demo completes a cycle, and feeds the watchdog, every 2 s. */
const WATCHDOG_SEC = 10;
const RESTART_SEC = 1;
/** The demo's clock: slow enough that its day-long trace does not end (and the daemon exit 0) during the test. */
const DEMO_SPEEDUP = 30;
const DROP_IN = `# Test only (systemd-service.test.ts). The shipped unit waits 30 min for a hung daemon and 30 s
# before restarting it: sized for a real schedule (every 5 min) and real migrations. The demo
# completes a cycle, which feeds the watchdog, every 2 s, so ${WATCHDOG_SEC} s is five cycles missed; a 1 s
# restart delay keeps the test short.
[Service]
WatchdogSec=${WATCHDOG_SEC}s
RestartSec=${RESTART_SEC}s
`;

const BEFORE_ALL_TIMEOUT_MS = 20 * 60_000;
const BOOT_TIMEOUT_MS = 60_000;
const INSTALL_TIMEOUT_SECONDS = 120;
const CYCLES_TIMEOUT_MS = 30_000;
const JOURNAL_TIMEOUT_MS = 10_000;
/** SIGSTOP to the daemon's death: at most WatchdogSec after its last WATCHDOG=1, plus a margin. */
const WATCHDOG_KILL_MARGIN_MS = 5_000;
/** The watchdog's signal to the process gone: SIGABRT must kill it (systemd sends SIGCONT with it), not wait for TimeoutAbortSec. */
const ABORT_TO_EXIT_MAX_MS = 5_000;
const RESTART_TIMEOUT_MS = (WATCHDOG_SEC + RESTART_SEC + 30) * 1000;
/** "Well within TimeoutStopSec" (15 min): the demo has no step in flight that could take long. */
const STOP_MAX_MS = 30_000;
const USEC_PER_MS = 1000;

interface JournalEntry {
  readonly monotonicUsec: number;
  readonly message: string;
  readonly pid: number;
  readonly identifier: string;
}

/** Why this machine cannot run the test, or undefined when it can (root, the tools, namespaces). */
function missingPrerequisite(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (systemd-nspawn, debootstrap)';
  for (const tool of ['systemd-nspawn', 'debootstrap', 'nsenter', 'flock']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `${tool} is missing (bash scripts/install-test-deps.sh)`;
    }
  }
  try {
    execFileSync('unshare', ['--mount', '--pid', '--net', '--uts', '--ipc', '--fork', 'true'], { stdio: 'ignore' });
  } catch {
    return 'cannot create namespaces here (systemd-nspawn needs mount, PID, network, UTS and IPC namespaces)';
  }
  return undefined;
}

const missing = missingPrerequisite();
const inCi = process.env['CI'] === 'true';
if (missing !== undefined && !inCi) console.warn(`systemd-service: skipped: ${missing}`);

function figure(text: string): void {
  console.log(`systemd-service: ${text}`);
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

async function buildImage(): Promise<string> {
  const started = Date.now();
  const { stdout, stderr } = await run('bash', [join(REPO_ROOT, 'scripts/build-test-image.sh')], { maxBuffer: 64 * 1024 * 1024 });
  const image = lastLine(stdout);
  figure(stderr.includes('build-test-image: built') ? `image built in ${seconds(Date.now() - started)} (${image})` : `image cached (${image})`);
  return image;
}

async function buildDeb(): Promise<string> {
  const given = process.env['CONSOLIDATOR_DEB'];
  if (given !== undefined && given !== '') return given;
  const out = await mkdtemp(join(tmpdir(), 'consolidator-deb-'));
  cleanups.push(() => rm(out, { recursive: true, force: true }));
  const started = Date.now();
  const { stdout } = await run('npm', ['run', '--silent', 'package', '--', '--out', out], { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 });
  figure(`package built in ${seconds(Date.now() - started)}`);
  return lastLine(stdout);
}

function lastLine(text: string): string {
  const line = text.trim().split('\n').at(-1)?.trim();
  if (line === undefined || line === '') throw new Error('expected a path on the last line of output, got nothing');
  return line;
}

const cleanups: (() => Promise<void>)[] = [];
let box: NspawnContainer;

async function journal(): Promise<JournalEntry[]> {
  const out = await box.run(['journalctl', '--unit', UNIT, '--output', 'json', '--no-pager']);
  return out
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
    .map((e) => ({
      monotonicUsec: Number(e['__MONOTONIC_TIMESTAMP']),
      // A message that is not valid UTF-8 comes as an array of bytes.
      message: typeof e['MESSAGE'] === 'string' ? e['MESSAGE'] : Buffer.from(e['MESSAGE'] as number[]).toString('utf8'),
      pid: Number(e['_PID']),
      identifier: String(e['SYSLOG_IDENTIFIER'] ?? ''),
    }));
}

/** The daemon's own lines (its stdout, through journald), as JSON objects; throws on a line that is not JSON. */
async function daemonLines(pid?: number): Promise<Record<string, unknown>[]> {
  return (await journal())
    .filter((e) => e.identifier === 'consolidator' && (pid === undefined || e.pid === pid))
    .map((e) => {
      try {
        return JSON.parse(e.message) as Record<string, unknown>;
      } catch {
        throw new Error(`a journal line of the daemon is not JSON: ${e.message}`);
      }
    });
}

/** The first journal entry (systemd's or the daemon's) whose message matches, once journald has it. */
function journalEntry(what: string, matches: (e: JournalEntry) => boolean): Promise<JournalEntry> {
  return waitFor(what, { timeoutMs: JOURNAL_TIMEOUT_MS, intervalMs: 250 }, async () => (await journal()).find(matches));
}

async function mainPid(): Promise<number> {
  return Number((await box.show(UNIT, ['MainPID']))['MainPID']);
}

async function lastCycleId(): Promise<string | undefined> {
  const status = JSON.parse(await box.run(['consolidator', 'status', '--json'])) as { lastCycle?: { cycle?: string } };
  return status.lastCycle?.cycle;
}

/** Waits until the daemon has completed a cycle after `after` (a cycle id), and returns that cycle's id. */
function nextCycle(after: string | undefined): Promise<string> {
  return waitFor('a cycle of the daemon to complete', { timeoutMs: CYCLES_TIMEOUT_MS, intervalMs: 500 }, async () => {
    const id = await lastCycleId();
    return id !== undefined && id !== after ? id : undefined;
  });
}

/** The demo, as an operator would point the installed policy at it. */
function demoPolicy(demoYaml: string): string {
  const doc = parseDocument(demoYaml);
  // The workload is relative to the policy file: from /etc it is not found.
  doc.setIn(['simulation', 'workload'], `${DEMO}/demo-workload`);
  doc.setIn(['simulation', 'speedup'], DEMO_SPEEDUP);
  // The systemd socket (consolidator.socket) instead of the demo's /tmp socket.
  doc.delete('control');
  // JSON lines for journald (the demo asks for pretty ones).
  doc.setIn(['logging', 'format'], 'json');
  return doc.toString();
}

describe.skipIf(missing !== undefined && !inCi)('the Debian package under systemd (Debian 13 container)', () => {
  let goodPolicy = '';
  let debPath = '';
  let aptOutput = '';

  beforeAll(async () => {
    if (missing !== undefined) throw new Error(`systemd-service: cannot run on this machine: ${missing}`);
    const [image, deb] = await Promise.all([buildImage(), buildDeb()]);
    debPath = deb;
    const work = await mkdtemp(join(tmpdir(), 'consolidator-nspawn-'));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    const started = Date.now();
    const booted = await NspawnContainer.boot({ image, bindReadOnly: { [dirname(deb)]: DEB_DIR_INSIDE }, consoleLog: join(work, 'console.log'), bootTimeoutMs: BOOT_TIMEOUT_MS });
    box = booted.container;
    figure(`container booted in ${seconds(Date.now() - started)}: ${booted.state}`);
    if (booted.state !== 'running') figure(`failed units at boot: ${booted.failedUnits}`);

    const installStarted = Date.now();
    aptOutput = await box.run(['apt-get', 'install', '-y', '--no-install-recommends', `${DEB_DIR_INSIDE}/${basename(deb)}`], { timeoutSeconds: INSTALL_TIMEOUT_SECONDS });
    figure(`apt-get install of ${basename(deb)}: ${seconds(Date.now() - installStarted)}`);
  }, BEFORE_ALL_TIMEOUT_MS);

  afterAll(async () => {
    await box?.halt();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  }, 60_000);

  it('installs with apt from the image alone, and neither enables nor starts the service', async () => {
    // No network to fetch from (the container has only its loopback), and nothing to fetch: every
    // Depends is in the image already.
    const interfaces = (await box.run(['cat', '/proc/net/dev'])).split('\n').slice(2).map((l) => l.split(':')[0]?.trim()).filter(Boolean);
    expect(interfaces).toEqual(['lo']);
    expect(aptOutput).toContain('0 upgraded, 1 newly installed, 0 to remove');
    expect(aptOutput).toMatch(/^Need to get 0 B\//m);
    expect(await box.run(['dpkg-query', '--show', '--showformat=${Status}', 'consolidator'])).toBe('install ok installed');
    for (const file of ['/usr/bin/consolidator', `/usr/lib/systemd/system/${UNIT}`, '/usr/lib/systemd/system/consolidator.socket', '/usr/lib/sysusers.d/consolidator.conf', '/usr/lib/tmpfiles.d/consolidator.conf', POLICY, '/usr/share/consolidator/consolidator.schema.json', `${DEMO}/demo.yaml`, `${DEMO}/demo-workload`]) {
      expect((await box.exec(['test', '-e', file])).code, file).toBe(0);
    }
    // The unit systemd runs is the one in the repository.
    expect(await box.run(['cat', `/usr/lib/systemd/system/${UNIT}`])).toBe(await readFile(join(REPO_ROOT, 'systemd', UNIT), 'utf8'));
    expect((await box.run(['getent', 'group', OPERATOR_GROUP])).split(':')[0]).toBe(OPERATOR_GROUP);
    expect((await box.run(['getent', 'passwd', 'consolidator'])).split(':')[0]).toBe('consolidator');
    // The folder for the credentials (tmpfiles.d), root only.
    expect(await box.run(['stat', '--format=%U %G %a', CREDENTIALS])).toBe('root root 700\n');
    expect((await box.exec(['systemctl', 'is-enabled', UNIT])).stdout.trim()).toBe('disabled');
    expect((await box.exec(['systemctl', 'is-active', UNIT])).stdout.trim()).toBe('inactive');
  });

  it('starts on the demo datacenter: active only once READY=1 came, JSON lines in the journal', async () => {
    goodPolicy = demoPolicy(await box.run(['cat', `${DEMO}/demo.yaml`]));
    await box.writeFile(POLICY, goodPolicy, '0644');
    // What an operator provides for LoadCredential= (the demo reads neither): root only.
    await box.writeFile(`${CREDENTIALS}/ssh-key`, 'not a key: the demo uses no SSH\n', '0600');
    await box.writeFile(`${CREDENTIALS}/bmc-password`, 'not a password\n', '0600');
    await box.run(['mkdir', '-p', `/etc/systemd/system/${UNIT}.d`]);
    await box.writeFile(`/etc/systemd/system/${UNIT}.d/test.conf`, DROP_IN, '0644');
    await box.run(['systemctl', 'daemon-reload']);

    const started = Date.now();
    await box.run(['systemctl', 'start', UNIT]);
    const startWallMs = Date.now() - started;
    // Type=notify: `systemctl start` returns, and the unit is active, only after READY=1.
    const shown = await box.show(UNIT, ['ActiveState', 'SubState', 'StatusText', 'WatchdogUSec', 'InactiveExitTimestampMonotonic', 'ExecMainStartTimestampMonotonic', 'ActiveEnterTimestampMonotonic']);
    expect(shown['ActiveState']).toBe('active');
    expect(shown['SubState']).toBe('running');
    expect(shown['WatchdogUSec']).toBe(`${WATCHDOG_SEC}s`);
    // READY=1 came with STATUS="enforce, 12 hosts"; a completed cycle may have replaced it since.
    expect(shown['StatusText']).toMatch(/^(enforce, 12 hosts|last cycle ok: .*)$/);
    const activeAt = Number(shown['ActiveEnterTimestampMonotonic']);
    figure(`start to READY: ${seconds((activeAt - Number(shown['InactiveExitTimestampMonotonic'])) / USEC_PER_MS)} (node started to READY ${seconds((activeAt - Number(shown['ExecMainStartTimestampMonotonic'])) / USEC_PER_MS)}; systemctl start took ${seconds(startWallMs)})`);

    await nextCycle(undefined);
    const pid = await mainPid();
    const lines = await waitFor('a "cycle finished" line in the journal', { timeoutMs: JOURNAL_TIMEOUT_MS }, async () => {
      const all = await daemonLines(pid);
      return all.some((l) => l['message'] === 'cycle finished') ? all : undefined;
    });
    expect(lines.find((l) => l['message'] === 'simulated datacenter')).toMatchObject({ hosts: 12, vms: 48, speedup: DEMO_SPEEDUP });
    expect(lines.find((l) => l['message'] === 'started')).toMatchObject({ level: 'info', controlSocket: CONTROL_SOCKET, mode: 'enforce' });
    expect(lines.find((l) => l['message'] === 'operator socket from systemd')).toBeDefined();
    // The installed CLI is `consolidator` on PATH, not `npx consolidator` as in a source checkout.
    expect(lines.find((l) => String(l['message']).startsWith('operator commands:'))?.['message']).toBe(`operator commands: consolidator status (socket ${CONTROL_SOCKET})`);
    for (const line of lines) expect(line).toHaveProperty('timestamp');
    // The daemon logged "started" before systemd saw READY=1.
    const startedEntry = await journalEntry('the daemon\'s "started" line', (e) => e.pid === pid && e.message.includes('"message":"started"'));
    expect(startedEntry.monotonicUsec).toBeLessThanOrEqual(activeAt);
  });

  it('lets members of group consolidator use the operator socket, and refuses others', async () => {
    expect(await box.run(['stat', '--format=%U %G %a', CONTROL_SOCKET])).toBe(`root ${OPERATOR_GROUP} 660\n`);
    await box.run(['useradd', '--groups', OPERATOR_GROUP, 'alice']);
    await box.run(['useradd', 'bob']);
    const alice = await box.exec(['runuser', '-u', 'alice', '--', 'consolidator', 'status']);
    expect(alice.stderr).toBe('');
    expect(alice.code).toBe(0);
    expect(alice.stdout).toMatch(/^consolidator \S+, mode enforce, policy \/etc\/consolidator\/consolidator\.yaml\nhealth: ok\n/);
    const bob = await box.exec(['runuser', '-u', 'bob', '--', 'consolidator', 'status']);
    expect(bob.code).toBe(EXIT_NOPERM);
    expect(bob.stderr).toContain(`permission denied on ${CONTROL_SOCKET}: add yourself to group ${OPERATOR_GROUP}`);
    expect(bob.stdout).toBe('');
  });

  it('keeps running on the old policy when reloaded with a broken one', async () => {
    const pid = await mainPid();
    await box.writeFile(POLICY, `${goodPolicy}\nthresholds: [\n`, '0644');
    const reload = await box.exec(['systemctl', 'reload', UNIT]);
    expect(reload.code).toBe(0);
    const rejected = await journalEntry('the daemon to reject the broken policy', (e) => e.pid === pid && e.message.includes('policy rejected on reload'));
    expect(JSON.parse(rejected.message)).toMatchObject({ level: 'error', issue: expect.stringContaining(POLICY) as unknown });
    expect((await box.show(UNIT, ['ActiveState', 'MainPID']))).toMatchObject({ ActiveState: 'active', MainPID: String(pid) });
    // Still working: cycles go on.
    const cycle = await nextCycle(await lastCycleId());
    await nextCycle(cycle);

    // Back to the good policy, which a reload accepts.
    await box.writeFile(POLICY, goodPolicy, '0644');
    await box.run(['systemctl', 'reload', UNIT]);
    await journalEntry('the daemon to reload the good policy', (e) => e.pid === pid && e.message.includes('"message":"policy reloaded"'));
    expect(await mainPid()).toBe(pid);
  });

  it('is killed by the watchdog when it hangs (SIGSTOP), and restarted', async () => {
    const before = await box.show(UNIT, ['MainPID', 'NRestarts']);
    const pid = Number(before['MainPID']);
    await box.run(['systemctl', 'kill', '--kill-whom=main', '--signal=SIGSTOP', UNIT]);
    const restarted = await waitFor('systemd to restart the hung daemon', { timeoutMs: RESTART_TIMEOUT_MS, intervalMs: 250 }, async () => {
      const now = await box.show(UNIT, ['MainPID', 'NRestarts', 'ActiveState', 'ActiveEnterTimestampMonotonic']);
      return now['ActiveState'] === 'active' && Number(now['NRestarts']) > Number(before['NRestarts']) && now['MainPID'] !== String(pid) ? now : undefined;
    });
    expect(Number(restarted['NRestarts'])).toBe(Number(before['NRestarts']) + 1);
    const stopped = await journalEntry('systemd to log the SIGSTOP', (e) => e.identifier === 'systemd' && e.message.includes(`Sent signal SIGSTOP to main process ${pid}`));
    const timeout = await journalEntry('systemd to log the watchdog timeout', (e) => e.identifier === 'systemd' && e.message.includes('Watchdog timeout') && e.monotonicUsec > stopped.monotonicUsec);
    const exited = await journalEntry('the hung process to exit', (e) => e.identifier === 'systemd' && e.message.includes('Main process exited') && e.monotonicUsec > timeout.monotonicUsec);
    expect(exited.message).toMatch(/status=6\/ABRT/);
    await journalEntry("systemd to log the result 'watchdog'", (e) => e.message.includes("Failed with result 'watchdog'") && e.monotonicUsec >= exited.monotonicUsec);
    const killMs = (timeout.monotonicUsec - stopped.monotonicUsec) / USEC_PER_MS;
    const abortMs = (exited.monotonicUsec - timeout.monotonicUsec) / USEC_PER_MS;
    const activeAgainMs = (Number(restarted['ActiveEnterTimestampMonotonic']) - stopped.monotonicUsec) / USEC_PER_MS;
    figure(`watchdog: SIGSTOP to timeout ${seconds(killMs)} (WatchdogSec=${WATCHDOG_SEC}s), SIGABRT to exit ${seconds(abortMs)}, SIGSTOP to active again ${seconds(activeAgainMs)} (RestartSec=${RESTART_SEC}s)`);
    expect(killMs).toBeLessThanOrEqual(WATCHDOG_SEC * 1000 + WATCHDOG_KILL_MARGIN_MS);
    expect(abortMs).toBeLessThanOrEqual(ABORT_TO_EXIT_MAX_MS);
    expect((await box.exec(['kill', '-0', String(pid)])).code).not.toBe(0);
    // The new daemon works.
    await nextCycle(undefined);
  });

  it(`has an exposure of at most ${MAX_EXPOSURE} in systemd-analyze security, on the running service`, async () => {
    const out = await box.run(['systemd-analyze', 'security', '--no-pager', UNIT]);
    const exposure = /Overall exposure level for consolidator\.service: (\d+\.\d+)/.exec(out)?.[1];
    expect(exposure, out).toBeDefined();
    figure(`systemd-analyze security: ${exposure} (at most ${MAX_EXPOSURE})`);
    expect(Number(exposure)).toBeLessThanOrEqual(MAX_EXPOSURE);
  });

  it('stops well within TimeoutStopSec, exiting 0', async () => {
    const pid = await mainPid();
    const started = Date.now();
    await box.run(['systemctl', 'stop', UNIT]);
    const wallMs = Date.now() - started;
    const shown = await box.show(UNIT, ['ActiveState', 'Result', 'ExecMainCode', 'ExecMainStatus', 'ActiveExitTimestampMonotonic', 'InactiveEnterTimestampMonotonic', 'TimeoutStopUSec']);
    expect(shown).toMatchObject({ ActiveState: 'inactive', Result: 'success', ExecMainStatus: '0', TimeoutStopUSec: '15min' });
    const stopMs = (Number(shown['InactiveEnterTimestampMonotonic']) - Number(shown['ActiveExitTimestampMonotonic'])) / USEC_PER_MS;
    figure(`stop: ${seconds(stopMs)} (systemctl stop took ${seconds(wallMs)}; TimeoutStopSec=15min)`);
    expect(wallMs).toBeLessThan(STOP_MAX_MS);
    const lines = await waitFor('the daemon\'s "stopped" line', { timeoutMs: JOURNAL_TIMEOUT_MS }, async () => {
      const all = await daemonLines(pid);
      return all.some((l) => l['message'] === 'stopped') ? all : undefined;
    });
    expect(lines.length).toBeGreaterThan(0);
  });

  it('restarts a running daemon on an upgrade (a reinstall here), and stops it and its socket on removal', async () => {
    await box.run(['systemctl', 'start', UNIT]);
    const before = await mainPid();
    await box.run(['apt-get', 'install', '-y', '--reinstall', `${DEB_DIR_INSIDE}/${basename(debPath)}`], { timeoutSeconds: INSTALL_TIMEOUT_SECONDS });
    const after = await box.show(UNIT, ['ActiveState', 'MainPID']);
    expect(after['ActiveState']).toBe('active');
    expect(after['MainPID']).not.toBe(String(before));

    await box.run(['apt-get', 'remove', '-y', 'consolidator'], { timeoutSeconds: INSTALL_TIMEOUT_SECONDS });
    for (const unit of [UNIT, 'consolidator.socket']) expect((await box.exec(['systemctl', 'is-active', unit])).stdout.trim(), unit).toBe('inactive');
    expect((await box.exec(['test', '-e', CONTROL_SOCKET])).code).not.toBe(0);
    // Removal keeps what an operator made (policy, credentials); purge takes the credentials too.
    expect((await box.exec(['test', '-e', `${CREDENTIALS}/ssh-key`])).code).toBe(0);
    await box.run(['apt-get', 'purge', '-y', 'consolidator'], { timeoutSeconds: INSTALL_TIMEOUT_SECONDS });
    expect((await box.exec(['test', '-e', CREDENTIALS])).code).not.toBe(0);
  });
});
