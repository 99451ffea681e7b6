import { execFile } from 'node:child_process';
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { promisify } from 'node:util';
import { ConsolidatorError, errorMessage } from '../errors.js';
import { pathOf, sendJson } from '../observability/http-json.js';
import type { Logger } from '../observability/logger.js';
import { claimedCredentials, kernelPeerCredentials, type PeerCredentials } from './peer-credentials.js';

/**
 * The operator socket: a Unix domain socket whose file permissions say who is an operator (owner
 * the daemon's user, group control.group, mode 0660). It serves the operator routes (POST, JSON:
 * drain, undrain, wake, plan, history) and a read-only GET /status, with the same HTTP+JSON as the
 * metrics endpoint, which is read-only and may face the network. Every operator command is logged
 * as one `operator command` line with the caller's credentials (see peer-credentials.ts).
 *
 * The socket comes from systemd socket activation when the daemon is started with one named
 * `control` (consolidator.socket: systemd owns the file and its permissions), else the daemon
 * creates it: a stale file left by a crashed daemon is replaced, one a running daemon still answers
 * on is never touched (the start fails instead).
 */

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

/** An operator endpoint; it sees every method and answers 405 itself for those it does not take. */
export type RouteHandler = (request: RouteRequest) => Promise<RouteResponse>;

export interface ControlSocketOptions {
  /** Where to create the socket when systemd did not pass one. */
  readonly path: string;
  /** Group that may connect (mode 0660); missing group: owner only (0600) and a warning. */
  readonly group: string;
  /** Operator endpoints by exact path (`/operator/drain`); each call is audited. */
  readonly routes: Readonly<Record<string, RouteHandler>>;
  /** GET /status. */
  readonly status: () => unknown;
  readonly logger: Logger;
  /** For socket activation (LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES); default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The peer's credentials from the kernel; injectable for tests. */
  readonly peerCredentials?: (socket: Socket) => Promise<Omit<PeerCredentials, 'source'> | undefined>;
  /** Group name -> gid (default: `getent group`, so NSS groups count). */
  readonly lookupGroup?: (name: string) => Promise<number | undefined>;
}

export interface RunningControlSocket {
  readonly path: string;
  /** True when systemd passed the socket (it owns the file and its mode). */
  readonly activated: boolean;
  close(): Promise<void>;
}

/** Request bodies are small JSON objects; anything larger is refused with 413. */
export const MAX_BODY_BYTES = 64 * 1024;
/** The name consolidator.socket gives the socket (FileDescriptorName=control). */
export const SOCKET_FD_NAME = 'control';
const SD_LISTEN_FDS_START = 3;
const OPERATOR_MODE = 0o660;
const OWNER_ONLY_MODE = 0o600;
/** While the socket is created by bind(): nobody but the owner, until chmod/chown below. */
const CREATE_UMASK = 0o177;
const PROBE_TIMEOUT_MS = 2_000;
const HEADERS_TIMEOUT_MS = 10_000;

