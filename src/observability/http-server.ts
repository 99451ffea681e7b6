import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { ConsolidatorError, errorMessage } from '../errors.js';
import type { Logger } from './logger.js';

/**
 * The daemon's HTTP endpoint, with node:http only: `GET /metrics` (Prometheus text format from the
 * one registry), `GET /healthz` (200 or 503 with a JSON report), `GET /status` (JSON), plus routes the
 * daemon adds (operator commands). Bound to exactly the address the policy names (127.0.0.1:9464 by
 * default): it has no authentication, so keep it on loopback or behind something that has.
 */

/** What the daemon reports on /healthz; `healthy: false` answers 503 (e.g. no successful cycle for N intervals). */
export interface HealthReport {
  readonly healthy: boolean;
  /** Unix time of the last successful cycle, milliseconds. */
  readonly lastSuccessfulCycleMs?: number;
  /** Why it is unhealthy (or a note when healthy), one sentence. */
  readonly reason?: string;
}

export interface RouteRequest {
  readonly method: string;
  /** The parsed JSON body; undefined when the request had none. */
  readonly body: unknown;
}

export interface RouteResponse {
  readonly status: number;
  /** Sent as JSON. */
  readonly body: unknown;
}

/** An extra endpoint; it sees every method and answers 405 itself for those it does not take. */
export type RouteHandler = (request: RouteRequest) => Promise<RouteResponse>;

export interface HttpServerOptions {
  /** `host:port`, `[v6]:port`; port 0 picks a free one (tests). */
  readonly listen: string;
  readonly registry: Registry;
  /** Asked on every /healthz request. */
  readonly health: () => HealthReport | Promise<HealthReport>;
  /** Asked on every /status request; may return a promise. */
  readonly status: () => unknown;
  readonly logger: Logger;
  /** Extra endpoints by exact path (`/drain`); they may not reuse /metrics, /healthz or /status. */
  readonly routes?: Readonly<Record<string, RouteHandler>>;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface RunningHttpServer {
  /** Where it actually listens (the real port when 0 was asked for). */
  readonly address: ListenAddress;
  /** Stops listening and closes open connections (Prometheus keeps them alive). */
  close(): Promise<void>;
}

/** Request bodies (JSON for operator commands) are small; anything larger is refused with 413. */
export const MAX_BODY_BYTES = 64 * 1024;
/** A client must send its headers and body within these, so a slow one cannot hold a socket. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_PORT = 65_535;

const BUILT_IN_PATHS = ['/metrics', '/healthz', '/status'] as const;
const READ_METHODS = ['GET', 'HEAD'];
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Parses `127.0.0.1:9464`, `localhost:9464` or `[::1]:9464`. */
export function parseListenAddress(listen: string): ListenAddress {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(listen);
  const port = match?.[3] === undefined ? Number.NaN : Number(match[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || !Number.isInteger(port) || port > MAX_PORT) {
    throw new ConsolidatorError('USAGE', `not a listen address (host:port or [v6]:port): ${JSON.stringify(listen)}`);
  }
  return { host, port };
}

export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const { host, port } = parseListenAddress(options.listen);
  const routes = new Map(Object.entries(options.routes ?? {}));
  for (const path of routes.keys()) {
    if ((BUILT_IN_PATHS as readonly string[]).includes(path) || !path.startsWith('/')) {
      throw new ConsolidatorError('INTERNAL', `route ${JSON.stringify(path)} is reserved or not an absolute path`);
    }
  }
  const log = options.logger.child({ component: 'http' });

  const server = createServer((req, res) => {
    handle(req, res, options, routes).catch((e: unknown) => {
      log.error('http request failed', { method: req.method, path: pathOf(req), err: e });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;

  await listen(server, host, port, options.listen);
  const bound = server.address() as AddressInfo;
  log.info('http server listening', { host: bound.address, port: bound.port });

  return {
    address: { host: bound.address, port: bound.port },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e === undefined ? resolve() : reject(e)));
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, host: string, port: number, listenText: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(
        new ConsolidatorError('INTERNAL', `cannot listen on ${listenText}: ${errorMessage(e)}`, {
          details: { listen: listenText, errno: e.code },
          cause: e,
        }),
      );
    };
    server.once('error', onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  options: HttpServerOptions,
  routes: ReadonlyMap<string, RouteHandler>,
): Promise<void> {
  const method = req.method ?? 'GET';
  const path = pathOf(req);

  const route = routes.get(path);
  if (route !== undefined) {
    const body = await readJsonBody(req);
    if (!body.ok) {
      sendJson(res, body.status, { error: body.error });
      return;
    }
    const answer = await route({ method, body: body.value });
    sendJson(res, answer.status, answer.body);
    return;
  }

  if (!(BUILT_IN_PATHS as readonly string[]).includes(path)) {
    req.resume();
    sendJson(res, 404, { error: 'not found' });
    return;
  }
  req.resume();
  if (!READ_METHODS.includes(method)) {
    res.setHeader('Allow', READ_METHODS.join(', '));
    sendJson(res, 405, { error: 'method not allowed' });
    return;
  }

  if (path === '/metrics') {
    const text = await options.registry.metrics();
    res.writeHead(200, { 'Content-Type': options.registry.contentType, 'Cache-Control': 'no-store' });
    res.end(text);
  } else if (path === '/healthz') {
    const report = await options.health();
    sendJson(res, report.healthy ? 200 : 503, report);
  } else {
    sendJson(res, 200, await options.status());
  }
}

type BodyResult = { ok: true; value: unknown } | { ok: false; status: number; error: string };

async function readJsonBody(req: IncomingMessage): Promise<BodyResult> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > MAX_BODY_BYTES) {
    req.resume();
    return { ok: false, status: 413, error: `body larger than ${MAX_BODY_BYTES} bytes` };
  }
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) tooLarge = true;
    else chunks.push(chunk);
  }
  if (tooLarge) return { ok: false, status: 413, error: `body larger than ${MAX_BODY_BYTES} bytes` };
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (e) {
    return { ok: false, status: 400, error: `body is not JSON: ${errorMessage(e)}` };
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body ?? null)}\n`;
  res.writeHead(status, { 'Content-Type': JSON_CONTENT_TYPE, 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}
