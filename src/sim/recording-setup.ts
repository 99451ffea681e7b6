import { ConsolidatorError } from '../errors.js';
import { powerAt, type PowerModel } from '../model/snapshot.js';
import { scanRecording, type RecordedCycle, type RecordedHost, type RecordedHostInfo, type RecordingRange } from '../state/recording.js';
import type { SimHostSpec, SimVmSpec, SimulationSetup } from './simulation-setup.js';
import { traceFractions } from './simulation-setup.js';

export interface RecordingSetupOptions {
  /** Migration speed of the replay (the policy's migration.bandwidthMiBps, else expectedLinkMiBps). */
  readonly migrationMiBps: number;
  readonly range?: RecordingRange;
  /** For hosts the recording's headers do not describe. */
  readonly defaultPowerModel?: PowerModel;
  readonly defaultBootSeconds?: number;
  /** Hosts the policy excludes (hosts[].exclude): observed only, as in the daemon. */
  readonly excludedHosts?: ReadonlySet<string>;
  /** The policy's vmRules for a VM name (see daemon/vm-rules.ts); absent: no rules. */
  readonly vmRules?: (vm: string) => { readonly pinned: boolean; readonly protected: boolean; readonly antiAffinityGroups: readonly string[] };
}

/**
 * Where the recording has the BMCs' watts: the every-host-on counterfactual measured, and each host's
 * draw calibrated on its readings.
 */
export interface RecordedWatts {
  /**
   * kWh had every host stayed on as recorded: a host's measured watts in the cycles it reported them,
   * its model elsewhere (at the recorded CPU use; idle while it was off). Undefined when no host
   * reported watts.
   */
  readonly allHostsOnKWh?: number;
  /** The share of host-hours of that figure that were measured (0..1). */
  readonly measuredShare: number;
  /** Hosts whose draw in the replay is a linear model fitted to their readings (the rest: their declared model). */
  readonly calibratedHosts: readonly string[];
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
  readonly watts: RecordedWatts;
}

const DEFAULT_POWER: PowerModel = { kind: 'linear', idleWatts: 150, maxWatts: 350 };
const DEFAULT_BOOT_SECONDS = 180;
const MS_PER_SECOND = 1000;
const SECONDS_PER_HOUR = 3600;
const PERCENT = 100;
const JOULES_PER_KWH = 3.6e6;
const GROW = 2;

interface HostAcc {
  cpu: number;
  memoryMiB: number;
  /** Sums over the cycles it was on with watts and CPU use: n, u, w, u^2, u*w (u = CPU use / capacity). */
  fit: [n: number, u: number, w: number, uu: number, uw: number];
  /** For the every-host-on counterfactual, host-seconds and joules as the recording shows them. */
  readonly draw: HostDraw;
}

interface HostDraw {
  measuredJoules: number;
  measuredSeconds: number;
  /** Seconds off or not measured at all: idle draw in the counterfactual. */
  idleSeconds: number;
  /** On without watts, per tenth of CPU use: [seconds, seconds x use] (a power model is linear within each tenth). */
  readonly tenths: Float64Array;
}

const TENTHS = 10;

