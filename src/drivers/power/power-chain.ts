import type { PowerPathName } from '../../config/schema.js';
import { ConsolidatorError, type ErrorCode, errorMessage, isConsolidatorError } from '../../errors.js';
import type { HostId } from '../../model/ids.js';
import type { PowerAttemptAction, PowerAttemptOutcome } from '../../model/reasons.js';
import type { PowerState } from '../../model/snapshot.js';
import type { Logger } from '../../observability/logger.js';
import { sleep } from '../../util/wait-until.js';
import type { PowerDriver, PowerOffMode, PowerOffOptions } from './power-driver.js';

/** A power path that can only power on, and reads no state back (Wake-on-LAN). */
export interface PowerOnSender {
  /** Resolves once the request is sent; whether the host came on is not known here. */
  sendPowerOn(host: HostId, signal: AbortSignal): Promise<void>;
}

/** One named path of a chain: a whole PowerDriver, or a power-on sender without state. */
export type ChainPath =
  | { readonly name: PowerPathName; readonly kind: 'driver'; readonly driver: PowerDriver }
  | { readonly name: PowerPathName; readonly kind: 'power-on-only'; readonly sender: PowerOnSender };

/** One request to one path, as logged and counted. */
export interface PowerAttempt {
  readonly host: HostId;
  readonly path: PowerPathName;
  readonly action: PowerAttemptAction;
  /** 1, 2, ... within one call of the chain (a power-on's re-sends, escalation and fallbacks). */
  readonly attempt: number;
  readonly outcome: PowerAttemptOutcome;
  readonly durationMs: number;
  readonly errorCode?: ErrorCode;
}

export interface PowerChainDeps {
  /** Every path any host's chain names. */
  readonly paths: readonly ChainPath[];
  /** A host's paths, in order (ResolvedHost.powerChain). */
  readonly chainOf: (host: HostId) => readonly PowerPathName[];
  /** Power-ons sent again through the same path after one that did not take (policy power.resends). */
  readonly resends: number;
  /** After a power-on through a path without state: how long the other paths are asked for "on". */
  readonly confirmTimeoutMs: number;
  readonly confirmIntervalMs: number;
  readonly logger: Logger;
  /** Called for every attempt (the metric consolidator_power_attempts_total). */
  readonly onAttempt?: (attempt: PowerAttempt) => void;
  readonly nowMs?: () => number;
}

interface Failure {
  readonly path: PowerPathName;
  readonly action: PowerAttemptAction;
  readonly attempt: number;
  readonly error: unknown;
}

type Tried<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly failure: Failure };

/** Failures after which the same power-on may take if sent again: the path answered, or may next time. */
const RESENDABLE: readonly ErrorCode[] = ['POWER_TIMEOUT', 'POWER_FAILED', 'BMC_UNREACHABLE'];
/** Failures that show the BMC took the request and the host did not follow: worth a ForceOn. */
const ESCALATABLE: readonly ErrorCode[] = ['POWER_TIMEOUT', 'POWER_FAILED'];
/** Failures of a path that could not be used at all: a power-off or a status read may go to the next path. */
const DID_NOT_ANSWER: readonly ErrorCode[] = ['BMC_UNREACHABLE', 'BMC_AUTH'];

/**
 * A PowerDriver over a host's ordered power paths (power.chain: [ipmitool, wol], ...). A chain that
 * insists:
 * - status: the first path with a state that answers "on" or "off"; a failing path is logged and the
 *   next one asked; when none answers, the error (a status never reads "off" for lack of an answer).
 * - powerOff: only through paths that read the state back (never wol), the first that answers; the
 *   caller's beforeHardOff guard is passed on, and an error of that guard ends the power-off there.
 * - powerOn: the first path; a power-on that did not take is re-sent (resends), then escalated with
 *   the path's forcePowerOn where it has one, then the next path. A path without state (wol) is judged
 *   by the other paths' status until confirmTimeoutMs; when none can read it, the power-on resolves
 *   unconfirmed and the caller's boot timeout decides. When every path failed, the error (the one
 *   error unchanged when there was a single attempt).
 * Every attempt is one log line and one onAttempt call.
 */
