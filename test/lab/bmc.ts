/**
 * Simulated BMCs for integration tests: one OpenIPMI `ipmi_sim` per BMC, serving IPMI 1.5 and 2.0
 * (lanplus) on a loopback address, with a chassis_control program that keeps the power state in a file.
 * Built from ../shared/lab/LAB.md section 1 and recipes/start-bmc.sh, with three differences:
 *
 * - ipmi_sim is a child of the test process (PID 1 here reaps no orphans), killed in stop() and, as a
 *   last resort, when the process exits.
 * - The power hooks (on-power-0 / on-power-1) are run by the test process, not by the chassis script:
 *   the script appends every request and every real power change to `events`, and the BMC object reads
 *   that file and runs the hook (an argv, or a callback such as "stop lab host h1"). So hooks can call
 *   test code, and no background hook process is orphaned when the script exits.
 * - Behaviour knobs for failure tests: a host that ignores soft-off (ACPI) or shuts down only after a
 *   delay, a host that does not power on, and a slow BMC (chassis_control answers late).
 * - A system UUID per BMC (`systemUuid`), answered to Get System GUID (what `ipmitool raw 0x06 0x37`
 *   prints), as the bytes of the SMBIOS Type 1 UUID field of the machine with that product_uuid.
 */
import { randomBytes } from 'node:crypto';
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { appendFile, chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../../src/errors.js';
import { runProcess } from '../../src/drivers/power/run-process.js';
import { waitUntil } from '../../src/util/wait-until.js';
import { stopProcess } from '../helpers/stop-process.js';

export type ChassisPower = 'on' | 'off';

/** How the simulated host reacts to a soft (ACPI) power-off request. */
export type SoftOffBehaviour = 'obey' | 'ignore' | { readonly afterMs: number };

/** A real power change at the BMC; `via` says what caused it. */
export interface PowerChange {
  readonly to: ChassisPower;
  readonly via: 'power' | 'soft' | 'test';
}

/** Run when the power really changes: an argv (no shell), or a callback in the test process. */
export type PowerHook = readonly string[] | ((change: PowerChange) => void | Promise<void>);

export interface BmcOptions {
  readonly name: string;
  /** A loopback address (127.0.1.N); every BMC can have port 623 on its own address. */
  readonly address: string;
  readonly port?: number;
  readonly user?: string;
  /** Generated when not given. */
  readonly password?: string;
  readonly initialPower?: ChassisPower;
  readonly softOff?: SoftOffBehaviour;
  /** 'ignore': "power on" is accepted but the host stays off (a host that fails to power on). */
  readonly powerOn?: 'obey' | 'ignore';
  /** chassis_control answers "get power" this late (a slow BMC). */
  readonly getDelayMs?: number;
  /** The chassis controller fails every request (the BMC answers "Unspecified error"). */
  readonly broken?: boolean;
  readonly onPowerOff?: PowerHook;
  readonly onPowerOn?: PowerHook;
  /** Where the BMC's files go; a fresh temporary folder by default (removed by stop()). */
  readonly dir?: string;
  /**
   * The machine's UUID as Linux shows it in /sys/class/dmi/id/product_uuid (8-4-4-4-12 hex). The BMC
   * answers Get System GUID with it in SMBIOS byte order (see smbiosGuidHex). By default one made from
   * the address and port, distinct per BMC. ipmi_sim needs a GUID to offer RMCP+ (lanplus) at all.
   */
  readonly systemUuid?: string;
}

type Knob = 'softOff' | 'powerOn' | 'getDelayMs' | 'broken';

export type ChassisEvent =
  | { readonly atMs: number; readonly kind: 'request'; readonly op: string; readonly args: readonly string[] }
  | { readonly atMs: number; readonly kind: 'power'; readonly from: ChassisPower; readonly to: ChassisPower; readonly via: PowerChange['via'] };

export interface Bmc {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Holds the password (first line, mode 0600): what the policy's bmc.passwordFile points at. */
  readonly passwordFile: string;
  readonly dir: string;
  readonly pid: number;
  /** The UUID the host behind this BMC would show in /sys/class/dmi/id/product_uuid (lower case). */
  readonly systemUuid: string;
  /** The 16 bytes of `guid` in lan.conf (hex), as the BMC returns them to Get System GUID. */
  readonly guidHex: string;
  /** The power state as the BMC holds it (read from its file, not over IPMI). */
  power(): Promise<ChassisPower>;
  /** Changes the state behind IPMI's back, as if the host did it itself; runs the hook. */
  setPower(to: ChassisPower): Promise<void>;
  /** Changes behaviour at run time. */
  configure(options: Partial<Pick<BmcOptions, Knob>>): Promise<void>;
  /** Requests and power changes seen so far, oldest first. */
  events(): Promise<ChassisEvent[]>;
  /** Resolves once every power change seen so far has run its hook; rejects with a hook's failure. */
  hooksSettled(): Promise<void>;
  stop(): Promise<void>;
}

const IPMI_PORT = 623;
const DEFAULT_USER = 'admin';
const MC_ADDRESS = '0x20';
const READY_TIMEOUT_MS = 10_000;
const READY_PROBE_INTERVAL_MS = 50;
const PROBE_TIMEOUT_MS = 3_000;
const EVENT_POLL_INTERVAL_MS = 25;
const HOOK_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 2_000;
const MS_PER_SECOND = 1000;
const OUTPUT_LIMIT_BYTES = 64 * 1024;

/** Last resort: kill every ipmi_sim still running when the test process exits (even on a crash). */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts one ipmi_sim and resolves once it answers `chassis power status` over lanplus.
 * The caller must stop() it (afterAll), also when the test fails.
 */
export async function startBmc(options: BmcOptions): Promise<Bmc> {
  const port = options.port ?? IPMI_PORT;
  const user = options.user ?? DEFAULT_USER;
  const password = options.password ?? randomBytes(9).toString('base64url');
  const ownsDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), `bmc-${options.name}-`)));
  await mkdir(join(dir, 'state'), { recursive: true });
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  const systemUuid = (options.systemUuid ?? defaultSystemUuid(options.address, port)).toLowerCase();
  const guidHex = smbiosGuidHex(systemUuid);
  await writeFile(join(dir, 'lan.conf'), lanConf({ name: options.name, address: options.address, port, user, password, dir, guidHex }));
  await writeFile(join(dir, 'cmd.emu'), CMD_EMU);
  await writeFile(join(dir, 'chassis.sh'), CHASSIS_SCRIPT);
  await chmod(join(dir, 'chassis.sh'), 0o755);
  await writeFile(join(dir, 'power'), `${(options.initialPower ?? 'on') === 'on' ? 1 : 0}\n`);
  await writeFile(join(dir, 'events'), '');
  const knobs: Pick<BmcOptions, Knob> = {
    softOff: options.softOff ?? 'obey',
    powerOn: options.powerOn ?? 'obey',
    getDelayMs: options.getDelayMs ?? 0,
    broken: options.broken ?? false,
  };
  await writeKnobs(dir, { ...knobs, getDelayMs: 0, broken: false }); // slow or broken only once it is up

  const out = openSync(join(dir, 'sim.out'), 'a');
  // setpriv --pdeathsig execs ipmi_sim (same pid) so that it dies with the test process, even one killed with SIGKILL.
  const child = spawn('setpriv', ['--pdeathsig', 'SIGKILL', '--', 'ipmi_sim', '-c', join(dir, 'lan.conf'), '-f', join(dir, 'cmd.emu'), '-s', join(dir, 'state'), '-n'], {
    stdio: ['ignore', out, out],
    env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  closeSync(out);
  running.add(child);
  child.once('exit', () => running.delete(child));
  let spawnError: Error | undefined;
  child.once('error', (e) => {
    spawnError = e;
  });

  const bmc = new RunningBmc({ ...options, port, user, password, passwordFile, dir, ownsDir, knobs, child, systemUuid, guidHex });
  try {
    await waitUntil({
      what: `ipmi_sim ${options.name} on ${options.address}:${port} to answer`,
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: READY_PROBE_INTERVAL_MS,
      signal: AbortSignal.timeout(READY_TIMEOUT_MS * 2),
      timeoutCode: 'BMC_UNREACHABLE',
      probe: async (signal) => {
        if (spawnError !== undefined) throw spawnError;
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`ipmi_sim exited (${child.exitCode ?? child.signalCode}): ${await readFile(join(dir, 'sim.out'), 'utf8')}`);
        }
        const result = await runProcess(ipmitoolArgv(options.address, port, user, ['chassis', 'power', 'status']), {
          timeoutMs: PROBE_TIMEOUT_MS,
          signal,
          env: { PATH: process.env['PATH'] ?? '', IPMI_PASSWORD: password },
          maxOutputBytes: OUTPUT_LIMIT_BYTES,
        });
        return result.exitCode === 0 ? { done: true, value: undefined } : { done: false, seen: result.stderr.trim() };
      },
    });
  } catch (e) {
    await bmc.stop();
    throw e;
  }
  await writeKnobs(dir, knobs);
  bmc.startWatching();
  return bmc;
}

