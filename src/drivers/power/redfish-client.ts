import { ConsolidatorError } from '../../errors.js';
import type { Logger } from '../../observability/logger.js';
import { readBmcPassword } from './ipmitool-runner.js';
import { describeEndpoint, type HttpsAnswer, type HttpsTransport, type RedfishEndpoint, type RedfishTrust } from './redfish-transport.js';

export type JsonObject = Readonly<Record<string, unknown>>;

export interface RedfishCredentials {
  readonly user: string;
  readonly passwordFile: string;
}

export interface RedfishClientDeps {
  readonly endpoint: RedfishEndpoint;
  /** A function when the trust needs a file read (the CA): called for every request, it caches. */
  readonly trust: RedfishTrust | (() => Promise<RedfishTrust>);
  readonly credentials: RedfishCredentials;
  readonly transport: HttpsTransport;
  readonly requestTimeoutMs: number;
  readonly logger: Logger;
}

/** The canonical form, with its slash (DSP0266); some services redirect the form without it. */
export const SERVICE_ROOT = '/redfish/v1/';
/** DSP0266: the session's token travels in this header, both ways. */
const TOKEN_HEADER = 'x-auth-token';
/** Statuses that say "this service has no session login" (rather than "not you"). */
const NO_SESSIONS = new Set([404, 405, 501]);
const CLOSE_TIMEOUT_MS = 5_000;

type Auth = { readonly kind: 'session'; readonly token: string; readonly uri: string } | { readonly kind: 'basic' };

/**
 * One Redfish service, as one user. Logs in lazily with a session (POST SessionService/Sessions,
 * X-Auth-Token), reuses it, logs in again once when a request gets 401 (the session expired or the
 * BMC restarted), and deletes it in close(). A service without a SessionService (none in the service
 * root, or 404/405/501 on the POST) gets HTTP basic auth. The password is read from its file at every
 * login and goes nowhere but the request body or header: not into errors, logs or details.
 */
export class RedfishClient {
  private readonly deps: RedfishClientDeps;
  private readonly log: Logger;
  private auth: Auth | undefined;
  private login: Promise<Auth> | undefined;
  private closed = false;

  constructor(deps: RedfishClientDeps) {
    this.deps = deps;
    this.log = deps.logger.child({ host: deps.endpoint.host, bmc: describeEndpoint(deps.endpoint) });
  }

  get endpoint(): RedfishEndpoint {
    return this.deps.endpoint;
  }

  /** GET a resource, authenticated; a non-2xx answer is an error (POWER_FAILED, BMC_AUTH). */
  async get(path: string, signal: AbortSignal): Promise<JsonObject> {
    const answer = await this.authenticated('GET', path, undefined, signal);
    if (answer.status < 200 || answer.status >= 300) throw this.refused('GET', path, answer);
    return this.json('GET', path, answer);
  }

  /** POST an action; resolves on 2xx (200, 202 Accepted, 204), else POWER_FAILED with the service's message. */
  async post(path: string, body: JsonObject, signal: AbortSignal): Promise<HttpsAnswer> {
    const answer = await this.authenticated('POST', path, JSON.stringify(body), signal);
    if (answer.status < 200 || answer.status >= 300) throw this.refused('POST', path, answer);
    return answer;
  }

  /** Logs the session out (DELETE); idempotent. Never throws: a failed logout is a warning (the BMC expires it). */
  async close(): Promise<void> {
    this.closed = true;
    const auth = this.auth ?? (await this.login?.catch(() => undefined));
    this.auth = undefined;
    this.login = undefined;
    if (auth?.kind !== 'session') return;
    try {
      const answer = await this.send('DELETE', auth.uri, { 'X-Auth-Token': auth.token }, undefined, AbortSignal.timeout(CLOSE_TIMEOUT_MS * 2), CLOSE_TIMEOUT_MS);
      if ((answer.status >= 200 && answer.status < 300) || answer.status === 404 || answer.status === 401) {
        this.log.info('redfish session closed', { status: answer.status });
      } else {
        this.log.warn('redfish session not closed: the service will expire it', { status: answer.status });
      }
    } catch (e) {
      this.log.warn('redfish session not closed: the service will expire it', { err: e });
    }
  }