export class PowerChain implements PowerDriver {
  private readonly paths: ReadonlyMap<PowerPathName, ChainPath>;
  private readonly chainOf: (host: HostId) => readonly PowerPathName[];
  private readonly resends: number;
  private readonly confirmTimeoutMs: number;
  private readonly confirmIntervalMs: number;
  private readonly log: Logger;
  private readonly onAttempt: (attempt: PowerAttempt) => void;
  private readonly nowMs: () => number;

  constructor(deps: PowerChainDeps) {
    this.paths = new Map(deps.paths.map((p) => [p.name, p]));
    this.chainOf = deps.chainOf;
    this.resends = deps.resends;
    this.confirmTimeoutMs = deps.confirmTimeoutMs;
    this.confirmIntervalMs = deps.confirmIntervalMs;
    this.log = deps.logger.child({ component: 'power-chain' });
    this.onAttempt = deps.onAttempt ?? (() => undefined);
    this.nowMs = deps.nowMs ?? Date.now;
  }

  /** Closes every path's driver (logs Redfish sessions out). */
  async close(): Promise<void> {
    await Promise.all([...this.paths.values()].map((p) => (p.kind === 'driver' ? p.driver.close?.() : undefined)));
  }

  async status(host: HostId, signal: AbortSignal): Promise<PowerState> {
    const failures: Failure[] = [];
    let attempt = 0;
    let unknown = false;
    for (const path of this.statePaths(host)) {
      const tried = await this.attempt(host, path.name, 'status', ++attempt, signal, () => path.driver.status(host, signal));
      if (!tried.ok) failures.push(tried.failure);
      else if (tried.value === 'unknown') unknown = true;
      else return tried.value;
    }
    if (unknown) return 'unknown';
    throw this.failedThroughEveryPath(host, 'power status', failures);
  }

  async powerOff(host: HostId, mode: PowerOffMode, signal: AbortSignal, options?: PowerOffOptions): Promise<void> {
    const failures: Failure[] = [];
    let attempt = 0;
    for (const path of this.statePaths(host)) {
      const guard = guarded(options);
      const tried = await this.attempt(host, path.name, 'off', ++attempt, signal, () => path.driver.powerOff(host, mode, signal, guard.options));
      if (tried.ok) return;
      // The caller's re-check refused the hard power-off: that is its answer, whatever the path.
      if (guard.threw) throw tried.failure.error;
      failures.push(tried.failure);
      if (!hasCode(tried.failure.error, DID_NOT_ANSWER)) break;
    }
    throw this.failedThroughEveryPath(host, 'power off', failures);
  }

  async powerOn(host: HostId, signal: AbortSignal): Promise<void> {
    const failures: Failure[] = [];
    let attempt = 0;
    for (const path of this.pathsOf(host)) {
      let last: Failure | undefined;
      for (let send = 0; send <= this.resends; send++) {
        const tried = path.kind === 'driver'
          ? await this.attempt(host, path.name, 'on', ++attempt, signal, () => path.driver.powerOn(host, signal))
          : await this.wake(host, path, ++attempt, signal);
        if (tried.ok) return;
        failures.push(tried.failure);
        last = tried.failure;
        if (!hasCode(last.error, path.kind === 'driver' ? RESENDABLE : ['POWER_TIMEOUT'])) break;
      }
      if (path.kind === 'driver' && path.driver.forcePowerOn !== undefined && last !== undefined && hasCode(last.error, ESCALATABLE)) {
        const driver = path.driver;
        const tried = await this.attempt(host, path.name, 'force-on', ++attempt, signal, () => (driver.forcePowerOn as NonNullable<PowerDriver['forcePowerOn']>).call(driver, host, signal));
        if (tried.ok) return;
        failures.push(tried.failure);
      }
    }
    throw this.failedThroughEveryPath(host, 'power on', failures);
  }

  /** From the first path with power readings that answers; undefined when none has them. */
  async powerReadingWatts(host: HostId, signal: AbortSignal): Promise<number | undefined> {
    const read = await this.firstAnswer(host, signal, (d) => d.powerReadingWatts?.bind(d));
    if ('value' in read) return read.value;
    if (read.failures.length === 0) return undefined;
    throw this.failedThroughEveryPath(host, 'power reading', read.failures);
  }

