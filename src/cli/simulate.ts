import { writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { formatIssue, loadPolicyFile } from '../config/load.js';
import { PolicySchema, type Policy } from '../config/schema.js';
import { ConsolidatorError, errorMessage, isConsolidatorError } from '../errors.js';
import { BASELINE_NAMES, createBaseline } from '../sim/baselines/create-baseline.js';
import { buildCloudSimSetup, CLOUDSIM } from '../sim/cloudsim-setup.js';
import { energyLowerBound } from '../sim/energy-lower-bound.js';
import { loadHostTypeFile, type DeclaredHostType } from '../sim/host-type-file.js';
import { createPlannerPolicy, type MemoryView, type PlannerSimulationPolicy } from '../sim/planner-policy.js';
import { ProgressBar } from './progress-bar.js';
import { runSimulation, type SimulationReport } from '../sim/run-simulation.js';
import type { SimulationPolicy } from '../sim/simulation-policy.js';
import type { SimulationSetup } from '../sim/simulation-setup.js';
import { renderActivitySvg } from '../sim/svg-plot.js';
import { buildTraceSetup } from '../sim/trace-setup.js';
import { loadWorkload } from '../sim/workload/load-workload.js';
import type { Workload } from '../sim/workload/workload.js';
import { dateOptionMs, EXIT, requirePositional, type Command, type CommandIo, type ParsedArgs } from './command.js';
import { runReplayCommand } from './simulate-recording.js';

/** sysexits(3) EX_DATAERR: the workload's data is bad (a trace with a non-number, a missing vms.csv, an empty folder). */
export const EXIT_DATA = EXIT.DATA;

const SETUPS = ['cloudsim', 'trace'] as const;
type SetupName = (typeof SETUPS)[number];
const MEMORY_VIEWS: readonly MemoryView[] = ['admitted', 'observed'];
/** The policy used when neither --policy nor --baseline is given: every default of the schema. */
const DEFAULT_POLICY_INPUT = { version: 1, hosts: [{ name: 'simulated' }], hypervisor: { driver: 'simulated' }, power: { driver: 'simulated' } } as const;
const NO_PLOT = 'none';

export const simulateCommand: Command = {
  name: 'simulate',
  summary: "replay a workload in a simulated datacenter under consolidator's planner or a reference algorithm",
  usage:
    'consolidator simulate WORKLOAD [--setup cloudsim|trace] [--policy FILE | --baseline npa|dvfs|thr-mmt|lr-mmt] ' +
    '[--hosts N] [--host-type FILE] [--memory admitted|observed] [--plot FILE] [--json]\n' +
    '       consolidator simulate --recording DIR [--policy FILE] [--from DATE] [--to DATE] [--plot FILE] [--json]',
  description:
    'Replays the VM traces in WORKLOAD (a folder: PlanetLab, one CPU trace per file, or Bitbrains, vms.csv\n' +
    'with cpu/ and mem/ folders, 300 s samples, any length; or a consolidator trace file, .csv or .csv.gz,\n' +
    'any sample interval, VMs that appear and disappear) in a simulated datacenter, with the planner the\n' +
    'daemon runs (the same code, under the planner settings of --policy; the policy file\'s hosts, drivers\n' +
    'and schedule are not used: the setup gives the hosts and a decision every 300 s), or with one of the\n' +
    'reference algorithms of Beloglazov & Buyya (--baseline). Prints energy, migrations and the pooled SLA\n' +
    'figures, and writes a plot of active hosts and power over time as an SVG file.\n' +
    '\n' +
    'Setups: cloudsim (the default for PlanetLab) is the CloudSim 3.0.3 reference: 800 HP ML110 G4/G5\n' +
    'hosts, idle hosts off at no cost; memory binds only the initial placement, and by default the planner\n' +
    'sees memory that way too (--memory admitted; --memory observed shows it what the VMs hold). trace (the\n' +
    'default for Bitbrains and trace files) is a power-managed datacenter of --hosts identical hosts of --host-type that\n' +
    'really power off and boot, with memory overcommitted and its overload counted; its JSON has\n' +
    'lowerBoundKWh, the energy no policy can go below on that host type.\n' +
    '\n' +
    'With --recording DIR (a daemon\'s stateDirectory/recording), replays what the daemon observed under\n' +
    'the planner and --policy (any policy: run it twice to compare two): the recorded hosts, their power\n' +
    'models and the VMs\' CPU and memory use, a decision every recorded cycle; prints the energy with every\n' +
    'host on against the energy under the policy, the saving, host-hours off, migrations and GiB moved,\n' +
    'and per host its power cycles, peak use and time over the policy\'s targets.\n' +
    '\n' +
    'Exit status: 0 done; 64 usage error; 65 bad workload data (the message names the file and line);\n' +
    '78 the policy or host type file does not validate (every problem as FILE:LINE:COL); 1 anything else.',
  options: {
    setup: { type: 'string', valueName: 'cloudsim|trace', help: 'simulated datacenter (default: cloudsim for PlanetLab, trace for Bitbrains)' },
    policy: { type: 'string', valueName: 'FILE', help: "consolidator policy whose planner settings are used (default: the schema's defaults)" },
    baseline: { type: 'string', valueName: 'NAME', help: `run a reference algorithm instead: ${BASELINE_NAMES.join(', ')} (cloudsim setup only)` },
    hosts: { type: 'string', valueName: 'N', help: `number of hosts (default: ${CLOUDSIM.hostCount} for cloudsim, one per VM for trace)` },
    'host-type': { type: 'string', valueName: 'FILE', help: 'YAML host type for the trace setup: cores, memoryMiB, powerCurveWatts, bootSeconds' },
    memory: { type: 'string', valueName: 'admitted|observed', help: 'memory the planner sees: as the setup admits it (default) or as VMs hold it' },
    plot: { type: 'string', valueName: 'FILE', help: `SVG plot path (default simulation-<workload>-<policy>.svg next to WORKLOAD_DIR; "${NO_PLOT}" for no plot)` },
    recording: { type: 'string', valueName: 'DIR', help: "replay a daemon's recording (stateDirectory/recording) instead of a trace" },
    from: { type: 'string', valueName: 'DATE', help: 'with --recording: from this date and time (ISO 8601; default: the start)' },
    to: { type: 'string', valueName: 'DATE', help: 'with --recording: until this date and time (ISO 8601, exclusive; default: the end)' },
    json: { type: 'boolean', help: 'print one JSON object as the last line of stdout (no plot unless --plot, no progress bar)' },
  },
  examples: [
    ['consolidator simulate bench/data/planetlab/20110303 --policy bench/planetlab-policy.yaml', "a PlanetLab day under consolidator's planner"],
    ['consolidator simulate bench/data/planetlab/20110303 --baseline lr-mmt --json', 'the LR-MMT-1.2 reference, as JSON'],
    [
      'consolidator simulate bench/data/bitbrains/pl_2013-8_1d --host-type bench/bitbrains-host.yaml --policy bench/bitbrains-policy.yaml',
      'Bitbrains (CPU and memory) on a declared host type',
    ],
  ],
  async run(args, io) {
    const recording = stringOption(args.values['recording']);
    if (recording !== undefined) return replay(recording, args, io);
    const dir = requirePositional(this, args, 0, 'WORKLOAD (a folder of traces or a trace file)');
    if (args.positionals.length > 1) throw usage(`unexpected argument ${JSON.stringify(args.positionals[1])}`);
    const json = args.values['json'] === true;
    const policyFile = stringOption(args.values['policy']);
    const baseline = stringOption(args.values['baseline']);
    const hostTypeFile = stringOption(args.values['host-type']);
    const plotOption = stringOption(args.values['plot']);
    if (policyFile !== undefined && baseline !== undefined) throw usage('--policy and --baseline exclude each other');
    if (baseline !== undefined && !(BASELINE_NAMES as readonly string[]).includes(baseline)) {
      throw usage(`unknown baseline ${JSON.stringify(baseline)}; valid: ${BASELINE_NAMES.join(', ')}`);
    }
    const setupOption = stringOption(args.values['setup']);
    if (setupOption !== undefined && !(SETUPS as readonly string[]).includes(setupOption)) {
      throw usage(`unknown setup ${JSON.stringify(setupOption)}; valid: ${SETUPS.join(', ')}`);
    }
    const memoryView = (stringOption(args.values['memory']) ?? 'admitted') as MemoryView;
    if (!MEMORY_VIEWS.includes(memoryView)) throw usage(`--memory must be ${MEMORY_VIEWS.join(' or ')}`);
    const hostCount = parseHostCount(stringOption(args.values['hosts']));

    // Cheap checks first: a bad policy should not wait for a thousand trace files to load.
    let policy: Policy | undefined;
    if (policyFile !== undefined) {
      policy = await loadPolicyReporting(policyFile, io);
      if (policy === undefined) return EXIT.CONFIG;
    } else if (baseline === undefined) {
      policy = PolicySchema.parse(DEFAULT_POLICY_INPUT);
    }
    let hostType: DeclaredHostType | undefined;
    try {
      if (hostTypeFile !== undefined) hostType = await loadHostTypeFile(hostTypeFile);
    } catch (e) {
      return reportError(e, io);
    }

    const loadStarted = performance.now();
    let workload: Workload;
    try {
      workload = await loadWorkload(dir);
    } catch (e) {
      return reportError(e, io);
    }
    const loadSeconds = (performance.now() - loadStarted) / 1000;

    const setupName: SetupName = (setupOption as SetupName | undefined) ?? (workload.format === 'planetlab' ? 'cloudsim' : 'trace');
    const setup = buildSetup(setupName, workload, hostCount, hostType, hostTypeFile);
    const bound = setupName === 'trace' && hostType !== undefined ? energyLowerBound(setup, hostType) : undefined;
    if (baseline !== undefined && setupName !== 'cloudsim') {
      throw usage('the baselines are the CloudSim reference algorithms: they run only with --setup cloudsim');
    }
    let planner: PlannerSimulationPolicy | undefined;
    let simPolicy: SimulationPolicy;
    if (baseline !== undefined) {
      simPolicy = createBaseline(baseline);
    } else {
      planner = createPlannerPolicy({ policy: policy as Policy, setup, memoryView });
      simPolicy = planner;
    }

    const stderrIsTty = (io.stderr as { isTTY?: boolean }).isTTY === true;
    const bar = !json && stderrIsTty ? new ProgressBar(io.stderr, { label: `${basename(resolve(dir))} ${simPolicy.name}` }) : undefined;
    let report: SimulationReport;
    try {
      report = runSimulation(setup, simPolicy, bar ? { onProgress: (done, total) => bar.update(done, total) } : {});
    } finally {
      bar?.done();
    }

    const name = `${basename(resolve(dir))}-${slug(simPolicy.name)}`;
    // By default next to the workload folder it plots (never in whatever directory the command runs in).
    const plotFile = plotOption === NO_PLOT ? undefined : (plotOption ?? (json ? undefined : join(dirname(resolve(dir)), `simulation-${name}.svg`)));
    if (plotFile !== undefined) {
      const svg = renderActivitySvg(report.series, {
        title: `${basename(resolve(dir))}: ${simPolicy.name}, ${setup.hosts.length} hosts, ${setup.vms.length} VMs`,
        subtitle:
          `${setup.name === 'cloudsim' ? 'CloudSim 3.0.3 setup' : `${hostType?.name ?? setup.name}`}: ` +
          `${report.energyKWh.toFixed(2)} kWh, ${report.migrations} migrations, overall SLA violation ${report.overallSlaViolationPct.toFixed(3)} %`,
      });
      try {
        await writeFile(plotFile, svg);
      } catch (e) {
        throw new ConsolidatorError('USAGE', `cannot write the plot to ${plotFile}: ${errorMessage(e)}`, { cause: e });
      }
    }

    const summary = {
      workload: resolve(dir),
      format: workload.format,
      ...(policyFile === undefined ? {} : { policyFile }),
      ...(hostType === undefined ? {} : { hostType: hostType.name }),
      memoryView: baseline === undefined ? memoryView : 'admitted',
      ...withoutSeries(report),
      ...(bound === undefined ? {} : { lowerBoundKWh: bound.kWh, ratioToLowerBound: report.energyKWh / bound.kWh }),
      loadSeconds,
      ...(planner ? { planner: planner.stats() } : {}),
      ...(plotFile === undefined ? {} : { plot: plotFile }),
    };
    if (json) {
      io.stdout.write(`${JSON.stringify(summary)}\n`);
      return EXIT.OK;
    }
    io.stdout.write(humanReport(report, workload, setup, { policyFile, planner, memoryView: summary.memoryView, hostType, loadSeconds, plotFile, boundKWh: bound?.kWh }));
    return EXIT.OK;
  },
};

/** The policy in FILE, its warnings on stderr; undefined (its problems on stderr) when it is not valid. */
async function loadPolicyReporting(policyFile: string, io: CommandIo): Promise<Policy | undefined> {
  const loaded = await loadPolicyFile(policyFile);
  if (!loaded.ok) {
    for (const issue of loaded.issues) io.stderr.write(`${formatIssue(issue)}\n`);
    io.stderr.write(`${policyFile}: ${loaded.issues.length} problem${loaded.issues.length === 1 ? '' : 's'}, policy not valid\n`);
    return undefined;
  }
  for (const warning of loaded.value.warnings) io.stderr.write(`warning: ${formatIssue(warning)}\n`);
  return loaded.value.policy;
}

async function replay(recording: string, args: ParsedArgs, io: CommandIo): Promise<number> {
  if (args.positionals.length > 0) throw usage(`--recording replays a recording: no WORKLOAD argument (got ${JSON.stringify(args.positionals[0])})`);
  for (const option of ['baseline', 'setup', 'hosts', 'host-type', 'memory']) {
    if (args.values[option] !== undefined) throw usage(`--${option} does not apply to --recording (the recording gives the hosts)`);
  }
  const policyFile = stringOption(args.values['policy']);
  const policy = policyFile === undefined ? PolicySchema.parse(DEFAULT_POLICY_INPUT) : await loadPolicyReporting(policyFile, io);
  if (policy === undefined) return EXIT.CONFIG;
  const range = { ...dateOption(args.values['from'], 'from', 'fromMs'), ...dateOption(args.values['to'], 'to', 'toMs') };
  const plot = stringOption(args.values['plot']);
  try {
    return await runReplayCommand({ dir: recording, policy, policyFile, range, json: args.values['json'] === true, plot }, io);
  } catch (e) {
    if (isConsolidatorError(e, 'WORKLOAD_INVALID')) return reportError(e, io);
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') {
      io.stderr.write(`consolidator: ${recording}: no such recording folder\n`);
      return EXIT_DATA;
    }
    throw e;
  }
}

