import { z } from 'zod';
import { ConsolidatorError } from '../errors.js';
import { emptyAttentionState, parseAttentionState, type AttentionState } from './power-attention.js';
import { emptyPowerRecord, parsePowerRecord, type PowerRecord } from './power-record.js';
import type { ProofOfBootRecord } from './proof-of-boot.js';
import type { HostId } from '../model/ids.js';
import type { ResourceVector } from '../model/resources.js';
import { EMPTY_MEMORY, type PlannerMemory } from '../planner/types.js';

/** One action as it ended, for `consolidator history` and for reconciling after a restart. */
export interface HistoryEntry {
  readonly atMs: number;
  readonly cycle: string;
  readonly actionId: string;
  readonly type: 'migrate' | 'power-off' | 'power-on';
  readonly subject: string;
  readonly from?: HostId;
  readonly to?: HostId;
  readonly result: 'ok' | 'failed' | 'skipped' | 'dry-run' | 'interrupted';
  /** What happened, in words. */
  readonly reason?: string;
  /**
   * A skip's SkipReason or a failure's ErrorCode. Kept as a plain string in the file, so a state written
   * by a newer version with a code this one does not know still loads.
   */
  readonly code?: string;
  readonly durationMs?: number;
}

/** The plan being carried out, written before each step so that a restart knows what was under way. */
export interface InFlightStep {
  readonly id: string;
  readonly type: 'migrate' | 'power-off' | 'power-on';
  readonly vm?: string;
  readonly from?: HostId;
  readonly to?: HostId;
  readonly host?: HostId;
  readonly status: 'pending' | 'running' | 'ok' | 'failed' | 'skipped';
}

export interface PersistedState {
  readonly version: 1;
  readonly savedAtMs: number;
  readonly planner: PlannerMemory;
  /** Hosts consolidator powered off, with when: the only ones it powers on again. */
  readonly poweredOffByUs: Readonly<Record<HostId, { readonly atMs: number }>>;
  readonly powerRecord: PowerRecord;
  readonly attention: AttentionState;
  /** Hosts an operator drained for maintenance: never touched until undrained. */
  readonly maintenance: Readonly<Record<HostId, { readonly sinceMs: number }>>;
  /** Hosts a drain woke to make room, with the host drained: kept on until it is undrained. */
  readonly wokenForMaintenance: Readonly<Record<HostId, { readonly forHost: HostId; readonly atMs: number }>>;
  /** Last capacity seen per host, so a host that is off can still be planned onto when woken. */
  readonly hostCapacity: Readonly<Record<HostId, ResourceVector>>;
  /** Last system UUID each host reported: a power action is refused when its BMC reports another. */
  readonly hostSystemUuid: Readonly<Record<HostId, string>>;
  /** The last proof of boot of each host (power.proofOfBoot). */
  readonly proofOfBoot: ProofOfBootRecord;
  readonly history: readonly HistoryEntry[];
  readonly inFlight?: { readonly cycle: string; readonly startedAtMs: number; readonly steps: readonly InFlightStep[] };
}

/** How many history entries the state keeps (newest). */
export const HISTORY_LIMIT = 1000;

export function emptyState(): PersistedState {
  return {
    version: 1,
    savedAtMs: 0,
    planner: EMPTY_MEMORY,
    poweredOffByUs: {},
    powerRecord: emptyPowerRecord(),
    attention: emptyAttentionState(),
    maintenance: {},
    wokenForMaintenance: {},
    hostCapacity: {},
    hostSystemUuid: {},
    proofOfBoot: {},
    history: [],
  };
}

const actionType = z.enum(['migrate', 'power-off', 'power-on']);

const stateSchema = z.object({
  version: z.literal(1),
  savedAtMs: z.number(),
  planner: z.object({
    underloadedSinceMs: z.record(z.string(), z.number()),
    hostCooldowns: z.record(z.string(), z.object({ untilMs: z.number(), reason: z.enum(['drained', 'woken', 'failed']) })),
    vmCooldownUntilMs: z.record(z.string(), z.number()),
  }),
  poweredOffByUs: z.record(z.string(), z.object({ atMs: z.number() })),
  powerRecord: z.unknown(),
  attention: z.unknown(),
  maintenance: z.record(z.string(), z.object({ sinceMs: z.number() })),
  // Absent in state files written before drains woke hosts.
  wokenForMaintenance: z.record(z.string(), z.object({ forHost: z.string(), atMs: z.number() })).default({}),
  hostCapacity: z.record(z.string(), z.object({ cpu: z.number(), memory: z.number() })),
  // Absent in state files written before the identity check.
  hostSystemUuid: z.record(z.string(), z.string()).default({}),
  // Absent in state files written before proof of boot.
  proofOfBoot: z
    .record(z.string(), z.object({ atMs: z.number(), result: z.enum(['ok', 'failed']), durationMs: z.number(), code: z.string().optional() }))
    .default({}),
  history: z.array(
    z.object({
      atMs: z.number(),
      cycle: z.string(),
      actionId: z.string(),
      type: actionType,
      subject: z.string(),
      from: z.string().optional(),
      to: z.string().optional(),
      result: z.enum(['ok', 'failed', 'skipped', 'dry-run', 'interrupted']),
      reason: z.string().optional(),
      code: z.string().optional(),
      durationMs: z.number().optional(),
    }),
  ),
  inFlight: z
    .object({
      cycle: z.string(),
      startedAtMs: z.number(),
      steps: z.array(
        z.object({
          id: z.string(),
          type: actionType,
          vm: z.string().optional(),
          from: z.string().optional(),
          to: z.string().optional(),
          host: z.string().optional(),
          status: z.enum(['pending', 'running', 'ok', 'failed', 'skipped']),
        }),
      ),
    })
    .optional(),
});

/** Checks a value read back from the state file; STATE_CORRUPT says which field is wrong. */
export function parsePersistedState(value: unknown): PersistedState {
  const parsed = stateSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue ? issue.path.map(String).join('.') : '';
    throw new ConsolidatorError('STATE_CORRUPT', `state file: ${path || '(root)'}: ${issue?.message ?? 'invalid'}`, { details: { path } });
  }
  // exactOptionalPropertyTypes: zod's optional fields come back as `T | undefined`; strip undefineds.
  const data = JSON.parse(JSON.stringify(parsed.data)) as Omit<PersistedState, 'powerRecord' | 'attention'>;
  return { ...data, powerRecord: parsePowerRecord(parsed.data.powerRecord), attention: parseAttentionState(parsed.data.attention) };
}
