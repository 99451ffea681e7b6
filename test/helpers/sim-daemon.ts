import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { stringify } from 'yaml';
import { loadPolicyText } from '../../src/config/load.js';
import type { PolicyInput } from '../../src/config/schema.js';
import type { DriverBundle } from '../../src/drivers/driver-bundle.js';
import type { HostId } from '../../src/model/ids.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { Daemon, type DaemonDeps, type Scheduler } from '../../src/daemon/daemon.js';
import type { CycleReport } from '../../src/daemon/cycle-report.js';
import { createSystemdNotifier } from '../../src/daemon/systemd-notify.js';
import { SimulatedDatacenter, type DatacenterOptions } from '../../src/sim/simulated-datacenter.js';
import type { SimulationSetup } from '../../src/sim/simulation-setup.js';
import { simulatedDrivers } from '../../src/sim/simulated-world.js';
import { JsonFileStateStore } from '../../src/state/json-file-state-store.js';
import type { StateStore } from '../../src/state/state-store.js';
import { CapturedStream } from './capture.js';
import { pause } from './wait-for.js';

export interface TestHost {
  id: string;
  cores?: number;
  memoryMiB?: number;
  bootSeconds?: number;
}

export interface TestVm {
  id: string;
  host: string;
  vcpus?: number;
  memoryMiB?: number;
  /** CPU demand as a fraction of its vCPUs, constant, or a function of the sample index (300 s each). */
  load: number | ((sample: number) => number);
}

/** Hosts h1..hN with the test defaults. */
export function testHosts(count: number): TestHost[] {
  return Array.from({ length: count }, (_, i) => ({ id: `h${i + 1}` }));
}

/** Four hosts, thinly used: two VMs on h1, one on each of the others (the daemon empties some of them). */
export const THIN_HOSTS: readonly TestHost[] = testHosts(4);
export const THIN_VMS: readonly TestVm[] = [
  { id: 'a', host: 'h1', load: 0.5 },
  { id: 'b', host: 'h1', load: 0.5 },
  { id: 'c', host: 'h2', load: 0.3 },
  { id: 'd', host: 'h3', load: 0.3 },
  { id: 'e', host: 'h4', load: 0.2 },
];

const SAMPLES = 288;
const SAMPLE_SECONDS = 300;

/** A small datacenter with constant or scripted demand, VMs where the test puts them. */
export function testSetup(hosts: readonly TestHost[], vms: readonly TestVm[]): SimulationSetup {
  const trace = (load: TestVm['load']) => {
    const out = new Float64Array(SAMPLES + 1);
    for (let i = 0; i <= SAMPLES; i++) out[i] = typeof load === 'number' ? load : load(i);
    return out;
  };
  return {
    name: 'test',
    hosts: hosts.map((h) => ({
      id: h.id,
      typeName: 'test-host',
      cpu: h.cores ?? 16,
      cpuPerCore: 1,
      memoryMiB: h.memoryMiB ?? 65_536,
      powerModel: { kind: 'linear', idleWatts: 100, maxWatts: 300 },
      bootSeconds: h.bootSeconds ?? 60,
      bootWatts: 300,
      offWatts: 5,
    })),
    vms: vms.map((v) => ({
      id: v.id,
      typeName: 'test-vm',
      vcpus: v.vcpus ?? 2,
      cpu: v.vcpus ?? 2,
      memoryMiB: v.memoryMiB ?? 4096,
      cpuTrace: trace(v.load),
      initialHost: v.host,
    })),
    sampleSeconds: SAMPLE_SECONDS,
    intervalSeconds: SAMPLE_SECONDS,
    startOffsetSeconds: 0,
    horizonSeconds: SAMPLES * SAMPLE_SECONDS,
    migrationMiBps: 1024,
    migrationSourceShare: 0.9,
    migrationDestinationShare: 0.1,
    idleHostsAreOff: false,
    zeroDemandEndsVm: false,
    memoryAdmission: 'reserve',
    initialPlacement: 'as-specified',
    emptyHostsStartOff: false,
  };
}

