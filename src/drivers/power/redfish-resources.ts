/**
 * Pure readings of Redfish resources (DSP0268 ComputerSystem, Chassis, Power, ActionInfo): no I/O, so
 * they are table-tested against captured mockups.
 */
import { ConsolidatorError } from '../../errors.js';
import type { PowerState } from '../../model/snapshot.js';
import { type JsonObject, odataId } from './redfish-client.js';

/** ResetType values of ComputerSystem.Reset (DSP0268 Resource.ResetType). */
export type ResetType = 'On' | 'ForceOff' | 'GracefulShutdown' | 'GracefulRestart' | 'ForceRestart' | 'Nmi' | 'ForceOn' | 'PushPowerButton' | 'PowerCycle' | 'Suspend' | 'Pause' | 'Resume';

export const RESET_ACTION = '#ComputerSystem.Reset';
const ALLOWABLE = 'ResetType@Redfish.AllowableValues';
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * The power state as the port knows it. PoweringOn / PoweringOff (and Paused, and a null PowerState)
 * are "unknown": neither on nor off yet, so a read-back keeps waiting.
 */
export function powerStateOf(system: JsonObject): { readonly state: PowerState; readonly said: string } {
  const said = system['PowerState'];
  if (said === 'On') return { state: 'on', said };
  if (said === 'Off') return { state: 'off', said };
  return { state: 'unknown', said: typeof said === 'string' ? said : String(said) };
}

/** The members of a collection (/redfish/v1/Systems), as URIs. */
export function memberUris(collection: JsonObject): string[] {
  const members = collection['Members'];
  if (!Array.isArray(members)) return [];
  return members.flatMap((m) => {
    const id = odataId(m);
    return id === undefined ? [] : [id];
  });
}

/**
 * Which member of the Systems collection is the host: the one whose last path segment is systemId
 * when given, else the only one. Dell calls it System.Embedded.1, HPE 1, Lenovo 1, Supermicro 1:
 * never assumed.
 */
export function chooseSystem(host: string, members: readonly string[], systemId?: string): string {
  if (systemId !== undefined) {
    const found = members.find((m) => m.replace(/\/+$/, '').split('/').pop() === systemId);
    if (found !== undefined) return found;
    throw new ConsolidatorError('POWER_FAILED', `the BMC of ${host} has no system "${systemId}" (bmc.redfish.systemId); it lists ${members.join(', ') || 'none'}`, {
      details: { host, systemId, members: members.join(', ') },
    });
  }
  const [only, ...others] = members;
  if (only !== undefined && others.length === 0) return only;
  throw new ConsolidatorError(
    'POWER_FAILED',
    members.length === 0
      ? `the BMC of ${host} lists no system in /redfish/v1/Systems`
      : `the BMC of ${host} lists ${members.length} systems (${members.join(', ')}): set bmc.redfish.systemId to the one that is ${host}`,
    { details: { host, members: members.join(', ') } },
  );
}

export interface ResetAction {
  /** Where to POST {ResetType}. */
  readonly target: string;
  /** ResetType@Redfish.AllowableValues, or the ActionInfo's; undefined when the service says nothing (then any value may be tried). */
  readonly allowed?: readonly string[];
  /** @Redfish.ActionInfo, when the allowed values are there instead. */
  readonly actionInfo?: string;
}

export function resetActionOf(host: string, system: JsonObject): ResetAction {
  const actions = system['Actions'];
  const reset = typeof actions === 'object' && actions !== null ? (actions as JsonObject)[RESET_ACTION] : undefined;
  if (typeof reset !== 'object' || reset === null) {
    throw new ConsolidatorError('POWER_FAILED', `the BMC of ${host} offers no ${RESET_ACTION} action on its system`, { details: { host } });
  }
  const r = reset as JsonObject;
  const target = r['target'];
  if (typeof target !== 'string' || target === '') {
    throw new ConsolidatorError('PARSE', `the BMC of ${host} offers ${RESET_ACTION} without a target`, { details: { host } });
  }
  const allowed = stringList(r[ALLOWABLE]);
  const info = r['@Redfish.ActionInfo'];
  return { target, ...(allowed !== undefined ? { allowed } : {}), ...(typeof info === 'string' && info !== '' ? { actionInfo: info } : {}) };
}

/** The ResetType parameter's AllowableValues of an ActionInfo resource. */
export function allowedFromActionInfo(info: JsonObject): readonly string[] | undefined {
  const parameters = info['Parameters'];
  if (!Array.isArray(parameters)) return undefined;
  for (const p of parameters) {
    if (typeof p === 'object' && p !== null && (p as JsonObject)['Name'] === 'ResetType') return stringList((p as JsonObject)['AllowableValues']);
  }
  return undefined;
}

/** The first of `preferred` the service allows (all of them are allowed when it says nothing). */
export function pickResetType(allowed: readonly string[] | undefined, preferred: readonly ResetType[]): ResetType | undefined {
  return preferred.find((t) => allowed === undefined || allowed.includes(t));
}

/**
 * The ComputerSystem UUID in the port's form (lower case 8-4-4-4-12). Redfish writes the UUID as the
 * string SMBIOS yields read the way Linux reads it (DSP0268: "the UUID ... should match SMBIOS"), so
 * no byte swapping. Undefined for none, all zeros or all F (SMBIOS "not set" / "not present").
 */
export function systemUuidOf(host: string, system: JsonObject): string | undefined {
  const raw = system['UUID'];
  if (raw === undefined || raw === null || raw === '') return undefined;
  const uuid = typeof raw === 'string' ? raw.trim().toLowerCase() : '';
  if (!UUID_PATTERN.test(uuid)) {
    throw new ConsolidatorError('PARSE', `the BMC of ${host} reports system UUID ${JSON.stringify(raw)}, which is not a UUID`, { details: { host } });
  }
  const digits = uuid.replaceAll('-', '');
  if (/^0+$/.test(digits) || /^f+$/.test(digits)) return undefined;
  return uuid;
}

/** The first chassis the system links to (Links.Chassis), where its power readings live. */
export function chassisOf(system: JsonObject): string | undefined {
  const links = system['Links'];
  if (typeof links !== 'object' || links === null) return undefined;
  const chassis = (links as JsonObject)['Chassis'];
  return Array.isArray(chassis) ? odataId(chassis[0]) : undefined;
}

/** Chassis Power: PowerControl[].PowerConsumedWatts summed (one entry per supply domain; most have one). */
export function powerConsumedWatts(power: JsonObject): number | undefined {
  const control = power['PowerControl'];
  if (!Array.isArray(control)) return undefined;
  const watts = control.flatMap((c) => {
    const w = typeof c === 'object' && c !== null ? (c as JsonObject)['PowerConsumedWatts'] : undefined;
    return typeof w === 'number' && Number.isFinite(w) && w >= 0 ? [w] : [];
  });
  return watts.length === 0 ? undefined : watts.reduce((a, b) => a + b, 0);
}

/** EnvironmentMetrics (the newer schema): PowerWatts.Reading. */
export function environmentPowerWatts(metrics: JsonObject): number | undefined {
  const power = metrics['PowerWatts'];
  const reading = typeof power === 'object' && power !== null ? (power as JsonObject)['Reading'] : undefined;
  return typeof reading === 'number' && Number.isFinite(reading) && reading >= 0 ? reading : undefined;
}

function stringList(value: unknown): readonly string[] | undefined {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
}
