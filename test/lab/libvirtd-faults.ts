import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab } from './lab.js';
import { waitFor } from '../helpers/wait-for.js';
import { runLocal } from './lab-shell.js';

/**
 * Faults of a lab host's libvirtd at the worst moment: stopped between two virsh calls of one remote
 * command (as when libvirtd restarts, or a socket-activated daemon times out, between `virsh list` and
 * the next virsh), then started again.
 */

const LIBVIRTD_WAIT_MS = 30_000;
const POLL_MS = 50;
/** libvirtd processes started here (the host's init started the first one), by host folder. */
const restarted = new Map<string, ChildProcess>();

/**
 * Stops host n's libvirtd just before the `call`-th virsh call made over SSH from now on (1 = the
 * next one). The guests keep running: stopping libvirtd does not stop QEMU.
 */
export async function stopLibvirtdAtVirshCall(lab: Lab, n: number, call: number): Promise<void> {
  const d = lab.host(n).dir;
  await hookVirshCall(lab, n, call, [
    `p=$(cat '${d}/libvirtd.pid' 2>/dev/null)`,
    'if [ -n "$p" ]; then',
    '  kill "$p" 2>/dev/null',
    // Until it is gone or a zombie: its socket is closed either way.
    '  while [ -e "/proc/$p" ] && ! grep -q "^State:.*Z" "/proc/$p/status" 2>/dev/null; do sleep 0.05; done',
    'fi',
  ].join('\n'));
}

/**
 * Runs `shell` on host n just before the `call`-th virsh call made over SSH from now on (1 = the
 * next one), once. virsh on the host is wrapped (a bind mount over /usr/bin/virsh in the host's own
 * mount namespace); calls the lab makes itself (nsenter, no SSH_CONNECTION) pass straight through.
 */
export async function hookVirshCall(lab: Lab, n: number, call: number, shell: string): Promise<void> {
  const d = lab.host(n).dir;
  const real = join(d, 'virsh.real');
  const wrapper = join(d, 'virsh-wrapper');
  await writeFile(join(d, 'virsh-calls'), '0\n');
  await writeFile(
    wrapper,
    [
      '#!/bin/sh',
      '# lab fault: something happens just before one virsh call made over SSH',
      'if [ -n "${SSH_CONNECTION:-}" ]; then',
      `  c=$(( $(cat '${d}/virsh-calls') + 1 )); echo "$c" > '${d}/virsh-calls'`,
      `  if [ "$c" -eq ${call} ]; then`,
      shell.replace(/^/gm, '    '),
      '  fi',
      'fi',
      `exec '${real}' "$@"`,
      '',
    ].join('\n'),
  );
  await chmod(wrapper, 0o755);
  const installed = await lab.exec(n, ['sh', '-c', `grep -q ' /usr/bin/virsh ' /proc/self/mountinfo && echo yes || true`]);
  if (installed.trim() !== 'yes') {
    await lab.exec(n, ['sh', '-c', `: > '${real}' && mount --bind /usr/bin/virsh '${real}' && mount --bind '${wrapper}' /usr/bin/virsh`]);
  }
}

/** Removes the virsh wrapper of host n (if any). */
export async function unwrapVirsh(lab: Lab, n: number): Promise<void> {
  const real = join(lab.host(n).dir, 'virsh.real');
  await lab.exec(n, ['sh', '-c', `if grep -q ' /usr/bin/virsh ' /proc/self/mountinfo; then umount /usr/bin/virsh && umount '${real}'; fi`]);
}

/** Whether host n's libvirtd process is alive. */
export async function libvirtdRunning(lab: Lab, n: number): Promise<boolean> {
  const pid = (await readFile(join(lab.host(n).dir, 'libvirtd.pid'), 'utf8').catch(() => '')).trim();
  if (pid === '') return false;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return status !== '' && !/^State:\s+Z/m.test(status);
}

/**
 * Starts host n's libvirtd again (no-op while it runs) and waits until it answers. It runs in the
 * host's namespaces under tini, a child of this process, so whatever it orphans is reaped; powering
 * the host off or tearing the lab down kills it with the rest of the host.
 */
export async function startLibvirtd(lab: Lab, n: number): Promise<void> {
  const h = lab.host(n);
  if (h.initPid === undefined) throw new Error(`lab host h${n} is powered off`);
  if (!(await libvirtdRunning(lab, n))) {
    const child = spawn(
      'tini',
      ['-s', '--', 'nsenter', '-t', String(h.initPid), '-m', '-u', '-n', 'libvirtd', '-f', '/etc/libvirt/libvirtd.conf', '-p', join(h.dir, 'libvirtd.pid')],
      { stdio: 'ignore' },
    );
    restarted.set(h.dir, child);
    child.once('exit', () => {
      if (restarted.get(h.dir) === child) restarted.delete(h.dir);
    });
  }
  await waitFor(`h${n} libvirtd`, { timeoutMs: LIBVIRTD_WAIT_MS, intervalMs: POLL_MS }, async () => {
    const v = await runLocal('nsenter', ['-t', String(h.initPid), '-m', '-u', '-n', 'virsh', '-c', 'qemu:///system', '-q', 'version'], { timeoutMs: 10_000 });
    return v.exitCode === 0 ? true : undefined;
  });
}

/**
 * A QEMU process on host n that libvirt does not know (started by hand in the host's namespaces, as
 * a leftover of a crashed libvirtd would be). A child of this process: kill it with stopStrayQemu.
 */
export async function startStrayQemu(lab: Lab, n: number, guestName: string): Promise<ChildProcess> {
  const h = lab.host(n);
  if (h.initPid === undefined) throw new Error(`lab host h${n} is powered off`);
  const child = spawn(
    'nsenter',
    ['-t', String(h.initPid), '-m', '-u', '-n', 'qemu-system-x86_64', '-name', `guest=${guestName},debug-threads=on`, '-accel', 'tcg', '-m', '16', '-S', '-display', 'none', '-nodefaults', '-no-user-config'],
    { stdio: 'ignore' },
  );
  await waitFor(`stray QEMU ${guestName} on h${n}`, { timeoutMs: LIBVIRTD_WAIT_MS, intervalMs: POLL_MS, onProbeError: 'throw' }, async () => {
    if (child.exitCode !== null) throw new Error(`stray QEMU exited ${child.exitCode}`);
    const cmdline = await readFile(`/proc/${child.pid}/cmdline`, 'utf8').catch(() => '');
    return cmdline.startsWith('qemu-system') ? true : undefined;
  });
  return child;
}

export async function stopStrayQemu(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await exited;
}
