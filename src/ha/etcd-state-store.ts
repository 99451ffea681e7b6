import { ConsolidatorError, errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { emptyState, parsePersistedState, type PersistedState } from '../state/persisted-state.js';
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

/**
 * The StateStore port on etcd, for HA: the same state as the JSON file (every field of
 * PersistedState), one key per top-level field so that a save sends only the fields that changed.
 * Every save is fenced: one transaction that checks the leader key is still this controller's term
 * and writes the fields; a controller that no longer leads writes nothing (NOT_LEADER).
 */
export class EtcdStateStore implements StateStore {
  private readonly base: string;
  /** What etcd holds, field by field, as this store last wrote or read it. */
  private written = new Map<string, string>();
  private queue: Promise<void> = Promise.resolve();
  private readonly nowMs: () => number;

  constructor(private readonly o: EtcdStateStoreOptions) {
    this.base = `${o.prefix}state/`;
    this.nowMs = o.nowMs ?? Date.now;
  }

  async load(): Promise<LoadedState> {
    const { kvs } = await this.o.client.range(this.base, { prefix: true });
    this.written = new Map(kvs.map((kv) => [kv.key.slice(this.base.length), kv.value]));
    if (kvs.length === 0) return this.loadSeed();
    const value: Record<string, unknown> = {};
    try {
      for (const [field, text] of this.written) value[field] = JSON.parse(text) as unknown;
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
    const fields = new Map(Object.entries({ ...state, savedAtMs: this.nowMs() }).flatMap(([k, v]) => (v === undefined ? [] : [[k, JSON.stringify(v)] as const])));
    const ops: Operation[] = [];
    for (const [field, text] of fields) if (this.written.get(field) !== text) ops.push({ put: { key: this.base + field, value: text } });
    for (const field of this.written.keys()) if (!fields.has(field)) ops.push({ delete: { key: this.base + field } });
    try {
      await this.o.gate.fence(ops);
    } catch (e) {
      // An unanswered request may still have been applied: write every field next time.
      this.written = new Map();
      if (e instanceof ConsolidatorError) throw new ConsolidatorError(e.code, `state not saved in etcd: ${e.message}`, { cause: e, details: e.details });
      throw new ConsolidatorError('ETCD_UNAVAILABLE', `state not saved in etcd: ${errorMessage(e)}`, { cause: e });
    }
    this.written = fields;
  }
}
