import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Policy } from '../config/schema.js';
import { ConsolidatorError, errorMessage } from '../errors.js';
import { vmRuleFlags } from '../daemon/vm-rules.js';
import { createPlannerPolicy } from '../sim/planner-policy.js';
import { buildRecordingSetup, type RecordingReplay } from '../sim/recording-setup.js';
import { runSimulation, type SimulationReport } from '../sim/run-simulation.js';
import { renderActivitySvg } from '../sim/svg-plot.js';
import type { RecordingRange } from '../state/recording.js';
import { EXIT, type CommandIo } from './command.js';
import { ProgressBar } from './progress-bar.js';
import { table } from './table.js';

const HOURS_PER_DAY = 24;
const SECONDS_PER_HOUR = 3600;
const PERCENT = 100;

export interface ReplayOptions {
  readonly dir: string;
  readonly policy: Policy;
  readonly policyFile: string | undefined;
  readonly range: RecordingRange;
  readonly json: boolean;
  readonly plot: string | undefined | 'none';
}

/**
 * How an energy figure was obtained: 'measured' (the BMCs' watts), 'model' (the hosts' declared power
 * models), 'measured and model' (measured where the recording has watts, the model elsewhere),
 * 'calibrated model' (simulated with each host's model fitted to its recorded watts where it has them).
 */
export type EnergyMethod = 'measured' | 'model' | 'measured and model' | 'calibrated model';

/** The figures of a replay: what an operator weighs before enforce mode. */
export interface ReplaySummary {
  readonly recording: string;
  readonly policyFile?: string;
  readonly from: string;
  readonly to: string;
  readonly days: number;
  readonly cycles: number;
  readonly intervalSeconds: number;
  readonly recordedModes: readonly string[];
  readonly hosts: number;
  readonly vms: number;
  readonly vmsAppeared: number;
  readonly vmsLeft: number;
  /** Every host on: measured where the recording has watts (allHostsOnMethod says how much), the model otherwise. */
  readonly allHostsOnKWh: number;
  readonly allHostsOnMethod: EnergyMethod;
  /** Share of the host-hours behind allHostsOnKWh that the BMCs measured, %. */
  readonly allHostsOnMeasuredPct: number;
  /** The simulated every-host-on figure (the draw models over the replay), for comparison. */
  readonly modelAllHostsOnKWh: number;
  /** Under the policy: simulated, each host drawing as its model says, calibrated on its recorded watts where it has them. */
  readonly policyKWh: number;
  readonly policyMethod: EnergyMethod;
  /** Hosts whose draw was calibrated on their recorded watts. */
  readonly calibratedHosts: number;
  /** What of the policy the replay honoured, as the daemon does: VMs pinned or protected, VMs in anti-affinity groups, excluded hosts. */
  readonly rules: { readonly pinnedVms: number; readonly protectedVms: number; readonly antiAffinityVms: number; readonly excludedHosts: number };
  readonly savedKWh: number;
  readonly savedPct: number;
  readonly savedKWhPerDay: number;
  readonly hostHoursOff: number;
  readonly migrations: number;
  readonly migratedGiB: number;
  readonly powerOffs: number;
  readonly powerOns: number;
  readonly memoryOverloadHostSeconds: number;
  readonly overallSlaViolationPct: number;
  readonly perHost: NonNullable<SimulationReport['perHost']>;
  readonly warnings: readonly string[];
  readonly wallSeconds: number;
  readonly loadSeconds: number;
  readonly plot?: string;
}

