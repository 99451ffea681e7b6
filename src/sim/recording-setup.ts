import { ConsolidatorError } from '../errors.js';
import { powerAt, type PowerModel } from '../model/snapshot.js';
import { scanRecording, type RecordedCycle, type RecordedHostInfo, type RecordingRange } from '../state/recording.js';
import type { SimHostSpec, SimVmSpec, SimulationSetup } from './simulation-setup.js';
import { traceFractions } from './simulation-setup.js';

export interface RecordingSetupOptions {
  /** Migration speed of the replay (the policy's migration.bandwidthMiBps, else expectedLinkMiBps). */
  readonly migrationMiBps: number;
  readonly range?: RecordingRange;
  /** For hosts the recording's headers do not describe. */
  readonly defaultPowerModel?: PowerModel;
  readonly defaultBootSeconds?: number;
}

/** What the recording itself says happened (the daemon's own actions and the hosts it saw off). */
export interface RecordedFacts {
  readonly cycles: number;
  readonly firstMs: number;
  readonly lastMs: number;
  readonly modes: readonly ('dry-run' | 'enforce')[];
  readonly hostHoursOff: number;
  readonly migrations: number;
  readonly powerOffs: number;
  readonly powerOns: number;
  /** Energy the BMCs measured, where every on host reported watts in a cycle (kWh over those cycles), and the hours it covers. */
  readonly measuredKWh: number;
  readonly measuredHours: number;
}

export interface RecordingReplay {
  readonly setup: SimulationSetup;
  /** Wall-clock time of the first cycle, ms: simulated time 0. */
  readonly startMs: number;
  readonly intervalSeconds: number;
  readonly facts: RecordedFacts;
  readonly files: readonly string[];
  readonly warnings: readonly string[];
  /** VMs that appeared after the first cycle, and that left before the last. */
  readonly vmsAppeared: number;
  readonly vmsLeft: number;
}

const DEFAULT_POWER: PowerModel = { kind: 'linear', idleWatts: 150, maxWatts: 350 };
const DEFAULT_BOOT_SECONDS = 180;
const MS_PER_SECOND = 1000;
const SECONDS_PER_HOUR = 3600;
const PERCENT = 100;
const GROW = 2;

interface HostAcc {
  cpu: number;
  memoryMiB: number;
}

/** A VM's use per cycle from its first to its last, in growable arrays (a week of 1,000 VMs at 1-minute cycles is 10 million values). */
interface VmAcc {
  readonly vcpus: number;
  readonly memoryMiB: number;
  readonly firstHost: string;
  readonly first: number;
  last: number;
  cpu: Float32Array;
  memory: Float32Array;
}

/**
 * A simulation setup from a daemon's recording: the recorded hosts (capacity, power model and boot
 * time from the headers), the recorded VMs with their CPU and memory use as traces on the recording's
 * grid (its median cycle interval), each VM starting on the host it was first seen on, appearing and
 * leaving when the recording shows it doing so. Hosts empty at the start start off. Memory is
 * overcommitted and its overload counted, as in the trace setup. A VM missing from some cycles (its
 * host did not answer) keeps its last use; a use not measured yet (null) reads 0.
 */
