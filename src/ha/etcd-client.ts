/**
 * The part of etcd's v3 API the HA mode uses, behind the project's own interface: leases, ranges and
 * transactions. The real implementation (HttpEtcdClient) speaks etcd's JSON gRPC-gateway (/v3/...)
 * with node:http/https only; unit tests use an in-memory fake with the same semantics.
 */

/** A key with its revisions, as etcd reports it. Values are UTF-8 text (JSON) here. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly createRevision: number;
  readonly modRevision: number;
  /** Writes since the key was created (1 for a new key). */
  readonly version: number;
  /** The lease the key is bound to; '0' for none. Lease IDs are int64: kept as decimal strings. */
  readonly lease: string;
}

/** One comparison of a transaction (etcd's Compare, with EQUAL as the only result used). */
export type Compare =
  | { readonly key: string; readonly target: 'create'; readonly equals: number }
  | { readonly key: string; readonly target: 'mod'; readonly equals: number }
  | { readonly key: string; readonly target: 'lease'; readonly equals: string };

export type Operation =
  | { readonly put: { readonly key: string; readonly value: string; readonly lease?: string } }
  | { readonly range: { readonly key: string; readonly prefix?: boolean } }
  | { readonly delete: { readonly key: string; readonly prefix?: boolean } };

export interface TxnRequest {
  readonly compare: readonly Compare[];
  readonly success: readonly Operation[];
  readonly failure: readonly Operation[];
}

/** One response per operation of the branch taken: the keys a range found, nothing for a put or delete. */
export interface TxnResponse {
  readonly succeeded: boolean;
  /** The store's revision after the transaction (the revision of its puts when it wrote). */
  readonly revision: number;
  readonly responses: readonly { readonly kvs?: readonly KeyValue[] }[];
}

export interface EtcdClient {
  /** A new lease of `ttlSeconds`; returns its ID and the TTL etcd granted. */
  grant(ttlSeconds: number, signal?: AbortSignal): Promise<{ readonly id: string; readonly ttlSeconds: number }>;
  /** Renews the lease; returns its TTL, 0 when the lease no longer exists (expired or revoked). */
  keepAlive(id: string, signal?: AbortSignal): Promise<number>;
  revoke(id: string, signal?: AbortSignal): Promise<void>;
  range(key: string, options?: { readonly prefix?: boolean; readonly signal?: AbortSignal; /** Read as of this revision (history, until compacted). */ readonly revision?: number }): Promise<{ readonly kvs: readonly KeyValue[]; readonly revision: number }>;
  txn(request: TxnRequest, signal?: AbortSignal): Promise<TxnResponse>;
  close(): Promise<void>;
}

/** The end of etcd's half-open range that holds every key starting with `prefix`. */
export function prefixEnd(prefix: string): Buffer {
  const bytes = Buffer.from(prefix, 'utf8');
  for (let i = bytes.length - 1; i >= 0; i--) {
    const b = bytes[i] as number;
    if (b < 0xff) {
      const end = Buffer.from(bytes.subarray(0, i + 1));
      end[i] = b + 1;
      return end;
    }
  }
  // Every byte 0xff: etcd's "to the end of the key space".
  return Buffer.from([0]);
}