  /**
   * From the first path with a system UUID that answers. When none answers but the chain has a path
   * that needs no BMC (wol), undefined (logged): the identity cannot be checked, and a power-on must
   * still go out through that path. A power-off cannot: it needs one of the paths that did not answer.
   */
  async systemUuid(host: HostId, signal: AbortSignal): Promise<string | undefined> {
    const read = await this.firstAnswer(host, signal, (d) => d.systemUuid?.bind(d));
    if ('value' in read) return read.value;
    const { failures } = read;
    if (failures.length === 0) return undefined;
    if (this.pathsOf(host).some((p) => p.kind === 'power-on-only')) {
      this.log.warn('no power path reports the system uuid: identity not checked, a power-on may go out through a path without a bmc', {
        host,
        paths: failures.map((f) => f.path),
        err: failures[failures.length - 1]?.error,
      });
      return undefined;
    }
    throw this.failedThroughEveryPath(host, 'system uuid', failures);
  }

  /**
   * An optional read (watts, UUID) from the first of the host's state paths whose driver has it and
   * answers; the failures of those that did not when none did (none when no driver has it). An abort
   * propagates.
   */
  private async firstAnswer<T>(
    host: HostId,
    signal: AbortSignal,
    readOf: (driver: PowerDriver) => ((host: HostId, signal: AbortSignal) => Promise<T>) | undefined,
  ): Promise<{ readonly value: T } | { readonly failures: Failure[] }> {
    const failures: Failure[] = [];
    for (const path of this.statePaths(host)) {
      const read = readOf(path.driver);
      if (read === undefined) continue;
      try {
        return { value: await read(host, signal) };
      } catch (e) {
        if (signal.aborted || isConsolidatorError(e, 'ABORTED')) throw e;
        failures.push({ path: path.name, action: 'status', attempt: failures.length + 1, error: e });
      }
    }
    return { failures };
  }

  /**
   * Sends a power-on through a path without state, then asks the host's other paths until one reads
   * "on" (ok), or the confirmation timeout passes: POWER_TIMEOUT when a path read "off", unconfirmed
   * (ok for the chain) when none could read anything.
   */
  private async wake(host: HostId, path: Extract<ChainPath, { kind: 'power-on-only' }>, attempt: number, signal: AbortSignal): Promise<Tried<void>> {
    const startMs = this.nowMs();
    let unconfirmed = false;
    const tried = await this.attempt(host, path.name, 'on', attempt, signal, async () => {
      await path.sender.sendPowerOn(host, signal);
      const seen = await this.confirmOn(host, signal);
      if (seen === 'on') return;
      if (seen === 'off') {
        throw new ConsolidatorError('POWER_TIMEOUT', `${host} still reports power off ${Math.round((this.nowMs() - startMs) / 1000)} s after the ${path.name} power-on`, {
          details: { host, path: path.name, want: 'on' },
        });
      }
      unconfirmed = true;
    }, () => (unconfirmed ? 'unconfirmed' : 'ok'));
    if (tried.ok && unconfirmed) {
      this.log.warn('power-on sent but not confirmed: no power path can read the state; the boot timeout decides', { host, path: path.name });
    }
    return tried;
  }

  /** What the host's paths with state read after a wake: "on" as soon as one does; "off" if any did; "unknown" if none answered. */
  private async confirmOn(host: HostId, signal: AbortSignal): Promise<'on' | 'off' | 'unknown'> {
    const readers = this.statePaths(host);
    if (readers.length === 0) return 'unknown';
    const deadlineMs = this.nowMs() + this.confirmTimeoutMs;
    let seen: 'off' | 'unknown' = 'unknown';
    for (;;) {
      for (const path of readers) {
        try {
          const state = await path.driver.status(host, signal);
          if (state === 'on') return 'on';
          if (state === 'off') seen = 'off';
        } catch (e) {
          if (signal.aborted || isConsolidatorError(e, 'ABORTED')) throw e;
          this.log.debug('power state not readable while confirming a power-on', { host, path: path.name, err: e });
        }
      }
      const remainingMs = deadlineMs - this.nowMs();
      if (remainingMs <= 0) return seen;
      await sleep(Math.min(this.confirmIntervalMs, remainingMs), signal, `${host} to report power on`);
    }
  }