export async function startControlSocket(options: ControlSocketOptions): Promise<RunningControlSocket> {
  const log = options.logger.child({ component: 'control' });
  const audit = options.logger.child({ component: 'audit' });
  const server = createServer((req, res) => {
    handle(req, res, options, audit).catch((e: unknown) => {
      log.error('control request failed', { method: req.method, path: pathOf(req), err: e });
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  });
  server.headersTimeout = HEADERS_TIMEOUT_MS;
  // Operator commands (a drain) may take hours: no request timeout on this socket.
  server.requestTimeout = 0;

  const fd = activatedFd(options.env ?? process.env);
  if (fd !== undefined) {
    await listenOn(server, { fd }, `systemd socket (fd ${fd})`);
    log.info('operator socket from systemd', { fd });
    return { path: options.path, activated: true, close: () => closeServer(server) };
  }

  await replaceStaleSocket(options.path);
  await mkdir(dirname(options.path), { recursive: true, mode: 0o755 });
  const previous = process.umask(CREATE_UMASK);
  try {
    // bind() happens synchronously inside listen() for a path, so the umask covers exactly it.
    await listenOn(server, { path: options.path, exclusive: true }, options.path);
  } finally {
    process.umask(previous);
  }
  await setPermissions(options, log);
  return {
    path: options.path,
    activated: false,
    close: async () => {
      await closeServer(server);
      // node removes the socket file when the server closes; one left behind is removed here.
      await unlink(options.path).catch((e: unknown) => {
        if ((e as { code?: string }).code !== 'ENOENT') log.warn('operator socket not removed', { path: options.path, err: e });
      });
    },
  };
}

/** The descriptor systemd passed under the name `control`, if it was passed to this very process. */
export function activatedFd(env: Readonly<Record<string, string | undefined>>, pid = process.pid): number | undefined {
  if (env['LISTEN_PID'] !== String(pid)) return undefined;
  const count = Number(env['LISTEN_FDS'] ?? 0);
  const names = (env['LISTEN_FDNAMES'] ?? '').split(':');
  const index = names.indexOf(SOCKET_FD_NAME);
  if (!Number.isInteger(count) || index < 0 || index >= count) return undefined;
  return SD_LISTEN_FDS_START + index;
}

/**
 * A socket file nobody answers on (a crashed daemon's) is removed; one a daemon answers on, or a path
 * that is not a socket, stops the start with an error that says what to do.
 */
async function replaceStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ConsolidatorError('CONTROL_SOCKET', `cannot check the operator socket ${path}: ${errorMessage(e)}`, { cause: e });
  }
  if (!isSocket) throw new ConsolidatorError('CONTROL_SOCKET', `${path} exists and is not a socket: remove it or set control.socket to another path`, { details: { path } });
  const answer = await probe(path);
  if (answer === 'alive') {
    throw new ConsolidatorError('CONTROL_SOCKET', `another consolidator daemon answers on ${path}: stop it first (systemctl stop consolidator), or set control.socket to another path`, { details: { path } });
  }
  if (answer !== 'stale') throw new ConsolidatorError('CONTROL_SOCKET', `cannot tell whether a daemon answers on ${path} (${answer}): not replacing it`, { details: { path } });
  await unlink(path).catch((e: unknown) => {
    throw new ConsolidatorError('CONTROL_SOCKET', `cannot remove the stale operator socket ${path}: ${errorMessage(e)}`, { cause: e });
  });
}

/** 'alive' when something accepts a connection, 'stale' when the kernel refuses it (nobody listens). */
function probe(path: string): Promise<'alive' | 'stale' | string> {
  return new Promise((resolve) => {
    const socket = connect({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      // Accepted by the kernel's backlog but not served: a daemon that hangs still owns it.
      resolve('alive');
    }, PROBE_TIMEOUT_MS);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.destroy();
      resolve('alive');
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(e.code === 'ECONNREFUSED' ? 'stale' : (e.code ?? errorMessage(e)));
    });
  });
}

async function setPermissions(options: ControlSocketOptions, log: Logger): Promise<void> {
  const gid = await (options.lookupGroup ?? getentGroup)(options.group);
  if (gid === undefined) {
    await chmod(options.path, OWNER_ONLY_MODE);
    log.warn('operator group missing: operator socket left to its owner', {
      path: options.path,
      group: options.group,
      mode: '0600',
      fix: `create the group (systemd-sysusers, or groupadd --system ${options.group}) and restart; members may then use the consolidator CLI`,
    });
    return;
  }
  try {
    await chown(options.path, process.getuid?.() ?? -1, gid);
  } catch (e) {
    await chmod(options.path, OWNER_ONLY_MODE);
    log.warn('operator socket group not set: left to its owner', { path: options.path, group: options.group, mode: '0600', err: e });
    return;
  }
  await chmod(options.path, OPERATOR_MODE);
  log.info('operator socket listening', { path: options.path, group: options.group, mode: '0660' });
}

