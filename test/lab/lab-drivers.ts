import { Ssh2CommandRunner, type Ssh2RunnerSettings } from '../../src/drivers/exec/ssh2-command-runner.js';
import type { MigrateOptions } from '../../src/drivers/hypervisor/hypervisor-driver.js';
import { VirshHypervisor, type VirshHypervisorSettings } from '../../src/drivers/hypervisor/virsh-hypervisor.js';
import type { LogFields, Logger } from '../../src/observability/logger.js';
import type { Lab } from './lab.js';

/** A logger that keeps every line, for tests that check what was logged (and print it on failure). */
export class RecordingLogger implements Logger {
  constructor(
    readonly lines: { level: string; event: string; fields: LogFields }[] = [],
    private readonly base: LogFields = {},
  ) {}

  error(event: string, fields?: LogFields): void {
    this.lines.push({ level: 'error', event, fields: { ...this.base, ...fields } });
  }
  warn(event: string, fields?: LogFields): void {
    this.lines.push({ level: 'warn', event, fields: { ...this.base, ...fields } });
  }
  info(event: string, fields?: LogFields): void {
    this.lines.push({ level: 'info', event, fields: { ...this.base, ...fields } });
  }
  debug(event: string, fields?: LogFields): void {
    this.lines.push({ level: 'debug', event, fields: { ...this.base, ...fields } });
  }
  child(fields: LogFields): Logger {
    return new RecordingLogger(this.lines, { ...this.base, ...fields });
  }

  count(event: string, match: LogFields = {}): number {
    return this.lines.filter((l) => l.event === event && Object.entries(match).every(([k, v]) => l.fields[k] === v)).length;
  }
}

/** The real drivers, pointed at the lab's hosts (its key, its known_hosts), with test-sized settings. */
export function labDrivers(
  lab: Lab,
  options: { ssh?: Partial<Ssh2RunnerSettings>; virsh?: Partial<VirshHypervisorSettings>; knownHostsFile?: string } = {},
) {
  const logger = new RecordingLogger();
  const runner = new Ssh2CommandRunner({
    targets: lab.sshTargets(options.knownHostsFile),
    logger,
    settings: { connectTimeoutMs: 3_000, keepaliveIntervalMs: 1_000, keepaliveCountMax: 3, reconnectBackoffMinMs: 100, reconnectBackoffMaxMs: 1_000, ...options.ssh },
  });
  const hypervisor = new VirshHypervisor({ runner, logger, settings: { jobPollIntervalMs: 500, commandTimeoutMs: 15_000, ...options.virsh } });
  return { logger, runner, hypervisor };
}

/** How long a lab host may take to answer the drivers again after a power-on or a thaw (the runner backs off after a failed connection). */
export const RECONNECT_TIMEOUT_MS = 30_000;

export const MIGRATE_DEFAULTS: MigrateOptions = {
  bandwidthMiBps: 0,
  timeoutMs: 60_000,
  nonConvergence: 'abort',
  convergenceDeadlineMs: 30_000,
  persistent: true,
  undefineSource: true,
};

export function never(): AbortSignal {
  return new AbortController().signal;
}
