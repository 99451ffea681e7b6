import { describe, expect, it } from 'vitest';
import { EtcdStateStore, HISTORY_CHUNK } from '../../../src/ha/etcd-state-store.js';
import { LeaderElection } from '../../../src/ha/leader-election.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { emptyState, HISTORY_LIMIT, type HistoryEntry, type PersistedState } from '../../../src/state/persisted-state.js';
import { FakeEtcd, type FakeEtcdClient } from '../../helpers/fake-etcd.js';
import { thrown } from '../../helpers/thrown.js';

const PREFIX = '/c/';

const entry = (i: number): HistoryEntry => ({ atMs: i, cycle: `c${i}`, actionId: `m${i}`, type: 'migrate', subject: `vm-${i}`, from: 'h1', to: 'h2', result: 'ok' });

/** The keeper's rule: entries appended, the oldest dropped past HISTORY_LIMIT. */
const historyUpTo = (n: number) => Array.from({ length: n }, (_, i) => entry(i + 1)).slice(-HISTORY_LIMIT);

async function leader(etcd: FakeEtcd, name: string): Promise<{ election: LeaderElection; client: FakeEtcdClient }> {
  const client = etcd.client();
  const election = new LeaderElection({ client, prefix: PREFIX, name, ttlSeconds: 15, logger: silentLogger, monotonicMs: () => etcd.nowMs, setTimer: () => ({ cancel: () => undefined }) });
  election.start();
  await election.tick();
  return { election, client };
}

const state = (n: number, more: Partial<PersistedState> = {}): PersistedState => ({ ...emptyState(), history: historyUpTo(n), ...more });

describe('EtcdStateStore', () => {
  it('round-trips the state, the history in chunks; an appended entry rewrites only the last chunk', async () => {
    const etcd = new FakeEtcd();
    const { election, client } = await leader(etcd, 'a');
    expect(election.isLeader()).toBe(true);
    const store = new EtcdStateStore({ client, gate: election, prefix: PREFIX, logger: silentLogger, nowMs: () => 5 });
    expect((await store.load()).fresh).toBe(true);
    await store.save(state(120, { poweredOffByUs: { h3: { atMs: 1 } } }));
    expect(etcd.range(`${PREFIX}state/history/`, true)).toHaveLength(Math.ceil(120 / HISTORY_CHUNK));

    const before = etcd.log.length;
    await store.save(state(121, { poweredOffByUs: { h3: { atMs: 1 } } }));
    const written = etcd.log.slice(before).map((w) => w.key);
    // savedAtMs did not change (the clock is fixed): only the last chunk.
    expect(written).toEqual([`${PREFIX}state/history/000000000003`]);

    const loaded = await new EtcdStateStore({ client, gate: election, prefix: PREFIX, logger: silentLogger }).load();
    expect(loaded.state.history).toEqual(historyUpTo(121));
    expect(loaded.state.poweredOffByUs).toEqual({ h3: { atMs: 1 } });
  });

  it('keeps the last HISTORY_LIMIT entries as the history grows past it, deleting the oldest chunks', async () => {
    const etcd = new FakeEtcd();
    const { election, client } = await leader(etcd, 'a');
    const store = new EtcdStateStore({ client, gate: election, prefix: PREFIX, logger: silentLogger });
    await store.load();
    for (let n = 1; n <= HISTORY_LIMIT + 3 * HISTORY_CHUNK + 7; n += 13) await store.save(state(n));
    const n = HISTORY_LIMIT + 3 * HISTORY_CHUNK + 7;
    await store.save(state(n));
    const chunks = etcd.range(`${PREFIX}state/history/`, true);
    expect(chunks.length).toBeLessThanOrEqual(HISTORY_LIMIT / HISTORY_CHUNK + 2);
    const loaded = await new EtcdStateStore({ client, gate: election, prefix: PREFIX, logger: silentLogger }).load();
    expect(loaded.state.history).toEqual(historyUpTo(n));
  });

  it('after a save that failed, the next one reads the chunks again and the history stays whole', async () => {
    const etcd = new FakeEtcd();
    const { election, client } = await leader(etcd, 'a');
    const store = new EtcdStateStore({ client, gate: election, prefix: PREFIX, logger: silentLogger });
    await store.load();
    await store.save(state(60));
    client.cut = true;
    expect((await thrown(store.save(state(61)))).code).toBe('ETCD_UNAVAILABLE');
    client.cut = false;
    await store.save(state(75));
    const loaded = await new EtcdStateStore({ client, gate: election, prefix: PREFIX, logger: silentLogger }).load();
    expect(loaded.state.history).toEqual(historyUpTo(75));
  });

  it('a standby writes nothing (NOT_LEADER); the leader it replaces left the state it loads', async () => {
    const etcd = new FakeEtcd();
    const a = await leader(etcd, 'a');
    const b = await leader(etcd, 'b');
    expect(b.election.isLeader()).toBe(false);
    const storeA = new EtcdStateStore({ client: a.client, gate: a.election, prefix: PREFIX, logger: silentLogger });
    await storeA.load();
    await storeA.save(state(3, { maintenance: { h1: { sinceMs: 2 } } }));
    const storeB = new EtcdStateStore({ client: b.client, gate: b.election, prefix: PREFIX, logger: silentLogger });
    expect((await thrown(storeB.save(emptyState()))).code).toBe('NOT_LEADER');
    // a dies: its lease expires; b takes over and loads what a saved.
    etcd.advance(16_000);
    await b.election.tick();
    await b.election.tick();
    expect(b.election.isLeader()).toBe(true);
    const loaded = await storeB.load();
    expect(loaded.state.maintenance).toEqual({ h1: { sinceMs: 2 } });
    expect(loaded.state.history).toEqual(historyUpTo(3));
    await storeB.save(state(4, { maintenance: {} }));
    expect((await thrown(storeA.save(state(9)))).code).toBe('NOT_LEADER');
  });

  it('starts from the state file when etcd holds no state yet', async () => {
    const etcd = new FakeEtcd();
    const { election, client } = await leader(etcd, 'a');
    const seed = { load: () => Promise.resolve({ state: state(2, { poweredOffByUs: { h9: { atMs: 1 } } }) }), save: () => Promise.resolve() };
    const loaded = await new EtcdStateStore({ client, gate: election, prefix: PREFIX, logger: silentLogger, seed }).load();
    expect(loaded.state.poweredOffByUs).toEqual({ h9: { atMs: 1 } });
  });
});
