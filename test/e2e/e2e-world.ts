/**
 * An end-to-end world: the project's lab (N hosts, each with sshd + libvirtd/QEMU in its own
 * namespaces, test/lab/lab.ts), one ipmi_sim BMC per host whose power hooks really stop and boot the
 * lab host, a load model that keeps each host's fake /proc/stat and /proc/meminfo moving, the policy
 * file for the real daemon, and the safety invariants, checked against the hosts themselves (their
 * own libvirt through nsenter, and the BMCs' power hooks), never through the daemon.
 */
import { execFile } from 'node:child_process';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PolicyInput } from '../../src/config/schema.js';
import { errorMessage } from '../../src/errors.js';
import { freePort } from '../helpers/free-port.js';
import { waitFor } from '../helpers/wait-for.js';
import { type Bmc, startBmc } from '../lab/bmc.js';
import type { GuestSpec } from '../lab/domain-xml.js';
import { Lab, labProductUuid } from '../lab/lab.js';
import { DaemonProcess, type DaemonLogLine, MAIN_JS, REPO_ROOT } from './daemon-process.js';
import { Timeline } from './timeline.js';

export interface HostLoad {
  /** CPU cores the host keeps busy besides its guests (what the fake /proc/stat shows). */
  cpuCores: number;
  /** Memory the host uses besides its guests, MiB; each resident guest adds its own size. */
  memoryMiB: number;
}

export interface WorldOptions {
  readonly name: string;
  readonly hosts: number;
  readonly cpus: number;
  readonly memoryMiB: number;
  readonly load: (n: number) => HostLoad;
}

/** What a host held when its BMC powered it off, and who asked. */
export interface PowerEvent {
  readonly atMs: number;
  readonly host: string;
  readonly to: 'on' | 'off';
  /** daemon: an IPMI request outside an operator command; operator: during one; test: a fault the test injected. */
  readonly by: 'daemon' | 'operator' | 'test';
  readonly held: readonly string[];
}

const LOAD_TICK_MS = 1_000;
const BMC_PORT = 623;
const SETTLE_TIMEOUT_MS = 90_000;
const SETTLE_POLL_MS = 1_000;
const CLI_TIMEOUT_MS = 180_000;
/** virsh list states that hold a guest (everything but a definition). */
const INACTIVE_STATE = 'shut off';

export class E2eWorld {
  readonly timeline: Timeline;
  readonly bmcs: Bmc[] = [];
  readonly guests = new Map<string, number>();
  readonly powerEvents: PowerEvent[] = [];
  readonly violations: string[] = [];
  readonly load = new Map<number, HostLoad>();
  /** Every daemon started with startDaemon, oldest first: down() stops them and records what they used. */
  readonly daemons: DaemonProcess[] = [];
  /** Hosts the daemon powered off itself (the only ones it may power on). */
  private readonly autoOff = new Set<string>();
  private operatorDepth = 0;
  private loadTimer: NodeJS.Timeout | undefined;
  private ticking = false;
  private lastTickMs = Date.now();
  readonly policyFile: string;
  readonly stateDirectory: string;
  metricsPort = 0;

  private constructor(
    readonly lab: Lab,
    readonly options: WorldOptions,
  ) {
    this.timeline = new Timeline(options.name);
    this.policyFile = join(lab.dir, 'policy.yaml');
    this.stateDirectory = join(lab.dir, 'state');
  }

  /** Starts the lab and the BMCs; tear down with down() in afterAll (also after a failed start). */
  static async start(options: WorldOptions): Promise<E2eWorld> {
    const t0 = Date.now();
    const lab = await Lab.start({ hosts: options.hosts, figures: (n) => ({ cpus: options.cpus, memoryMiB: options.memoryMiB, memoryUsedMiB: options.load(n).memoryMiB }) });
    const world = new E2eWorld(lab, options);
    try {
      for (const h of lab.hosts) world.load.set(h.n, { ...options.load(h.n) });
      for (const h of lab.hosts) world.bmcs.push(await world.startHostBmc(h.n));
      world.metricsPort = await freePort();
      world.timeline.add('test', `lab ${lab.id} with ${options.hosts} hosts and BMCs up in ${Date.now() - t0} ms`);
      await world.tickLoad();
      world.loadTimer = setInterval(() => void world.tickLoad(), LOAD_TICK_MS);
    } catch (e) {
      await world.down();
      throw e;
    }
    return world;
  }

  /** Starts `consolidator run` on this world's policy file; down() stops it. */
  async startDaemon(label = 'daemon'): Promise<DaemonProcess> {
    const daemon = await DaemonProcess.start(this.policyFile, this.timeline, label);
    this.daemons.push(daemon);
    return daemon;
  }

