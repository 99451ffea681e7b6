import { readFile } from 'node:fs/promises';
import type { ResolvedHost } from '../../config/resolve.js';
import type { Policy } from '../../config/schema.js';
import { ConsolidatorError, errorMessage, isConsolidatorError } from '../../errors.js';
import type { HostId } from '../../model/ids.js';
import type { PowerState } from '../../model/snapshot.js';
import type { Logger } from '../../observability/logger.js';
import { waitUntil } from '../../util/wait-until.js';
import type { PowerDriver, PowerOffMode, PowerOffOptions } from './power-driver.js';
import { type JsonObject, RedfishClient, SERVICE_ROOT } from './redfish-client.js';
import {
  allowedFromActionInfo,
  chassisOf,
  chooseSystem,
  environmentPowerWatts,
  memberUris,
  pickResetType,
  powerConsumedWatts,
  powerStateOf,
  type ResetAction,
  resetActionOf,
  type ResetType,
  systemUuidOf,
} from './redfish-resources.js';
import { describeEndpoint, type HttpsTransport, NodeHttpsTransport, type RedfishTrust } from './redfish-transport.js';
import { odataId } from './redfish-client.js';

export interface RedfishPowerTiming {
  /** After GracefulShutdown, how long the host may take to shut down before ForceOff. */
  readonly softOffTimeoutMs: number;
  /** How long the service may take to report the requested PowerState after a reset. */
  readonly verifyTimeoutMs: number;
  /** Pause between two reads of PowerState while verifying. */
  readonly verifyIntervalMs: number;
  /** One HTTPS request, connection and handshake included. */
  readonly requestTimeoutMs: number;
}

export interface RedfishPowerDeps {
  readonly hosts: readonly ResolvedHost[];
  readonly timing: RedfishPowerTiming;
  readonly logger: Logger;
  /** NodeHttpsTransport by default. */
  readonly transport?: HttpsTransport;
}

const MS_PER_SECOND = 1000;
export const DEFAULT_REDFISH_VERIFY_INTERVAL_MS = 1000;
const POWER_ON: readonly ResetType[] = ['On', 'PushPowerButton'];
const SOFT_OFF: readonly ResetType[] = ['GracefulShutdown'];
const HARD_OFF: readonly ResetType[] = ['ForceOff'];
const FORCE_ON: readonly ResetType[] = ['ForceOn', 'PowerCycle'];

interface HostBmc {
  readonly resolved: ResolvedHost;
  readonly client: RedfishClient;
  /** The ComputerSystem's URI, once discovered. */
  systemUri?: string;
  /** No power reading on this BMC: not asked again. */
  withoutReading?: boolean;
}

/**
 * The PowerDriver for Redfish services (DSP0266/DSP0268), over HTTPS with the certificate verified
 * (CA file and/or pinned SHA-256 fingerprint; unverified only with bmc.redfish.insecureSkipVerify,
 * warned about at every start). The ComputerSystem is discovered from /redfish/v1/Systems; every
 * ComputerSystem.Reset uses a ResetType the service lists in its AllowableValues (On, or
 * PushPowerButton where On is not offered; GracefulShutdown then ForceOff; ForceOn or PowerCycle for
 * forcePowerOn) and is read back (PowerState) until it matches or the deadline passes. A request for
 * the state the host is already in is not sent (PushPowerButton would toggle it).
 * Errors: BMC_AUTH (credentials refused, or a certificate not trusted: then nothing was sent),
 * BMC_UNREACHABLE (no answer within the request timeout), POWER_FAILED (refused, not offered),
 * POWER_TIMEOUT, PARSE, ABORTED.
 */
export class RedfishPower implements PowerDriver {
  private readonly bmcs = new Map<HostId, HostBmc>();
  private readonly timing: RedfishPowerTiming;
  private readonly log: Logger;

