import { ConsolidatorError, errorMessage, type ErrorCode } from '../../errors.js';
import { assertDomainName, assertHostName, type HostId, type VmId } from '../../model/ids.js';
import type { VmState } from '../../model/snapshot.js';
import type { Logger } from '../../observability/logger.js';
import type { CommandRunner, ExecResult } from '../exec/command-runner.js';
import type {
  DomainInfo,
  HostObservation,
  HypervisorDriver,
  MigrateOptions,
  MigrationProgress,
  MigrationResult,
  NonConvergenceAction,
  PreflightResult,
} from './hypervisor-driver.js';
import {
  isInactive,
  classifyVirshError,
  compareVersions,
  cpuCoresBetween,
  domainCpuCores,
  isPinnedMetadata,
  parseDomblklist,
  parseDomjobinfo,
  parseDomstate,
  parseDomstatsRaw,
  parseMeminfo,
  parseProcStat,
  parseUptimeSeconds,
  parseUuidNameList,
  parseVirshVersion,
  SECTION_MARKER,
  splitSections,
  virshErrorLine,
  type DomainState,
  type JobInfo,
  type ProcStat,
} from './virsh-parsers.js';

export interface VirshHypervisorSettings {
  /** Timeout of one short remote command (observation, domstate, domjobinfo, suspend, ...). */
  readonly commandTimeoutMs: number;
  /** How often a running migration is polled with `virsh domjobinfo`. */
  readonly jobPollIntervalMs: number;
  /** After `virsh domjobabort`, how long `virsh migrate` may take to give up before we verify anyway. */
  readonly abortGraceMs: number;
  /** After `virsh migrate` ends, how long we keep checking until the VM shows up where it should. */
  readonly verifyTimeoutMs: number;
  /** Read `<consolidator:pinned/>` from each domain's metadata during observation. */
  readonly readPinnedMetadata: boolean;
  /** Memory the destination must have free beyond the VM's own, for the preflight. */
  readonly preflightMemoryHeadroomMiB: number;
}

export const VIRSH_HYPERVISOR_DEFAULTS: VirshHypervisorSettings = {
  commandTimeoutMs: 30_000,
  jobPollIntervalMs: 1_000,
  abortGraceMs: 30_000,
  verifyTimeoutMs: 15_000,
  readPinnedMetadata: true,
  preflightMemoryHeadroomMiB: 0,
};

/** XML namespace of consolidator's libvirt metadata (`<consolidator:pinned/>`). */
export const METADATA_NAMESPACE = 'https://consolidator.dev/xmlns/1';

export interface VirshHypervisorDeps {
  readonly runner: CommandRunner;
  readonly logger: Logger;
  readonly settings?: Partial<VirshHypervisorSettings>;
  /** Wall clock, for observation timestamps and migration durations. */
  readonly now?: () => number;
}

/** Previous sample per host, for CPU deltas. */
interface HostSample {
  readonly stat: ProcStat;
  readonly uptimeSeconds: number;
  /** Cumulative guest CPU ns per domain UUID (or name when the UUID is not known). */
  readonly domainCpuNs: ReadonlyMap<string, number>;
}

/**
 * One command per host per observation: /proc/stat, /proc/meminfo, /proc/uptime, the domain list,
 * then ONE virsh process for the versions, `domstats --raw` and every domain's metadata. Domain
 * UUIDs come from virsh itself and are hexadecimal, so they are safe inside virsh's command line.
 */