/** ipmitool's argv for this BMC with the password taken from IPMI_PASSWORD (never in argv). */
export function ipmitoolArgv(address: string, port: number, user: string, command: readonly string[]): string[] {
  return ['ipmitool', '-I', 'lanplus', '-H', address, '-p', String(port), '-U', user, '-E', '-C', '3', '-R', '1', '-N', '1', ...command];
}

interface RunningBmcInit extends BmcOptions {
  readonly systemUuid: string;
  readonly guidHex: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly passwordFile: string;
  readonly dir: string;
  readonly ownsDir: boolean;
  readonly knobs: Pick<BmcOptions, Knob>;
  readonly child: ChildProcess;
}

class RunningBmc implements Bmc {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly passwordFile: string;
  readonly dir: string;
  readonly pid: number;
  readonly systemUuid: string;
  readonly guidHex: string;
  private readonly init: RunningBmcInit;
  private knobs: Pick<BmcOptions, Knob>;
  private watcher: NodeJS.Timeout | undefined;
  private eventsRead = 0;
  private reading: Promise<void> = Promise.resolve();
  private hooks: Promise<void> = Promise.resolve();
  private readonly hookErrors: unknown[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;

  constructor(init: RunningBmcInit) {
    this.init = init;
    this.name = init.name;
    this.address = init.address;
    this.port = init.port;
    this.user = init.user;
    this.password = init.password;
    this.passwordFile = init.passwordFile;
    this.dir = init.dir;
    this.pid = init.child.pid ?? -1;
    this.systemUuid = init.systemUuid;
    this.guidHex = init.guidHex;
    this.knobs = init.knobs;
  }

  async power(): Promise<ChassisPower> {
    return (await readFile(join(this.dir, 'power'), 'utf8')).trim() === '1' ? 'on' : 'off';
  }

  async setPower(to: ChassisPower): Promise<void> {
    await this.change(to, 'test');
  }

  async configure(options: Partial<Pick<BmcOptions, Knob>>): Promise<void> {
    this.knobs = { ...this.knobs, ...options };
    await writeKnobs(this.dir, this.knobs);
  }

  async events(): Promise<ChassisEvent[]> {
    return parseEvents(await readFile(join(this.dir, 'events'), 'utf8'));
  }

  async hooksSettled(): Promise<void> {
    await this.poll();
    await this.hooks;
    if (this.hookErrors.length > 0) throw new Error(`power hook failed on ${this.name}: ${errorMessage(this.hookErrors[0])}`);
  }

  startWatching(): void {
    this.watcher = setInterval(() => void this.poll(), EVENT_POLL_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.watcher !== undefined) clearInterval(this.watcher);
    for (const timer of this.timers) clearTimeout(timer);
    await stopProcess(this.init.child, STOP_GRACE_MS);
    await this.hooks.catch(() => undefined); // failures are reported by hooksSettled(); stop() must finish
    if (this.init.ownsDir && process.env['KEEP_LAB'] === undefined) await rm(this.dir, { recursive: true, force: true });
  }

  /** Reads new lines of the events file (one reader at a time) and reacts to them. */
  private poll(): Promise<void> {
    this.reading = this.reading.then(async () => {
      if (this.stopped) return;
      const all = parseEvents(await readFile(join(this.dir, 'events'), 'utf8'));
      const fresh = all.slice(this.eventsRead);
      this.eventsRead = all.length;
      for (const event of fresh) this.react(event);
    });
    return this.reading;
  }

  private react(event: ChassisEvent): void {
    if (event.kind === 'power') {
      this.runHook({ to: event.to, via: event.via });
      return;
    }
    const softOff = this.knobs.softOff;
    if (event.op === 'set' && event.args[0] === 'shutdown' && event.args[1] === '1' && typeof softOff === 'object') {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void this.change('off', 'soft').catch((e: unknown) => this.hookErrors.push(e));
      }, softOff.afterMs);
      this.timers.add(timer);
    }
  }

  /** Writes the state and logs the change the way chassis.sh does; the watcher then runs the hook. */
  private async change(to: ChassisPower, via: PowerChange['via']): Promise<void> {
    const from = await this.power();
    if (from === to) return;
    await writeFile(join(this.dir, 'power'), `${to === 'on' ? 1 : 0}\n`);
    await appendFile(join(this.dir, 'events'), `${Date.now() / MS_PER_SECOND} power ${from === 'on' ? 1 : 0} ${to === 'on' ? 1 : 0} ${via}\n`);
    await this.poll();
  }

  private runHook(change: PowerChange): void {
    const hook = change.to === 'on' ? this.init.onPowerOn : this.init.onPowerOff;
    if (hook === undefined) return;
    this.hooks = this.hooks.then(async () => {
      try {
        if (typeof hook === 'function') {
          await hook(change);
          return;
        }
        const result = await runProcess(hook, {
          timeoutMs: HOOK_TIMEOUT_MS,
          signal: AbortSignal.timeout(HOOK_TIMEOUT_MS * 2),
          env: { PATH: process.env['PATH'] ?? '' },
          maxOutputBytes: OUTPUT_LIMIT_BYTES,
        });
        await appendFile(join(this.dir, 'hooks.log'), `$ ${hook.join(' ')}\n${result.stdout}${result.stderr}exit ${result.exitCode}\n`);
        if (result.exitCode !== 0) throw new Error(`${hook.join(' ')} exited ${result.exitCode}: ${result.stderr.trim()}`);
      } catch (e) {
        this.hookErrors.push(e);
      }
    });
  }
}