  constructor(deps: RedfishPowerDeps) {
    this.timing = deps.timing;
    this.log = deps.logger.child({ component: 'redfish-power' });
    const transport = deps.transport ?? new NodeHttpsTransport();
    for (const host of deps.hosts) {
      const { bmc } = host;
      if (bmc.address === undefined || bmc.user === undefined || bmc.passwordFile === undefined) continue; // refused when used, in bmcOf
      if (bmc.redfish.insecureSkipVerify) {
        this.log.warn('redfish certificate verification is disabled for this bmc (bmc.redfish.insecureSkipVerify): its password can be read on the path', {
          host: host.name,
          bmc: describeEndpoint({ host: host.name, address: bmc.address, port: bmc.redfishPort }),
        });
      }
      const client = new RedfishClient({
        endpoint: { host: host.name, address: bmc.address, port: bmc.redfishPort },
        trust: lazyTrust(host),
        credentials: { user: bmc.user, passwordFile: bmc.passwordFile },
        transport,
        requestTimeoutMs: deps.timing.requestTimeoutMs,
        logger: this.log,
      });
      this.bmcs.set(host.name, { resolved: host, client });
    }
  }

  async status(host: HostId, signal: AbortSignal): Promise<PowerState> {
    return powerStateOf(await this.readSystem(this.bmcOf(host), signal)).state;
  }

  async powerOn(host: HostId, signal: AbortSignal): Promise<void> {
    await this.turnOn(host, POWER_ON, 'power on', signal);
  }

  async forcePowerOn(host: HostId, signal: AbortSignal): Promise<void> {
    await this.turnOn(host, FORCE_ON, 'force power on', signal);
  }

  async powerOff(host: HostId, mode: PowerOffMode, signal: AbortSignal, options: PowerOffOptions = {}): Promise<void> {
    const bmc = this.bmcOf(host);
    const startMs = Date.now();
    const system = await this.readSystem(bmc, signal);
    if (powerStateOf(system).state === 'off') {
      this.log.info('host already off, nothing sent', { host, mode });
      return;
    }
    const action = await this.resetAction(bmc, system, signal);
    if (mode === 'soft') {
      if (await this.trySoftOff(bmc, action, signal)) {
        this.log.info('host powered off', { host, mode, resetType: 'GracefulShutdown', durationMs: Date.now() - startMs });
        return;
      }
      await checkBeforeHardOff(host, options, signal, this.log);
    }
    const hard = this.offered(host, action, HARD_OFF, 'power off hard');
    await this.reset(bmc, action, hard, signal);
    await this.verify(bmc, 'off', this.timing.verifyTimeoutMs, signal);
    this.log.info('host powered off', { host, mode: 'hard', requested: mode, resetType: hard, durationMs: Date.now() - startMs });
  }

  async powerReadingWatts(host: HostId, signal: AbortSignal): Promise<number | undefined> {
    const bmc = this.bmcOf(host);
    if (bmc.withoutReading === true) return undefined;
    const chassisUri = chassisOf(await this.readSystem(bmc, signal));
    const chassis = chassisUri === undefined ? undefined : await bmc.client.get(chassisUri, signal);
    const powerUri = odataId(chassis?.['Power']);
    if (powerUri !== undefined) {
      const watts = powerConsumedWatts(await bmc.client.get(powerUri, signal));
      if (watts !== undefined) return watts;
    }
    const metricsUri = odataId(chassis?.['EnvironmentMetrics']);
    if (metricsUri !== undefined) {
      const watts = environmentPowerWatts(await bmc.client.get(metricsUri, signal));
      if (watts !== undefined) return watts;
    }
    bmc.withoutReading = true;
    this.log.info('no power reading on this bmc (no Chassis Power.PowerControl PowerConsumedWatts nor EnvironmentMetrics PowerWatts)', { host, chassis: chassisUri });
    return undefined;
  }

  async systemUuid(host: HostId, signal: AbortSignal): Promise<string | undefined> {
    const uuid = systemUuidOf(host, await this.readSystem(this.bmcOf(host), signal));
    if (uuid === undefined) this.log.info('the bmc reports no system uuid (none, all zeros or all ones)', { host });
    return uuid;
  }

  async close(): Promise<void> {
    await Promise.all([...this.bmcs.values()].map((b) => b.client.close()));
  }