export function observeScript(readPinnedMetadata: boolean): string {
  const m = SECTION_MARKER;
  const metadata = readPinnedMetadata
    ? `for u in $(printf '%s\\n' "$list" | cut -d' ' -f1); do cmds="$cmds; echo ${m} metadata $u; metadata $u --uri ${METADATA_NAMESPACE}"; done`
    : '';
  return [
    'set -e',
    `echo '${m} stat'; cat /proc/stat`,
    `echo '${m} meminfo'; cat /proc/meminfo`,
    `echo '${m} uptime'; cat /proc/uptime`,
    'list=$(virsh list --all --uuid --name)',
    `echo '${m} domains'; printf '%s\\n' "$list"`,
    `cmds='version --daemon; echo ${m} domstats; domstats --raw'`,
    metadata,
    // virsh keeps going after a failed command in a batch (a domain without metadata); a batch whose
    // connection fails shows up as a missing domstats section.
    `echo '${m} version'; virsh "$cmds" || true`,
    `echo '${m} end'`,
  ]
    .filter(Boolean)
    .join('\n');
}

/**
 * HypervisorDriver for libvirt hosts, over SSH with virsh. Observation reads /proc and
 * `virsh domstats --raw` in one command per host; migration runs `virsh migrate --live` on the source
 * towards qemu+ssh://DEST/system, follows it with `virsh domjobinfo`, applies the non-convergence
 * policy, aborts it with `virsh domjobabort` at its timeout, and verifies where the VM is before it
 * returns or throws.
 */
export class VirshHypervisor implements HypervisorDriver {
  private readonly settings: VirshHypervisorSettings;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly samples = new Map<HostId, HostSample>();

  constructor(private readonly deps: VirshHypervisorDeps) {
    this.settings = { ...VIRSH_HYPERVISOR_DEFAULTS, ...deps.settings };
    this.log = deps.logger.child({ component: 'virsh' });
    this.now = deps.now ?? Date.now;
  }

  async inspect(host: HostId, signal: AbortSignal): Promise<HostObservation> {
    return this.observe(host, signal, true);
  }

  async listDomains(host: HostId, signal: AbortSignal): Promise<readonly DomainInfo[]> {
    return (await this.observe(host, signal, false)).domains;
  }

