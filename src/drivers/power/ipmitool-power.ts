import type { ResolvedHost } from '../../config/resolve.js';
import type { Policy } from '../../config/schema.js';
import { ConsolidatorError, isConsolidatorError } from '../../errors.js';
import type { HostId } from '../../model/ids.js';
import type { PowerState } from '../../model/snapshot.js';
import type { Logger } from '../../observability/logger.js';
import {
  type ChassisControl,
  type ChassisPowerState,
  classifyIpmitoolFailure,
  parseChassisPowerControl,
  parseChassisPowerStatus,
  parseDcmiPowerReading,
  parseSystemGuid,
} from './ipmitool-parsers.js';
import { type BmcTarget, type IpmitoolOutput, type IpmitoolRunner, ProcessIpmitoolRunner } from './ipmitool-runner.js';
import type { PowerDriver, PowerOffMode, PowerOffOptions } from './power-driver.js';
import { waitUntil } from '../../util/wait-until.js';

export interface IpmitoolPowerTiming {
  /** After `chassis power soft`, how long the host may take to shut down before a hard power-off. */
  readonly softOffTimeoutMs: number;
  /** How long the BMC may take to report the requested state after a command. */
  readonly verifyTimeoutMs: number;
  /** Pause between two status reads while verifying. */
  readonly verifyIntervalMs: number;
}

export interface IpmitoolPowerDeps {
  readonly hosts: readonly ResolvedHost[];
  readonly runner: IpmitoolRunner;
  readonly timing: IpmitoolPowerTiming;
  readonly logger: Logger;
}

const MS_PER_SECOND = 1000;
/** Status reads while verifying a power change: often enough to notice quickly, rare enough for a BMC. */
export const DEFAULT_VERIFY_INTERVAL_MS = 1000;

/** Get System GUID: netfn App (0x06), command 0x37 (IPMI v2.0 section 22.14). */
const GET_SYSTEM_GUID = ['raw', '0x06', '0x37'] as const;

const CONTROL_VERBS: Readonly<Record<'on' | 'off' | 'soft', ChassisControl>> = { on: 'on', off: 'off', soft: 'soft' };

/**
 * The PowerDriver for real BMCs, through `ipmitool -I lanplus`. Every power command is verified by
 * reading the state back until it matches or the deadline passes (POWER_TIMEOUT names what was
 * awaited). A soft power-off that the host ignores becomes a hard one after the soft-off timeout,
 * unless the caller's beforeHardOff re-check throws.
 * Errors: BMC_AUTH (password, user, cipher suite), BMC_UNREACHABLE (no answer within the command
 * timeout), POWER_FAILED (the BMC refused, or no BMC configured), POWER_TIMEOUT, PARSE, ABORTED.
 * No forcePowerOn: IPMI Chassis Control has nothing stronger than "power up" for a host that is off
 * (power cycle and hard reset act on a running system; IPMI v2.0 section 28.3 lets a BMC refuse a
 * power cycle when the power is off), so re-sending "chassis power on" is all there is.
 */
export class IpmitoolPower implements PowerDriver {
  private readonly hosts: ReadonlyMap<HostId, ResolvedHost>;
  private readonly runner: IpmitoolRunner;
  private readonly timing: IpmitoolPowerTiming;
  private readonly log: Logger;
  /** Hosts whose BMC said it has no system GUID: not asked again. */
  private readonly withoutGuid = new Set<HostId>();
  /** Hosts whose BMC said it has no DCMI power reading: not asked again. */
  private readonly withoutDcmi = new Set<HostId>();

  constructor(deps: IpmitoolPowerDeps) {
    this.hosts = new Map(deps.hosts.map((h) => [h.name, h]));
    this.runner = deps.runner;
    this.timing = deps.timing;
    this.log = deps.logger.child({ component: 'ipmitool-power' });
  }

  async status(host: HostId, signal: AbortSignal): Promise<PowerState> {
    return this.readStatus(this.target(host), signal);
  }

  async powerOn(host: HostId, signal: AbortSignal): Promise<void> {
    const target = this.target(host);
    const startMs = Date.now();
    await this.control(target, 'on', signal);
    await this.verify(target, 'on', this.timing.verifyTimeoutMs, signal);
    this.log.info('host powered on', { host, durationMs: Date.now() - startMs });
  }

