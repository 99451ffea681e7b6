import type { RejectReason } from './datacenter-runtime.js';
import { SimulatedDatacenter } from './simulated-datacenter.js';
import type { SimulationPolicy } from './simulation-policy.js';
import type { SimulationSetup } from './simulation-setup.js';

export interface RunOptions {
  /** Samples of history per host and VM in each snapshot (CloudSim: 30). */
  readonly historyLength?: number;
  /** Stop after this many decisions (tests). */
  readonly maxDecisions?: number;
  /** Called after each decision (a progress bar). */
  readonly onProgress?: (done: number, total: number) => void;
  /** Wall clock for wallSeconds; injectable for tests. */
  readonly nowMs?: () => number;
  /**
   * The policy's target ratios: with them the report has per-host figures (power cycles, peak use,
   * time over target), sampled at each decision.
   */
  readonly hostTargets?: { readonly cpu: number; readonly memory: number };
  /** The date of simulated time 0, ms (a recording's first cycle); snapshots carry real dates then. */
  readonly epochMs?: number;
}

/** One host over a run, with RunOptions.hostTargets. */
export interface HostFigures {
  readonly host: string;
  readonly powerOffs: number;
  readonly powerOns: number;
  /** The highest CPU and memory in use over capacity seen at a decision while on. */
  readonly peakCpuRatio: number;
  readonly peakMemoryRatio: number;
  /** Decision intervals in which it was on with CPU or memory above its target, in seconds. */
  readonly secondsOverTarget: number;
}

/** One point of the activity series, taken at each decision. */
export interface ActivityPoint {
  readonly atSeconds: number;
  readonly activeHosts: number;
  readonly powerWatts: number;
}

/**
 * The figures of one run. SLA figures are pooled over hosts and VMs as CloudSim's Helper prints them
 * (REFERENCE.md 2.6); the paper-style averages are given alongside.
 */
export interface SimulationReport {
  readonly setup: string;
  readonly policy: string;
  readonly vms: number;
  readonly hosts: number;
  readonly decisions: number;
  readonly simulatedSeconds: number;
  readonly energyKWh: number;
  /** The same run had every host stayed on: a host off or booting draws its idle power instead. */
  readonly allHostsOnKWh: number;
  /** Host-hours spent powered off. */
  readonly hostHoursOff: number;
  readonly migrations: number;
  /** Memory the migrations copied, GiB (each VM's provisioned memory, every leg counted). */
  readonly migratedGiB: number;
  /** Time active hosts spend with less CPU than requested / time hosts are active, %. */
  readonly slatahPct: number;
  /** CPU denied to migrating VMs / CPU requested, %. */
  readonly pdmPct: number;
  /** SLATAH x PDM, % (CloudSim prints it as "SLA"). */
  readonly slavPct: number;
  /** Energy (kWh) x SLAV (a fraction). */
  readonly esv: number;
  /** All CPU denied, any cause / CPU requested, %. */
  readonly overallSlaViolationPct: number;
  readonly averageSlaViolationPct: number;
  readonly slatahPaperPct: number;
  readonly pdmPaperPct: number;
  readonly hostsPoweredOffPeak: number;
  readonly memoryOverloadHostSeconds: number;
  readonly powerOns: number;
  readonly powerOffs: number;
  /** Migrations of a VM that was already migrating (CloudSim's baselines do this; a planner should not). */
  readonly chainedMigrations: number;
  readonly rejectedActions: Readonly<Partial<Record<RejectReason, number>>>;
  readonly vmsAliveAtEnd: number;
  readonly unplacedVms: number;
  readonly wallSeconds: number;
  readonly series: readonly ActivityPoint[];
  /** With RunOptions.hostTargets. */
  readonly perHost?: readonly HostFigures[];
}

const JOULES_PER_KWH = 3.6e6;
const PERCENT = 100;
const MS_PER_SECOND = 1000;
const SECONDS_PER_HOUR = 3600;
const MIB_PER_GIB = 1024;

/**
 * Replays the setup's traces under a policy: VMs placed at time 0, then a decision at
 * startOffset + k * interval for every such time before the horizon, each after the datacenter has
 * caught up (migrations finished, energy and SLA accounted). Migrations started by the last decision
 * still finish (and are accounted) if they end before the horizon; nothing is accounted past the last
 * event, as in CloudSim.
 */
/** CloudSim's history length, and the engine's default. */
const MIN_HISTORY_LENGTH = 30;