  async preflight(vm: VmId, from: HostId, to: HostId, signal: AbortSignal): Promise<PreflightResult> {
    assertDomainName(vm);
    assertHostName(from);
    assertHostName(to);
    const problems: string[] = [];
    if (from === to) return { ok: false, problems: [`source and destination are the same host (${from})`] };

    // On the source: is the destination's name resolvable there, the VM's state, size and disks.
    const m = SECTION_MARKER;
    const sourceScript = [
      `echo '${m} resolve'; getent hosts "$1" || echo '${m} unresolvable'`,
      `echo '${m} version'; virsh version --daemon`,
      `echo '${m} domstats'; virsh domstats --raw "$2"`,
      `echo '${m} blk'; virsh domblklist --details "$2"`,
      `echo '${m} end'`,
    ].join('\n');
    let source: Map<string, string>;
    try {
      const r = await this.run(from, ['sh', '-c', sourceScript, 'sh', to, vm], signal);
      source = splitSections(r.stdout);
      if (!source.has('end') || !source.has('domstats')) {
        return { ok: false, problems: [`source ${from}: ${virshErrorLine(r.stderr) || 'incomplete answer'}`] };
      }
      if (classifyVirshError(r.stderr) === 'no-domain' || (source.get('domstats') ?? '').trim() === '') {
        return { ok: false, problems: [`VM ${vm} is not defined on ${from}`] };
      }
    } catch (e) {
      return { ok: false, problems: [`source ${from} unreachable: ${errorMessage(e)}`] };
    }
    if (source.has('unresolvable')) problems.push(`destination name ${to} does not resolve on ${from} (getent hosts ${to})`);
    const [stats] = parseDomstatsRaw(source.get('domstats') ?? '');
    if (!stats) return { ok: false, problems: [`VM ${vm} is not defined on ${from}`] };
    if (isInactive(stats.state)) problems.push(`VM ${vm} is not running or paused on ${from}`);
    const sourceVersions = parseVirshVersion(source.get('version') ?? '');
    const disks = parseDomblklist(source.get('blk') ?? '');
    const localPaths: string[] = [];
    for (const d of disks) {
      if (d.source === undefined || d.type === 'network') continue;
      if (d.type === 'file' || d.type === 'block' || d.type === 'dir') localPaths.push(d.source);
      else problems.push(`disk ${d.target} of ${vm} is a ${d.type} disk; cannot check that ${to} sees it`);
    }

    // On the destination: libvirtd answers, versions, free memory, the VM's disk paths exist.
    const destScript = [
      `echo '${m} version'; virsh version --daemon`,
      `echo '${m} meminfo'; cat /proc/meminfo`,
      `echo '${m} missing'; for p; do [ -e "$p" ] || printf '%s\\n' "$p"; done`,
      `echo '${m} end'`,
    ].join('\n');
    let dest: Map<string, string>;
    try {
      const r = await this.run(to, ['sh', '-c', destScript, 'sh', ...localPaths], signal);
      dest = splitSections(r.stdout);
      const destVersions = parseVirshVersion(dest.get('version') ?? '');
      if (!dest.has('end') || destVersions.libvirt === undefined) {
        problems.push(`libvirtd on ${to} does not answer: ${virshErrorLine(r.stderr) || 'no version'}`);
      } else {
        if (sourceVersions.qemu && destVersions.qemu && compareVersions(destVersions.qemu, sourceVersions.qemu) < 0) {
          problems.push(`QEMU on ${to} (${destVersions.qemu}) is older than on ${from} (${sourceVersions.qemu})`);
        }
        if (!destVersions.qemu) problems.push(`${to} reports no QEMU hypervisor`);
        if (sourceVersions.libvirt && compareVersions(destVersions.libvirt, sourceVersions.libvirt) < 0) {
          problems.push(`libvirt on ${to} (${destVersions.libvirt}) is older than on ${from} (${sourceVersions.libvirt})`);
        }
      }
      const mem = parseMeminfo(dest.get('meminfo') ?? '');
      const needed = stats.memoryMiB + this.settings.preflightMemoryHeadroomMiB;
      if (mem.availableMiB < needed) {
        problems.push(`${to} has ${Math.floor(mem.availableMiB)} MiB available, ${vm} needs ${Math.ceil(needed)} MiB`);
      }
      for (const path of (dest.get('missing') ?? '').split('\n').filter(Boolean)) {
        problems.push(`disk ${path} of ${vm} does not exist on ${to} (no shared storage?)`);
      }
    } catch (e) {
      problems.push(`destination ${to} unreachable: ${errorMessage(e)}`);
    }
    return { ok: problems.length === 0, problems };
  }

  async migrate(
    vm: VmId,
    from: HostId,
    to: HostId,
    options: MigrateOptions,
    signal: AbortSignal,
    onProgress?: (progress: MigrationProgress) => void,
  ): Promise<MigrationResult> {
    assertDomainName(vm);
    assertHostName(from);
    assertHostName(to);
    if (from === to) throw new ConsolidatorError('MIGRATION_FAILED', `cannot migrate ${vm}: ${from} is both source and destination`, { details: { vm, from, to } });
    return new Migration(this, vm, from, to, options, signal, onProgress).run();
  }

