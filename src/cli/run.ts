import { existsSync } from 'node:fs';
import { DEFAULTS, DEMO_CONTROL_SOCKET } from '../config/defaults.js';
import { formatIssue, loadPolicyFile, type LoadedPolicy } from '../config/load.js';
import { ConsolidatorError } from '../errors.js';
import type { DatacenterTotals } from '../sim/datacenter-totals.js';
import { createLogger, type LogFormat, type Logger, type LogLevel } from '../observability/logger.js';
import { composeDaemon } from './compose-daemon.js';
import { EXIT, type Command, type CommandIo, type OptionValues } from './command.js';
import { SOCKET_ENV } from './operator-context.js';

/** How often the demo checks whether its trace has ended. */
const SIMULATION_END_POLL_MS = 500;

export const runCommand: Command = {
  name: 'run',
  summary: 'run the daemon: observe, plan, act on every scheduled cycle',
  usage: 'consolidator run --policy FILE [--once]',
  description:
    'Runs the consolidation daemon with the policy in FILE: a cycle on every tick of its schedule\n' +
    '(observe -> plan -> check -> persist -> act -> record), /metrics and /healthz on metrics.listen,\n' +
    'systemd readiness and watchdog when started by systemd. SIGHUP reloads the policy (an invalid one\n' +
    'is rejected and the last good one stays); SIGTERM or SIGINT stops after running steps finish (or\n' +
    'are aborted at a deadline) and exits 0. An invalid policy at start exits 78.\n' +
    'With the simulated drivers (config/demo.yaml) it runs against a simulated datacenter replaying a\n' +
    'trace, sped up, and stops with a summary when the trace ends.',
  options: {
    policy: { type: 'string', short: 'p', valueName: 'FILE', help: 'the policy file (required)' },
    once: { type: 'boolean', help: 'run one cycle, then stop' },
  },
  examples: [
    ['consolidator run --policy /etc/consolidator/consolidator.yaml', 'the service, as systemd starts it'],
    ['consolidator run --policy config/demo.yaml --log-format pretty', 'the demo: a simulated datacenter, no hardware needed'],
    ['consolidator run --policy policy.yaml --once --log-level debug', 'one cycle, every decision logged'],
  ],
  async run(args, io) {
    const file = args.values['policy'];
    if (typeof file !== 'string') throw new ConsolidatorError('USAGE', `run: --policy FILE is required\nusage: ${this.usage}`);
    const result = await loadPolicyFile(file);
    if (!result.ok) {
      for (const issue of result.issues) io.stderr.write(`${formatIssue(issue)}\n`);
      io.stderr.write(`${file}: ${result.issues.length} problem${result.issues.length === 1 ? '' : 's'}, not starting\n`);
      return EXIT.CONFIG;
    }
    return runDaemon(result.value, args.values, io);
  },
};

/** How to reach a demo daemon from another terminal: the CLI finds these sockets by itself. */
/**
 * How to reach this daemon from a shell. `npx consolidator` in a source checkout (the README's demo);
 * plain `consolidator` where it is installed (the Debian package, `npm install -g`), which ship no src/.
 */
export function operatorHint(socket: string, installed = isInstalledCopy()): string {
  const found = socket === DEMO_CONTROL_SOCKET || socket === DEFAULTS.control.socket;
  return `operator commands: ${found ? '' : `${SOCKET_ENV}=${socket} `}${installed ? '' : 'npx '}consolidator status (socket ${socket})`;
}

function isInstalledCopy(): boolean {
  return !existsSync(new URL('../../src', import.meta.url));
}

export function loggerFor(loaded: LoadedPolicy, values: OptionValues, io: CommandIo): Logger {
  const format = (values['log-format'] ?? loaded.policy.logging.format) as LogFormat;
  const level = (values['log-level'] ?? loaded.policy.logging.level) as LogLevel;
  if (format !== 'json' && format !== 'pretty') throw new ConsolidatorError('USAGE', `--log-format takes json or pretty, not ${String(format)}`);
  if (!['error', 'warn', 'info', 'debug'].includes(level)) throw new ConsolidatorError('USAGE', `--log-level takes error, warn, info or debug, not ${String(level)}`);
  return createLogger({ level, format, stream: io.stdout });
}