  private async turnOn(host: HostId, preferred: readonly ResetType[], what: string, signal: AbortSignal): Promise<void> {
    const bmc = this.bmcOf(host);
    const startMs = Date.now();
    const system = await this.readSystem(bmc, signal);
    if (powerStateOf(system).state === 'on') {
      this.log.info('host already on, nothing sent', { host, action: what });
      return;
    }
    const action = await this.resetAction(bmc, system, signal);
    const type = this.offered(host, action, preferred, what);
    await this.reset(bmc, action, type, signal);
    await this.verify(bmc, 'on', this.timing.verifyTimeoutMs, signal);
    this.log.info('host powered on', { host, resetType: type, durationMs: Date.now() - startMs });
  }

  /** GracefulShutdown, then PowerState read until off or the soft-off timeout. False: a hard power-off is needed. */
  private async trySoftOff(bmc: HostBmc, action: ResetAction, signal: AbortSignal): Promise<boolean> {
    const host = bmc.resolved.name;
    const soft = pickResetType(action.allowed, SOFT_OFF);
    if (soft === undefined) {
      this.log.warn('the bmc offers no GracefulShutdown, powering off hard', { host, allowed: action.allowed?.join(', ') });
      return false;
    }
    try {
      await this.reset(bmc, action, soft, signal);
    } catch (e) {
      if (!isConsolidatorError(e, 'POWER_FAILED') || e.details['failure'] !== 'refused') throw e;
      this.log.warn('soft power-off refused by the bmc, powering off hard', { host, err: e });
      return false;
    }
    try {
      await this.verify(bmc, 'off', this.timing.softOffTimeoutMs, signal);
      return true;
    } catch (e) {
      if (!isConsolidatorError(e, 'POWER_TIMEOUT')) throw e;
      this.log.warn('soft power-off timed out, powering off hard', { host, softOffTimeoutMs: this.timing.softOffTimeoutMs });
      return false;
    }
  }

  private offered(host: HostId, action: ResetAction, preferred: readonly ResetType[], what: string): ResetType {
    const type = pickResetType(action.allowed, preferred);
    if (type !== undefined) return type;
    throw new ConsolidatorError(
      'POWER_FAILED',
      `cannot ${what} ${host}: its BMC offers none of ${preferred.join(', ')} (ResetType@Redfish.AllowableValues: ${action.allowed?.join(', ') ?? 'none'})`,
      { details: { host, wanted: preferred.join(', '), allowed: action.allowed?.join(', '), failure: 'not-offered' } },
    );
  }

  private async reset(bmc: HostBmc, action: ResetAction, type: ResetType, signal: AbortSignal): Promise<void> {
    const answer = await bmc.client.post(action.target, { ResetType: type }, signal);
    this.log.debug('redfish reset accepted', { host: bmc.resolved.name, resetType: type, status: answer.status });
  }

  private async resetAction(bmc: HostBmc, system: JsonObject, signal: AbortSignal): Promise<ResetAction> {
    const action = resetActionOf(bmc.resolved.name, system);
    if (action.allowed !== undefined || action.actionInfo === undefined) return action;
    const allowed = allowedFromActionInfo(await bmc.client.get(action.actionInfo, signal));
    return allowed === undefined ? action : { ...action, allowed };
  }

  /** Reads PowerState until it is `want`; a BMC that does not answer for a while is retried until the deadline. */
  private async verify(bmc: HostBmc, want: 'on' | 'off', timeoutMs: number, signal: AbortSignal): Promise<void> {
    const host = bmc.resolved.name;
    await waitUntil({
      what: `${host} to report PowerState ${want === 'on' ? 'On' : 'Off'}`,
      timeoutMs,
      intervalMs: this.timing.verifyIntervalMs,
      signal,
      timeoutCode: 'POWER_TIMEOUT',
      details: { host, want },
      probe: async (probeSignal) => {
        try {
          const seen = powerStateOf(await this.readSystem(bmc, probeSignal));
          return seen.state === want ? { done: true, value: undefined } : { done: false, seen: `PowerState ${seen.said}` };
        } catch (e) {
          if (isConsolidatorError(e, 'BMC_UNREACHABLE')) return { done: false, seen: 'no answer from the BMC', error: e };
          throw e;
        }
      },
    });
  }