/** A fitted slope needs CPU use to have varied over at least this share of capacity. */
const MIN_FIT_SPREAD = 0.05;
/** Readings needed before a host's draw is calibrated on them. */
const MIN_FIT_READINGS = 10;

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
    if (previous !== undefined) accountDraw(hosts, previous.hosts, dt);
    let allMeasured = true;
    let watts = 0;
    for (const h of c.hosts) {
      const [name, power, , cpu, memoryMiB, cpuUsed, , w] = h;
      let acc = hosts.get(name);
      if (acc === undefined) {
        acc = { cpu, memoryMiB, fit: [0, 0, 0, 0, 0], draw: { measuredJoules: 0, measuredSeconds: 0, idleSeconds: 0, tenths: new Float64Array(2 * TENTHS) } };
        hosts.set(name, acc);
      }
      acc.cpu = cpu;
      acc.memoryMiB = memoryMiB;
      if (power === 'off') offHostSeconds += dt;
      else if (w === null || w === undefined) allMeasured = false;
      else watts += w;
      if (power === 'on' && w !== null && w !== undefined && cpuUsed !== null && cpu > 0) {
        const u = cpuUsed / cpu;
        const f = acc.fit;
        f[0]++;
        f[1] += u;
        f[2] += w;
        f[3] += u * u;
        f[4] += u * w;
      }
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
  // The last cycle's readings hold for one interval, as the replay's traces do.
  if (previous !== undefined) accountDraw(hosts, previous.hosts, intervalSeconds);
  const grid = times.map((t) => Math.round((t - startMs) / MS_PER_SECOND / intervalSeconds));
  const samples = (grid[grid.length - 1] as number) + 1;
  const horizonSeconds = samples * intervalSeconds;

  const calibratedHosts: string[] = [];
  const drawModels = new Map<string, PowerModel>();
  const hostSpecs: SimHostSpec[] = [...hosts.entries()].map(([id, h]) => {
    const info: RecordedHostInfo | undefined = scan.hosts[id];
    const declared = info?.powerModel ?? options.defaultPowerModel ?? DEFAULT_POWER;
    const calibrated = calibratedModel(h.fit, declared);
    if (calibrated !== undefined) calibratedHosts.push(id);
    const powerModel = calibrated ?? declared;
    drawModels.set(id, powerModel);
    return {
      id,
      typeName: 'recorded',
      cpu: h.cpu,
      cpuPerCore: 1,
      memoryMiB: h.memoryMiB,
      powerModel,
      ...(calibrated !== undefined ? { declaredPowerModel: declared } : {}),
      ...(options.excludedHosts?.has(id) === true ? { excluded: true } : {}),
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
    const rules = options.vmRules?.(id);
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
      ...(rules?.pinned === true ? { pinned: true } : {}),
      ...(rules?.protected === true ? { protected: true } : {}),
      ...(rules !== undefined && rules.antiAffinityGroups.length > 0 ? { antiAffinityGroups: rules.antiAffinityGroups } : {}),
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
  const watts = { ...measuredAllHostsOn(hosts, drawModels), calibratedHosts };
  return { setup, startMs, intervalSeconds, facts, files: scan.files, warnings, vmsAppeared: appeared, vmsLeft: left, watts };
}

/**
 * A host's draw from its readings: the least-squares line through (CPU use, watts) when its CPU use
 * varied enough to show a slope, else the declared model moved up or down to the readings' mean.
 * Undefined with too few readings.
 */
function calibratedModel(fit: HostAcc['fit'], declared: PowerModel): PowerModel | undefined {
  const [n, su, sw, suu, suw] = fit;
  if (n < MIN_FIT_READINGS) return undefined;
  const meanU = su / n;
  const meanW = sw / n;
  const varU = suu / n - meanU * meanU;
  const declaredSlope = powerAt(declared, 1) - powerAt(declared, 0);
  const spread = Math.sqrt(Math.max(0, varU));
  const slope = spread >= MIN_FIT_SPREAD ? Math.max(0, (suw / n - meanU * meanW) / varU) : declaredSlope;
  const idleWatts = Math.max(0, meanW - slope * meanU);
  return { kind: 'linear', idleWatts, maxWatts: idleWatts + slope };
}

/** Adds one cycle's host readings, held for dt seconds, to each host's draw. */
function accountDraw(hosts: ReadonlyMap<string, HostAcc>, line: readonly RecordedHost[], dt: number): void {
  if (!(dt > 0)) return;
  for (const [name, power, , cpus, , cpuUsed, , w] of line) {
    const d = hosts.get(name)?.draw;
    if (d === undefined) continue;
    if (power === 'on' && w !== null && w !== undefined) {
      d.measuredJoules += w * dt;
      d.measuredSeconds += dt;
    } else if (power === 'on' && cpuUsed !== null && cpus > 0) {
      const u = Math.min(1, Math.max(0, cpuUsed / cpus));
      const k = Math.min(TENTHS - 1, Math.floor(u * TENTHS));
      d.tenths[2 * k] = (d.tenths[2 * k] as number) + dt;
      d.tenths[2 * k + 1] = (d.tenths[2 * k + 1] as number) + u * dt;
    } else {
      d.idleSeconds += dt;
    }
  }
}

/**
 * The every-host-on counterfactual from the recording itself, each cycle's reading holding until the
 * next: a host that reported watts counts them; one on without watts, its draw model at its recorded
 * CPU use; one off (or not observed), its idle draw (it would have been on, with nothing to do).
 */
function measuredAllHostsOn(hosts: ReadonlyMap<string, HostAcc>, models: ReadonlyMap<string, PowerModel>): Pick<RecordedWatts, 'allHostsOnKWh' | 'measuredShare'> {
  let joules = 0;
  let measuredSeconds = 0;
  let hostSeconds = 0;
  for (const [name, { draw }] of hosts) {
    const model = models.get(name) ?? DEFAULT_POWER;
    joules += draw.measuredJoules + powerAt(model, 0) * draw.idleSeconds;
    measuredSeconds += draw.measuredSeconds;
    hostSeconds += draw.measuredSeconds + draw.idleSeconds;
    for (let k = 0; k < TENTHS; k++) {
      const seconds = draw.tenths[2 * k] as number;
      if (seconds === 0) continue;
      // Linear within the tenth: the draw at the mean use is the mean draw.
      const meanUse = (draw.tenths[2 * k + 1] as number) / seconds;
      joules += powerAt(model, meanUse) * seconds;
      hostSeconds += seconds;
    }
  }
  if (measuredSeconds === 0) return { measuredShare: 0 };
  return { allHostsOnKWh: joules / JOULES_PER_KWH, measuredShare: hostSeconds > 0 ? measuredSeconds / hostSeconds : 0 };
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
