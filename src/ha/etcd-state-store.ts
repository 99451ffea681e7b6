import { ConsolidatorError, errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { emptyState, HISTORY_LIMIT, parsePersistedState, type HistoryEntry, type PersistedState } from '../state/persisted-state.js';
import type { LoadedState, StateStore } from '../state/state-store.js';
import type { EtcdClient, Operation } from './etcd-client.js';
import type { LeaderGate } from './leader-election.js';

export interface EtcdStateStoreOptions {
  readonly client: EtcdClient;
  readonly gate: LeaderGate;
  /** The state lives under PREFIX + "state/", one key per field of the state. */
  readonly prefix: string;
  readonly logger: Logger;
  readonly nowMs?: () => number;
  /**
   * Where the state was before HA was turned on (the JSON file): read once, when etcd holds no state
   * yet, so that the hosts consolidator powered off are still known to be its own.
   */
  readonly seed?: StateStore;
}

/** History entries per key: a step's end appends to the last chunk instead of resending the whole history. */
export const HISTORY_CHUNK = 50;
const HISTORY_FIELD = 'history';

interface Chunk {
  readonly seq: number;
  entries: string[];
}

/**
 * The StateStore port on etcd, for HA: the same state as the JSON file (every field of
 * PersistedState), one key per top-level field so that a save sends only the fields that changed,
 * and the history in chunks of HISTORY_CHUNK entries (state/history/SEQ), appended to and dropped
 * from the front, so that a step's end sends its entry and not the last thousand.
 * Every save is fenced: one transaction that checks the leader key is still this controller's term
 * and writes the fields; a controller that no longer leads writes nothing (NOT_LEADER).
 */
export class EtcdStateStore implements StateStore {
  private readonly base: string;
  /** What etcd holds, field by field, as this store last wrote or read it. */
  private written = new Map<string, string>();
  /** The history chunks in etcd, oldest first, as this store last wrote or read them. */
  private chunks: Chunk[] = [];
  private queue: Promise<void> = Promise.resolve();
  private readonly nowMs: () => number;

  constructor(private readonly o: EtcdStateStoreOptions) {
    this.base = `${o.prefix}state/`;
    this.nowMs = o.nowMs ?? Date.now;
  }

  async load(): Promise<LoadedState> {
    const { kvs } = await this.o.client.range(this.base, { prefix: true });
    const chunkPrefix = `${HISTORY_FIELD}/`;
    this.written = new Map(kvs.flatMap((kv) => (kv.key.slice(this.base.length).startsWith(chunkPrefix) ? [] : [[kv.key.slice(this.base.length), kv.value] as const])));
    this.chunks = [];
    if (kvs.length === 0) return this.loadSeed();
    const value: Record<string, unknown> = {};
    try {
      for (const kv of kvs) {
        const field = kv.key.slice(this.base.length);
        if (!field.startsWith(chunkPrefix)) continue;
        const entries = (JSON.parse(kv.value) as unknown[]).map((e) => JSON.stringify(e));
        this.chunks.push({ seq: Number(field.slice(chunkPrefix.length)), entries });
      }
      this.chunks.sort((x, y) => x.seq - y.seq);
      for (const [field, text] of this.written) value[field] = JSON.parse(text) as unknown;
      value[HISTORY_FIELD] = this.chunks.flatMap((c) => c.entries).slice(-HISTORY_LIMIT).map((e) => JSON.parse(e) as unknown);
      return { state: parsePersistedState(value) };
    } catch (e) {
      // Nothing is deleted: the next save overwrites the fields it writes; the old ones stay for a look.
      return { state: emptyState(), problem: `the state in etcd under ${this.base} is corrupt (${errorMessage(e)}); state rebuilt from what the hosts report` };
    }
  }

  private async loadSeed(): Promise<LoadedState> {
    if (!this.o.seed) return { state: emptyState(), fresh: true };
    const seeded = await this.o.seed.load();
    if (seeded.fresh) return { state: emptyState(), fresh: true };
    this.o.logger.child({ component: 'ha' }).warn('no state in etcd yet: starting from the local state file (written before HA was on)', { ...(seeded.problem ? { problem: seeded.problem } : {}) });
    return seeded.problem ? { state: seeded.state, problem: seeded.problem } : { state: seeded.state };
  }

  save(state: PersistedState): Promise<void> {
    const run = this.queue.then(() => this.write(state));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(state: PersistedState): Promise<void> {
    if (this.chunksUnknown) await this.readChunks();
    const { history, ...rest } = { ...state, savedAtMs: this.nowMs() };
    const fields = new Map(Object.entries(rest).flatMap(([k, v]) => (v === undefined ? [] : [[k, JSON.stringify(v)] as const])));
    const ops: Operation[] = [];
    for (const [field, text] of fields) if (this.written.get(field) !== text) ops.push({ put: { key: this.base + field, value: text } });
    for (const field of this.written.keys()) if (!fields.has(field)) ops.push({ delete: { key: this.base + field } });
    const chunks = this.historyOps(history, ops);
    try {
      await this.o.gate.fence(ops);
    } catch (e) {
      // An unanswered request may still have been applied: write every field next time.
      this.written = new Map();
      this.chunksUnknown = true;
      if (e instanceof ConsolidatorError) throw new ConsolidatorError(e.code, `state not saved in etcd: ${e.message}`, { cause: e, details: e.details });
      throw new ConsolidatorError('ETCD_UNAVAILABLE', `state not saved in etcd: ${errorMessage(e)}`, { cause: e });
    }
    this.written = fields;
    this.chunks = chunks;
  }

  /** Set when a save failed (it may or may not have been applied): the next one reads the chunks first. */
  private chunksUnknown = false;

  private async readChunks(): Promise<void> {
    const prefix = `${this.base}${HISTORY_FIELD}/`;
    const { kvs } = await this.o.client.range(prefix, { prefix: true });
    this.chunks = kvs
      .map((kv) => ({ seq: Number(kv.key.slice(prefix.length)), entries: (JSON.parse(kv.value) as unknown[]).map((e) => JSON.stringify(e)) }))
      .sort((x, y) => x.seq - y.seq);
    this.chunksUnknown = false;
  }

  /**
   * The operations that bring etcd's history chunks to `history`: the entries after the last one
   * written are appended (to the last chunk while it has room, then to new ones), and the oldest
   * chunks are deleted once the rest hold HISTORY_LIMIT entries. A history that does not continue
   * the written one (another leader wrote meanwhile) is rewritten whole. Returns the chunks after.
   */
  private historyOps(history: readonly HistoryEntry[], ops: Operation[]): Chunk[] {
    const texts = history.map((e) => JSON.stringify(e));
    const written = this.chunks.flatMap((c) => c.entries);
    const last = written.at(-1);
    const at = last === undefined ? -1 : texts.lastIndexOf(last);
    const continues = written.length === 0 || at >= 0;
    let chunks: Chunk[];
    let fresh: string[];
    if (continues) {
      chunks = this.chunks.map((c) => ({ seq: c.seq, entries: [...c.entries] }));
      fresh = texts.slice(at + 1);
    } else {
      // New chunks get new sequence numbers: a key is never both deleted and put in one transaction.
      for (const c of this.chunks) ops.push({ delete: { key: this.chunkKey(c.seq) } });
      chunks = [];
      fresh = texts;
    }
    const touched = new Set<number>();
    for (const entry of fresh) {
      let tail = chunks.at(-1);
      if (!tail || tail.entries.length >= HISTORY_CHUNK) {
        tail = { seq: (chunks.at(-1)?.seq ?? this.chunks.at(-1)?.seq ?? 0) + 1, entries: [] };
        chunks.push(tail);
      }
      tail.entries.push(entry);
      touched.add(tail.seq);
    }
    while (chunks.length > 1 && chunks.slice(1).reduce((n, c) => n + c.entries.length, 0) >= HISTORY_LIMIT) {
      const dropped = chunks.shift() as Chunk;
      touched.delete(dropped.seq);
      if (this.chunks.some((c) => c.seq === dropped.seq) && continues) ops.push({ delete: { key: this.chunkKey(dropped.seq) } });
    }
    for (const c of chunks) if (touched.has(c.seq)) ops.push({ put: { key: this.chunkKey(c.seq), value: `[${c.entries.join(',')}]` } });
    return chunks;
  }

  private chunkKey(seq: number): string {
    return `${this.base}${HISTORY_FIELD}/${String(seq).padStart(12, '0')}`;
  }
}