/** Simulated BMCs started together; stopAll() is safe to call in afterAll even if start failed. */
export async function startBmcs(list: readonly BmcOptions[]): Promise<Bmc[]> {
  const results = await Promise.allSettled(list.map((o) => startBmc(o)));
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(started.map((b) => b.stop()));
    throw failed.reason;
  }
  return started;
}

async function writeKnobs(dir: string, knobs: Pick<BmcOptions, Knob>): Promise<void> {
  const softOff = knobs.softOff ?? 'obey';
  await writeFile(join(dir, 'soft-off'), `${typeof softOff === 'object' ? 'defer' : softOff}\n`);
  await writeFile(join(dir, 'power-on'), `${knobs.powerOn ?? 'obey'}\n`);
  await writeFile(join(dir, 'get-delay'), `${(knobs.getDelayMs ?? 0) / MS_PER_SECOND}\n`);
  await writeFile(join(dir, 'broken'), `${knobs.broken === true ? 'yes' : 'no'}\n`);
}

function parseEvents(text: string): ChassisEvent[] {
  const events: ChassisEvent[] = [];
  for (const line of text.split('\n')) {
    const [at, kind, ...rest] = line.trim().split(/\s+/);
    if (at === undefined || kind === undefined) continue;
    const atMs = Math.round(Number(at) * MS_PER_SECOND);
    if (kind === 'request') {
      events.push({ atMs, kind, op: rest[0] ?? '', args: rest.slice(1) });
    } else if (kind === 'power') {
      const via = rest[2] === 'soft' || rest[2] === 'test' ? rest[2] : 'power';
      events.push({ atMs, kind, from: rest[0] === '1' ? 'on' : 'off', to: rest[1] === '1' ? 'on' : 'off', via });
    }
  }
  return events;
}

