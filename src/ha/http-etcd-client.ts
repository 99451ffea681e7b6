import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readFile } from 'node:fs/promises';
import { ConsolidatorError, errorMessage } from '../errors.js';
import { prefixEnd, type Compare, type EtcdClient, type KeyValue, type Operation, type TxnRequest, type TxnResponse } from './etcd-client.js';

/** What one request to etcd cost: the traffic figures (consolidator_etcd_requests_total, ..._bytes_total). */
export interface EtcdRequestEvent {
  readonly op: EtcdOp;
  readonly ok: boolean;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

export const ETCD_OPS = ['grant', 'keepalive', 'revoke', 'range', 'txn'] as const;
export type EtcdOp = (typeof ETCD_OPS)[number];

export interface EtcdTlsFiles {
  readonly caFile?: string | undefined;
  readonly certFile?: string | undefined;
  readonly keyFile?: string | undefined;
}

export interface HttpEtcdClientOptions {
  /** Client URLs of the members (http://host:2379 or https://host:2379); tried in turn when one fails. */
  readonly endpoints: readonly string[];
  readonly tls?: EtcdTlsFiles | undefined;
  /** One attempt on one member; the next member is tried after it. */
  readonly requestTimeoutMs: number;
  readonly onRequest?: (event: EtcdRequestEvent) => void;
}

interface Tls {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

/** Reads the TLS files (CA, client certificate and key) and builds the client. */
export async function createHttpEtcdClient(options: HttpEtcdClientOptions): Promise<HttpEtcdClient> {
  const read = async (what: string, file: string | undefined): Promise<Buffer | undefined> => {
    if (file === undefined) return undefined;
    try {
      return await readFile(file);
    } catch (e) {
      throw new ConsolidatorError('POLICY_UNREADABLE', `ha.tls.${what}: cannot read ${file}: ${errorMessage(e)}`, { cause: e });
    }
  };
  const ca = await read('caFile', options.tls?.caFile);
  const cert = await read('certFile', options.tls?.certFile);
  const key = await read('keyFile', options.tls?.keyFile);
  return new HttpEtcdClient(options, { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) });
}

const b64 = (s: string | Buffer): string => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s).toString('base64');
const unb64 = (s: unknown): string => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : '');
const num = (s: unknown): number => (typeof s === 'string' || typeof s === 'number' ? Number(s) : 0);

/**
 * etcd v3 through its JSON gateway: keys and values base64, int64s as decimal strings, zero values
 * left out. Connections are kept alive. A member that does not answer in time, or answers that it
 * has no leader, is left for the next one; when none answers the call fails with ETCD_UNAVAILABLE.
 */
