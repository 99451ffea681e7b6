import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, cp, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SshTarget } from '../../src/drivers/exec/ssh2-command-runner.js';
import { pause, waitFor } from '../helpers/wait-for.js';
import { domainXml, type GuestSpec } from './domain-xml.js';
import { dirtyRom, type DirtyRomOptions } from './dirty-rom.js';
import { advanceCounters, type CpuCounters, type HostFigures, initialCounters, procMeminfoText, procStatText } from './fake-proc.js';
import { mustRunLocal, runLocal, runLocalSync } from './lab-shell.js';

/**
 * A lab of fake-but-real hypervisor hosts on this machine (see ../shared/lab/LAB.md for the facts it
 * is built on). Host n is a network namespace plus a private mount and UTS namespace, with its own
 * sshd on :22, its own libvirtd (QEMU, TCG by default), hostname h<n>.lab, an address on the lab's
 * own bridge, and its own /proc/stat and /proc/meminfo. The controller (tests) stays in the root
 * namespace and reaches hosts over SSH with the lab's key and known_hosts.
 *
 * Every lab has a unique id, folder, bridge and subnet, so labs started by different processes do
 * not collide; down() removes all of it, and a lab whose owner died is swept by the next start().
 */

export interface LabOptions {
  readonly hosts: number;
  /** Figures per host (1-based index); default 8 CPUs, 32 GiB, 4 GiB used. */
  readonly figures?: (n: number) => HostFigures;
  /** Third octet of 10.250.X.0/24; default: the first free one from a value derived from the pid. */
  readonly subnetOctet?: number;
  /** 'qemu' (TCG, the default: works everywhere) or 'kvm'. */
  readonly accel?: 'qemu' | 'kvm';
  /**
   * What host n shows in /sys/class/dmi/id/product_uuid (as written: case is kept); undefined: no such
   * file. Default: labProductUuid(n).
   */
  readonly productUuid?: (n: number) => string | undefined;
}

/** The default DMI system UUID of lab host n (distinct from its libvirt host_uuid). */
export function labProductUuid(n: number): string {
  return `d31d0000-0000-4000-8000-${String(n).padStart(12, '0')}`;
}

export interface LabHost {
  readonly n: number;
  /** The host's name, as the other hosts resolve it (and as the tests use it as HostId). */
  readonly name: string;
  readonly address: string;
  readonly dir: string;
  figures: HostFigures;
  counters: CpuCounters;
  /** The init process of the host (tini -> ip netns exec -> unshare -> host init); undefined when off. */
  process?: ChildProcess;
  /** Settles when that process has exited (and been reaped). */
  exited?: Promise<void>;
  initPid?: number;
}

const LAB_PREFIX = 'consolidator-lab-';
const SUBNET_BASE = '10.250';
const CONTROLLER_HOST_OCTET = 1;
const HOST_OCTET_OFFSET = 10;
const DEFAULT_FIGURES: HostFigures = { cpus: 8, memoryMiB: 32 * 1024, memoryUsedMiB: 4 * 1024 };
const HOST_BOOT_TIMEOUT_MS = 90_000;
const POLL_MS = 100;
const KILL_ROUNDS = 50;
/** libvirt probes QEMU for ~8 s on a cold start; the result is shared by all labs on the machine. */
const QEMU_CAPS_CACHE = join(tmpdir(), 'consolidator-lab-qemu-caps');

const liveLabs = new Set<Lab>();
/** Labs started by this process so far (part of the id) and the subnets they hold. */
let labCounter = 0;
const reservedOctets = new Set<number>();
let exitHookInstalled = false;

export class Lab {
  readonly hosts: LabHost[] = [];
  readonly sshDir: string;
  readonly sharedDir: string;
  private readonly bridge: string;

