import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer, type ServerOptions as HttpsServerOptions } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext, type TLSSocket } from 'node:tls';
import type { Registry } from 'prom-client';
import type { ClientAuthType, WebConfig, WebTlsConfig } from '../config/web-config.js';
import { ConsolidatorError, errorMessage } from '../errors.js';
import { BasicAuthVerifier, parseBasicAuthorization, type HashCompare } from './basic-auth.js';
import { pathOf, sendJson } from './http-json.js';
import type { Logger } from './logger.js';

/**
 * The daemon's read-only HTTP endpoint, with node:http/https only: `GET /metrics` (Prometheus text
 * format from the one registry), `GET /healthz` (200 or 503 with a JSON report), `GET /status` (JSON).
 * Nothing here acts: any method but GET and HEAD is 405, so a request forged from a browser (a
 * cross-origin text/plain POST) can change nothing. Operator commands go through the operator socket
 * (src/daemon/control-socket.ts). It may face the network: with metrics.webConfigFile it serves TLS
 * and asks for basic auth, in Prometheus exporter-toolkit's web-config format.
 */

/** What the daemon reports on /healthz; `healthy: false` answers 503 (e.g. no successful cycle for N intervals). */
export interface HealthReport {
  readonly healthy: boolean;
  /** Unix time of the last successful cycle, milliseconds. */
  readonly lastSuccessfulCycleMs?: number;
  /** Why it is unhealthy (or a note when healthy), one sentence. */
  readonly reason?: string;
}

export interface HttpServerOptions {
  /** `host:port`, `[v6]:port`; port 0 picks a free one (tests). */
  readonly listen: string;
  readonly registry: Registry;
  /** Asked on every /healthz request. */
  readonly health: () => HealthReport | Promise<HealthReport>;
  /** Asked on every /status request; may return a promise. */
  readonly status: () => unknown;
  readonly logger: Logger;
  /** TLS and basic auth (metrics.webConfigFile); plain HTTP without authentication when absent. */
  readonly webConfig?: WebConfig;
  /** How basic-auth passwords are checked against their bcrypt hashes: bcryptjs by default; tests count the compares through it. */
  readonly basicAuthCompare?: HashCompare;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface RunningHttpServer {
  /** Where it actually listens (the real port when 0 was asked for). */
  readonly address: ListenAddress;
  /** 'https' with a web config that has tls_server_config. */
  readonly scheme: 'http' | 'https';
  /** Stops listening and closes open connections (Prometheus keeps them alive). */
  close(): Promise<void>;
}

/** A client must send its headers and body within these, so a slow one cannot hold a socket. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_PORT = 65_535;
/** Retry-After of a 429 (a password check over the limit); one compare takes about 100 ms. */
const RETRY_AFTER_SECONDS = 1;

const PATHS = ['/metrics', '/healthz', '/status'] as const;
const READ_METHODS = ['GET', 'HEAD'];

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
  const log = options.logger.child({ component: 'http' });
  const auth = new BasicAuthVerifier(options.webConfig?.basicAuthUsers ?? new Map(), options.basicAuthCompare ? { compare: options.basicAuthCompare } : {});

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res, options, auth).catch((e: unknown) => {
      log.error('http request failed', { method: req.method, path: pathOf(req), err: e });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  };
  const tls = options.webConfig?.tls;
  let server: Server | HttpsServer;
  if (tls) {
    const https = createHttpsServer(await tlsOptions(tls), onRequest);
    enforceClientCertificate(https, tls.clientAuthType, log);
    server = https;
  } else server = createServer(onRequest);
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  server.requestTimeout = REQUEST_TIMEOUT_MS;

  await listen(server, host, port, options.listen);
  const bound = server.address() as AddressInfo;
  const scheme = tls ? 'https' : 'http';
  log.info('http server listening', { host: bound.address, port: bound.port, scheme, basicAuth: auth.enabled, clientAuth: tls?.clientAuthType });

  return {
    address: { host: bound.address, port: bound.port },
    scheme,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e === undefined ? resolve() : reject(e)));
        server.closeAllConnections();
      }),
  };
}