  /** The ComputerSystem resource; its URI discovered once from the Systems collection, and again if it moved (404). */
  private async readSystem(bmc: HostBmc, signal: AbortSignal): Promise<JsonObject> {
    const known = bmc.systemUri;
    if (known !== undefined) {
      try {
        return await bmc.client.get(known, signal);
      } catch (e) {
        if (!isConsolidatorError(e, 'POWER_FAILED') || e.details['status'] !== 404) throw e;
        this.log.warn('redfish system gone from its uri, discovering it again', { host: bmc.resolved.name, system: known });
        delete bmc.systemUri;
      }
    }
    const root = await bmc.client.get(SERVICE_ROOT, signal);
    const systemsUri = odataId(root['Systems']);
    if (systemsUri === undefined) {
      throw new ConsolidatorError('POWER_FAILED', `the Redfish service of ${bmc.resolved.name} has no Systems collection`, { details: { host: bmc.resolved.name } });
    }
    const uri = chooseSystem(bmc.resolved.name, memberUris(await bmc.client.get(systemsUri, signal)), bmc.resolved.bmc.redfish.systemId);
    bmc.systemUri = uri;
    this.log.info('redfish system discovered', { host: bmc.resolved.name, system: uri });
    return bmc.client.get(uri, signal);
  }

  private bmcOf(host: HostId): HostBmc {
    const bmc = this.bmcs.get(host);
    if (bmc !== undefined) return bmc;
    throw new ConsolidatorError('POWER_FAILED', `${host} has no Redfish BMC in the policy (bmc.address, bmc.user and bmc.passwordFile): it cannot be powered through Redfish`, {
      details: { host },
    });
  }
}

/** Runs the caller's guard before a soft power-off becomes a hard one; its error stops the hard power-off. */
async function checkBeforeHardOff(host: HostId, options: PowerOffOptions, signal: AbortSignal, log: Logger): Promise<void> {
  if (options.beforeHardOff === undefined) return;
  try {
    await options.beforeHardOff(signal);
  } catch (e) {
    log.warn('hard power-off cancelled by the re-check before it', { host, err: e });
    throw e;
  }
}

/**
 * The host's trust, with the CA file read at the first request (and again after a failed read, so a
 * file fixed in place is picked up without a restart).
 */
function lazyTrust(host: ResolvedHost): RedfishTrust | (() => Promise<RedfishTrust>) {
  const tls = host.bmc.redfish;
  if (tls.caFile === undefined) {
    if (tls.certificateSha256 !== undefined) return { kind: 'pinned', pinnedSha256: tls.certificateSha256 };
    return { kind: 'insecure' };
  }
  const caFile = tls.caFile;
  let pem: Promise<string> | undefined;
  return async () => {
    pem ??= readFile(caFile, 'utf8').catch((e: unknown) => {
      pem = undefined;
      throw new ConsolidatorError('BMC_AUTH', `cannot read the Redfish CA file of ${host.name} (${caFile}): ${errorMessage(e)}`, {
        details: { host: host.name, caFile, failure: 'certificate' },
        cause: e,
      });
    });
    return { kind: 'ca', caPem: await pem, ...(tls.certificateSha256 !== undefined ? { pinnedSha256: tls.certificateSha256 } : {}) };
  };
}

export interface RedfishPowerFromPolicyDeps {
  readonly power: Policy['power'];
  readonly hosts: readonly ResolvedHost[];
  readonly logger: Logger;
  readonly verifyIntervalMs?: number;
  readonly transport?: HttpsTransport;
}

/** RedfishPower with the policy's timeouts, for the hosts whose driver is redfish. */
export function redfishPowerFromPolicy(deps: RedfishPowerFromPolicyDeps): RedfishPower {
  const { power } = deps;
  return new RedfishPower({
    hosts: deps.hosts,
    logger: deps.logger,
    ...(deps.transport !== undefined ? { transport: deps.transport } : {}),
    timing: {
      softOffTimeoutMs: power.softOffTimeoutSeconds * MS_PER_SECOND,
      verifyTimeoutMs: power.verifyTimeoutSeconds * MS_PER_SECOND,
      verifyIntervalMs: deps.verifyIntervalMs ?? DEFAULT_REDFISH_VERIFY_INTERVAL_MS,
      requestTimeoutMs: power.redfish.requestTimeoutSeconds * MS_PER_SECOND,
    },
  });
}