/** Replays a recording under the planner and a policy (the daemon's planCycle and checkPlan). */
export async function replayRecording(options: ReplayOptions, io: CommandIo, onProgress?: (done: number, total: number) => void): Promise<{ summary: ReplaySummary; report: SimulationReport; replay: RecordingReplay }> {
  const { policy } = options;
  const loadStarted = performance.now();
  const migrationMiBps = policy.migration.bandwidthMiBps > 0 ? policy.migration.bandwidthMiBps : policy.migration.expectedLinkMiBps;
  const excludedHosts = new Set(policy.hosts.filter((h) => h.exclude).map((h) => h.name));
  const replay = await buildRecordingSetup(options.dir, {
    migrationMiBps,
    range: options.range,
    excludedHosts,
    vmRules: (vm) => vmRuleFlags(vm, policy.vmRules),
  });
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  for (const w of replay.warnings) io.stderr.write(`warning: ${w}\n`);
  const planner = createPlannerPolicy({ policy, setup: replay.setup, memoryView: 'observed' });
  const report = runSimulation(replay.setup, planner, {
    historyLength: Math.max(2, Math.ceil(Math.max(policy.thresholds.cpu.windowSeconds, policy.thresholds.memory.windowSeconds, policy.hostDemand.windowSeconds ?? 0) / replay.intervalSeconds) + 1),
    hostTargets: { cpu: policy.thresholds.cpu.targetRatio, memory: policy.thresholds.memory.targetRatio },
    epochMs: replay.startMs,
    ...(onProgress ? { onProgress } : {}),
  });
  const days = report.simulatedSeconds / SECONDS_PER_HOUR / HOURS_PER_DAY;
  const { watts } = replay;
  const allHostsOnKWh = watts.allHostsOnKWh ?? report.allHostsOnKWh;
  const allHostsOnMethod: EnergyMethod = watts.allHostsOnKWh === undefined ? 'model' : watts.measuredShare >= 1 ? 'measured' : 'measured and model';
  const saved = allHostsOnKWh - report.energyKWh;
  const vms = replay.setup.vms;
  const summary: ReplaySummary = {
    recording: resolve(options.dir),
    ...(options.policyFile === undefined ? {} : { policyFile: options.policyFile }),
    from: new Date(replay.facts.firstMs).toISOString(),
    to: new Date(replay.facts.lastMs).toISOString(),
    days,
    cycles: replay.facts.cycles,
    intervalSeconds: replay.intervalSeconds,
    recordedModes: replay.facts.modes,
    hosts: replay.setup.hosts.length,
    vms: replay.setup.vms.length,
    vmsAppeared: replay.vmsAppeared,
    vmsLeft: replay.vmsLeft,
    allHostsOnKWh,
    allHostsOnMethod,
    allHostsOnMeasuredPct: watts.measuredShare * PERCENT,
    modelAllHostsOnKWh: report.allHostsOnKWh,
    policyKWh: report.energyKWh,
    policyMethod: watts.calibratedHosts.length > 0 ? 'calibrated model' : 'model',
    calibratedHosts: watts.calibratedHosts.length,
    rules: {
      pinnedVms: vms.filter((v) => v.pinned === true || v.protected === true).length,
      protectedVms: vms.filter((v) => v.protected === true).length,
      antiAffinityVms: vms.filter((v) => (v.antiAffinityGroups?.length ?? 0) > 0).length,
      excludedHosts: replay.setup.hosts.filter((h) => h.excluded === true).length,
    },
    savedKWh: saved,
    savedPct: allHostsOnKWh > 0 ? (saved / allHostsOnKWh) * PERCENT : 0,
    savedKWhPerDay: days > 0 ? saved / days : 0,
    hostHoursOff: report.hostHoursOff,
    migrations: report.migrations,
    migratedGiB: report.migratedGiB,
    powerOffs: report.powerOffs,
    powerOns: report.powerOns,
    memoryOverloadHostSeconds: report.memoryOverloadHostSeconds,
    overallSlaViolationPct: report.overallSlaViolationPct,
    perHost: report.perHost ?? [],
    warnings: replay.warnings,
    wallSeconds: report.wallSeconds,
    loadSeconds,
  };
  return { summary, report, replay };
}

export async function runReplayCommand(options: ReplayOptions, io: CommandIo): Promise<number> {
  const stderrIsTty = (io.stderr as { isTTY?: boolean }).isTTY === true;
  const bar = !options.json && stderrIsTty ? new ProgressBar(io.stderr, { label: 'replay' }) : undefined;
  let result: Awaited<ReturnType<typeof replayRecording>>;
  try {
    result = await replayRecording(options, io, bar ? (d, t) => bar.update(d, t) : undefined);
  } finally {
    bar?.done();
  }
  const { summary, report } = result;
  const plotFile = options.plot === 'none' ? undefined : (options.plot ?? (options.json ? undefined : join(dirname(resolve(options.dir)), 'simulation-recording.svg')));
  if (plotFile !== undefined) {
    const svg = renderActivitySvg(report.series, {
      title: `recording ${summary.from.slice(0, 10)} to ${summary.to.slice(0, 10)}: ${summary.hosts} hosts, ${summary.vms} VMs`,
      subtitle: `under the policy: ${summary.policyKWh.toFixed(1)} kWh instead of ${summary.allHostsOnKWh.toFixed(1)} with every host on (${summary.savedPct.toFixed(1)} % saved), ${summary.migrations} migrations`,
    });
    try {
      await writeFile(plotFile, svg);
    } catch (e) {
      throw new ConsolidatorError('USAGE', `cannot write the plot to ${plotFile}: ${errorMessage(e)}`, { cause: e });
    }
  }
  const out = plotFile === undefined ? summary : { ...summary, plot: plotFile };
  if (options.json) {
    io.stdout.write(`${JSON.stringify(out)}\n`);
    return EXIT.OK;
  }
  io.stdout.write(humanReplay(out));
  return EXIT.OK;
}

