/**
 * Hosts that need an operator: a host that failed to power on (or to boot) is never powered off
 * automatically again until an operator clears it. Plain JSON data the daemon persists, exports as a
 * metric (one series per host, labelled with the reason) and the planner reads; one log line per change.
 */
import { ConsolidatorError, ERROR_CODES, type ErrorCode, errorMessage, isConsolidatorError } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { Logger } from '../observability/logger.js';
import { ATTENTION_REASONS, type AttentionReason } from '../model/reasons.js';

export interface AttentionEntry {
  readonly reason: AttentionReason;
  /** When the host was marked (ms since the epoch). */
  readonly sinceMs: number;
  /** The code of the error that caused it. */
  readonly errorCode: ErrorCode;
  /** The error's message (never holds secrets: ConsolidatorError messages do not). */
  readonly message: string;
}

export interface AttentionState {
  readonly version: 1;
  readonly hosts: Readonly<Record<HostId, AttentionEntry>>;
}

export function emptyAttentionState(): AttentionState {
  return { version: 1, hosts: {} };
}

/** True when `host` needs an operator: it must not be powered off automatically. */
export function needsAttention(state: AttentionState, host: HostId): boolean {
  return state.hosts[host] !== undefined;
}

/** Hosts that need attention, sorted: the planner's PlanInput.needsAttention. */
export function hostsNeedingAttention(state: AttentionState): HostId[] {
  return Object.keys(state.hosts).sort();
}

/** Checks a value read back from the state file; STATE_CORRUPT names the first bad field. */
export function parseAttentionState(value: unknown): AttentionState {
  const fail = (path: string, what: string) => new ConsolidatorError('STATE_CORRUPT', `attention state: ${path} ${what}`, { details: { path } });
  if (!isObject(value) || value['version'] !== 1) throw fail('version', 'must be 1');
  const hostsValue = value['hosts'];
  if (!isObject(hostsValue)) throw fail('hosts', 'must be an object');
  const hosts: Record<HostId, AttentionEntry> = {};
  for (const [host, e] of Object.entries(hostsValue)) {
    const at = `hosts.${host}`;
    if (!isObject(e)) throw fail(at, 'must be an object');
    const { reason, sinceMs, errorCode, message } = e;
    if (typeof reason !== 'string' || !(ATTENTION_REASONS as readonly string[]).includes(reason)) throw fail(`${at}.reason`, `must be one of ${ATTENTION_REASONS.join(', ')}`);
    if (typeof sinceMs !== 'number' || !Number.isFinite(sinceMs)) throw fail(`${at}.sinceMs`, 'must be a number');
    if (typeof errorCode !== 'string' || !(ERROR_CODES as readonly string[]).includes(errorCode)) throw fail(`${at}.errorCode`, 'must be an error code');
    if (typeof message !== 'string') throw fail(`${at}.message`, 'must be a string');
    hosts[host] = { reason: reason as AttentionReason, sinceMs, errorCode: errorCode as ErrorCode, message };
  }
  return { version: 1, hosts };
}

export interface PowerAttentionDeps {
  readonly logger: Logger;
  readonly initial?: AttentionState;
}

/** Holds the attention state; marks and clears are logged. */
export class PowerAttention {
  private current: AttentionState;
  private readonly log: Logger;

  constructor(deps: PowerAttentionDeps) {
    this.current = deps.initial ?? emptyAttentionState();
    this.log = deps.logger.child({ component: 'power-attention' });
  }

  /** The current state, to persist, export as a metric, or hand to the planner. */
  get state(): AttentionState {
    return this.current;
  }

  needsAttention(host: HostId): boolean {
    return needsAttention(this.current, host);
  }

  get(host: HostId): AttentionEntry | undefined {
    return this.current.hosts[host];
  }

  /** Marks `host` (the first reason stays if it is already marked). Logs at error level. */
  mark(host: HostId, reason: AttentionReason, nowMs: number, error: unknown): AttentionEntry {
    const existing = this.current.hosts[host];
    if (existing !== undefined) return existing;
    const entry: AttentionEntry = {
      reason,
      sinceMs: nowMs,
      errorCode: isConsolidatorError(error) ? error.code : 'INTERNAL',
      message: errorMessage(error),
    };
    this.current = { version: 1, hosts: { ...this.current.hosts, [host]: entry } };
    this.log.error('host needs operator attention', { host, reason, errorCode: entry.errorCode, err: error, autoPowerOff: false });
    return entry;
  }

  /** An operator has looked at `host`: it may be powered off automatically again. */
  clear(host: HostId): boolean {
    const existing = this.current.hosts[host];
    if (existing === undefined) return false;
    const hosts: Record<HostId, AttentionEntry> = { ...this.current.hosts };
    delete hosts[host];
    this.current = { version: 1, hosts };
    this.log.info('host attention cleared', { host, reason: existing.reason, sinceMs: existing.sinceMs });
    return true;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