  private constructor(
    readonly id: string,
    readonly dir: string,
    readonly subnetOctet: number,
    private readonly options: LabOptions,
  ) {
    this.sshDir = join(dir, 'ssh');
    this.sharedDir = join(dir, 'shared');
    this.bridge = `${id}br`;
  }

  static async start(options: LabOptions): Promise<Lab> {
    if (process.getuid?.() !== 0) throw new Error('the lab needs root (network namespaces, libvirtd)');
    await sweepStaleLabs();
    labCounter++;
    const id = `cl${process.pid.toString(36)}${labCounter.toString(36)}`;
    const dir = join(tmpdir(), `${LAB_PREFIX}${id}`);
    const octet = options.subnetOctet ?? (await freeSubnetOctet());
    reservedOctets.add(octet);
    const lab = new Lab(id, dir, octet, options);
    liveLabs.add(lab);
    installExitHook();
    try {
      await lab.prepare();
      for (let n = 1; n <= options.hosts; n++) await lab.bootHost(lab.addHost(n));
    } catch (e) {
      await lab.down();
      throw e;
    }
    return lab;
  }

  /** A handle on a lab some dead process left behind, enough to tear it down. */
  static forTeardown(id: string, dir: string, hostNumbers: readonly number[]): Lab {
    const lab = new Lab(id, dir, 0, { hosts: hostNumbers.length });
    for (const n of hostNumbers) {
      lab.hosts.push({ n, name: `h${n}.lab`, address: '', dir: join(dir, 'hosts', `h${n}`), figures: DEFAULT_FIGURES, counters: initialCounters(1) });
    }
    return lab;
  }

  get controllerAddress(): string {
    return `${SUBNET_BASE}.${this.subnetOctet}.${CONTROLLER_HOST_OCTET}`;
  }

  host(n: number): LabHost {
    const h = this.hosts[n - 1];
    if (!h) throw new Error(`lab ${this.id} has no host ${n}`);
    return h;
  }