export interface TestDaemonOptions {
  setup: SimulationSetup;
  policy?: Partial<PolicyInput>;
  dir?: string;
  datacenter?: SimulatedDatacenter;
  /** Wraps the drivers (fault injection, recording). */
  wrapDrivers?: (bundle: DriverBundle) => DriverBundle;
  wrapStore?: (store: StateStore) => StateStore;
  /** The cycle schedule; by default none (tests run cycles themselves). */
  scheduler?: Scheduler;
  /** The system UUID of the machine the daemon "runs on". */
  selfUuid?: string;
  /** Replaces the planner (to force plans that break an invariant). */
  planner?: DaemonDeps['planner'];
  /** The replay `consolidator report` runs in dry-run. */
  replay?: DaemonDeps['replay'];
}

export interface TestDaemon {
  daemon: Daemon;
  datacenter: SimulatedDatacenter;
  dir: string;
  policyFile: string;
  logs: CapturedStream;
  logger: Logger;
}

/** The policy the daemon tests use: enforce, quick hysteresis, generous caps; overrides on top. */
export function testPolicy(setup: SimulationSetup, overrides: Partial<PolicyInput> = {}): PolicyInput {
  return {
    version: 1,
    mode: 'enforce',
    hypervisor: { driver: 'simulated' },
    power: { driver: 'simulated', bootTimeoutSeconds: 900 },
    consolidation: { underloadedForSeconds: 600 },
    safety: { minHostsOn: 1, hostCooldownSeconds: 1800, vmCooldownSeconds: 1800, maxMigrationsPerCycle: 20, maxConcurrentMigrations: 4, maxConcurrentMigrationsPerHost: 2 },
    thresholds: { cpu: { windowSeconds: 900, statistic: 'max' }, memory: { windowSeconds: 900, statistic: 'max' } },
    metrics: { listen: '127.0.0.1:0' },
    ...overrides,
    hosts: setup.hosts.map((h) => ({ name: h.id, power: { idleWatts: 100, maxWatts: 300, bootSeconds: h.bootSeconds } })),
  } as PolicyInput;
}

export async function startTestDaemon(options: TestDaemonOptions): Promise<TestDaemon> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'consolidator-daemon-'));
  const datacenter = options.datacenter ?? placed(options.setup);
  const policyFile = join(dir, 'policy.yaml');
  // An operator socket of its own (tests run two daemons on one state directory to simulate a crash);
  // the CLI finds it through the policy file.
  const socket = join(mkdtempSync(join(tmpdir(), 'consolidator-control-')), 'control.sock');
  const policy = testPolicy(options.setup, { control: { socket }, ...options.policy });
  writeFileSync(policyFile, stringify(policy));
  const loaded = await loadPolicyText(stringify(policy), policyFile);
  if (!loaded.ok) throw new Error(loaded.issues.map((i) => i.message).join('\n'));
  const logs = new CapturedStream();
  const logger = createLogger({ level: 'debug', format: 'json', stream: logs });
  const store = new JsonFileStateStore(dir, () => datacenter.nowMs);
  const deps: DaemonDeps = {
    policyFile,
    policy: loaded.value,
    logger,
    buildDrivers: () => (options.wrapDrivers ?? ((b) => b))(simulatedDrivers(datacenter)),
    store: options.wrapStore ? options.wrapStore(store) : store,
    notifier: createSystemdNotifier({ env: {}, logger }),
    version: 'test',
    nowMs: () => datacenter.nowMs,
    scheduler: options.scheduler ?? (() => ({ stop: () => undefined })),
    listen: '127.0.0.1:0',
    stopGraceMs: 5_000,
    bootPollIntervalMs: 1,
    recordingDirectory: join(dir, 'recording'),
    ...(options.selfUuid !== undefined ? { selfUuid: options.selfUuid } : {}),
    ...(options.planner ? { planner: options.planner } : {}),
    ...(options.replay ? { replay: options.replay } : {}),
  };
  const daemon = new Daemon(deps);
  await daemon.start();
  return { daemon, datacenter, dir, policyFile, logs, logger };
}