const UUID_PATTERN = /^([0-9a-f]{8})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{4})-([0-9a-f]{12})$/;

/**
 * The 16 bytes (hex) a machine with this product_uuid holds in its SMBIOS Type 1 UUID field, and a BMC
 * that copies them returns to Get System GUID: SMBIOS 2.6+ (DSP0134 section 7.2.1) stores time_low,
 * time_mid and time_hi_and_version little-endian, clock_seq and node as written. Linux (dmi_save_uuid,
 * "%pUl") and dmidecode (dmi_system_uuid: p[3]p[2]p[1]p[0]-p[5]p[4]-p[7]p[6]-p[8]p[9]-p[10..15]) read
 * them back into the same string. Written out here on its own, apart from the driver's decoder.
 */
export function smbiosGuidHex(uuid: string): string {
  const m = UUID_PATTERN.exec(uuid.toLowerCase());
  if (m === null) throw new Error(`not a UUID (8-4-4-4-12 hex): ${uuid}`);
  const reversed = (hex: string | undefined) => (hex?.match(/../g) ?? []).reverse().join('');
  return `${reversed(m[1])}${reversed(m[2])}${reversed(m[3])}${m[4] ?? ''}${m[5] ?? ''}`;
}

/** Distinct per BMC: the address's octets and the port in the node field; version 4, variant 1. */
function defaultSystemUuid(address: string, port: number): string {
  const bytes = [...address.split('.').map((o) => Number(o) & 0xff), (port >> 8) & 0xff, port & 0xff];
  const node = bytes.map((b) => b.toString(16).padStart(2, '0')).join('');
  return `00000000-0000-4000-8000-${node.slice(-12).padStart(12, '0')}`;
}