function dateOption<K extends string>(value: unknown, name: string, key: K): Partial<Record<K, number>> {
  const ms = dateOptionMs(value, name, usage);
  return ms === undefined ? {} : ({ [key]: ms } as Partial<Record<K, number>>);
}

function buildSetup(name: SetupName, workload: Workload, hostCount: number | undefined, hostType: DeclaredHostType | undefined, hostTypeFile: string | undefined): SimulationSetup {
  if (name === 'cloudsim') {
    if (workload.format === 'bitbrains') {
      throw usage('the cloudsim setup replays CPU-only traces (PlanetLab, trace files); for a Bitbrains workload use --setup trace --host-type FILE');
    }
    if (hostType !== undefined) throw usage(`--host-type ${hostTypeFile ?? ''} applies to the trace setup; the cloudsim setup has its own hosts`);
    return buildCloudSimSetup(workload, hostCount === undefined ? {} : { hostCount });
  }
  if (hostType === undefined) throw usage('the trace setup needs --host-type FILE (for example bench/bitbrains-host.yaml)');
  return buildTraceSetup(workload, { hostType, hostCount: hostCount ?? workload.vms.length, name: `trace ${hostType.name}` });
}

function humanReport(
  r: SimulationReport,
  workload: Workload,
  setup: SimulationSetup,
  extra: {
    policyFile: string | undefined;
    planner: PlannerSimulationPolicy | undefined;
    memoryView: string;
    hostType: DeclaredHostType | undefined;
    loadSeconds: number;
    plotFile: string | undefined;
    boundKWh: number | undefined;
  },
): string {
  const lines: string[] = [];
  const policyText = extra.policyFile !== undefined ? `${r.policy} (policy ${extra.policyFile})` : extra.planner ? `${r.policy} (default policy)` : r.policy;
  lines.push(
    `${workload.dir}: ${workload.format}, ${r.vms} VMs, ${workload.samples} samples of ${workload.sampleSeconds} s, ` +
      `${r.decisions} decisions over ${(r.simulatedSeconds / 3600).toFixed(1)} h`,
  );
  lines.push(`setup ${setup.name}: ${r.hosts} hosts${extra.hostType?.source ? ` (${extra.hostType.source})` : ''}; policy ${policyText}`);
  if (extra.planner) {
    lines.push(
      extra.memoryView === 'admitted' && setup.memoryAdmission === 'reserve-at-creation'
        ? 'memory: as the setup admits it (reserved only at creation, as for the reference baselines): a CPU-only comparison'
        : 'memory: as the VMs hold it',
    );
  }
  lines.push('');
  const rows: [string, string][] = [
    ['energy', `${r.energyKWh.toFixed(2)} kWh`],
    ...(extra.boundKWh === undefined
      ? []
      : ([['lower bound', `${extra.boundKWh.toFixed(2)} kWh (energy is ${(r.energyKWh / extra.boundKWh).toFixed(3)}x the bound no policy can reach)`]] as [string, string][])),
    ['migrations', `${r.migrations}${r.chainedMigrations > 0 ? ` (${r.chainedMigrations} chained)` : ''}, ${r.migratedGiB.toFixed(1)} GiB moved`],
    ['SLATAH (pooled)', `${r.slatahPct.toFixed(3)} %`],
    ['PDM (pooled)', `${r.pdmPct.toFixed(4)} %`],
    ['SLAV = SLATAH x PDM', `${r.slavPct.toPrecision(3)} %`],
    ['ESV = energy x SLAV', r.esv.toPrecision(3)],
    ['overall SLA violation', `${r.overallSlaViolationPct.toFixed(3)} % of CPU requested was denied`],
    ['hosts off at peak', String(r.hostsPoweredOffPeak)],
    [
      'power-offs / power-ons',
      setup.idleHostsAreOff
        ? `not counted: this setup switches idle hosts off and on by itself${extra.planner ? ` (the planner asked for ${extra.planner.stats().plannedPowerOffs} / ${extra.planner.stats().plannedPowerOns})` : ''}`
        : `${r.powerOffs} / ${r.powerOns}`,
    ],
    ['memory over 100 %', `${Math.round(r.memoryOverloadHostSeconds)} host-seconds`],
    ['VMs alive at the end', `${r.vmsAliveAtEnd}${r.unplacedVms > 0 ? ` (${r.unplacedVms} could not be placed)` : ''}`],
    ['wall time', `${r.wallSeconds.toFixed(1)} s simulating, ${extra.loadSeconds.toFixed(1)} s loading`],
  ];
  const rejected = Object.entries(r.rejectedActions).filter(([, n]) => (n ?? 0) > 0);
  if (rejected.length > 0) rows.push(['actions refused', rejected.map(([k, n]) => `${k} ${n}`).join(', ')]);
  if (extra.planner) {
    const s = extra.planner.stats();
    rows.push(['plans', `${s.plans} (${s.rejectedPlans} broke an invariant and ran nothing), ${s.planSeconds.toFixed(1)} s planning`]);
  }
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) lines.push(`  ${k.padEnd(width)}  ${v}`);
  lines.push('');
  if (extra.plotFile !== undefined) lines.push(`plot: ${extra.plotFile} (active hosts and power over time)`);
  return `${lines.join('\n')}\n`;
}

function withoutSeries(report: SimulationReport): Omit<SimulationReport, 'series'> {
  const { series: _series, ...rest } = report;
  return rest;
}

function reportError(e: unknown, io: CommandIo): number {
  if (isConsolidatorError(e, 'WORKLOAD_INVALID')) {
    io.stderr.write(`consolidator: ${e.message}\n`);
    return EXIT_DATA;
  }
  if (isConsolidatorError(e, 'POLICY_INVALID')) {
    io.stderr.write(`consolidator: ${e.message}\n`);
    return EXIT.CONFIG;
  }
  throw e;
}

function parseHostCount(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^[1-9]\d*$/.test(value)) throw usage(`--hosts must be a positive whole number, got ${JSON.stringify(value)}`);
  return Number(value);
}

function stringOption(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

function slug(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9.]+/g, '-').replace(/^-|-$/g, '');
}

function usage(message: string): ConsolidatorError {
  return new ConsolidatorError('USAGE', `simulate: ${message}\nsee: consolidator simulate --help`);
}