  /** Stops every daemon started here (one that already exited stays as it is). */
  async stopDaemons(): Promise<void> {
    for (const d of this.daemons) await d.stop().catch((e: unknown) => this.timeline.add(d.label, `stop failed: ${errorMessage(e)}`));
  }

  host(n: number): string {
    return this.lab.host(n).name;
  }

  bmc(n: number): Bmc {
    const b = this.bmcs[n - 1];
    if (!b) throw new Error(`no BMC for h${n}`);
    return b;
  }

  /** Defines and starts a guest on host n and remembers it: it must then run exactly once, always. */
  async startGuest(n: number, spec: GuestSpec & { readonly paused?: boolean }): Promise<void> {
    await this.lab.startGuest(n, spec);
    this.guests.set(spec.name, spec.memoryMiB);
    this.timeline.add('test', `guest ${spec.name} (${spec.memoryMiB} MiB${spec.paused ? ', paused' : ''}) started on ${this.host(n)}`);
  }

  async removeGuest(name: string): Promise<void> {
    this.guests.delete(name);
    await this.lab.removeGuest(name);
    this.timeline.add('test', `guest ${name} removed`);
  }

  setLoad(n: number, load: Partial<HostLoad>): void {
    const next = { ...(this.load.get(n) as HostLoad), ...load };
    this.load.set(n, next);
    this.timeline.add('test', `load of ${this.host(n)} set to ${next.cpuCores} cores + ${next.memoryMiB} MiB besides its guests`);
  }

  /** Runs `fn` as an operator: power changes the BMCs see meanwhile are the operator's, not the daemon's. */
  async asOperator<T>(fn: () => Promise<T>): Promise<T> {
    this.operatorDepth++;
    try {
      return await fn();
    } finally {
      // Let the BMC hooks of what the operator did run before the window closes.
      for (const b of this.bmcs) await b.hooksSettled().catch(() => undefined);
      this.operatorDepth--;
    }
  }

  /** A fault: the host loses power behind everyone's back (the BMC then says off). */
  async losePower(n: number): Promise<void> {
    this.timeline.add('test', `FAULT: ${this.host(n)} loses power`);
    await this.bmc(n).setPower('off');
    await this.bmc(n).hooksSettled();
  }

  /** The test (as the datacenter's staff) powers a host back on behind the daemon's back. */
  async restorePower(n: number): Promise<void> {
    this.timeline.add('test', `${this.host(n)} powered back on by the test`);
    await this.bmc(n).setPower('on');
    await this.bmc(n).hooksSettled();
  }

  /** Where every domain is, asked of each powered-on host's own libvirt (name -> [host, state][]). */
  async placement(): Promise<Map<string, [string, string][]>> {
    const where = new Map<string, [string, string][]>();
    for (const h of this.lab.hosts) {
      if (h.initPid === undefined) continue;
      const domains = await this.lab.domains(h.n).catch(() => new Map<string, string>());
      for (const [name, state] of domains) {
        if (state === INACTIVE_STATE) continue;
        where.set(name, [...(where.get(name) ?? []), [h.name, state]]);
      }
    }
    return where;
  }

  /** Guests per host, from the hosts themselves. */
  async guestsByHost(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>(this.lab.hosts.map((h) => [h.name, []]));
    for (const [guest, at] of await this.placement()) for (const [host] of at) out.get(host)?.push(guest);
    for (const list of out.values()) list.sort();
    return out;
  }

  /**
   * The invariants: every guest runs (or is paused) on exactly one host, eventually (a migration has
   * two copies for a moment); no host was powered off by IPMI while it held a guest; only hosts the
   * daemon powered off were powered on by it. Throws with what is wrong.
   */
  async checkInvariants(step: string, timeoutMs = SETTLE_TIMEOUT_MS): Promise<Map<string, [string, string][]>> {
    let last = new Map<string, [string, string][]>();
    try {
      await waitFor(`every guest running exactly once (${step})`, { timeoutMs, intervalMs: SETTLE_POLL_MS }, async () => {
        last = await this.placement();
        return [...this.guests.keys()].every((g) => last.get(g)?.length === 1) ? true : undefined;
      });
    } catch (e) {
      const wrong = [...this.guests.keys()].filter((g) => last.get(g)?.length !== 1).map((g) => `${g}: ${JSON.stringify(last.get(g) ?? [])}`);
      this.timeline.add('check', `FAILED after ${step}: ${wrong.join('; ')}`);
      throw new Error(`after ${step}: guests not running exactly once: ${wrong.join('; ')}`, { cause: e });
    }
    for (const b of this.bmcs) await b.hooksSettled();
    const layout = [...last].map(([g, at]) => `${g}@${at.map(([h, s]) => `${h}(${s})`).join('+')}`).sort();
    this.timeline.add('check', `invariants hold after ${step}: ${layout.join(' ')}`);
    if (this.violations.length > 0) throw new Error(`safety violations: ${this.violations.join('; ')}`);
    return last;
  }

