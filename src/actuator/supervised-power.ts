import { ConsolidatorError, isConsolidatorError } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { PowerState } from '../model/snapshot.js';
import type { Logger } from '../observability/logger.js';
import type { PowerAttention } from '../state/power-attention.js';
import type { PowerDriver, PowerOffMode, PowerOffOptions } from '../drivers/power/power-driver.js';
import type { PowerAction, PowerActionResult, PowerRecorder } from '../state/power-record.js';

export interface SupervisedPowerDeps {
  /** The driver that does the work (ipmitool, simulated, ...). */
  readonly driver: PowerDriver;
  readonly attention: PowerAttention;
  readonly recorder: PowerRecorder;
  readonly logger: Logger;
  readonly nowMs?: () => number;
  /** The system UUID the host itself last reported (its DMI product_uuid), if it ever did. */
  readonly hostSystemUuid?: (host: HostId) => string | undefined;
}

/**
 * Wraps any PowerDriver for automatic use (the actuator): records every power action with its time and
 * result (the planner's per-day budget), marks a host that fails to power on for operator attention,
 * and refuses to power off a host that needs attention. Before any power action it checks that the
 * BMC is the host's: where both report a system UUID they must match, or the action is refused and
 * the host marked (a mis-wired inventory would power off a stranger). The same for every driver, so
 * the simulated datacenter behaves like the real one.
 */
export class SupervisedPower implements PowerDriver {
  private readonly driver: PowerDriver;
  private readonly attention: PowerAttention;
  private readonly recorder: PowerRecorder;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private readonly hostSystemUuid: (host: HostId) => string | undefined;
  /** Hosts already warned about: no system UUID to check their BMC against. */
  private readonly uncheckedHosts = new Set<HostId>();

  constructor(deps: SupervisedPowerDeps) {
    this.hostSystemUuid = deps.hostSystemUuid ?? (() => undefined);
    this.driver = deps.driver;
    this.attention = deps.attention;
    this.recorder = deps.recorder;
    this.log = deps.logger.child({ component: 'supervised-power' });
    this.nowMs = deps.nowMs ?? Date.now;
  }

  status(host: HostId, signal: AbortSignal): Promise<PowerState> {
    return this.driver.status(host, signal);
  }

  async powerReadingWatts(host: HostId, signal: AbortSignal): Promise<number | undefined> {
    return this.driver.powerReadingWatts === undefined ? undefined : this.driver.powerReadingWatts(host, signal);
  }

  async systemUuid(host: HostId, signal: AbortSignal): Promise<string | undefined> {
    return this.driver.systemUuid === undefined ? undefined : this.driver.systemUuid(host, signal);
  }

  async powerOn(host: HostId, signal: AbortSignal): Promise<void> {
    await this.checkIdentity(host, 'power on', signal);
    const startMs = this.nowMs();
    try {
      await this.driver.powerOn(host, signal);
      this.record(host, 'on', undefined, startMs, 'ok');
    } catch (e) {
      this.record(host, 'on', undefined, startMs, resultOf(e));
      if (!isConsolidatorError(e, 'ABORTED')) this.attention.mark(host, 'PowerOnFailed', this.nowMs(), e);
      throw e;
    }
  }

  async powerOff(host: HostId, mode: PowerOffMode, signal: AbortSignal, options?: PowerOffOptions): Promise<void> {
    const attention = this.attention.get(host);
    if (attention !== undefined) {
      throw new ConsolidatorError(
        'POWER_FAILED',
        `refusing to power off ${host} automatically: it needs operator attention (${attention.reason} since ${new Date(attention.sinceMs).toISOString()})`,
        { details: { host, reason: attention.reason, sinceMs: attention.sinceMs } },
      );
    }
    await this.checkIdentity(host, 'power off', signal);
    const startMs = this.nowMs();
    try {
      await this.driver.powerOff(host, mode, signal, options);
      this.record(host, 'off', mode, startMs, 'ok');
    } catch (e) {
      this.record(host, 'off', mode, startMs, resultOf(e));
      throw e;
    }
  }

  /**
   * Refuses the action when the BMC reports a system UUID other than the one the host reported. Where
   * either side reports none (a BMC without Get System GUID, a host never observed), there is nothing
   * to compare and the action goes on.
   */
  private async checkIdentity(host: HostId, what: string, signal: AbortSignal): Promise<void> {
    const expected = this.hostSystemUuid(host);
    if (this.driver.systemUuid === undefined) return;
    if (expected === undefined) {
      if (!this.uncheckedHosts.has(host)) {
        this.uncheckedHosts.add(host);
        this.log.warn('power action without an identity check: the host has not reported a system UUID (/sys/class/dmi/id/product_uuid)', { host, action: what });
      }
      return;
    }
    const reported = await this.driver.systemUuid(host, signal);
    if (reported === undefined || reported === expected) return;
    const error = new ConsolidatorError(
      'IDENTITY_MISMATCH',
      `refusing to ${what} ${host}: its BMC reports system UUID ${reported}, but ${host} itself reports ${expected}; the policy's bmc address for ${host} may belong to another machine`,
      { details: { host, bmcSystemUuid: reported, hostSystemUuid: expected } },
    );
    this.attention.mark(host, 'IdentityMismatch', this.nowMs(), error);
    throw error;
  }

  private record(host: HostId, action: PowerAction, mode: PowerOffMode | undefined, startMs: number, result: PowerActionResult): void {
    const durationMs = this.nowMs() - startMs;
    this.recorder.add(host, { atMs: startMs, action, ...(mode !== undefined ? { mode } : {}), result, durationMs });
    this.log.info('power action recorded', { host, action, ...(mode !== undefined ? { mode } : {}), result, durationMs });
  }
}

function resultOf(e: unknown): PowerActionResult {
  return isConsolidatorError(e) ? e.code : 'INTERNAL';
}