async function runDaemon(loaded: LoadedPolicy, values: OptionValues, io: CommandIo): Promise<number> {
  const logger = loggerFor(loaded, values, io);
  for (const warning of loaded.warnings) logger.warn('policy warning', { issue: formatIssue(warning) });
  const { daemon, world, stateDirectory, dispose } = await composeDaemon(loaded, logger, { role: 'service', env: process.env, ...programEntry() });
  if (world) {
    logger.info('simulated datacenter', {
      startsAt: new Date(world.datacenter.nowMs).toISOString(),
      hosts: world.datacenter.setup.hosts.length,
      vms: world.datacenter.setup.vms.length,
      speedup: loaded.policy.simulation?.speedup,
      stateDirectory,
    });
  }
  const clock = world?.clock;

  let stopRequested!: () => void;
  const stopped = new Promise<void>((resolve) => {
    stopRequested = resolve;
  });
  const onHup = () => void daemon.reload();
  const onStop = (signal: string) => () => {
    logger.info('stop requested', { signal });
    stopRequested();
  };
  const onTerm = onStop('SIGTERM');
  const onInt = onStop('SIGINT');
  process.on('SIGHUP', onHup);
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  let endWatch: NodeJS.Timeout | undefined;
  try {
    await daemon.start();
    clock?.start();
    if (world) logger.info(operatorHint(loaded.policy.control.socket));
    if (values['once'] === true) {
      await daemon.runCycle();
      stopRequested();
    }
    if (world && loaded.policy.simulation?.stopAtEnd) {
      const w = world;
      endWatch = setInterval(() => {
        if (w.datacenter.nowSeconds >= w.horizonSeconds) stopRequested();
      }, SIMULATION_END_POLL_MS);
    }
    await stopped;
  } finally {
    clearInterval(endWatch);
    process.off('SIGHUP', onHup);
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    await daemon.stop();
    clock?.stop();
    await dispose().catch((e: unknown) => logger.warn('temporary state directory not removed', { stateDirectory, err: e }));
  }
  if (world) {
    const summary = simulationSummary(world.datacenter.totals(), world.datacenter.nowSeconds, world.datacenter.setup.hosts.length);
    logger.info(summary.story, summary.figures);
  }
  return EXIT.OK;
}

const JOULES_PER_KWH = 3.6e6;
const SECONDS_PER_HOUR = 3600;

/** One decimal place (kWh, hours, percent): what a reader compares at a glance. */
function oneDecimal(x: number): number {
  return Math.round(x * 10) / 10;
}

/**
 * The demo's closing line: the energy used under consolidation against every host on all the time
 * (the same load, each host that was off drawing its idle power instead), the host-hours off, the
 * migrations and the power cycles, from the simulated datacenter's own accounting.
 */
export function simulationSummary(totals: DatacenterTotals, simulatedSeconds: number, hosts: number): { story: string; figures: Record<string, number> } {
  const kWh = totals.energyJoules / JOULES_PER_KWH;
  const allOnKWh = totals.allHostsOnEnergyJoules / JOULES_PER_KWH;
  const savedPercent = allOnKWh > 0 ? (100 * (allOnKWh - kWh)) / allOnKWh : 0;
  const hostHoursOff = totals.hostOffSeconds / SECONDS_PER_HOUR;
  const simulatedHours = simulatedSeconds / SECONDS_PER_HOUR;
  const story =
    `simulation summary: ${oneDecimal(kWh)} kWh instead of ${oneDecimal(allOnKWh)} kWh with every host on: ${oneDecimal(savedPercent)} % saved; ` +
    `${oneDecimal(hostHoursOff)} host-hours off of ${oneDecimal(hosts * simulatedHours)} (at most ${totals.hostsPoweredOffPeak} of ${hosts} hosts off at once), ` +
    `${totals.migrations} migrations, ${totals.powerOffs} power-offs and ${totals.powerOns} power-ons in ${oneDecimal(simulatedHours)} simulated hours`;
  return {
    story,
    figures: {
      simulatedHours: oneDecimal(simulatedHours),
      energyKWh: Math.round(kWh * 1000) / 1000,
      allHostsOnEnergyKWh: Math.round(allOnKWh * 1000) / 1000,
      energySavedPercent: oneDecimal(savedPercent),
      hostHoursOff: oneDecimal(hostHoursOff),
      migrations: totals.migrations,
      powerOffs: totals.powerOffs,
      powerOns: totals.powerOns,
      hostsPoweredOffPeak: totals.hostsPoweredOffPeak,
      memoryOverloadHostSeconds: totals.memoryOverloadHostSeconds,
    },
  };
}

/** The program's main script, for the replay child (`consolidator report` in dry-run); none when run otherwise (tests). */
function programEntry(): { programEntry?: string } {
  const entry = process.argv[1];
  return entry !== undefined && /[/\\]main\.[jt]s$/.test(entry) ? { programEntry: entry } : {};
}