interface LanConf {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly dir: string;
  readonly guidHex: string;
}

function lanConf({ name, address, port, user, password, dir, guidHex }: LanConf): string {
  return `name "${name}"
set_working_mc ${MC_ADDRESS}
  startlan 1
    addr ${address} ${port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid ${guidHex}
  endlan
  chassis_control "${join(dir, 'chassis.sh')} ${MC_ADDRESS}"
  user 2 true  "${user}"  "${password}" admin  10  none md2 md5 straight
`;
}

/** ipmi_sim starts with no management controller at all without this (LAB.md 1.1). */
const CMD_EMU = `mc_setbmc ${MC_ADDRESS}
mc_add ${MC_ADDRESS} 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable ${MC_ADDRESS} 1000 0x0a
mc_enable ${MC_ADDRESS}
`;

const CHASSIS_SCRIPT = `#!/bin/sh
# Written by test/lab/bmc.ts: the chassis_control program of one simulated BMC.
#   chassis.sh <mc> get power [boot]   -> prints "power:0|1"
#   chassis.sh <mc> set power 0|1 | shutdown 1 | reset 1 | boot N | identify ...
# State: $DIR/power (1 on, 0 off). Knobs: $DIR/soft-off (obey|ignore|defer), $DIR/power-on
# (obey|ignore), $DIR/get-delay (seconds), $DIR/broken (yes: fail every request).
# Every request and every real power change is appended to $DIR/events; the test process reads it
# and runs the power hooks (this script starts nothing).
DIR=$(dirname "$0")
op=$2
shift 2
now() { date +%s.%N; }
knob() { cat "$DIR/$1" 2>/dev/null || echo "$2"; }
change() {
  old=$(cat "$DIR/power")
  if [ "$old" != "$1" ]; then
    echo "$1" > "$DIR/power"
    echo "$(now) power $old $1 $2" >> "$DIR/events"
  fi
}
echo "$(now) request $op $*" >> "$DIR/events"
[ "$(knob broken no)" = yes ] && exit 1
case "$op" in
  get)
    delay=$(knob get-delay 0)
    [ "$delay" = 0 ] || sleep "$delay"
    for p in "$@"; do
      case "$p" in
        power) echo "power:$(cat "$DIR/power")" ;;
        boot) echo "boot:default" ;;
      esac
    done ;;
  set)
    while [ $# -ge 2 ]; do
      case "$1" in
        power)
          if [ "$2" = 1 ] && [ "$(knob power-on obey)" = ignore ]; then :; else change "$2" power; fi ;;
        shutdown)
          if [ "$2" = 1 ] && [ "$(knob soft-off obey)" = obey ]; then change 0 soft; fi ;;
      esac
      shift 2
    done ;;
esac
exit 0
`;