export async function buildRecordingSetup(dir: string, options: RecordingSetupOptions): Promise<RecordingReplay> {
  const times: number[] = [];
  const hosts = new Map<string, HostAcc>();
  const vms = new Map<string, VmAcc>();
  const modes = new Set<'dry-run' | 'enforce'>();
  let outOfOrder = 0;
  let offHostSeconds = 0;
  let migrations = 0;
  let powerOffs = 0;
  let powerOns = 0;
  let measuredJoules = 0;
  let measuredSeconds = 0;
  let previous: RecordedCycle | undefined;

  const onCycle = (c: RecordedCycle): void => {
    const last = times[times.length - 1];
    if (last !== undefined && c.t <= last) {
      outOfOrder++;
      return;
    }
    const index = times.length;
    times.push(c.t);
    modes.add(c.mode);
    migrations += c.acted?.migrations ?? 0;
    powerOffs += c.acted?.powerOffs ?? 0;
    powerOns += c.acted?.powerOns ?? 0;
    const dt = previous === undefined ? 0 : (c.t - previous.t) / MS_PER_SECOND;
    let allMeasured = true;
    let watts = 0;
    for (const h of c.hosts) {
      const [name, power, , cpu, memoryMiB, , , w] = h;
      hosts.set(name, { cpu, memoryMiB });
      if (power === 'off') offHostSeconds += dt;
      else if (w === null || w === undefined) allMeasured = false;
      else watts += w;
    }
    if (allMeasured && dt > 0) {
      measuredJoules += watts * dt;
      measuredSeconds += dt;
    }
    for (const v of c.vms) {
      const [name, hostIndex, vcpus, memoryMiB, cpuUsed, memoryUsed] = v;
      let acc = vms.get(name);
      if (acc === undefined) {
        acc = { vcpus, memoryMiB, firstHost: c.hosts[hostIndex]?.[0] ?? '', first: index, last: index - 1, cpu: new Float32Array(16), memory: new Float32Array(16) };
        vms.set(name, acc);
      }
      const at = index - acc.first;
      if (at >= acc.cpu.length) {
        const size = Math.max(at + 1, acc.cpu.length * GROW);
        acc.cpu = grown(acc.cpu, size);
        acc.memory = grown(acc.memory, size);
      }
      // Cycles it was missing from keep its last use.
      const prior = acc.last - acc.first;
      for (let k = prior + 1; k < at; k++) {
        acc.cpu[k] = prior >= 0 ? (acc.cpu[prior] ?? 0) : 0;
        acc.memory[k] = prior >= 0 ? (acc.memory[prior] ?? 0) : 0;
      }
      acc.cpu[at] = vcpus > 0 && cpuUsed !== null ? (cpuUsed / vcpus) * PERCENT : prior >= 0 ? (acc.cpu[prior] ?? 0) : 0;
      acc.memory[at] = memoryMiB > 0 && memoryUsed !== null ? (memoryUsed / memoryMiB) * PERCENT : prior >= 0 ? (acc.memory[prior] ?? 0) : 0;
      acc.last = index;
    }
    previous = c;
  };

  const scan = await scanRecording(dir, onCycle, options.range ?? {});
  const warnings = [...scan.warnings];
  if (outOfOrder > 0) warnings.push(`${outOfOrder} cycle(s) not later than the one before them skipped`);
  if (times.length < 2) {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${dir}: the recording has ${times.length} cycle(s) in that period; a replay needs at least 2`, { details: { file: dir } });
  }
  const startMs = times[0] as number;
  const intervalSeconds = medianInterval(times);
  const grid = times.map((t) => Math.round((t - startMs) / MS_PER_SECOND / intervalSeconds));
  const samples = (grid[grid.length - 1] as number) + 1;
  const horizonSeconds = samples * intervalSeconds;

  const hostSpecs: SimHostSpec[] = [...hosts.entries()].map(([id, h]) => {
    const info: RecordedHostInfo | undefined = scan.hosts[id];
    const powerModel = info?.powerModel ?? options.defaultPowerModel ?? DEFAULT_POWER;
    return {
      id,
      typeName: 'recorded',
      cpu: h.cpu,
      cpuPerCore: 1,
      memoryMiB: h.memoryMiB,
      powerModel,
      bootSeconds: info?.bootSeconds ?? options.defaultBootSeconds ?? DEFAULT_BOOT_SECONDS,
      bootWatts: powerAt(powerModel, 1),
      offWatts: 0,
    };
  });
  let appeared = 0;
  let left = 0;
  const vmSpecs: SimVmSpec[] = [];
  for (const [id, acc] of vms) {
    if (acc.vcpus <= 0 || acc.memoryMiB <= 0) continue;
    const g0 = grid[acc.first] as number;
    const g1 = grid[acc.last] as number;
    const length = g1 - g0 + 1;
    const cpu = new Float64Array(length);
    const memory = new Float64Array(length);
    // Each cycle's value holds until the next cycle's grid point.
    for (let c = acc.first; c <= acc.last; c++) {
      const from = (grid[c] as number) - g0;
      const to = c < acc.last ? (grid[c + 1] as number) - g0 : length;
      const k = c - acc.first;
      cpu.fill(acc.cpu[k] ?? 0, from, to);
      memory.fill(acc.memory[k] ?? 0, from, to);
    }
    const startSeconds = g0 * intervalSeconds;
    const endSeconds = (g1 + 1) * intervalSeconds;
    if (startSeconds > 0) appeared++;
    if (endSeconds < horizonSeconds) left++;
    vmSpecs.push({
      id,
      typeName: 'recorded',
      vcpus: acc.vcpus,
      cpu: acc.vcpus,
      memoryMiB: acc.memoryMiB,
      cpuTrace: traceFractions(cpu),
      memoryTrace: traceFractions(memory),
      initialHost: acc.firstHost,
      ...(startSeconds > 0 ? { startSeconds } : {}),
      ...(endSeconds < horizonSeconds ? { endSeconds } : {}),
    });
  }
  const setup: SimulationSetup = {
    name: 'recording',
    hosts: hostSpecs,
    vms: vmSpecs,
    sampleSeconds: intervalSeconds,
    intervalSeconds,
    startOffsetSeconds: 0,
    horizonSeconds,
    migrationMiBps: options.migrationMiBps,
    migrationSourceShare: 0.9,
    migrationDestinationShare: 0.1,
    idleHostsAreOff: false,
    zeroDemandEndsVm: false,
    memoryAdmission: 'overcommit',
    initialPlacement: 'as-specified',
    emptyHostsStartOff: true,
    floorOversubscribedShares: false,
  };
  const facts: RecordedFacts = {
    cycles: times.length,
    firstMs: startMs,
    lastMs: times[times.length - 1] as number,
    modes: [...modes].sort(),
    hostHoursOff: offHostSeconds / SECONDS_PER_HOUR,
    migrations,
    powerOffs,
    powerOns,
    measuredKWh: measuredJoules / 3.6e6,
    measuredHours: measuredSeconds / SECONDS_PER_HOUR,
  };
  return { setup, startMs, intervalSeconds, facts, files: scan.files, warnings, vmsAppeared: appeared, vmsLeft: left };
}

function grown(a: Float32Array, size: number): Float32Array {
  const out = new Float32Array(size);
  out.set(a);
  return out;
}

/** The median spacing of the cycles, whole seconds (at least 1). */
function medianInterval(times: readonly number[]): number {
  const gaps: number[] = [];
  for (let i = 1; i < times.length; i++) gaps.push(((times[i] as number) - (times[i - 1] as number)) / MS_PER_SECOND);
  gaps.sort((a, b) => a - b);
  return Math.max(1, Math.round(gaps[Math.floor(gaps.length / 2)] as number));
}