  /** The policy for this lab: the given sections replace the defaults below, key by key. */
  policy(overrides: Partial<Record<keyof PolicyInput, unknown>> = {}): PolicyInput {
    const lab = this.lab;
    const base: Record<string, unknown> = {
      version: 1,
      mode: 'enforce',
      schedule: '*/3 * * * * *',
      thresholds: {
        cpu: { underloadRatio: 0.25, targetRatio: 0.7, overloadRatio: 0.9, windowSeconds: 6, statistic: 'max' },
        memory: { underloadRatio: 0.3, targetRatio: 0.8, overloadRatio: 0.92, windowSeconds: 6, statistic: 'max' },
      },
      consolidation: { enabled: true, underloadedForSeconds: 4, worthItHorizonSeconds: 3600, worthItMargin: 2 },
      safety: {
        minHostsOn: 2,
        spareHosts: 0,
        reserveRatio: 0,
        maxMigrationsPerCycle: 10,
        maxConcurrentMigrations: 2,
        maxConcurrentMigrationsPerHost: 1,
        hostCooldownSeconds: 8,
        vmCooldownSeconds: 8,
        maxPowerActionsPerHostPerDay: 50,
      },
      migration: { bandwidthMiBps: 0, timeoutSeconds: 60, nonConvergence: 'auto-converge', convergenceDeadlineSeconds: 10, expectedLinkMiBps: 1000 },
      power: {
        driver: 'ipmitool',
        softOffTimeoutSeconds: 5,
        bootTimeoutSeconds: 60,
        expectedBootSeconds: 5,
        verifyTimeoutSeconds: 10,
        ipmi: { cipherSuite: 3, retries: 1, commandTimeoutSeconds: 3 },
      },
      hypervisor: { driver: 'virsh' },
      hostDefaults: {
        ssh: { user: 'root', port: 22, keyFile: lab.keyFile, knownHostsFile: lab.knownHostsFile },
        power: { idleWatts: 100, maxWatts: 250, bootSeconds: 5 },
      },
      hosts: lab.hosts.map((h, i) => {
        const b = this.bmcs[i] as Bmc;
        return { name: h.name, ssh: { address: h.address }, bmc: { address: b.address, port: b.port, user: b.user, passwordFile: b.passwordFile } };
      }),
      logging: { level: 'info', format: 'json' },
      metrics: { listen: `127.0.0.1:${this.metricsPort}` },
      stateDirectory: this.stateDirectory,
      control: { socket: join(this.stateDirectory, 'control.sock') },
    };
    return { ...base, ...overrides } as PolicyInput;
  }