async function getentGroup(name: string): Promise<number | undefined> {
  try {
    const { stdout } = await promisify(execFile)('getent', ['group', name], { timeout: PROBE_TIMEOUT_MS });
    const gid = stdout.split(':')[2];
    return gid !== undefined && /^\d+$/.test(gid) ? Number(gid) : undefined;
  } catch {
    // getent exits 2 for an unknown group.
    return undefined;
  }
}

async function handle(req: IncomingMessage, res: ServerResponse, options: ControlSocketOptions, audit: Logger): Promise<void> {
  const method = req.method ?? 'GET';
  const path = pathOf(req);
  if (path === '/status') {
    req.resume();
    if (method !== 'GET' && method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      sendJson(res, 405, { error: 'method not allowed' });
      return;
    }
    sendJson(res, 200, await options.status());
    return;
  }
  const route = options.routes[path];
  if (route === undefined) {
    req.resume();
    sendJson(res, 404, { error: 'not found' });
    return;
  }
  // Looked up while the client waits for its answer, so it is still connected.
  const caller = callerOf(req, options);
  const started = Date.now();
  const body = await readJsonBody(req);
  const credentials = await caller;
  const who = {
    command: path.replace(/^\/operator\//, ''),
    args: body.ok ? auditArgs(body.value) : undefined,
    method,
    callerUid: credentials.uid,
    callerGid: credentials.gid,
    callerPid: credentials.pid,
    ...(credentials.otherPids ? { callerOtherPids: credentials.otherPids } : {}),
    callerIdFrom: credentials.source,
  };
  // A command that acts can take hours (a drain) and the daemon may die during it: who asked is
  // written before it starts, and the outcome when it ends.
  audit.info('operator command received', who);
  let answer: RouteResponse;
  if (!body.ok) answer = { status: body.status, body: { error: body.error } };
  else answer = await route({ method, body: body.value });
  // Logged before the answer: every command a client saw answered has its audit line.
  audit.info('operator command', {
    ...who,
    outcome: outcomeOf(answer),
    status: answer.status,
    durationMs: Date.now() - started,
  });
  sendJson(res, answer.status, answer.body);
}

async function callerOf(req: IncomingMessage, options: ControlSocketOptions): Promise<PeerCredentials> {
  const kernel = await (options.peerCredentials ?? kernelPeerCredentials)(req.socket).catch(() => undefined);
  return kernel ? { ...kernel, source: 'kernel' } : claimedCredentials(req.headers);
}

/** The command's arguments for the log: operator commands take host names, flags and numbers only. */
function auditArgs(body: unknown): Record<string, string | number | boolean> | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return undefined;
  const out: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(body)) {
    if (typeof value === 'boolean' || typeof value === 'number') out[key] = value;
    else if (typeof value === 'string') out[key] = value.length > 256 ? `${value.slice(0, 256)}...` : value;
  }
  return out;
}

function outcomeOf(answer: RouteResponse): 'ok' | 'refused' | 'failed' | 'rejected' {
  const body = answer.body as { ok?: unknown } | undefined;
  if (answer.status === 200) return body?.ok === false ? 'failed' : 'ok';
  if (answer.status === 409 || answer.status === 404) return 'refused';
  if (answer.status >= 400 && answer.status < 500) return 'rejected';
  return 'failed';
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

function listenOn(server: Server, target: { fd: number } | { path: string; exclusive: boolean }, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: NodeJS.ErrnoException) => {
      reject(new ConsolidatorError('CONTROL_SOCKET', `cannot listen on the operator socket ${what}: ${errorMessage(e)}`, { details: { errno: e.code }, cause: e }));
    };
    server.once('error', onError);
    server.listen(target, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.close((e) => (e === undefined ? resolve() : reject(e)));
    server.closeAllConnections();
  });
}