/**
 * For a test file: registers an afterEach that stops every daemon started through the returned
 * function during the test, whatever the test did (stopping twice is harmless).
 */
export function daemonsStoppedAfterEach(): (options: TestDaemonOptions) => Promise<TestDaemon> {
  const started: TestDaemon[] = [];
  afterEach(async () => {
    for (const t of started.splice(0)) await t.daemon.stop();
  });
  return async (options) => {
    const t = await startTestDaemon(options);
    started.push(t);
    return t;
  };
}

export function placed(setup: SimulationSetup, options: DatacenterOptions = {}): SimulatedDatacenter {
  const datacenter = new SimulatedDatacenter(setup, options);
  datacenter.placeInitial('as-specified');
  datacenter.advanceTo(1);
  return datacenter;
}

/**
 * Runs one cycle while moving the simulated clock forward in small steps, as time passes while a real
 * cycle runs, until the cycle ends. Then moves the clock to `untilSeconds` (the next cycle's time).
 */
export async function cycleAt(t: TestDaemon, untilSeconds?: number, stepSeconds = 1): Promise<CycleReport> {
  const report = await withClock(t.datacenter, t.daemon.runCycle(), { stepSeconds });
  if (untilSeconds !== undefined && untilSeconds > t.datacenter.nowSeconds) t.datacenter.advanceTo(untilSeconds);
  return report;
}

export interface ClockDrive {
  /** Simulated seconds per step (default 1). */
  readonly stepSeconds?: number;
  /** Real time between two steps (default 5 ms: about 200 simulated seconds per real second). */
  readonly pauseMs?: number;
  /** Steps at the most (default 100,000). */
  readonly maxSteps?: number;
}

/** Moves the simulated clock forward in small steps, as time passes in a real datacenter, until `done()`. */
export async function advanceUntil(datacenter: SimulatedDatacenter, done: () => boolean, drive: ClockDrive = {}): Promise<void> {
  const { stepSeconds = 1, pauseMs = 5, maxSteps = 100_000 } = drive;
  // Disk writes and the event loop take real time: a real pause between the steps lets them happen.
  for (let i = 0; !done() && i < maxSteps; i++) {
    await pause(pauseMs);
    if (!done()) datacenter.advanceTo(datacenter.nowSeconds + stepSeconds);
  }
}

/** Drives the simulated clock while `job` runs (a cycle, an operator command), and returns its result. */
export async function withClock<T>(datacenter: SimulatedDatacenter, job: Promise<T>, drive: ClockDrive = {}): Promise<T> {
  let done = false;
  const tracked = job.finally(() => {
    done = true;
  });
  await advanceUntil(datacenter, () => done, drive);
  return tracked;
}

/** The safety invariants on the simulated world: every VM on exactly one host that is on. */
export function worldViolations(datacenter: SimulatedDatacenter, vmIds: readonly string[], hostIds: readonly HostId[]): string[] {
  const problems: string[] = [];
  const seen = new Map<string, string[]>();
  for (const h of hostIds) {
    const view = datacenter.hostView(h);
    if (!view) continue;
    for (const vm of view.vms) {
      if (vm.incoming) continue;
      seen.set(vm.id, [...(seen.get(vm.id) ?? []), h]);
    }
    if (view.power === 'off' && view.vms.length > 0) problems.push(`${h} is off but holds ${view.vms.map((v) => v.id).join(', ')}`);
  }
  for (const vm of vmIds) {
    const hosts = seen.get(vm) ?? [];
    if (hosts.length !== 1) problems.push(`${vm} is on ${hosts.length} hosts (${hosts.join(', ')})`);
  }
  return problems;
}

export function logLines(t: TestDaemon): Record<string, unknown>[] {
  return t.logs.text
    .trim()
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function writePolicy(t: TestDaemon, text: string): void {
  writeFileSync(t.policyFile, text);
}
