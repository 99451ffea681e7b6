import { ConsolidatorError, errorMessage, type ErrorCode } from '../../errors.js';
import type { HostId, VmId } from '../../model/ids.js';
import type { VmState } from '../../model/snapshot.js';
import type { Logger } from '../../observability/logger.js';
import type { ExecResult } from '../exec/command-runner.js';
import type { MigrateOptions, MigrationProgress, MigrationResult, NonConvergenceAction } from './hypervisor-driver.js';
import { classifyVirshError, isInactive, parseDomjobinfo, virshErrorLine, type DomainState, type JobInfo } from './virsh-parsers.js';

/** Where a domain is on one host: its state, absent, or unknown (the host did not answer). */
export type Location = { readonly kind: 'present'; readonly state: DomainState } | { readonly kind: 'absent' } | { readonly kind: 'unknown'; readonly why: string };

type AbortReason = 'timeout' | 'non-convergence' | 'caller';

function describe(host: HostId, where: Location): string {
  if (where.kind === 'present') return `${where.state.state}${where.state.reason ? ` (${where.state.reason})` : ''} on ${host}`;
  if (where.kind === 'absent') return `absent from ${host}`;
  return `unknown on ${host} (${where.why})`;
}

/** What a Migration needs from the driver that runs it (VirshHypervisor). */
export interface MigrationDriver {
  /** Runs a short command on a host, with the driver's default timeout unless one is given. */
  run(host: HostId, argv: readonly string[], signal: AbortSignal, timeoutMs?: number): Promise<ExecResult>;
  readonly config: MigrationSettings;
  readonly logger: Logger;
  clock(): number;
  domainStateOn(host: HostId, vm: VmId, signal: AbortSignal): Promise<Location>;
}

/** The driver settings a migration uses. */
export interface MigrationSettings {
  readonly commandTimeoutMs: number;
  readonly jobPollIntervalMs: number;
  readonly abortGraceMs: number;
  readonly verifyTimeoutMs: number;
}

/** One live migration, from `virsh migrate` to the verified outcome. */
export class Migration {
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
    private readonly driver: MigrationDriver,
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