  async powerOff(host: HostId, mode: PowerOffMode, signal: AbortSignal, options: PowerOffOptions = {}): Promise<void> {
    const target = this.target(host);
    const startMs = Date.now();
    if (mode === 'soft') {
      if (await this.trySoftOff(target, signal)) {
        this.log.info('host powered off', { host, mode, durationMs: Date.now() - startMs });
        return;
      }
      await this.checkBeforeHardOff(target, options, signal);
    }
    await this.control(target, 'off', signal);
    await this.verify(target, 'off', this.timing.verifyTimeoutMs, signal);
    this.log.info('host powered off', { host, mode: 'hard', requested: mode, durationMs: Date.now() - startMs });
  }

  async powerReadingWatts(host: HostId, signal: AbortSignal): Promise<number | undefined> {
    if (this.withoutDcmi.has(host)) return undefined;
    const target = this.target(host);
    const command = ['dcmi', 'power', 'reading'];
    const output = await this.runner.run(target, command, signal);
    if (output.exitCode === 0) return parseDcmiPowerReading(output.stdout);
    const failure = classifyIpmitoolFailure(output.stderr);
    if (failure.kind !== 'unsupported') throw this.failed(target, command, output);
    this.withoutDcmi.add(host);
    this.log.info('no dcmi power reading on this bmc', { host, bmc: failure.said });
    return undefined;
  }

  /** Runs the caller's guard before a soft power-off becomes a hard one; its error stops the hard power-off. */
  private async checkBeforeHardOff(target: BmcTarget, options: PowerOffOptions, signal: AbortSignal): Promise<void> {
    if (options.beforeHardOff === undefined) return;
    try {
      await options.beforeHardOff(signal);
    } catch (e) {
      this.log.warn('hard power-off cancelled by the re-check before it', { host: target.host, err: e });
      throw e;
    }
  }

  /** Get System GUID (`raw 0x06 0x37`), as Linux's product_uuid; see parseSystemGuid for the byte order. */
  async systemUuid(host: HostId, signal: AbortSignal): Promise<string | undefined> {
    if (this.withoutGuid.has(host)) return undefined;
    const target = this.target(host);
    const output = await this.runner.run(target, GET_SYSTEM_GUID, signal);
    if (output.exitCode === 0) {
      const uuid = parseSystemGuid(output.stdout);
      if (uuid === undefined) this.log.info('the bmc reports no system guid (all zeros or all ones)', { host });
      return uuid;
    }
    const failure = classifyIpmitoolFailure(output.stderr);
    if (failure.kind !== 'unsupported') throw this.failed(target, GET_SYSTEM_GUID, output);
    this.withoutGuid.add(host);
    this.log.info('no system guid on this bmc', { host, bmc: failure.said });
    return undefined;
  }

  /**
   * `chassis power soft`, then waits up to the soft-off timeout for the host to shut down. True when
   * it did; false when a hard power-off is needed (timeout, or a BMC that refuses soft-off).
   */
  private async trySoftOff(target: BmcTarget, signal: AbortSignal): Promise<boolean> {
    try {
      await this.control(target, 'soft', signal);
    } catch (e) {
      if (!isConsolidatorError(e, 'POWER_FAILED') || e.details['failure'] !== 'refused') throw e;
      this.log.warn('soft power-off refused by the bmc, powering off hard', { host: target.host, err: e });
      return false;
    }
    try {
      await this.verify(target, 'off', this.timing.softOffTimeoutMs, signal);
      return true;
    } catch (e) {
      if (!isConsolidatorError(e, 'POWER_TIMEOUT')) throw e;
      this.log.warn('soft power-off timed out, powering off hard', { host: target.host, softOffTimeoutMs: this.timing.softOffTimeoutMs });
      return false;
    }
  }

  private async control(target: BmcTarget, verb: 'on' | 'off' | 'soft', signal: AbortSignal): Promise<void> {
    const command = ['chassis', 'power', verb];
    const output = await this.runner.run(target, command, signal);
    if (output.exitCode !== 0) throw this.failed(target, command, output);
    const acknowledged = parseChassisPowerControl(output.stdout);
    if (acknowledged !== CONTROL_VERBS[verb]) {
      throw new ConsolidatorError('POWER_FAILED', `the BMC of ${target.host} acknowledged "${acknowledged}" to chassis power ${verb}`, {
        details: { host: target.host, command: command.join(' '), acknowledged },
      });
    }
    this.log.debug('power command acknowledged', { host: target.host, command: command.join(' '), durationMs: output.durationMs });
  }

