import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EtcdStateStore } from '../../src/ha/etcd-state-store.js';
import { createHttpEtcdClient, type EtcdRequestEvent, type HttpEtcdClient } from '../../src/ha/http-etcd-client.js';
import { LeaderElection } from '../../src/ha/leader-election.js';
import { silentLogger } from '../../src/observability/logger.js';
import { emptyState } from '../../src/state/persisted-state.js';
import { EtcdCluster } from '../helpers/etcd-cluster.js';
import { thrown } from '../helpers/thrown.js';
import { waitFor } from '../helpers/wait-for.js';

const TTL_SECONDS = 3;
/** The test cluster's --election-timeout: a raft leader cut off from the others renews leases until then. */
const ETCD_ELECTION_TIMEOUT_MS = 1000;

/**
 * The HA building blocks against a real 3-member etcd cluster with TLS and client certificates: the
 * JSON-gateway client, the election and its fence, the state store, and what happens when one, then
 * two members stop.
 */
describe('HA on a real etcd cluster (TLS)', () => {
  let etcd: EtcdCluster;
  const clients: HttpEtcdClient[] = [];
  const events: EtcdRequestEvent[] = [];
  const client = async (requestTimeoutMs = 1000) => {
    const c = await createHttpEtcdClient({ endpoints: etcd.endpoints, tls: etcd.tls, requestTimeoutMs, onRequest: (e) => events.push(e) });
    clients.push(c);
    return c;
  };
  const elections: LeaderElection[] = [];
  const election = (c: HttpEtcdClient, name: string, prefix: string, log: string[]) => {
    const e = new LeaderElection({
      client: c,
      prefix,
      name,
      ttlSeconds: TTL_SECONDS,
      logger: silentLogger,
      events: { onElected: () => log.push(`${name} elected`), onDeposed: (why) => log.push(`${name} deposed: ${why}`) },
    });
    elections.push(e);
    return e;
  };

  beforeAll(async () => {
    etcd = await EtcdCluster.start({ tls: true });
  });
  afterEach(async () => {
    for (const e of elections.splice(0)) await e.stop();
    for (let i = 0; i < etcd.endpoints.length; i++) etcd.startMember(i);
    await etcd.waitHealthy();
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    await etcd?.stop();
  });

  it('speaks the v3 JSON gateway over TLS with a client certificate: leases, ranges, transactions', async () => {
    const c = await client();
    const lease = await c.grant(5);
    expect(lease.ttlSeconds).toBe(5);
    const created = await c.txn({ compare: [{ key: '/t/a', target: 'create', equals: 0 }], success: [{ put: { key: '/t/a', value: 'é 1', lease: lease.id } }], failure: [] });
    expect(created.succeeded).toBe(true);
    const again = await c.txn({ compare: [{ key: '/t/a', target: 'create', equals: 0 }], success: [], failure: [{ range: { key: '/t/a' } }] });
    expect(again.succeeded).toBe(false);
    expect(again.responses[0]?.kvs?.[0]).toMatchObject({ key: '/t/a', value: 'é 1', createRevision: created.revision, lease: lease.id });
    await c.txn({ compare: [], success: [{ put: { key: '/t/b', value: '2' } }], failure: [] });
    expect((await c.range('/t/', { prefix: true })).kvs.map((kv) => kv.key)).toEqual(['/t/a', '/t/b']);
    expect(await c.keepAlive(lease.id)).toBe(5);
    await c.revoke(lease.id);
    expect(await c.keepAlive(lease.id)).toBe(0);
    // The key bound to the lease went with it.
    expect((await c.range('/t/', { prefix: true })).kvs.map((kv) => kv.key)).toEqual(['/t/b']);
    expect(events.every((e) => e.bytesSent > 0)).toBe(true);
  });

  it('is refused without the client certificate', async () => {
    const c = await createHttpEtcdClient({ endpoints: etcd.endpoints, tls: { caFile: etcd.tls?.caFile }, requestTimeoutMs: 1000 });
    clients.push(c);
    expect((await thrown(c.range('/t/'))).code).toBe('ETCD_UNAVAILABLE');
  });

  it('elects one leader; its fence passes, the other is refused; one member down changes nothing; two down: the leader stops within the TTL; quorum back: a leader again', async () => {
    const log: string[] = [];
    const a = election(await client(), 'a', '/e1/', log);
    const b = election(await client(), 'b', '/e1/', log);
    a.start();
    await waitFor('a leads', { timeoutMs: 10_000, intervalMs: 50 }, () => a.isLeader());
    b.start();
    await waitFor('b sees a lead', { timeoutMs: 10_000, intervalMs: 50 }, () => b.leaderName() === 'a');
    await a.fence([{ put: { key: '/e1/step', value: 'a1' } }]);
    expect((await thrown(b.fence([{ put: { key: '/e1/step', value: 'b1' } }]))).code).toBe('NOT_LEADER');

    // One member down: quorum holds, the leader renews and acts, for longer than a TTL.
    await etcd.stopMember(0);
    await new Promise((r) => setTimeout(r, TTL_SECONDS * 1000 + 1000));
    expect(a.isLeader()).toBe(true);
    await a.fence([{ put: { key: '/e1/step', value: 'a2' } }]);

    // Two down: no quorum. The leader stops believing it leads within the TTL (counted from when etcd
    // stops renewing: the raft leader left alone renews until its election timeout), and no one acts.
    await etcd.stopMember(1);
    const lostAt = performance.now();
    await waitFor('a steps down', { timeoutMs: TTL_SECONDS * 1000 + 5000, intervalMs: 20 }, () => !a.isLeader());
    const tookMs = performance.now() - lostAt;
    expect(tookMs).toBeLessThanOrEqual(TTL_SECONDS * 1000 + 2 * ETCD_ELECTION_TIMEOUT_MS + 500);
    expect((await thrown(a.fence([{ put: { key: '/e1/step', value: 'a3' } }]))).code).toBe('NOT_LEADER');
    expect(b.isLeader()).toBe(false);
    await waitFor('etcd reported unhealthy', { timeoutMs: 10_000, intervalMs: 100 }, () => !a.etcdHealth().ok && !b.etcdHealth().ok);
    expect(log).toContain(`a deposed: ${log.find((l) => l.startsWith('a deposed: '))?.slice('a deposed: '.length)}`);

    // Quorum back: one of them leads again.
    etcd.startMember(0);
    etcd.startMember(1);
    await etcd.waitHealthy();
    await waitFor('a leader again', { timeoutMs: 20_000, intervalMs: 100 }, () => a.isLeader() || b.isLeader());
    expect([a.isLeader(), b.isLeader()].filter(Boolean)).toHaveLength(1);
    const leader = a.isLeader() ? a : b;
    await leader.fence([{ put: { key: '/e1/step', value: 'again' } }]);
    expect(a.etcdHealth().ok && b.etcdHealth().ok).toBe(true);
    await a.stop();
    await b.stop();
  }, 90_000);

  it('a leader that stops revokes its lease: the other takes over at once', async () => {
    const log: string[] = [];
    const a = election(await client(), 'a', '/e2/', log);
    const b = election(await client(), 'b', '/e2/', log);
    a.start();
    await waitFor('a leads', { timeoutMs: 10_000, intervalMs: 50 }, () => a.isLeader());
    b.start();
    await waitFor('b sees a', { timeoutMs: 10_000, intervalMs: 50 }, () => b.leaderName() === 'a');
    const t0 = performance.now();
    await a.stop();
    await waitFor('b leads', { timeoutMs: 10_000, intervalMs: 20 }, () => b.isLeader());
    expect(performance.now() - t0).toBeLessThan(TTL_SECONDS * 1000);
    await b.stop();
  });

  it('keeps the state in etcd: one key per field, a save sends only what changed, a standby cannot write', async () => {
    const c = await client();
    const log: string[] = [];
    const a = election(c, 'a', '/s/', log);
    a.start();
    await waitFor('a leads', { timeoutMs: 10_000, intervalMs: 50 }, () => a.isLeader());
    const store = new EtcdStateStore({ client: c, gate: a, prefix: '/s/', logger: silentLogger, nowMs: () => 7 });
    expect((await store.load()).fresh).toBe(true);
    const state = { ...emptyState(), poweredOffByUs: { h2: { atMs: 5 } }, maintenance: { h3: { sinceMs: 6 } } };
    await store.save(state);
    const before = events.length;
    await store.save({ ...state, maintenance: {} });
    const sent = events.slice(before).filter((e) => e.op === 'txn');
    expect(sent).toHaveLength(1);
    expect((sent[0] as EtcdRequestEvent).bytesSent).toBeLessThan(600);
    const again = new EtcdStateStore({ client: c, gate: a, prefix: '/s/', logger: silentLogger });
    const loaded = await again.load();
    expect(loaded.state.poweredOffByUs).toEqual({ h2: { atMs: 5 } });
    expect(loaded.state.maintenance).toEqual({});
    expect(loaded.state.savedAtMs).toBe(7);

    const b = election(await client(), 'b', '/s/', log);
    b.start();
    await waitFor('b sees a', { timeoutMs: 10_000, intervalMs: 50 }, () => b.leaderName() === 'a');
    const standby = new EtcdStateStore({ client: c, gate: b, prefix: '/s/', logger: silentLogger });
    expect((await thrown(standby.save(emptyState()))).code).toBe('NOT_LEADER');
    expect((await again.load()).state.poweredOffByUs).toEqual({ h2: { atMs: 5 } });
    await a.stop();
    await b.stop();
  });
});