  private async authenticated(method: 'GET' | 'POST', path: string, body: string | undefined, signal: AbortSignal): Promise<HttpsAnswer> {
    if (this.closed) throw new ConsolidatorError('POWER_FAILED', `the Redfish client of ${this.deps.endpoint.host} is closed`, { details: { host: this.deps.endpoint.host } });
    const first = await this.currentAuth(signal);
    const answer = await this.send(method, path, await this.authHeaders(first), body, signal);
    if (answer.status !== 401 || first.kind !== 'session') {
      if (answer.status === 401) throw this.authRefused(`${method} ${path}`, answer);
      return answer;
    }
    this.log.info('redfish session no longer accepted, logging in again', { request: `${method} ${path}` });
    if (this.auth === first) this.auth = undefined;
    const again = await this.currentAuth(signal);
    const retried = await this.send(method, path, await this.authHeaders(again), body, signal);
    if (retried.status === 401) throw this.authRefused(`${method} ${path}`, retried);
    return retried;
  }

  /** The session in use, or one login shared by every request waiting for it. */
  private async currentAuth(signal: AbortSignal): Promise<Auth> {
    if (this.auth !== undefined) return this.auth;
    this.login ??= this.logIn(signal).finally(() => {
      this.login = undefined;
    });
    const auth = await this.login;
    this.auth = auth;
    return auth;
  }

  private async logIn(signal: AbortSignal): Promise<Auth> {
    const root = this.json('GET', SERVICE_ROOT, await this.send('GET', SERVICE_ROOT, {}, undefined, signal));
    const sessions = sessionsUri(root);
    if (sessions === undefined) {
      this.log.info('redfish service has no session service, using basic auth');
      return { kind: 'basic' };
    }
    const password = await this.password();
    const answer = await this.send('POST', sessions, {}, JSON.stringify({ UserName: this.deps.credentials.user, Password: password }), signal);
    if (NO_SESSIONS.has(answer.status)) {
      this.log.info('redfish session login not offered, using basic auth', { status: answer.status });
      return { kind: 'basic' };
    }
    if (answer.status === 401 || answer.status === 403) throw this.authRefused(`POST ${sessions}`, answer);
    if (answer.status < 200 || answer.status >= 300) throw this.refused('POST', sessions, answer);
    const token = headerValue(answer, TOKEN_HEADER);
    if (token === undefined) {
      throw new ConsolidatorError('PARSE', `the BMC of ${this.deps.endpoint.host} created a session without an X-Auth-Token header`, {
        details: { host: this.deps.endpoint.host, status: answer.status },
      });
    }
    const uri = sessionUri(answer, this.parsedOrEmpty(answer));
    if (uri === undefined) {
      throw new ConsolidatorError('PARSE', `the BMC of ${this.deps.endpoint.host} created a session without saying where (no Location, no @odata.id)`, {
        details: { host: this.deps.endpoint.host, status: answer.status },
      });
    }
    this.log.info('redfish session opened', { session: uri });
    return { kind: 'session', token, uri };
  }

  private async authHeaders(auth: Auth): Promise<Record<string, string>> {
    if (auth.kind === 'session') return { 'X-Auth-Token': auth.token };
    const basic = Buffer.from(`${this.deps.credentials.user}:${await this.password()}`).toString('base64');
    return { Authorization: `Basic ${basic}` };
  }

  private password(): Promise<string> {
    return readBmcPassword({ host: this.deps.endpoint.host, address: this.deps.endpoint.address, port: this.deps.endpoint.port, passwordFile: this.deps.credentials.passwordFile });
  }