  /** Reads the state until it is `want`; a BMC that does not answer for a while is retried until the deadline. */
  private async verify(target: BmcTarget, want: ChassisPowerState, timeoutMs: number, signal: AbortSignal): Promise<void> {
    await waitUntil({
      what: `${target.host} to report power ${want}`,
      timeoutMs,
      intervalMs: this.timing.verifyIntervalMs,
      signal,
      timeoutCode: 'POWER_TIMEOUT',
      details: { host: target.host, want },
      probe: async (probeSignal) => {
        try {
          const state = await this.readStatus(target, probeSignal);
          return state === want ? { done: true, value: undefined } : { done: false, seen: `power ${state}` };
        } catch (e) {
          if (isConsolidatorError(e, 'BMC_UNREACHABLE')) return { done: false, seen: 'no answer from the BMC', error: e };
          throw e;
        }
      },
    });
  }

  private async readStatus(target: BmcTarget, signal: AbortSignal): Promise<ChassisPowerState> {
    const command = ['chassis', 'power', 'status'];
    const output = await this.runner.run(target, command, signal);
    if (output.exitCode !== 0) throw this.failed(target, command, output);
    return parseChassisPowerStatus(output.stdout);
  }

  private failed(target: BmcTarget, command: readonly string[], output: IpmitoolOutput): ConsolidatorError {
    const failure = classifyIpmitoolFailure(output.stderr);
    const said = failure.said === '' ? '' : ` (ipmitool: ${failure.said})`;
    return new ConsolidatorError(failure.code, `ipmitool ${command.join(' ')} failed for ${target.host}: ${failure.reason}${said}`, {
      details: {
        host: target.host,
        bmc: `${target.address}:${target.port}`,
        command: command.join(' '),
        failure: failure.kind,
        exitCode: output.exitCode ?? undefined,
        ipmitool: failure.said,
      },
    });
  }

  private target(host: HostId): BmcTarget {
    const resolved = this.hosts.get(host);
    if (resolved === undefined) throw new ConsolidatorError('POWER_FAILED', `${host} is not a host of the policy`, { details: { host } });
    const bmc = resolved.bmc;
    if (bmc.address === undefined) {
      throw new ConsolidatorError('POWER_FAILED', `${host} has no bmc.address in the policy: it cannot be powered through IPMI`, { details: { host } });
    }
    return {
      host,
      address: bmc.address,
      port: bmc.ipmiPort,
      ...(bmc.user !== undefined ? { user: bmc.user } : {}),
      ...(bmc.passwordFile !== undefined ? { passwordFile: bmc.passwordFile } : {}),
    };
  }
}

export interface IpmitoolPowerFromPolicyDeps {
  readonly power: Policy['power'];
  readonly hosts: readonly ResolvedHost[];
  readonly logger: Logger;
  /** The ipmitool binary; `ipmitool` from PATH by default. */
  readonly program?: string;
  readonly verifyIntervalMs?: number;
}

/** IpmitoolPower with the real ipmitool and the policy's cipher suite, retries and timeouts. */
export function ipmitoolPowerFromPolicy(deps: IpmitoolPowerFromPolicyDeps): IpmitoolPower {
  const { power } = deps;
  const runner = new ProcessIpmitoolRunner({
    settings: { cipherSuite: power.ipmi.cipherSuite, retries: power.ipmi.retries, commandTimeoutMs: power.ipmi.commandTimeoutSeconds * MS_PER_SECOND },
    ...(deps.program !== undefined ? { program: deps.program } : {}),
  });
  return new IpmitoolPower({
    hosts: deps.hosts,
    runner,
    logger: deps.logger,
    timing: {
      softOffTimeoutMs: power.softOffTimeoutSeconds * MS_PER_SECOND,
      verifyTimeoutMs: power.verifyTimeoutSeconds * MS_PER_SECOND,
      verifyIntervalMs: deps.verifyIntervalMs ?? DEFAULT_VERIFY_INTERVAL_MS,
    },
  });
}
