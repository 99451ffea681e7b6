import { DEFAULTS } from '../config/defaults.js';
import { formatIssue, loadPolicyFile, type LoadedPolicy } from '../config/load.js';
import { closest } from '../config/suggest.js';
import type { CommandRunner } from '../drivers/exec/command-runner.js';
import { Ssh2CommandRunner } from '../drivers/exec/ssh2-command-runner.js';
import type { HypervisorDriver } from '../drivers/hypervisor/hypervisor-driver.js';
import { VirshHypervisor } from '../drivers/hypervisor/virsh-hypervisor.js';
import type { PowerPath } from '../drivers/power/power-driver.js';
import { ConsolidatorError } from '../errors.js';
import type { HostId } from '../model/ids.js';
import { createLogger, type LogLevel, type Logger } from '../observability/logger.js';
import { isFleetHealthy } from '../preflight/check-result.js';
import { type CheckTarget, runFleetCheck } from '../preflight/fleet-check.js';
import { powerPathsFor } from './build-drivers.js';
import { checkReportJson, formatCheckReport } from './check-report.js';
import { EXIT, type Command, type CommandIo, type ParsedArgs } from './command.js';
import { DEFAULT_POLICY_FILE, JSON_OPTION, POLICY_OPTION } from './operator-context.js';

/** The drivers a check talks through; built from the policy, or fakes in tests. */
export interface CheckDrivers {
  readonly runner: CommandRunner;
  readonly hypervisor: HypervisorDriver;
  readonly powerPaths: (host: HostId) => readonly PowerPath[];
  close(): Promise<void>;
}

export type CheckDriversFactory = (loaded: LoadedPolicy, logger: Logger) => CheckDrivers;

/** The real drivers: SSH with the policy's keys and known_hosts, virsh over it, each host's power paths. */
export const policyCheckDrivers: CheckDriversFactory = (loaded, logger) => {
  const runner = new Ssh2CommandRunner({ targets: new Map(loaded.hosts.map((h) => [h.name, h.ssh])), logger });
  const hypervisor = new VirshHypervisor({ runner, logger, settings: { readPinnedMetadata: false } });
  const paths = new Map<HostId, readonly PowerPath[]>();
  const powerPaths = (host: HostId) => {
    let found = paths.get(host);
    if (found === undefined) paths.set(host, (found = powerPathsFor(loaded, host, { logger })));
    return found;
  };
  return { runner, hypervisor, powerPaths, close: () => runner.close() };
};

const positiveNumber = (args: ParsedArgs, name: string, fallback: number): number => {
  const raw = args.values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(value) || value <= 0) {
    throw new ConsolidatorError('USAGE', `check: --${name} must be a positive number, got ${JSON.stringify(raw)}\nusage: ${checkCommand.usage}`);
  }
  return value;
};

/** The hosts to check: the ones named (each must be in the policy), else all, in policy order. */
function selectTargets(loaded: LoadedPolicy, names: readonly string[]): CheckTarget[] {
  const known = loaded.hosts.map((h) => h.name);
  for (const name of names) {
    if (!known.includes(name)) {
      const suggestion = closest(name, known);
      throw new ConsolidatorError('USAGE', `check: ${name} is not a host of ${loaded.file}${suggestion !== undefined ? ` (did you mean ${suggestion}?)` : ''}; hosts: ${known.join(', ')}`);
    }
  }
  const chosen = names.length === 0 ? loaded.hosts : loaded.hosts.filter((h) => names.includes(h.name));
  return chosen.map((h) => ({ name: h.name, ssh: h.ssh, pairs: !h.exclude }));
}

/** `consolidator check` with the drivers `build` makes (tests pass fakes). */
export function checkCommandWith(build: CheckDriversFactory): Command {
  return {
    name: 'check',
    summary: 'preflight: check that every host, its BMC and every pair of hosts are ready, changing nothing',
    usage: 'consolidator check [HOST...] [--policy FILE] [--json]',
    description:
      'Checks each HOST of the policy (all of them when none is named), reading only: SSH answers with the\n' +
      'host key in known_hosts; libvirt and QEMU answer and print their versions; through each power path,\n' +
      'the BMC answers with the power state, a power reading where the driver reads one, and a system UUID\n' +
      'equal to the host\'s own DMI UUID. Then each ordered pair of the hosts (excluded hosts apart), as a\n' +
      "migration from the first to the second: the second's name resolves on the first, the disks of the\n" +
      "first's running guests exist on the second, and the second's libvirt and QEMU are not older.\n" +
      '\n' +
      'Prints one line per check with its result and detail, then every problem with its fix. Exits 0 when\n' +
      'every check passed or was skipped, 1 when one failed, 64 for a wrong host name or option, 78 when the\n' +
      'policy is not valid.',
    options: {
      ...POLICY_OPTION,
      ...JSON_OPTION,
      concurrency: { type: 'string', valueName: 'N', help: `hosts checked at once (default ${DEFAULTS.check.concurrency})` },
      timeout: { type: 'string', valueName: 'SECONDS', help: `each remote call at most (default ${DEFAULTS.check.timeoutSeconds})` },
    },
    examples: [
      ['consolidator check', 'every host of the installed policy, before the first enforce'],
      ['consolidator check h1 h2 --json | jq .counts', 'two hosts and the pair between them; the counts of passed, failed and skipped checks, for a script'],
    ],
    async run(args, io) {
      return runCheck(this, args, io, build);
    },
  };
}

async function runCheck(command: Command, args: ParsedArgs, io: CommandIo, build: CheckDriversFactory): Promise<number> {
  const file = typeof args.values['policy'] === 'string' ? args.values['policy'] : DEFAULT_POLICY_FILE;
  const concurrency = Math.floor(positiveNumber(args, 'concurrency', DEFAULTS.check.concurrency));
  const timeoutMs = positiveNumber(args, 'timeout', DEFAULTS.check.timeoutSeconds) * 1000;
  const loadResult = await loadPolicyFile(file);
  if (!loadResult.ok) {
    for (const issue of loadResult.issues) io.stderr.write(`${formatIssue(issue)}\n`);
    io.stderr.write(`${file}: not a valid policy; nothing checked\n`);
    return EXIT.CONFIG;
  }
  const loaded = loadResult.value;
  for (const warning of loaded.warnings) io.stderr.write(`warning: ${formatIssue(warning)}\n`);
  if (loaded.policy.hypervisor.driver === 'simulated' || loaded.policy.power.driver === 'simulated') {
    throw new ConsolidatorError('USAGE', `${command.name}: ${file} uses the simulated drivers: there are no real hosts to check`);
  }
  const targets = selectTargets(loaded, args.positionals);
  const level = (typeof args.values['log-level'] === 'string' ? args.values['log-level'] : 'error') as LogLevel;
  const logger = createLogger({ level, format: args.values['log-format'] === 'json' ? 'json' : 'pretty', stream: io.stderr });
  const drivers = build(loaded, logger);
  try {
    const report = await runFleetCheck({
      runner: drivers.runner,
      hypervisor: drivers.hypervisor,
      powerPaths: drivers.powerPaths,
      targets,
      concurrency,
      timeoutMs,
    });
    io.stdout.write(args.values['json'] === true ? `${JSON.stringify(checkReportJson(report), null, 2)}\n` : formatCheckReport(report));
    return isFleetHealthy(report) ? EXIT.OK : EXIT.FAILURE;
  } finally {
    await drivers.close();
  }
}

export const checkCommand: Command = checkCommandWith(policyCheckDrivers);