  /** Runs one request through one path: logs it, reports it, and returns its failure as data (ABORTED is thrown). */
  private async attempt<T>(
    host: HostId,
    path: PowerPathName,
    action: PowerAttemptAction,
    attempt: number,
    signal: AbortSignal,
    run: () => Promise<T>,
    okOutcome: () => PowerAttemptOutcome = () => 'ok',
  ): Promise<Tried<T>> {
    const startMs = this.nowMs();
    try {
      const value = await run();
      this.report({ host, path, action, attempt, outcome: okOutcome(), durationMs: this.nowMs() - startMs });
      return { ok: true, value };
    } catch (e) {
      const aborted = signal.aborted || isConsolidatorError(e, 'ABORTED');
      const errorCode: ErrorCode = isConsolidatorError(e) ? e.code : 'INTERNAL';
      this.report({ host, path, action, attempt, outcome: aborted ? 'aborted' : outcomeOf(e), durationMs: this.nowMs() - startMs, errorCode }, e);
      if (aborted) throw e;
      return { ok: false, failure: { path, action, attempt, error: e } };
    }
  }

  private report(a: PowerAttempt, error?: unknown): void {
    const fields = { host: a.host, path: a.path, action: a.action, attempt: a.attempt, outcome: a.outcome, durationMs: a.durationMs };
    if (error !== undefined) this.log.warn('power attempt failed', { ...fields, errorCode: a.errorCode, err: error });
    else if (a.action === 'status') this.log.debug('power attempt', fields);
    else this.log.info('power attempt', fields);
    this.onAttempt(a);
  }

  private failedThroughEveryPath(host: HostId, what: string, failures: readonly Failure[]): unknown {
    const last = failures[failures.length - 1];
    if (last === undefined) {
      return new ConsolidatorError('POWER_FAILED', `no power path of ${host} can do ${what} (its power chain: ${this.chainOf(host).join(', ')})`, {
        details: { host, chain: this.chainOf(host).join(',') },
      });
    }
    if (failures.length === 1) return last.error;
    const tried = failures.map((f) => `${f.path} ${f.action} #${f.attempt}: ${isConsolidatorError(f.error) ? f.error.code : 'INTERNAL'}`).join(', ');
    return new ConsolidatorError(
      isConsolidatorError(last.error) ? last.error.code : 'POWER_FAILED',
      `${what} of ${host} failed through every power path (${tried}); last: ${errorMessage(last.error)}`,
      { details: { host, attempts: tried }, cause: last.error },
    );
  }

  private pathsOf(host: HostId): ChainPath[] {
    return this.chainOf(host).map((name) => {
      const path = this.paths.get(name);
      if (path === undefined) throw new ConsolidatorError('INTERNAL', `power path ${name} of ${host} was not built`, { details: { host, path: name } });
      return path;
    });
  }

  private statePaths(host: HostId): Extract<ChainPath, { kind: 'driver' }>[] {
    return this.pathsOf(host).filter((p): p is Extract<ChainPath, { kind: 'driver' }> => p.kind === 'driver');
  }
}

/** The caller's options with its beforeHardOff wrapped, so the chain can tell when that guard refused. */
function guarded(options: PowerOffOptions | undefined): { options: PowerOffOptions | undefined; readonly threw: boolean } {
  const before = options?.beforeHardOff;
  if (before === undefined) return { options, threw: false };
  const state = {
    threw: false,
    options: {
      ...options,
      beforeHardOff: async (signal: AbortSignal) => {
        try {
          await before(signal);
        } catch (e) {
          state.threw = true;
          throw e;
        }
      },
    },
  };
  return state;
}

function hasCode(e: unknown, codes: readonly ErrorCode[]): boolean {
  return isConsolidatorError(e) && codes.includes(e.code);
}

function outcomeOf(e: unknown): PowerAttemptOutcome {
  if (!isConsolidatorError(e)) return 'failed';
  switch (e.code) {
    case 'POWER_TIMEOUT':
      return 'timeout';
    case 'BMC_UNREACHABLE':
      return 'unreachable';
    case 'BMC_AUTH':
      return 'auth';
    default:
      return 'failed';
  }
}