  /** Writes the policy file (JSON is YAML) the daemon reads, in place. */
  async writePolicy(policy: PolicyInput | string): Promise<void> {
    await writeFile(this.policyFile, typeof policy === 'string' ? policy : `${JSON.stringify(policy, null, 2)}\n`);
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.metricsPort}`;
  }

  async metricsText(): Promise<string> {
    const res = await fetch(`${this.baseUrl}/metrics`, { signal: AbortSignal.timeout(10_000) });
    return res.text();
  }

  async status(): Promise<Record<string, unknown>> {
    const res = await fetch(`${this.baseUrl}/status`, { signal: AbortSignal.timeout(10_000) });
    return (await res.json()) as Record<string, unknown>;
  }

  /** Runs `consolidator ARGS` (the built CLI) and returns its exit code and output. */
  runCli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    this.timeline.add('cli', `$ consolidator ${args.join(' ')}`);
    return new Promise((resolve) => {
      execFile(process.execPath, [MAIN_JS, ...args], { cwd: REPO_ROOT, timeout: CLI_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        this.timeline.block('cli', `exit ${code}`, `${stdout}${stderr}`);
        resolve({ code, stdout, stderr });
      });
    });
  }

  /**
   * Stops everything this world started: the daemons first, then the timeline is written (with a perf
   * line: what each daemon used, and `perf`), then the BMCs and the lab. Safe after a failed start and
   * when called twice.
   */
  async down(perf: Readonly<Record<string, number>> = {}): Promise<void> {
    await this.stopDaemons();
    if (this.daemons.length > 0 || Object.keys(perf).length > 0) {
      this.timeline.add('perf', JSON.stringify(Object.assign({}, ...this.daemons.map((d) => d.perf()), perf)));
    }
    this.timeline.write();
    clearInterval(this.loadTimer);
    this.loadTimer = undefined;
    for (const b of this.bmcs) {
      // a BMC the test froze (SIGSTOP) must run again to hear SIGTERM
      try {
        process.kill(b.pid, 'SIGCONT');
      } catch {
        // already gone
      }
      await b.stop();
    }
    for (const h of this.lab.hosts) if (h.initPid !== undefined) await this.lab.thaw(h.n).catch(() => undefined);
    await this.lab.down();
  }

  private async startHostBmc(n: number): Promise<Bmc> {
    const name = this.host(n);
    return startBmc({
      name: `e2e-h${n}`,
      // Unique per lab: the lab's subnet octet is unique on this machine.
      address: `127.77.${this.lab.subnetOctet}.${n}`,
      port: BMC_PORT,
      // The BMC of a host reports that host's system UUID, as on real hardware (checked before every power action).
      systemUuid: labProductUuid(n),
      dir: join(this.lab.dir, 'bmc', `h${n}`),
      onPowerOff: async (change) => {
        const by = change.via === 'test' ? 'test' : this.operatorDepth > 0 ? 'operator' : 'daemon';
        const held = await this.heldBy(n);
        this.powerEvents.push({ atMs: Date.now(), host: name, to: 'off', by, held });
        this.timeline.add('bmc', `${name} powered OFF (${change.via}, by ${by}); it held: ${held.length > 0 ? held.join(', ') : 'nothing'}`);
        if (by === 'daemon') this.autoOff.add(name);
        else this.autoOff.delete(name);
        if (by !== 'test' && held.length > 0) this.violations.push(`${name} was powered off by the ${by} while it held ${held.join(', ')}`);
        if (this.lab.host(n).initPid !== undefined) await this.lab.powerOff(n);
      },
      onPowerOn: async (change) => {
        const by = change.via === 'test' ? 'test' : this.operatorDepth > 0 ? 'operator' : 'daemon';
        this.powerEvents.push({ atMs: Date.now(), host: name, to: 'on', by, held: [] });
        this.timeline.add('bmc', `${name} powered ON (${change.via}, by ${by})`);
        if (by === 'daemon' && !this.autoOff.has(name)) this.violations.push(`the daemon powered on ${name}, which it had not powered off`);
        this.autoOff.delete(name);
        if (this.lab.host(n).initPid === undefined) await this.lab.powerOn(n);
      },
    });
  }

  /** Guests on host n that are not mere definitions, from its own libvirt. */
  private async heldBy(n: number): Promise<string[]> {
    if (this.lab.host(n).initPid === undefined) return [];
    const domains = await this.lab.domains(n).catch(() => new Map<string, string>());
    return [...domains].filter(([, s]) => s !== INACTIVE_STATE).map(([name, s]) => `${name}(${s})`);
  }

  /**
   * The load model: every powered-on host's /proc/stat advances by its busy cores, and its
   * /proc/meminfo shows its own use plus the size of every guest QEMU runs on it (libvirt's
   * run-time folder, no process spawned), so migrations really move memory use between hosts.
   */
  private async tickLoad(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      const now = Date.now();
      const seconds = (now - this.lastTickMs) / 1000;
      this.lastTickMs = now;
      for (const h of this.lab.hosts) {
        if (h.initPid === undefined) continue;
        const load = this.load.get(h.n) as HostLoad;
        const files = await readdir(join(h.dir, 'run-libvirt', 'qemu')).catch(() => [] as string[]);
        const guestsMiB = files
          .filter((f) => f.endsWith('.xml'))
          .map((f) => f.slice(0, -'.xml'.length))
          .reduce((sum, name) => sum + (this.guests.get(name) ?? 0), 0);
        const used = Math.min(h.figures.memoryMiB - 1, load.memoryMiB + guestsMiB);
        h.figures = { ...h.figures, memoryUsedMiB: used };
        await this.lab.advanceCpu(h.n, Math.min(h.figures.cpus, load.cpuCores), seconds);
      }
    } catch (e) {
      this.timeline.add('test', `load tick failed: ${String(e)}`);
    } finally {
      this.ticking = false;
    }
  }
}

/** Parses Prometheus text and sums the series of `name` whose labels include `labels`. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map<string, string>();
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have.set(l[1] as string, l[2] as string);
    if (!Object.entries(labels).every(([k, v]) => have.get(k) === v)) continue;
    sum += Number(m[4]);
    found = true;
  }
  return found ? sum : Number.NaN;
}

/** The consolidator_ lines of a /metrics text that say what happened (not the help and type lines). */
export function interestingMetrics(text: string): string {
  return text
    .split('\n')
    .filter((l) => /^consolidator_(hosts|actions_executed_total|power_actions_total|estimated_power_saved_watts|cycles_total|errors_total|hosts_kept|hosts_needing_attention)\b/.test(l))
    .join('\n');
}

/** A matcher for daemon log lines: this event, with these fields. */
export const isEvent =
  (message: string, fields: Record<string, unknown> = {}) =>
  (l: DaemonLogLine): boolean =>
    l.message === message && Object.entries(fields).every(([k, v]) => l[k] === v);