  private async send(
    method: 'GET' | 'POST' | 'DELETE',
    path: string,
    headers: Readonly<Record<string, string>>,
    body: string | undefined,
    signal: AbortSignal,
    timeoutMs = this.deps.requestTimeoutMs,
  ): Promise<HttpsAnswer> {
    const trust = typeof this.deps.trust === 'function' ? await this.deps.trust() : this.deps.trust;
    return this.deps.transport.send(
      this.deps.endpoint,
      trust,
      { method, path, headers: { 'OData-Version': '4.0', ...headers }, ...(body !== undefined ? { body } : {}) },
      timeoutMs,
      signal,
    );
  }

  private json(method: string, path: string, answer: HttpsAnswer): JsonObject {
    try {
      const parsed: unknown = JSON.parse(answer.body);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) return parsed as JsonObject;
    } catch {
      // reported below, with what was asked
    }
    throw new ConsolidatorError('PARSE', `the BMC of ${this.deps.endpoint.host} answered ${method} ${path} with something other than a JSON object`, {
      details: { host: this.deps.endpoint.host, request: `${method} ${path}`, status: answer.status },
    });
  }

  private parsedOrEmpty(answer: HttpsAnswer): JsonObject {
    try {
      const parsed: unknown = JSON.parse(answer.body);
      return typeof parsed === 'object' && parsed !== null ? (parsed as JsonObject) : {};
    } catch {
      return {}; // a session answer may have no body: the Location header is enough
    }
  }

  private authRefused(request: string, answer: HttpsAnswer): ConsolidatorError {
    const user = this.deps.credentials.user;
    return new ConsolidatorError(
      'BMC_AUTH',
      `the BMC of ${this.deps.endpoint.host} (${describeEndpoint(this.deps.endpoint)}) refused user "${user}" for ${request} (HTTP ${answer.status}${describeRedfishError(this.parsedOrEmpty(answer))})`,
      { details: { host: this.deps.endpoint.host, bmc: describeEndpoint(this.deps.endpoint), request, status: answer.status, user, failure: 'credentials' } },
    );
  }

  private refused(method: string, path: string, answer: HttpsAnswer): ConsolidatorError {
    const said = describeRedfishError(this.parsedOrEmpty(answer));
    return new ConsolidatorError('POWER_FAILED', `the BMC of ${this.deps.endpoint.host} refused ${method} ${path} (HTTP ${answer.status}${said})`, {
      details: { host: this.deps.endpoint.host, bmc: describeEndpoint(this.deps.endpoint), request: `${method} ${path}`, status: answer.status, failure: 'refused' },
    });
  }
}

/** Where sessions are created: the service root's Links.Sessions (DSP0266), else none (basic auth). */
export function sessionsUri(root: JsonObject): string | undefined {
  const links = root['Links'];
  if (typeof links === 'object' && links !== null) {
    const id = odataId((links as JsonObject)['Sessions']);
    if (id !== undefined) return id;
  }
  return root['SessionService'] !== undefined ? `${SERVICE_ROOT}SessionService/Sessions` : undefined;
}

/** The session's own URI, for the logout: its Location header (an absolute URL or a path), else the body's @odata.id. */
export function sessionUri(answer: HttpsAnswer, body: JsonObject): string | undefined {
  const location = headerValue(answer, 'location');
  if (location !== undefined) {
    try {
      return new URL(location, 'https://bmc.invalid').pathname;
    } catch {
      // fall back to the body
    }
  }
  return odataId(body);
}

export function odataId(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const id = (value as JsonObject)['@odata.id'];
  return typeof id === 'string' && id !== '' ? id : undefined;
}

/** ": <message>" from a Redfish error body (error.message, or the first @Message.ExtendedInfo Message), or "". */
export function describeRedfishError(body: JsonObject): string {
  const error = body['error'];
  if (typeof error !== 'object' || error === null) return '';
  const e = error as JsonObject;
  const info = e['@Message.ExtendedInfo'];
  const first: unknown = Array.isArray(info) ? info[0] : undefined;
  const detail = typeof first === 'object' && first !== null ? (first as JsonObject)['Message'] : undefined;
  const message = typeof detail === 'string' ? detail : e['message'];
  return typeof message === 'string' && message !== '' ? `: ${message}` : '';
}

function headerValue(answer: HttpsAnswer, name: string): string | undefined {
  const value = answer.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}