  async abortMigration(vm: VmId, from: HostId, signal: AbortSignal): Promise<void> {
    assertDomainName(vm);
    assertHostName(from);
    const r = await this.run(from, ['virsh', 'domjobabort', '--domain', vm], signal);
    if (r.exitCode !== 0 && classifyVirshError(r.stderr) !== 'no-job') {
      throw new ConsolidatorError('COMMAND_FAILED', `virsh domjobabort ${vm} on ${from}: ${virshErrorLine(r.stderr)}`, { details: { vm, host: from } });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Internals shared with Migration

  /** Runs a short command with the default timeout. */
  run(host: HostId, argv: readonly string[], signal: AbortSignal, timeoutMs = this.settings.commandTimeoutMs): Promise<ExecResult> {
    return this.deps.runner.run(host, argv, { timeoutMs, signal });
  }

  get config(): VirshHypervisorSettings {
    return this.settings;
  }

  get logger(): Logger {
    return this.log;
  }

  clock(): number {
    return this.now();
  }

  /** Where a domain is on one host: its state, absent, or unknown (the host did not answer). */
  async domainStateOn(host: HostId, vm: VmId, signal: AbortSignal): Promise<Location> {
    try {
      const r = await this.run(host, ['virsh', 'domstate', '--reason', '--domain', vm], signal);
      if (r.exitCode === 0) return { kind: 'present', state: parseDomstate(r.stdout) };
      if (classifyVirshError(r.stderr) === 'no-domain') return { kind: 'absent' };
      return { kind: 'unknown', why: virshErrorLine(r.stderr) };
    } catch (e) {
      return { kind: 'unknown', why: errorMessage(e) };
    }
  }

  private async observe(host: HostId, signal: AbortSignal, updateDeltas: boolean): Promise<HostObservation> {
    assertHostName(host);
    const atMs = this.now();
    const r = await this.run(host, ['sh', '-c', observeScript(this.settings.readPinnedMetadata)], signal);
    const sections = splitSections(r.stdout);
    if (r.exitCode !== 0 || !sections.has('end') || !sections.has('domstats')) {
      throw new ConsolidatorError('COMMAND_FAILED', `observing ${host} failed: ${virshErrorLine(r.stderr) || `exit ${r.exitCode}`}`, {
        details: { host, exitCode: r.exitCode ?? 'signal' },
      });
    }
    const stat = parseProcStat(sections.get('stat') ?? '');
    const mem = parseMeminfo(sections.get('meminfo') ?? '');
    const uptimeSeconds = parseUptimeSeconds(sections.get('uptime') ?? '');
    const uuidByName = new Map<string, string>();
    for (const [uuid, name] of parseUuidNameList(sections.get('domains') ?? '')) uuidByName.set(name, uuid);
    const previous = this.samples.get(host);
    const elapsedSeconds = previous ? uptimeSeconds - previous.uptimeSeconds : 0;
    const domainCpuNs = new Map<string, number>();
    const domains: DomainInfo[] = [];
    for (const d of parseDomstatsRaw(sections.get('domstats') ?? '')) {
      const uuid = uuidByName.get(d.name);
      const key = uuid ?? d.name;
      const previousNs = previous?.domainCpuNs.get(key);
      if (d.cpuTimeNs !== undefined) domainCpuNs.set(key, d.cpuTimeNs);
      const cpuCores = previousNs !== undefined && d.cpuTimeNs !== undefined ? domainCpuCores(previousNs, d.cpuTimeNs, elapsedSeconds) : undefined;
      let pinnedByMetadata = false;
      if (this.settings.readPinnedMetadata) {
        const metadata = uuid === undefined ? undefined : sections.get(`metadata ${uuid}`);
        // A domain that appeared between the list and domstats has unread metadata: treat it as
        // pinned for this cycle rather than risk moving a VM its owner pinned.
        pinnedByMetadata = metadata === undefined ? true : isPinnedMetadata(metadata);
      }
      domains.push({
        name: d.name,
        state: d.state,
        vcpus: d.vcpus,
        memoryMiB: d.memoryMiB,
        pinnedByMetadata,
        ...(d.cpuTimeNs !== undefined ? { cpuTimeNs: d.cpuTimeNs } : {}),
        ...(cpuCores !== undefined ? { cpuCores } : {}),
      });
    }
    const cpuCores = previous ? cpuCoresBetween(previous.stat, stat) : undefined;
    if (updateDeltas) this.samples.set(host, { stat, uptimeSeconds, domainCpuNs });
    const versions = parseVirshVersion(sections.get('version') ?? '');
    return {
      host,
      atMs,
      capacity: { cpu: stat.cpus, memory: mem.totalMiB },
      ...(cpuCores !== undefined ? { cpuCores } : {}),
      memoryUsedMiB: mem.usedMiB,
      domains,
      versions,
    };
  }
}

export type Location = { readonly kind: 'present'; readonly state: DomainState } | { readonly kind: 'absent' } | { readonly kind: 'unknown'; readonly why: string };

type AbortReason = 'timeout' | 'non-convergence' | 'caller';

function describe(host: HostId, where: Location): string {
  if (where.kind === 'present') return `${where.state.state}${where.state.reason ? ` (${where.state.reason})` : ''} on ${host}`;
  if (where.kind === 'absent') return `absent from ${host}`;
  return `unknown on ${host} (${where.why})`;
}

/** One live migration, from `virsh migrate` to the verified outcome. */
class Migration {
  private readonly started: number;
  private readonly log: Logger;
  private phase: MigrationProgress['phase'] = 'precopy';
  private abortReason: AbortReason | undefined;
  private abortRequestedAt = 0;
  private suspendedBySelf = false;
  private maxThrottlePercent = 0;
  private lastJob: JobInfo | undefined;
  /** For our own remote calls: the caller's signal must not cut the verification short. */
  private readonly internal = new AbortController();

  constructor(
    private readonly driver: VirshHypervisor,
    private readonly vm: VmId,
    private readonly from: HostId,
    private readonly to: HostId,
    private readonly options: MigrateOptions,
    private readonly signal: AbortSignal,
    private readonly onProgress: ((progress: MigrationProgress) => void) | undefined,
  ) {
    this.started = driver.clock();
    this.log = driver.logger.child({ vm, from, to });
  }

  async run(): Promise<MigrationResult> {
    const { vm, from, to } = this;
    const before = await this.driver.domainStateOn(from, vm, this.signal);
    if (before.kind !== 'present') {
      throw new ConsolidatorError('MIGRATION_FAILED', `cannot migrate ${vm}: it is ${describe(from, before)}`, { details: { vm, from, to } });
    }
    if (isInactive(before.state.vmState)) {
      throw new ConsolidatorError('MIGRATION_FAILED', `cannot migrate ${vm}: it is ${describe(from, before)}, not running or paused`, { details: { vm, from, to } });
    }
    const wasPaused = before.state.vmState === 'paused';
    this.log.info('migration started', { nonConvergence: this.options.nonConvergence, bandwidthMiBps: this.options.bandwidthMiBps, wasPaused });

    const settings = this.driver.config;
    // The migrate command itself is never cut by us: we stop it with domjobabort, which lets
    // libvirt clean up; its SSH timeout only guards against a wedged source.
    const migrateTimeoutMs = this.options.timeoutMs + settings.abortGraceMs + settings.commandTimeoutMs;
    const migrating = this.driver
      .run(from, this.migrateArgv(), this.internal.signal, migrateTimeoutMs)
      .then((result) => ({ result }), (error: unknown) => ({ error }));

    let ended: { result: ExecResult } | { error: unknown } | undefined;
    while (!ended) {
      const tick = await Promise.race([migrating, this.pause(settings.jobPollIntervalMs)]);
      if (tick !== undefined) {
        ended = tick;
        break;
      }
      await this.poll();
      if (this.abortReason && this.driver.clock() - this.abortRequestedAt > settings.abortGraceMs) {
        this.log.error('virsh migrate did not end after domjobabort; verifying anyway', { graceMs: settings.abortGraceMs });
        break;
      }
    }
    const exit = ended && 'result' in ended ? ended.result : undefined;
    const failure = !ended
      ? `virsh migrate still running ${settings.abortGraceMs} ms after domjobabort`
      : 'error' in ended
        ? errorMessage(ended.error)
        : ended.result.exitCode !== 0
          ? virshErrorLine(ended.result.stderr) || `exit ${ended.result.exitCode}`
          : undefined;
    return this.settle(wasPaused, exit, failure);
  }

  private migrateArgv(): string[] {
    const o = this.options;
    return [
      'virsh',
      'migrate',
      '--live',
      ...(o.persistent ? ['--persistent'] : []),
      ...(o.undefineSource ? ['--undefinesource'] : []),
      ...(o.bandwidthMiBps > 0 ? ['--bandwidth', String(o.bandwidthMiBps)] : []),
      ...(o.nonConvergence === 'auto-converge' ? ['--auto-converge'] : []),
      ...(o.nonConvergence === 'postcopy' ? ['--postcopy'] : []),
      '--domain',
      this.vm,
      '--desturi',
      `qemu+ssh://${this.to}/system`,
    ];
  }

  /** Waits `ms`, or less if the caller aborts; resolves undefined either way. */
  private pause(ms: number): Promise<undefined> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.signal.removeEventListener('abort', done);
        resolve(undefined);
      };
      const timer = setTimeout(done, ms);
      this.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** One look at the job: progress, then the non-convergence policy, the timeout and the caller's abort. */
  private async poll(): Promise<void> {
    const elapsedMs = this.driver.clock() - this.started;
    const r = await this.driver.run(this.from, ['virsh', 'domjobinfo', '--domain', this.vm], this.internal.signal).catch((e: unknown) => {
      this.log.warn('domjobinfo failed', { error: e });
      return undefined;
    });
    if (r?.exitCode === 0) {
      try {
        const job = parseDomjobinfo(r.stdout);
        this.lastJob = job;
        this.maxThrottlePercent = Math.max(this.maxThrottlePercent, job.autoConvergeThrottlePercent ?? 0);
        if (job.type === 'unbounded' || job.type === 'bounded') this.report(elapsedMs, job);
      } catch (e) {
        this.log.warn('domjobinfo unreadable', { error: e });
      }
    }
    if (this.abortReason) return;
    if (this.signal.aborted) return this.requestAbort('caller');
    if (elapsedMs >= this.options.timeoutMs) {
      if (this.phase === 'postcopy') {
        // Post-copy cannot be aborted without losing the VM: the destination already runs it.
        this.log.warn('migration past its timeout in post-copy; waiting for it to finish', { elapsedMs });
        return;
      }
      return this.requestAbort('timeout');
    }
    if (elapsedMs < this.options.convergenceDeadlineMs) return;
    await this.applyNonConvergence(this.options.nonConvergence);
  }

  private async applyNonConvergence(action: NonConvergenceAction): Promise<void> {
    if (action === 'postcopy' && this.phase === 'precopy') {
      const r = await this.driver.run(this.from, ['virsh', 'migrate-postcopy', '--domain', this.vm], this.internal.signal).catch((e: unknown) => e);
      if (isExec(r) && r.exitCode === 0) {
        this.phase = 'postcopy';
        this.log.info('migration switched to post-copy', { elapsedMs: this.driver.clock() - this.started });
      } else {
        this.log.warn('migrate-postcopy failed', { error: isExec(r) ? virshErrorLine(r.stderr) : errorMessage(r) });
      }
    } else if (action === 'pause' && this.phase === 'precopy') {
      const state = await this.driver.domainStateOn(this.from, this.vm, this.internal.signal);
      if (state.kind === 'present' && state.state.vmState === 'paused') {
        this.phase = 'paused';
        return;
      }
      const r = await this.driver.run(this.from, ['virsh', 'suspend', '--domain', this.vm], this.internal.signal).catch((e: unknown) => e);
      if (isExec(r) && r.exitCode === 0) {
        this.phase = 'paused';
        this.suspendedBySelf = true;
        this.log.info('guest paused to let the migration finish offline', { elapsedMs: this.driver.clock() - this.started });
      } else {
        this.log.warn('suspend failed', { error: isExec(r) ? virshErrorLine(r.stderr) : errorMessage(r) });
      }
    } else if (action === 'abort') {
      await this.requestAbort('non-convergence');
    }
  }

  private async requestAbort(reason: AbortReason): Promise<void> {
    this.abortReason = reason;
    this.abortRequestedAt = this.driver.clock();
    this.phase = 'aborting';
    this.log.warn('aborting migration', { reason, elapsedMs: this.abortRequestedAt - this.started });
    const r = await this.driver.run(this.from, ['virsh', 'domjobabort', '--domain', this.vm], this.internal.signal).catch((e: unknown) => e);
    if (!isExec(r) || (r.exitCode !== 0 && classifyVirshError(r.stderr) !== 'no-job')) {
      this.log.error('domjobabort failed', { error: isExec(r) ? virshErrorLine(r.stderr) : errorMessage(r) });
    }
  }

  private report(elapsedMs: number, job: JobInfo): void {
    const progress: MigrationProgress = {
      vm: this.vm,
      elapsedMs,
      phase: this.phase,
      ...(job.dataProcessedMiB !== undefined ? { dataProcessedMiB: job.dataProcessedMiB } : {}),
      ...(job.dataRemainingMiB !== undefined ? { dataRemainingMiB: job.dataRemainingMiB } : {}),
      ...(job.dataTotalMiB !== undefined ? { dataTotalMiB: job.dataTotalMiB } : {}),
      ...(job.memoryBandwidthMiBps !== undefined ? { memoryBandwidthMiBps: job.memoryBandwidthMiBps } : {}),
      ...(job.iteration !== undefined ? { iteration: job.iteration } : {}),
      ...(job.autoConvergeThrottlePercent !== undefined ? { autoConvergeThrottlePercent: job.autoConvergeThrottlePercent } : {}),
    };
    this.log.debug('migration progress', { ...progress });
    try {
      this.onProgress?.(progress);
    } catch (e) {
      this.log.warn('progress callback threw', { error: e });
    }
  }

  /** Verifies where the VM is and turns that into the result or the error. */
  private async settle(wasPaused: boolean, exit: ExecResult | undefined, failure: string | undefined): Promise<MigrationResult> {
    const { vm, from, to } = this;
    const settings = this.driver.config;
    // A guest we paused mid-migration arrives running (libvirt resumes what was running when the
    // migration began) or, on other versions, paused; arrived() resumes it in that case.
    const expected: readonly VmState[] = wasPaused ? ['paused'] : this.suspendedBySelf ? ['paused', 'running'] : ['running'];
    const deadline = this.driver.clock() + settings.verifyTimeoutMs;
    let src: Location;
    let dst: Location;
    for (;;) {
      [src, dst] = await Promise.all([this.driver.domainStateOn(from, vm, this.internal.signal), this.driver.domainStateOn(to, vm, this.internal.signal)]);
      const arrived = dst.kind === 'present' && expected.includes(dst.state.vmState);
      const left = src.kind === 'absent' || (src.kind === 'present' && isInactive(src.state.vmState));
      if (arrived && left) return this.arrived(wasPaused, dst.kind === 'present' ? dst.state.vmState : 'other', exit, failure);
      // virsh exited with an error: libvirt has settled the job, the answer is final. Without an exit
      // (SSH dropped, wedged command) or after a success, give libvirt a moment to settle.
      if ((exit !== undefined && failure !== undefined) || this.driver.clock() > deadline) break;
      await this.pause(settings.jobPollIntervalMs);
    }
    // Not (verifiably) on the destination: leave it running where it was.
    let resumed = '';
    if (this.suspendedBySelf && src.kind === 'present' && src.state.vmState === 'paused') {
      const r = await this.driver.run(from, ['virsh', 'resume', '--domain', vm], this.internal.signal).catch((e: unknown) => e);
      resumed = isExec(r) && r.exitCode === 0 ? '; resumed it on the source' : `; could NOT resume it on the source: ${isExec(r) ? virshErrorLine(r.stderr) : errorMessage(r)}`;
      if (isExec(r) && r.exitCode === 0) src = await this.driver.domainStateOn(from, vm, this.internal.signal);
    }
    const where = `VM is ${describe(from, src)}, ${describe(to, dst)}${resumed}`;
    const elapsedMs = this.driver.clock() - this.started;
    const job = this.lastJob;
    const progress = job?.dataRemainingMiB !== undefined ? `; last seen ${job.dataRemainingMiB.toFixed(1)} MiB remaining at pass ${job.iteration ?? '?'}` : '';
    const throttle = this.maxThrottlePercent > 0 ? `; auto-converge throttled the guest up to ${this.maxThrottlePercent} %` : '';
    let code: ErrorCode = 'MIGRATION_FAILED';
    let why = failure ?? `virsh migrate reported success but the VM is not where it should be`;
    if (this.abortReason === 'timeout') {
      code = 'MIGRATION_TIMEOUT';
      why = `not finished after ${this.options.timeoutMs} ms, aborted (${failure ?? 'domjobabort'})`;
    } else if (this.abortReason === 'non-convergence') {
      why = `did not converge within ${this.options.convergenceDeadlineMs} ms, aborted per policy (${failure ?? 'domjobabort'})`;
    } else if (this.abortReason === 'caller') {
      code = 'ABORTED';
      why = `aborted by the caller (${failure ?? 'domjobabort'})`;
    }
    const message = `migration of ${vm} from ${from} to ${to} failed after ${elapsedMs} ms: ${why}${progress}${throttle}; ${where}`;
    this.log.error('migration failed', { code, elapsedMs, source: describe(from, src), destination: describe(to, dst), reason: why });
    throw new ConsolidatorError(code, message, {
      details: {
        vm,
        from,
        to,
        elapsedMs,
        onSource: src.kind === 'present' ? src.state.state : src.kind,
        onDestination: dst.kind === 'present' ? dst.state.state : dst.kind,
      },
    });
  }

  private async arrived(wasPaused: boolean, arrivedAs: VmState, exit: ExecResult | undefined, failure: string | undefined): Promise<MigrationResult> {
    const { vm, from, to } = this;
    let state: VmState = arrivedAs;
    if (this.suspendedBySelf && !wasPaused && arrivedAs === 'paused') {
      const r = await this.driver.run(to, ['virsh', 'resume', '--domain', vm], this.internal.signal).catch((e: unknown) => e);
      if (!isExec(r) || r.exitCode !== 0) {
        const why = isExec(r) ? virshErrorLine(r.stderr) : errorMessage(r);
        throw new ConsolidatorError('MIGRATION_FAILED', `migration of ${vm} from ${from} to ${to} finished paused, and resuming it on ${to} failed: ${why}; VM is paused on ${to}`, {
          details: { vm, from, to, onDestination: 'paused' },
        });
      }
      state = 'running';
    }
    if (failure !== undefined) this.log.warn('migration reported a failure but the VM arrived', { failure, exitCode: exit?.exitCode });
    const applied: NonConvergenceAction | undefined =
      this.phase === 'postcopy' ? 'postcopy' : this.suspendedBySelf ? 'pause' : this.maxThrottlePercent > 0 ? 'auto-converge' : undefined;
    const durationMs = this.driver.clock() - this.started;
    this.log.info('migration finished', { durationMs, state, ...(applied ? { nonConvergenceApplied: applied } : {}), maxThrottlePercent: this.maxThrottlePercent });
    return { durationMs, state, ...(applied ? { nonConvergenceApplied: applied } : {}) };
  }
}

function isExec(x: unknown): x is ExecResult {
  return typeof x === 'object' && x !== null && 'exitCode' in x && 'stdout' in x;
}