export class HttpEtcdClient implements EtcdClient {
  private readonly endpoints: readonly URL[];
  private current = 0;
  private readonly httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 4 });
  private readonly httpsAgent: HttpsAgent;

  constructor(
    private readonly options: HttpEtcdClientOptions,
    tls: Tls,
  ) {
    if (options.endpoints.length === 0) throw new ConsolidatorError('USAGE', 'etcd: no endpoints');
    this.endpoints = options.endpoints.map((e) => new URL(e));
    this.httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 4, ...tls });
  }

  async grant(ttlSeconds: number, signal?: AbortSignal): Promise<{ id: string; ttlSeconds: number }> {
    const r = await this.call('grant', '/v3/lease/grant', { TTL: String(ttlSeconds) }, signal);
    return { id: String(r['ID']), ttlSeconds: num(r['TTL']) };
  }

  async keepAlive(id: string, signal?: AbortSignal): Promise<number> {
    // A stream in gRPC; through the gateway one request body gives one {"result": ...} line.
    const r = await this.call('keepalive', '/v3/lease/keepalive', { ID: id }, signal);
    const result = (r['result'] ?? {}) as Record<string, unknown>;
    return num(result['TTL']);
  }

  async revoke(id: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.call('revoke', '/v3/lease/revoke', { ID: id }, signal);
    } catch (e) {
      // Already gone (expired) is what a revoke wanted.
      if (e instanceof ConsolidatorError && e.code === 'ETCD_REQUEST' && /lease not found/.test(e.message)) return;
      throw e;
    }
  }

  async range(key: string, options: { prefix?: boolean; signal?: AbortSignal; revision?: number } = {}): Promise<{ kvs: KeyValue[]; revision: number }> {
    const body = { ...rangeBody(key, options.prefix), ...(options.revision !== undefined ? { revision: String(options.revision) } : {}) };
    const r = await this.call('range', '/v3/kv/range', body, options.signal);
    return { kvs: kvsOf(r['kvs']), revision: num((r['header'] as Record<string, unknown> | undefined)?.['revision']) };
  }

  async txn(request: TxnRequest, signal?: AbortSignal): Promise<TxnResponse> {
    const body = { compare: request.compare.map(compareBody), success: request.success.map(opBody), failure: request.failure.map(opBody) };
    const r = await this.call('txn', '/v3/kv/txn', body, signal);
    const responses = Array.isArray(r['responses']) ? (r['responses'] as Record<string, unknown>[]) : [];
    return {
      succeeded: r['succeeded'] === true,
      revision: num((r['header'] as Record<string, unknown> | undefined)?.['revision']),
      responses: responses.map((x) => {
        const range = x['response_range'] as Record<string, unknown> | undefined;
        return range ? { kvs: kvsOf(range['kvs']) } : {};
      }),
    };
  }

  close(): Promise<void> {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    return Promise.resolve();
  }

  /** One call: the current member first, then each other once. */
  private async call(op: EtcdOp, path: string, body: unknown, signal?: AbortSignal): Promise<Record<string, unknown>> {
    const text = JSON.stringify(body);
    const failures: string[] = [];
    for (let attempt = 0; attempt < this.endpoints.length; attempt++) {
      const index = (this.current + attempt) % this.endpoints.length;
      const endpoint = this.endpoints[index] as URL;
      if (signal?.aborted) throw new ConsolidatorError('ABORTED', `etcd ${op}: aborted`);
      try {
        const { status, text: answer } = await this.post(endpoint, path, text, signal);
        this.options.onRequest?.({ op, ok: status === 200, bytesSent: text.length, bytesReceived: answer.length });
        const parsed = parseAnswer(answer);
        if (status === 200) {
          this.current = index;
          return parsed;
        }
        const message = typeof parsed['error'] === 'string' ? parsed['error'] : typeof parsed['message'] === 'string' ? parsed['message'] : `HTTP ${status}`;
        // A member without a leader, or one that timed out waiting for the cluster, may be the only
        // one cut off: the next one may answer.
        if (/no leader|timed out|not capable|unhealthy|leader changed|too many requests/i.test(message) || status >= 502) {
          failures.push(`${endpoint.host}: ${message}`);
          continue;
        }
        throw new ConsolidatorError('ETCD_REQUEST', `etcd ${op}: ${message}`, { details: { endpoint: endpoint.host, status } });
      } catch (e) {
        if (e instanceof ConsolidatorError) throw e;
        this.options.onRequest?.({ op, ok: false, bytesSent: text.length, bytesReceived: 0 });
        failures.push(`${endpoint.host}: ${errorMessage(e)}`);
      }
    }
    throw new ConsolidatorError('ETCD_UNAVAILABLE', `etcd ${op}: no member answered (${failures.join('; ')})`);
  }

  private post(endpoint: URL, path: string, text: string, signal?: AbortSignal): Promise<{ status: number; text: string }> {
    const https = endpoint.protocol === 'https:';
    return new Promise((resolve, reject) => {
      const req = (https ? httpsRequest : httpRequest)(
        {
          host: endpoint.hostname.replace(/^\[(.*)\]$/, '$1'),
          port: endpoint.port || 2379,
          path,
          method: 'POST',
          agent: https ? this.httpsAgent : this.httpAgent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
          timeout: this.options.requestTimeoutMs,
          ...(signal ? { signal } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      // The socket may stay idle past the timeout (a member without quorum holds the request).
      const timer = setTimeout(() => req.destroy(new Error(`no answer within ${this.options.requestTimeoutMs} ms`)), this.options.requestTimeoutMs);
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.options.requestTimeoutMs} ms`)));
      req.on('error', reject);
      req.on('close', () => clearTimeout(timer));
      req.end(text);
    });
  }
}

function parseAnswer(text: string): Record<string, unknown> {
  // The keepalive stream ends each message with a newline; take the first one.
  const first = text.trim().split('\n')[0] ?? '';
  if (first === '') return {};
  try {
    const value = JSON.parse(first) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return { error: `not JSON: ${first.slice(0, 80)}` };
  }
}

function rangeBody(key: string, prefix: boolean | undefined): Record<string, string> {
  return prefix ? { key: b64(key), range_end: b64(prefixEnd(key)) } : { key: b64(key) };
}

function compareBody(c: Compare): Record<string, string> {
  const base = { key: b64(c.key), result: 'EQUAL' };
  switch (c.target) {
    case 'create':
      return { ...base, target: 'CREATE', create_revision: String(c.equals) };
    case 'mod':
      return { ...base, target: 'MOD', mod_revision: String(c.equals) };
    case 'lease':
      return { ...base, target: 'LEASE', lease: c.equals };
  }
}

function opBody(o: Operation): Record<string, unknown> {
  if ('put' in o) return { request_put: { key: b64(o.put.key), value: b64(o.put.value), ...(o.put.lease !== undefined ? { lease: o.put.lease } : {}) } };
  if ('range' in o) return { request_range: rangeBody(o.range.key, o.range.prefix) };
  return { request_delete_range: rangeBody(o.delete.key, o.delete.prefix) };
}

function kvsOf(value: unknown): KeyValue[] {
  if (!Array.isArray(value)) return [];
  return (value as Record<string, unknown>[]).map((kv) => ({
    key: unb64(kv['key']),
    value: unb64(kv['value']),
    createRevision: num(kv['create_revision']),
    modRevision: num(kv['mod_revision']),
    version: num(kv['version']),
    lease: typeof kv['lease'] === 'string' ? kv['lease'] : '0',
  }));
}