export function humanReplay(s: ReplaySummary): string {
  const lines: string[] = [];
  lines.push(
    `recording ${s.recording}: ${s.from} to ${s.to} (${s.days.toFixed(2)} days), ${s.cycles} cycles every ${s.intervalSeconds} s ` +
      `(recorded in ${s.recordedModes.join(' and ')} mode)`,
  );
  lines.push(`${s.hosts} hosts, ${s.vms} VMs (${s.vmsAppeared} appeared, ${s.vmsLeft} left); policy ${s.policyFile ?? '(defaults)'}`);
  lines.push('');
  const rows: [string, string][] = [
    ['every host on', `${s.allHostsOnKWh.toFixed(2)} kWh (${describeAllHostsOn(s)})`],
    ['under the policy', `${s.policyKWh.toFixed(2)} kWh (${describePolicyEnergy(s)})`],
    ['saving', `${s.savedKWh.toFixed(2)} kWh, ${s.savedPct.toFixed(1)} %, ${s.savedKWhPerDay.toFixed(2)} kWh per day`],
    ['host-hours off', `${s.hostHoursOff.toFixed(1)} of ${(s.hosts * s.days * HOURS_PER_DAY).toFixed(1)}`],
    ['migrations', `${s.migrations}, ${s.migratedGiB.toFixed(1)} GiB moved`],
    ['power cycles', `${s.powerOffs} power-offs, ${s.powerOns} power-ons`],
    ['memory over 100 %', `${Math.round(s.memoryOverloadHostSeconds)} host-seconds`],
    ['CPU denied', `${s.overallSlaViolationPct.toFixed(3)} % of CPU requested`],
    ['policy rules', describeRules(s.rules)],
    ['wall time', `${s.wallSeconds.toFixed(1)} s replaying, ${s.loadSeconds.toFixed(1)} s reading`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) lines.push(`  ${k.padEnd(width)}  ${v}`);
  lines.push('');
  lines.push(
    table(
      ['HOST', 'POWER-OFFS', 'POWER-ONS', 'PEAK CPU', 'PEAK MEMORY', 'OVER TARGET'],
      s.perHost.map((h) => [
        h.host,
        String(h.powerOffs),
        String(h.powerOns),
        `${Math.round(h.peakCpuRatio * PERCENT)}%`,
        `${Math.round(h.peakMemoryRatio * PERCENT)}%`,
        `${(h.secondsOverTarget / SECONDS_PER_HOUR).toFixed(1)} h`,
      ]),
    ).trimEnd(),
  );
  if (s.plot !== undefined) lines.push('', `plot: ${s.plot} (active hosts and power over time)`);
  return `${lines.join('\n')}\n`;
}

function describeAllHostsOn(s: ReplaySummary): string {
  if (s.allHostsOnMethod === 'measured') return 'measured: the BMCs\' watts';
  if (s.allHostsOnMethod === 'model') return 'the power models: the recording has no watts';
  return `measured for ${s.allHostsOnMeasuredPct.toFixed(0)} % of host-hours, the power models elsewhere`;
}

function describePolicyEnergy(s: ReplaySummary): string {
  if (s.policyMethod === 'model') return 'simulated with the power models';
  return `simulated, ${s.calibratedHosts} of ${s.hosts} hosts drawing as their recorded watts show, the power models for the rest`;
}

function describeRules(r: ReplaySummary['rules']): string {
  const parts = [
    `${r.pinnedVms} VM(s) pinned${r.protectedVms > 0 ? ` (${r.protectedVms} protected)` : ''}`,
    `${r.antiAffinityVms} in anti-affinity groups`,
    `${r.excludedHosts} host(s) excluded`,
  ];
  return parts.join(', ');
}