export function runSimulation(setup: SimulationSetup, policy: SimulationPolicy, options: RunOptions = {}): SimulationReport {
  const wallNow = options.nowMs ?? (() => performance.now());
  const startedMs = wallNow();
  const datacenter = new SimulatedDatacenter(setup, {
    ...(options.historyLength !== undefined
      ? { historyLength: options.historyLength }
      : policy.historySeconds !== undefined
        ? { historyLength: Math.max(MIN_HISTORY_LENGTH, Math.ceil(policy.historySeconds / setup.intervalSeconds) + 1) }
        : {}),
    ...(policy.energyAccounting === undefined ? {} : { energyAccounting: policy.energyAccounting }),
    ...(options.epochMs === undefined ? {} : { epochMs: options.epochMs }),
    ...(policy.hidesMemoryUse === true ? { samplesWithoutMemory: true } : {}),
  });
  const targets = options.hostTargets;
  const peaks = targets ? setup.hosts.map(() => ({ cpu: 0, memory: 0, over: 0 })) : undefined;
  datacenter.placeInitial(policy.initialPlacement ?? setup.initialPlacement);

  const times: number[] = [];
  for (let t = setup.startOffsetSeconds + setup.intervalSeconds; t < setup.horizonSeconds; t += setup.intervalSeconds) {
    times.push(t);
  }
  const total = Math.min(times.length, options.maxDecisions ?? times.length);
  const series: ActivityPoint[] = [];
  for (let k = 0; k < total; k++) {
    const t = times[k] ?? 0;
    datacenter.advanceTo(t);
    datacenter.recordSamples();
    series.push({ atSeconds: t, ...datacenter.activity() });
    if (targets && peaks) {
      datacenter.hostLoads().forEach((h, i) => {
        const p = peaks[i];
        if (!p || !h.on) return;
        p.cpu = Math.max(p.cpu, h.cpu);
        p.memory = Math.max(p.memory, h.memory);
        if (h.cpu > targets.cpu || h.memory > targets.memory) p.over += setup.intervalSeconds;
      });
    }
    const decision = policy.decide({
      snapshot: datacenter.snapshot(),
      nowMs: datacenter.nowMs,
      inFlight: datacenter.inFlight(),
      ...(policy.hidesMemoryUse === true ? { memoryUseHidden: true } : {}),
    });
    for (const host of decision.powerOn) datacenter.powerOn(host);
    for (const m of decision.migrations) datacenter.startMigration(m.vm, m.from, m.to);
    for (const host of decision.powerOff) datacenter.powerOff(host);
    datacenter.settle();
    options.onProgress?.(k + 1, total);
  }
  datacenter.processEventsBefore(setup.horizonSeconds);

  const totals = datacenter.totals();
  const slatah = ratio(totals.saturatedHostSeconds, totals.activeHostSeconds);
  const pdm = ratio(totals.migrationDeficitCpuSeconds, totals.requestedCpuSeconds);
  const energyKWh = totals.energyJoules / JOULES_PER_KWH;
  return {
    setup: setup.name,
    policy: policy.name,
    vms: setup.vms.length,
    hosts: setup.hosts.length,
    decisions: total,
    simulatedSeconds: datacenter.nowSeconds,
    energyKWh,
    allHostsOnKWh: totals.allHostsOnEnergyJoules / JOULES_PER_KWH,
    hostHoursOff: totals.hostOffSeconds / SECONDS_PER_HOUR,
    migrations: totals.migrations,
    migratedGiB: totals.migratedMiB / MIB_PER_GIB,
    slatahPct: slatah * PERCENT,
    pdmPct: pdm * PERCENT,
    slavPct: slatah * pdm * PERCENT,
    esv: energyKWh * slatah * pdm,
    overallSlaViolationPct:
      ratio(totals.requestedCpuSeconds - totals.allocatedCpuSeconds, totals.requestedCpuSeconds) * PERCENT,
    averageSlaViolationPct: totals.averageShortfall * PERCENT,
    slatahPaperPct: totals.slatahPerHostMean * PERCENT,
    pdmPaperPct: totals.pdmPerVmMean * PERCENT,
    hostsPoweredOffPeak: totals.hostsPoweredOffPeak,
    memoryOverloadHostSeconds: totals.memoryOverloadHostSeconds,
    powerOns: totals.powerOns,
    powerOffs: totals.powerOffs,
    chainedMigrations: totals.chainedMigrations,
    rejectedActions: totals.rejected,
    vmsAliveAtEnd: totals.vmsAlive,
    unplacedVms: totals.unplacedVms,
    wallSeconds: (wallNow() - startedMs) / MS_PER_SECOND,
    series,
    ...(peaks
      ? {
          perHost: datacenter.hostLoads().map((h, i) => ({
            host: h.id,
            powerOffs: h.powerOffs,
            powerOns: h.powerOns,
            peakCpuRatio: peaks[i]?.cpu ?? 0,
            peakMemoryRatio: peaks[i]?.memory ?? 0,
            secondsOverTarget: peaks[i]?.over ?? 0,
          })),
        }
      : {}),
  };
}

function ratio(numerator: number, denominator: number): number {
  return denominator > 0 ? numerator / denominator : 0;
}