/** Reads the certificate, key and CA; an error names the file, never its contents. */
async function tlsOptions(tls: WebTlsConfig): Promise<HttpsServerOptions> {
  const read = async (what: string, file: string): Promise<Buffer> => {
    try {
      return await readFile(file);
    } catch (e) {
      throw new ConsolidatorError('POLICY_UNREADABLE', `cannot read the metrics TLS ${what} ${file}: ${errorMessage(e)}`, { details: { file }, cause: e });
    }
  };
  const [cert, key, ca] = await Promise.all([read('certificate', tls.certFile), read('key', tls.keyFile), tls.clientCaFile ? read('client CA', tls.clientCaFile) : undefined]);
  const requestCert = tls.clientAuthType !== 'NoClientCert';
  const options: HttpsServerOptions = {
    cert,
    key,
    ...(ca ? { ca } : {}),
    requestCert,
    rejectUnauthorized: tls.clientAuthType === 'RequireAndVerifyClientCert',
    minVersion: tls.minVersion,
    maxVersion: tls.maxVersion,
  };
  try {
    createSecureContext(options);
  } catch (e) {
    // OpenSSL's message ("key values mismatch", "no start line") carries no key material.
    throw new ConsolidatorError('POLICY_INVALID', `the metrics TLS certificate ${tls.certFile} and key ${tls.keyFile} cannot be used: ${errorMessage(e)}`, { details: { certFile: tls.certFile, keyFile: tls.keyFile }, cause: e });
  }
  return options;
}

/**
 * The client_auth_type modes node's TLS options do not express by themselves (Go's crypto/tls
 * ClientAuthType): RequireAnyClientCert wants some certificate, VerifyClientCertIfGiven wants a
 * given one to verify. The connection is closed otherwise, as Go fails the handshake.
 */
function enforceClientCertificate(server: HttpsServer, type: ClientAuthType, log: Logger): void {
  if (type !== 'RequireAnyClientCert' && type !== 'VerifyClientCertIfGiven') return;
  server.on('secureConnection', (socket: TLSSocket) => {
    const given = Object.keys(socket.getPeerCertificate()).length > 0;
    const refuse = type === 'RequireAnyClientCert' ? !given : given && !socket.authorized;
    if (refuse) {
      log.warn('tls client refused', { remoteAddress: socket.remoteAddress, reason: given ? `certificate not verified: ${String(socket.authorizationError)}` : 'no client certificate' });
      socket.destroy();
    }
  });
}

function listen(server: Server | HttpsServer, host: string, port: number, listenText: string): Promise<void> {
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

async function handle(req: IncomingMessage, res: ServerResponse, options: HttpServerOptions, auth: BasicAuthVerifier): Promise<void> {
  const method = req.method ?? 'GET';
  const path = pathOf(req);
  // Nothing here reads a body; drain it so the connection can be reused.
  req.resume();

  const verdict = await auth.verify(parseBasicAuthorization(req.headers.authorization));
  if (verdict === 'busy') {
    // Another password check is already running (a flood of wrong passwords, most likely): answered
    // at once without bcrypt, so the event loop stays free; a cached scrape is not refused this way.
    res.setHeader('Retry-After', RETRY_AFTER_SECONDS);
    sendJson(res, 429, { error: 'too many requests: a password check is already running, retry shortly' });
    return;
  }
  if (verdict === 'refused') {
    res.setHeader('WWW-Authenticate', 'Basic');
    sendJson(res, 401, { error: 'unauthorized' });
    return;
  }
  if (!READ_METHODS.includes(method)) {
    res.setHeader('Allow', READ_METHODS.join(', '));
    sendJson(res, 405, { error: 'method not allowed: this endpoint is read-only; operator commands go through the operator socket' });
    return;
  }
  if (!(PATHS as readonly string[]).includes(path)) {
    sendJson(res, 404, { error: 'not found' });
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
