/**
 * An in-memory etcd with the semantics the HA mode relies on (one revision counter, create and mod
 * revisions, leases that expire on a clock the test moves and delete their keys), and clients for it
 * whose requests the test can cut (etcd unavailable) or hold (delivered later, as over a slow network).
 */
import { ConsolidatorError } from '../../src/errors.js';
import type { Compare, EtcdClient, KeyValue, Operation, TxnRequest, TxnResponse } from '../../src/ha/etcd-client.js';

interface StoredKey {
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: string;
}

export class FakeEtcd {
  nowMs = 0;
  revision = 1;
  readonly keys = new Map<string, StoredKey>();
  readonly leases = new Map<string, { ttlMs: number; expiresAtMs: number }>();
  private nextLease = 1000;
  /** Every write applied, in revision order (for properties over history). */
  readonly log: { revision: number; key: string; value: string | undefined }[] = [];

  advance(ms: number): void {
    this.nowMs += ms;
    this.expire();
  }

  expire(): void {
    for (const [id, lease] of [...this.leases]) if (lease.expiresAtMs <= this.nowMs) this.dropLease(id);
  }

  private dropLease(id: string): void {
    this.leases.delete(id);
    for (const [key, kv] of [...this.keys]) if (kv.lease === id) this.remove(key);
  }

  private remove(key: string): void {
    if (!this.keys.delete(key)) return;
    this.revision++;
    this.log.push({ revision: this.revision, key, value: undefined });
  }

  grant(ttlSeconds: number): { id: string; ttlSeconds: number } {
    const id = String(++this.nextLease);
    this.leases.set(id, { ttlMs: ttlSeconds * 1000, expiresAtMs: this.nowMs + ttlSeconds * 1000 });
    return { id, ttlSeconds };
  }

  keepAlive(id: string): number {
    this.expire();
    const lease = this.leases.get(id);
    if (!lease) return 0;
    lease.expiresAtMs = this.nowMs + lease.ttlMs;
    return lease.ttlMs / 1000;
  }

  revoke(id: string): void {
    this.dropLease(id);
  }

  range(key: string, prefix = false): KeyValue[] {
    this.expire();
    const out: KeyValue[] = [];
    for (const [k, kv] of [...this.keys].sort(([a], [b]) => (a < b ? -1 : 1))) if (prefix ? k.startsWith(key) : k === key) out.push({ key: k, ...kv });
    return out;
  }

  txn(request: TxnRequest): TxnResponse {
    this.expire();
    const ok = request.compare.every((c) => this.holds(c));
    const ops = ok ? request.success : request.failure;
    // As etcd: no key may be written twice (put or delete) in one transaction.
    const writes = ops.flatMap((op) => ('put' in op ? [{ key: op.put.key, prefix: false }] : 'delete' in op ? [{ key: op.delete.key, prefix: op.delete.prefix ?? false }] : []));
    for (let i = 0; i < writes.length; i++)
      for (let j = i + 1; j < writes.length; j++) {
        const [x, y] = [writes[i], writes[j]] as [{ key: string; prefix: boolean }, { key: string; prefix: boolean }];
        if (x.key === y.key || (x.prefix && y.key.startsWith(x.key)) || (y.prefix && x.key.startsWith(y.key))) throw new ConsolidatorError('ETCD_REQUEST', 'etcd txn: etcdserver: duplicate key given in txn request');
      }
    let wrote = false;
    const responses = ops.map((op) => {
      if ('range' in op) return { kvs: this.range(op.range.key, op.range.prefix ?? false) };
      if (!wrote) {
        this.revision++;
        wrote = true;
      }
      if ('put' in op) {
        const lease = op.put.lease ?? '0';
        if (lease !== '0' && !this.leases.has(lease)) throw new ConsolidatorError('ETCD_REQUEST', 'etcd txn: etcdserver: requested lease not found');
        const existing = this.keys.get(op.put.key);
        this.keys.set(op.put.key, { value: op.put.value, createRevision: existing?.createRevision ?? this.revision, modRevision: this.revision, version: (existing?.version ?? 0) + 1, lease });
        this.log.push({ revision: this.revision, key: op.put.key, value: op.put.value });
      } else {
        for (const k of [...this.keys.keys()]) if (op.delete.prefix ? k.startsWith(op.delete.key) : k === op.delete.key) this.keys.delete(k);
      }
      return {};
    });
    return { succeeded: ok, revision: this.revision, responses };
  }

  private holds(c: Compare): boolean {
    const kv = this.keys.get(c.key);
    if (c.target === 'create') return (kv?.createRevision ?? 0) === c.equals;
    if (c.target === 'mod') return (kv?.modRevision ?? 0) === c.equals;
    return (kv?.lease ?? '0') === c.equals;
  }

  client(): FakeEtcdClient {
    return new FakeEtcdClient(this);
  }
}

type Pending = { run: () => unknown; resolve: (v: unknown) => void; reject: (e: unknown) => void };

/** One controller's connection: `cut` makes every request fail; `hold` queues them until deliver(). */
export class FakeEtcdClient implements EtcdClient {
  cut = false;
  hold = false;
  requests = 0;
  private readonly queue: Pending[] = [];

  constructor(private readonly etcd: FakeEtcd) {}

  get held(): number {
    return this.queue.length;
  }

  /** Applies the held requests at etcd now, in order, and answers them. */
  deliver(): void {
    for (const p of this.queue.splice(0)) this.settle(p);
  }

  private settle(p: Pending): void {
    if (this.cut) {
      p.reject(new ConsolidatorError('ETCD_UNAVAILABLE', 'etcd: no member answered (cut)'));
      return;
    }
    try {
      p.resolve(p.run());
    } catch (e) {
      p.reject(e);
    }
  }

  private call<T>(run: () => T): Promise<T> {
    this.requests++;
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { run, resolve: resolve as (v: unknown) => void, reject };
      if (this.hold) this.queue.push(p);
      else this.settle(p);
    });
  }

  grant(ttlSeconds: number): Promise<{ id: string; ttlSeconds: number }> {
    return this.call(() => this.etcd.grant(ttlSeconds));
  }
  keepAlive(id: string): Promise<number> {
    return this.call(() => this.etcd.keepAlive(id));
  }
  revoke(id: string): Promise<void> {
    return this.call(() => this.etcd.revoke(id));
  }
  range(key: string, options: { prefix?: boolean } = {}): Promise<{ kvs: readonly KeyValue[]; revision: number }> {
    return this.call(() => ({ kvs: this.etcd.range(key, options.prefix ?? false), revision: this.etcd.revision }));
  }
  txn(request: TxnRequest): Promise<TxnResponse> {
    return this.call(() => this.etcd.txn(request));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

export type { Operation };
