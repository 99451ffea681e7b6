/**
 * The per-host record of power actions, so the planner can enforce safety.maxPowerActionsPerHostPerDay.
 * Plain JSON data (the state store persists it as it is) and pure functions; PowerRecorder is the small
 * mutable holder the SupervisedPower decorator appends to.
 */
import { ConsolidatorError, ERROR_CODES, type ErrorCode } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { PowerOffMode } from '../drivers/power/power-driver.js';

export type PowerAction = 'on' | 'off';

/** 'ok', or the code of the error the action ended with. */
export type PowerActionResult = 'ok' | ErrorCode;

export interface PowerActionEntry {
  /** When the action started (wall clock, ms since the epoch). */
  readonly atMs: number;
  readonly action: PowerAction;
  /** For 'off': the mode asked for (a soft power-off may have ended hard). */
  readonly mode?: PowerOffMode;
  readonly result: PowerActionResult;
  readonly durationMs: number;
}

/** Entries per host, oldest first. JSON-serializable as it is. */
export interface PowerRecord {
  readonly version: 1;
  readonly hosts: Readonly<Record<HostId, readonly PowerActionEntry[]>>;
}

export const DAY_MS = 24 * 60 * 60 * 1000;

/** Entries older than this are dropped when a new one is added: the budget looks back one day. */
export const POWER_RECORD_RETENTION_MS = DAY_MS;

export function emptyPowerRecord(): PowerRecord {
  return { version: 1, hosts: {} };
}

/**
 * Power actions of `host` that started within the 24 h before `nowMs` (now included). Every attempt
 * counts, failed ones too: a BMC or power supply that fails is not to be hammered.
 */
export function powerActionsInLast24h(record: PowerRecord, host: HostId, nowMs: number): number {
  const since = nowMs - DAY_MS;
  return (record.hosts[host] ?? []).filter((e) => e.atMs > since && e.atMs <= nowMs).length;
}

/** powerActionsInLast24h for every host in the record: the planner's PlanInput.powerActionsLast24h. */
export function powerActionsLast24hByHost(record: PowerRecord, nowMs: number): Record<HostId, number> {
  const counts: Record<HostId, number> = {};
  for (const host of Object.keys(record.hosts)) {
    const count = powerActionsInLast24h(record, host, nowMs);
    if (count > 0) counts[host] = count;
  }
  return counts;
}

/** The last action of `host`, if any (for cooldowns and status output). */
export function lastPowerAction(record: PowerRecord, host: HostId): PowerActionEntry | undefined {
  const entries = record.hosts[host] ?? [];
  return entries[entries.length - 1];
}

/** A new record with `entry` added for `host`, and every host's entries older than the retention dropped. */
export function withPowerAction(record: PowerRecord, host: HostId, entry: PowerActionEntry): PowerRecord {
  const hosts: Record<HostId, readonly PowerActionEntry[]> = {};
  for (const [name, entries] of Object.entries(record.hosts)) hosts[name] = entries;
  hosts[host] = [...(hosts[host] ?? []), entry].sort((a, b) => a.atMs - b.atMs);
  return prunePowerRecord({ version: 1, hosts }, entry.atMs);
}

/** Drops entries older than the retention, and hosts left without entries. */
export function prunePowerRecord(record: PowerRecord, nowMs: number): PowerRecord {
  const since = nowMs - POWER_RECORD_RETENTION_MS;
  const hosts: Record<HostId, readonly PowerActionEntry[]> = {};
  for (const [name, entries] of Object.entries(record.hosts)) {
    const kept = entries.filter((e) => e.atMs > since);
    if (kept.length > 0) hosts[name] = kept;
  }
  return { version: 1, hosts };
}

const RESULTS: ReadonlySet<string> = new Set<string>(['ok', ...ERROR_CODES]);

/** Checks a value read back from the state file; STATE_CORRUPT names the first bad field. */
export function parsePowerRecord(value: unknown): PowerRecord {
  const fail = (path: string, what: string) => new ConsolidatorError('STATE_CORRUPT', `power record: ${path} ${what}`, { details: { path } });
  if (!isObject(value) || value['version'] !== 1) throw fail('version', 'must be 1');
  const hostsValue = value['hosts'];
  if (!isObject(hostsValue)) throw fail('hosts', 'must be an object');
  const hosts: Record<HostId, PowerActionEntry[]> = {};
  for (const [host, entries] of Object.entries(hostsValue)) {
    if (!Array.isArray(entries)) throw fail(`hosts.${host}`, 'must be a list');
    hosts[host] = entries.map((e: unknown, i) => {
      const at = `hosts.${host}[${i}]`;
      if (!isObject(e)) throw fail(at, 'must be an object');
      const { atMs, action, mode, result, durationMs } = e;
      if (typeof atMs !== 'number' || !Number.isFinite(atMs)) throw fail(`${at}.atMs`, 'must be a number');
      if (action !== 'on' && action !== 'off') throw fail(`${at}.action`, 'must be "on" or "off"');
      if (mode !== undefined && mode !== 'soft' && mode !== 'hard') throw fail(`${at}.mode`, 'must be "soft" or "hard"');
      if (typeof result !== 'string' || !RESULTS.has(result)) throw fail(`${at}.result`, 'must be "ok" or an error code');
      if (typeof durationMs !== 'number' || !Number.isFinite(durationMs)) throw fail(`${at}.durationMs`, 'must be a number');
      return { atMs, action, ...(mode !== undefined ? { mode } : {}), result: result as PowerActionResult, durationMs };
    });
  }
  return { version: 1, hosts };
}

/** Holds the current record; SupervisedPower appends, the daemon reads `record` to plan and persist. */
export class PowerRecorder {
  private current: PowerRecord;

  constructor(initial: PowerRecord = emptyPowerRecord()) {
    this.current = initial;
  }

  get record(): PowerRecord {
    return this.current;
  }

  add(host: HostId, entry: PowerActionEntry): void {
    this.current = withPowerAction(this.current, host, entry);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