  byName(name: string): LabHost {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`lab ${this.id} has no host ${name}`);
    return h;
  }

  /** SSH settings for the controller, per host name: what a policy's resolved hosts would hold. */
  sshTargets(knownHostsFile = this.knownHostsFile): Map<string, SshTarget> {
    return new Map(
      this.hosts.map((h) => [h.name, { address: h.address, port: 22, user: 'root', keyFile: this.keyFile, knownHostsFile } satisfies SshTarget]),
    );
  }

  get keyFile(): string {
    return join(this.sshDir, 'id_ed25519');
  }

  get knownHostsFile(): string {
    return join(this.sshDir, 'known_hosts');
  }

  /** known_hosts with hashed names (`ssh-keygen -H`), for tests of that form. */
  get hashedKnownHostsFile(): string {
    return join(this.sshDir, 'known_hosts.hashed');
  }

  /** Runs virsh on a host through the lab's own handle (nsenter), not through SSH. */
  async virsh(n: number, args: readonly string[]): Promise<string> {
    return mustRunLocal('nsenter', ['-t', String(this.initPidOf(n)), '-m', '-u', '-n', 'virsh', '-c', 'qemu:///system', ...args]);
  }

  /** Like virsh(), but returns the result whatever the exit status. */
  async tryVirsh(n: number, args: readonly string[]) {
    return runLocal('nsenter', ['-t', String(this.initPidOf(n)), '-m', '-u', '-n', 'virsh', '-c', 'qemu:///system', ...args]);
  }

  /** Runs any command inside host n's namespaces. */
  async exec(n: number, argv: readonly string[]): Promise<string> {
    return mustRunLocal('nsenter', ['-t', String(this.initPidOf(n)), '-m', '-u', '-n', ...argv]);
  }

  /** Defines and starts a guest on host n; `paused` suspends it right away. */
  async startGuest(n: number, spec: GuestSpec & { readonly paused?: boolean }): Promise<void> {
    const file = join(this.sharedDir, `${spec.name}.xml`);
    await writeFile(file, domainXml(spec, this.options.accel ?? 'qemu'));
    await this.virsh(n, ['define', file]);
    await this.virsh(n, spec.paused ? ['start', '--paused', spec.name] : ['start', spec.name]);
  }

  /** Writes a dirtying option ROM into the shared folder and returns its path (for GuestSpec.optionRom). */
  async writeDirtyRom(name: string, options: DirtyRomOptions): Promise<string> {
    const file = join(this.sharedDir, `${name}.rom`);
    await writeFile(file, dirtyRom(options));
    return file;
  }

  /** Writes `mib` MiB of random bytes into the shared folder and returns its path (for GuestSpec.fillFile). */
  async writeFillFile(name: string, mib: number): Promise<string> {
    const file = join(this.sharedDir, `${name}.fill`);
    await writeFile(file, randomBytes(mib * 1024 * 1024));
    return file;
  }

  /** Destroys and undefines a guest wherever it is (no error when absent). */
  async removeGuest(name: string): Promise<void> {
    for (const h of this.hosts) {
      if (h.initPid === undefined) continue;
      await this.tryVirsh(h.n, ['destroy', name]);
      await this.tryVirsh(h.n, ['undefine', name]);
    }
  }

  /** The domains host n knows, with their state (`virsh list --all`). */
  async domains(n: number): Promise<Map<string, string>> {
    const out = await this.virsh(n, ['list', '--all']);
    const map = new Map<string, string>();
    for (const line of out.split('\n').slice(2)) {
      const m = /^\s*\S+\s+(\S+)\s+(.+?)\s*$/.exec(line);
      if (m?.[1] && m[2]) map.set(m[1], m[2]);
    }
    return map;
  }

  /** Sets a host's capacity and memory use; CPU counters keep running from where they were. */
  async setFigures(n: number, figures: HostFigures): Promise<void> {
    const h = this.host(n);
    h.figures = figures;
    await this.writeProc(h);
  }

  /** Advances host n's /proc/stat as if `busyCores` had been busy for `seconds`. */
  async advanceCpu(n: number, busyCores: number, seconds: number): Promise<void> {
    const h = this.host(n);
    h.counters = advanceCounters(h.counters, h.figures.cpus, busyCores, seconds);
    await this.writeProc(h);
  }

  /** "Power loss": every process of the host is SIGKILLed (guests, libvirtd, sshd, sessions), link down. */
  async powerOff(n: number): Promise<void> {
    const h = this.host(n);
    await killNamespace(this.netns(n), h.initPid);
    await h.exited;
    delete h.process;
    delete h.exited;
    delete h.initPid;
    // /run does not survive a power cycle: the next libvirtd must not look for the dead guests.
    await rm(join(h.dir, 'run-libvirt'), { recursive: true, force: true });
    await mkdir(join(h.dir, 'run-libvirt'));
    // A powered-off box does not answer ARP: clients time out instead of getting "refused".
    await runLocal('ip', ['-n', this.netns(n), 'link', 'set', 'eth0', 'down']);
  }

  async powerOn(n: number): Promise<void> {
    await this.bootHost(this.host(n));
  }

  /** Freezes every process of host n (SIGSTOP): it keeps its TCP connections but answers nothing. */
  async freeze(n: number): Promise<void> {
    await signalNamespace(this.netns(n), 'STOP');
  }

  async thaw(n: number): Promise<void> {
    await signalNamespace(this.netns(n), 'CONT');
  }

  /** Stops every host and removes namespaces, links, folders. Safe to call twice. */
  async down(): Promise<void> {
    for (const h of this.hosts) {
      await killNamespace(this.netns(h.n), h.initPid);
      await h.exited;
      delete h.process;
      delete h.exited;
      delete h.initPid;
      await runLocal('ip', ['link', 'del', this.veth(h.n)]);
      await runLocal('ip', ['netns', 'del', this.netns(h.n)]);
      await rm(`/etc/netns/${this.netns(h.n)}`, { recursive: true, force: true });
    }
    await runLocal('ip', ['link', 'del', this.bridge]);
    await rm(this.dir, { recursive: true, force: true });
    liveLabs.delete(this);
    reservedOctets.delete(this.subnetOctet);
  }

  /** Synchronous teardown for process exit: kills and deletes without waiting for anything else. */
  downSync(): void {
    for (const h of this.hosts) {
      const ns = this.netns(h.n);
      // As in killNamespace: the init last, so that tini reaps the orphans of the others.
      const initPid = h.initPid ?? Number(runLocalSync('cat', [join(h.dir, 'init.pid')]).trim());
      const keep = new Set([String(initPid), runLocalSync('ps', ['-o', 'ppid=', '-p', String(initPid)]).trim()]);
      for (const last of [false, true]) {
        for (let round = 0; round < KILL_ROUNDS; round++) {
          const pids = runLocalSync('ip', ['netns', 'pids', ns]).split('\n').filter(Boolean);
          const targets = last ? pids : pids.filter((p) => !keep.has(p));
          if (targets.length === 0) break;
          runLocalSync('kill', ['-9', ...targets]);
          runLocalSync('sleep', ['0.05']);
        }
      }
      runLocalSync('ip', ['link', 'del', this.veth(h.n)]);
      runLocalSync('ip', ['netns', 'del', ns]);
      runLocalSync('rm', ['-rf', `/etc/netns/${ns}`]);
    }
    runLocalSync('ip', ['link', 'del', this.bridge]);
    runLocalSync('rm', ['-rf', this.dir]);
    liveLabs.delete(this);
  }

  netns(n: number): string {
    return `${this.id}h${n}`;
  }

  private veth(n: number): string {
    return `${this.id}v${n}`;
  }

  private initPidOf(n: number): number {
    const pid = this.host(n).initPid;
    if (pid === undefined) throw new Error(`lab host h${n} is powered off`);
    return pid;
  }

  private addHost(n: number): LabHost {
    const figures = this.options.figures?.(n) ?? DEFAULT_FIGURES;
    const host: LabHost = {
      n,
      name: `h${n}.lab`,
      address: `${SUBNET_BASE}.${this.subnetOctet}.${HOST_OCTET_OFFSET + n}`,
      dir: join(this.dir, 'hosts', `h${n}`),
      figures,
      counters: initialCounters(figures.cpus),
    };
    this.hosts.push(host);
    return host;
  }

  private async prepare(): Promise<void> {
    await mkdir(this.sshDir, { recursive: true });
    await mkdir(this.sharedDir, { recursive: true });
    await writeFile(join(this.dir, 'owner.pid'), String(process.pid));
    await mustRunLocal('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `lab-${this.id}`, '-f', this.keyFile]);
    await cp(`${this.keyFile}.pub`, join(this.sshDir, 'authorized_keys'));
    await mustRunLocal('ip', ['link', 'add', this.bridge, 'type', 'bridge']);
    await mustRunLocal('ip', ['addr', 'add', `${this.controllerAddress}/24`, 'dev', this.bridge]);
    await mustRunLocal('ip', ['link', 'set', this.bridge, 'up']);
    await mkdir('/run/sshd', { recursive: true });
    await ensureLibvirtQemuUser();
    for (const p of ['/run/libvirt', '/var/lib/libvirt', '/var/cache/libvirt', '/var/log/libvirt']) await mkdir(p, { recursive: true });
  }

  private async makeHost(h: LabHost): Promise<void> {
    const d = h.dir;
    for (const sub of ['etc-libvirt/qemu', 'run-libvirt', 'var-lib-libvirt', 'cache-libvirt', 'log-libvirt']) await mkdir(join(d, sub), { recursive: true });
    const uuid = `00000000-0000-4000-8000-${String(h.n).padStart(12, '0')}`;
    await writeFile(
      join(d, 'etc-libvirt', 'libvirtd.conf'),
      [
        `host_uuid = "${uuid}"`,
        'unix_sock_group = "root"',
        'unix_sock_ro_perms = "0777"',
        'unix_sock_rw_perms = "0770"',
        'auth_unix_ro = "none"',
        'auth_unix_rw = "none"',
        'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"',
        '',
      ].join('\n'),
    );
    await writeFile(
      join(d, 'etc-libvirt', 'qemu.conf'),
      [
        'user = "root"',
        'group = "root"',
        'dynamic_ownership = 0',
        'remember_owner = 0',
        'security_driver = "none"',
        'cgroup_controllers = [ ]',
        'namespaces = [ ]',
        'stdio_handler = "file"',
        'migration_address = "0.0.0.0"',
        `migration_host = "${h.address}"`,
        '',
      ].join('\n'),
    );
    const hostKey = join(d, 'ssh_host_ed25519_key');
    if (!existsSync(hostKey)) await mustRunLocal('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', h.name, '-f', hostKey]);
    await writeFile(
      join(d, 'sshd_config'),
      [
        'Port 22',
        'ListenAddress 0.0.0.0',
        `HostKey ${hostKey}`,
        `PidFile ${join(d, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(this.sshDir, 'authorized_keys')}`,
        'PermitRootLogin prohibit-password',
        'PubkeyAuthentication yes',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'StrictModes no',
        'UseDNS no',
        'MaxStartups 100:30:200',
        'MaxSessions 50',
        '',
      ].join('\n'),
    );
    // The client config inside the host, used by virsh's qemu+ssh:// to the other lab hosts.
    await writeFile(
      join(d, 'ssh_config'),
      [
        'Host *',
        '  User root',
        `  IdentityFile ${this.keyFile}`,
        '  StrictHostKeyChecking no',
        '  UserKnownHostsFile /dev/null',
        '  LogLevel ERROR',
        '  BatchMode yes',
        '  ConnectTimeout 5',
        '  ServerAliveInterval 2',
        '  ServerAliveCountMax 3',
        '',
      ].join('\n'),
    );
    await writeFile(join(d, 'bashrc'), '');
    await this.writeProc(h);
    const productUuid = this.options.productUuid ? this.options.productUuid(h.n) : labProductUuid(h.n);
    if (productUuid === undefined) await rm(join(d, 'product_uuid'), { force: true });
    else await writeFile(join(d, 'product_uuid'), `${productUuid}\n`, { mode: 0o400 });
    await writeFile(join(d, 'init.sh'), HOST_INIT);
    await chmod(join(d, 'init.sh'), 0o755);
    // Cached QEMU capabilities: libvirt checks them against the binary and re-probes if stale.
    if (existsSync(QEMU_CAPS_CACHE) && !existsSync(join(d, 'cache-libvirt', 'qemu'))) {
      await cp(QEMU_CAPS_CACHE, join(d, 'cache-libvirt', 'qemu'), { recursive: true });
    }
    const ns = this.netns(h.n);
    if (!(await runLocal('ip', ['netns', 'list'])).stdout.split('\n').some((l) => l.split(' ')[0] === ns)) {
      await mustRunLocal('ip', ['netns', 'add', ns]);
      await mustRunLocal('ip', ['link', 'add', this.veth(h.n), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await mustRunLocal('ip', ['link', 'set', this.veth(h.n), 'master', this.bridge, 'up']);
      await mustRunLocal('ip', ['-n', ns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
      await mustRunLocal('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    await mustRunLocal('ip', ['-n', ns, 'link', 'set', 'eth0', 'up']);
    await mkdir(`/etc/netns/${ns}`, { recursive: true });
    // No DNS leaves the lab: names come from this hosts file (ip netns exec bind-mounts it).
    await writeFile(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\n');
    await writeFile(`/etc/netns/${ns}/hosts`, this.hostsFile());
  }

  private hostsFile(): string {
    const lines = ['127.0.0.1 localhost', `${this.controllerAddress} ctl.lab ctl`];
    for (const h of this.hosts) lines.push(`${h.address} ${h.name} h${h.n}`);
    return `${lines.join('\n')}\n`;
  }

  private async bootHost(h: LabHost): Promise<void> {
    await this.makeHost(h);
    // Every host's hosts file lists every host: rewrite them all when one is added.
    for (const other of this.hosts) {
      if (existsSync(`/etc/netns/${this.netns(other.n)}`)) await writeFile(`/etc/netns/${this.netns(other.n)}/hosts`, this.hostsFile());
    }
    await rm(join(h.dir, 'init.pid'), { force: true });
    // tini -s reaps what the host's daemons orphan (QEMU double-forks); PID 1 here does not.
    const child = spawn(
      'tini',
      ['-s', '-g', '--', 'ip', 'netns', 'exec', this.netns(h.n), 'unshare', '--mount', '--uts', '--propagation', 'private', '--fork', '--', join(h.dir, 'init.sh'), h.name, h.dir],
      { stdio: ['ignore', 'ignore', 'ignore'] },
    );
    h.process = child;
    h.exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const pid = await waitFor(`h${h.n} init`, { timeoutMs: HOST_BOOT_TIMEOUT_MS, intervalMs: POLL_MS }, async () => {
      if (child.exitCode !== null) throw new Error(`host init exited ${child.exitCode}; see ${h.dir}/init.out`);
      const text = await readFile(join(h.dir, 'init.pid'), 'utf8').catch(() => '');
      return text.trim() ? Number(text.trim()) : undefined;
    });
    h.initPid = pid;
    await waitFor(`h${h.n} libvirtd and sshd`, { timeoutMs: HOST_BOOT_TIMEOUT_MS, intervalMs: POLL_MS }, async () => {
      if (child.exitCode !== null) throw new Error(`host init exited; see ${h.dir}/init.out`);
      const v = await runLocal('nsenter', ['-t', String(pid), '-m', '-u', '-n', 'virsh', '-c', 'qemu:///system', '-q', 'version'], { timeoutMs: 10_000 });
      if (v.exitCode !== 0) return undefined;
      return (await tcpOpen(h.address, 22)) ? true : undefined;
    });
    await this.shareQemuCaps(h);
    await this.writeKnownHosts();
  }

  // The shared cache only saves the next host's QEMU probe, so a copy that loses a race is dropped, never fatal:
  // two labs in one process boot hosts at once, and libvirtd may replace a capabilities file while it is copied.
  private async shareQemuCaps(h: LabHost): Promise<void> {
    if (existsSync(QEMU_CAPS_CACHE)) return;
    const staging = `${QEMU_CAPS_CACHE}.${process.pid}.${randomBytes(4).toString('hex')}`;
    try {
      await cp(join(h.dir, 'cache-libvirt', 'qemu'), staging, { recursive: true });
      await rename(staging, QEMU_CAPS_CACHE);
    } catch {
      await rm(staging, { recursive: true, force: true });
    }
  }

  private async writeKnownHosts(): Promise<void> {
    const lines: string[] = [];
    for (const h of this.hosts) {
      const pub = (await readFile(join(h.dir, 'ssh_host_ed25519_key.pub'), 'utf8')).trim().split(/\s+/);
      lines.push(`${h.address} ${pub[0]} ${pub[1]}`);
    }
    await writeFile(this.knownHostsFile, `${lines.join('\n')}\n`);
    await writeFile(this.hashedKnownHostsFile, `${lines.join('\n')}\n`);
    await mustRunLocal('ssh-keygen', ['-q', '-H', '-f', this.hashedKnownHostsFile]);
    await rm(`${this.hashedKnownHostsFile}.old`, { force: true });
  }

  private async writeProc(h: LabHost): Promise<void> {
    await overwriteInPlace(join(h.dir, 'proc-stat'), procStatText(h.figures.cpus, h.counters));
    await overwriteInPlace(join(h.dir, 'proc-meminfo'), procMeminfoText(h.figures));
  }
}

/** Every fake /proc file is this long: new content never leaves a shorter file behind to be read. */
const FAKE_PROC_BYTES = 4096;

/**
 * Rewrites a fake /proc file in place (the bind mount over /proc/stat pins the inode, so no rename),
 * with one write at offset 0 and never a truncation: a reader never sees it empty or half gone, which
 * a truncate-then-write let it do ("cannot parse /proc/meminfo: no MemTotal"). Padded with newlines
 * to a fixed length, which the parsers skip as blank lines.
 */
async function overwriteInPlace(path: string, text: string): Promise<void> {
  if (Buffer.byteLength(text) > FAKE_PROC_BYTES) throw new Error(`${path}: ${Buffer.byteLength(text)} bytes, more than ${FAKE_PROC_BYTES}`);
  const buffer = Buffer.alloc(FAKE_PROC_BYTES, '\n');
  buffer.write(text, 0, 'utf8');
  const handle = await open(path, existsSync(path) ? 'r+' : 'w');
  try {
    await handle.write(buffer, 0, buffer.length, 0);
  } finally {
    await handle.close();
  }
}

/** The host's init: hostname, bind mounts, sshd and libvirtd as its children; SIGTERM stops them. */
const HOST_INIT = `#!/bin/bash
set -u
NAME=$1 D=$2
exec >"$D/init.out" 2>&1 </dev/null
hostname "$NAME"
for m in etc-libvirt:/etc/libvirt run-libvirt:/run/libvirt var-lib-libvirt:/var/lib/libvirt \\
         cache-libvirt:/var/cache/libvirt log-libvirt:/var/log/libvirt; do
  mount --bind "$D/\${m%%:*}" "\${m#*:}"
done
mount --bind "$D/ssh_config" /etc/ssh/ssh_config
[ -f /root/.bashrc ] && mount --bind "$D/bashrc" /root/.bashrc
mount --bind "$D/proc-meminfo" /proc/meminfo
mount --bind "$D/proc-stat" /proc/stat
# A /sys/class of the host's own: the machine's entries (symlinks to a bind of the real one), and
# dmi/id/product_uuid from the host folder when the lab gives the host one.
mkdir -p "$D/sys-class"
mount --bind /sys/class "$D/sys-class"
mount -t tmpfs -o mode=755 lab-sys-class /sys/class
for e in "$D"/sys-class/*; do [ "\${e##*/}" = dmi ] || ln -s "$e" "/sys/class/\${e##*/}"; done
if [ -f "$D/product_uuid" ]; then
  mkdir -p /sys/class/dmi/id
  : > /sys/class/dmi/id/product_uuid
  mount --bind "$D/product_uuid" /sys/class/dmi/id/product_uuid
fi
/usr/sbin/sshd -D -f "$D/sshd_config" -E "$D/sshd.log" &
SSHD=$!
libvirtd -f /etc/libvirt/libvirtd.conf -p "$D/libvirtd.pid" >>"$D/libvirtd.out" 2>&1 &
LV=$!
stop() {
  for pf in /run/libvirt/qemu/*.pid; do [ -f "$pf" ] && kill -9 "$(cat "$pf")" 2>/dev/null; done
  kill "$LV" "$SSHD" "$SL" 2>/dev/null
  wait "$LV" "$SSHD" 2>/dev/null
  exit 0
}
trap stop TERM INT
sleep infinity & SL=$!
echo $$ > "$D/init.pid"
wait "$SL"
`;

/**
 * libvirt's QEMU driver resolves its compiled-in user and group at start-up even with user = "root"
 * (scripts/install-test-deps.sh creates them on CI; this covers a machine set up by hand).
 */
async function ensureLibvirtQemuUser(): Promise<void> {
  for (const group of ['kvm', 'libvirt-qemu']) {
    if ((await runLocal('getent', ['group', group])).exitCode !== 0) await mustRunLocal('addgroup', ['--quiet', '--system', group]);
  }
  if ((await runLocal('getent', ['passwd', 'libvirt-qemu'])).exitCode !== 0) {
    await mustRunLocal('adduser', ['--quiet', '--system', '--ingroup', 'kvm', '--disabled-login', '--disabled-password', '--home', '/var/lib/libvirt', '--no-create-home', 'libvirt-qemu']);
  }
}

/**
 * SIGKILLs every process of a host. The host's init (and the `unshare` above it) go last: while they
 * live, tini (the subreaper above them) reaps what the others orphan (QEMU, sshd sessions). Killed
 * all at once, late orphans would land on this machine's PID 1, which never reaps them.
 */
async function killNamespace(ns: string, initPid?: number): Promise<void> {
  const keep = new Set<string>();
  if (initPid !== undefined) {
    keep.add(String(initPid));
    const parent = /^\d+ \(.*\) \S (\d+)/.exec(await readFile(`/proc/${initPid}/stat`, 'utf8').catch(() => ''))?.[1];
    if (parent) keep.add(parent);
  }
  for (const last of [false, true]) {
    const killed = new Set<string>();
    for (let round = 0; ; round++) {
      const pids = (await runLocal('ip', ['netns', 'pids', ns])).stdout.split('\n').filter(Boolean);
      const targets = last ? pids : pids.filter((p) => !keep.has(p));
      if (targets.length === 0) break;
      if (round >= KILL_ROUNDS) throw new Error(`lab: processes in ${ns} survive SIGKILL: ${targets.join(' ')}`);
      for (const p of targets) killed.add(p);
      await runLocal('kill', ['-9', ...targets]);
      await pause(POLL_MS / 2);
    }
    // Dead is not enough: wait until they are reaped (a zombie keeps its /proc entry).
    for (let round = 0; round < KILL_ROUNDS && [...killed].some((p) => existsSync(`/proc/${p}`)); round++) await pause(POLL_MS / 2);
  }
}

async function signalNamespace(ns: string, signal: 'STOP' | 'CONT'): Promise<void> {
  const pids = (await runLocal('ip', ['netns', 'pids', ns])).stdout.split('\n').filter(Boolean);
  if (pids.length > 0) await runLocal('kill', [`-${signal}`, ...pids]);
}

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** 10.250.X.0/24 for the first X (from a pid-derived start) that no interface on this machine uses. */
async function freeSubnetOctet(): Promise<number> {
  const used = (await runLocal('ip', ['-4', '-o', 'addr'])).stdout;
  const first = 100 + (process.pid % 100);
  for (let i = 0; i < 150; i++) {
    const octet = 100 + ((first - 100 + i) % 150);
    if (!used.includes(` ${SUBNET_BASE}.${octet}.`) && !reservedOctets.has(octet)) return octet;
  }
  throw new Error('lab: no free 10.250.X.0/24 subnet');
}

/** Removes labs left behind by processes that died without tearing down. */
export async function sweepStaleLabs(): Promise<void> {
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(LAB_PREFIX)) continue;
    const dir = join(tmpdir(), entry);
    let owner = 0;
    try {
      owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8'));
    } catch {
      // no owner file: a lab that never finished starting; its owner check below treats it as dead
    }
    if (owner > 0 && isAlive(owner)) continue;
    const id = entry.slice(LAB_PREFIX.length);
    const hosts = existsSync(join(dir, 'hosts')) ? readdirSync(join(dir, 'hosts')) : [];
    Lab.forTeardown(id, dir, hosts.map((h) => Number(h.slice(1)))).downSync();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const lab of liveLabs) lab.downSync();
  });
}

