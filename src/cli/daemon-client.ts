import { request, type RequestOptions } from 'node:http';
import { CLAIM_HEADERS } from '../daemon/peer-credentials.js';
import { ConsolidatorError, errorMessage } from '../errors.js';

/** How long to wait for a daemon to answer before deciding none runs. */
const PROBE_TIMEOUT_MS = 2_000;

/** What a look for the daemon found. */
export type DaemonProbe =
  | { readonly kind: 'answers'; readonly status: Record<string, unknown> }
  | { readonly kind: 'absent'; readonly why: string }
  | { readonly kind: 'denied'; readonly why: string };

/**
 * Talks to a running daemon: its operator socket (the default; every command) or, for a read-only
 * `status --url`, its HTTP endpoint. The client says who it is (uid, gid, pid) in headers; the daemon
 * logs that as claimed when it cannot ask the kernel.
 */
export class DaemonClient {
  private constructor(
    private readonly target: { readonly socketPath: string } | { readonly baseUrl: string },
  ) {}

  static forSocket(socketPath: string): DaemonClient {
    return new DaemonClient({ socketPath });
  }

  static forUrl(baseUrl: string): DaemonClient {
    return new DaemonClient({ baseUrl });
  }

  /** For messages: the socket path or the URL. */
  get where(): string {
    return 'socketPath' in this.target ? this.target.socketPath : this.target.baseUrl;
  }

  /** Whether a daemon answers, and if not, whether none runs or we may not talk to it. */
  async probe(): Promise<DaemonProbe> {
    try {
      const { status, body } = await this.call('GET', '/status', undefined, PROBE_TIMEOUT_MS);
      if (status === 200) return { kind: 'answers', status: body as Record<string, unknown> };
      return { kind: 'absent', why: `it answered ${status}` };
    } catch (e) {
      const code = errnoOf(e);
      if (code === 'EACCES' || code === 'EPERM') return { kind: 'denied', why: errorMessage(e) };
      return { kind: 'absent', why: errorMessage(e) };
    }
  }

  /** The daemon's /status, or undefined when nothing answers there. */
  async status(): Promise<Record<string, unknown> | undefined> {
    const found = await this.probe();
    return found.kind === 'answers' ? found.status : undefined;
  }

  async post(path: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: unknown }> {
    return this.call('POST', path, body, timeoutMs);
  }

  private call(method: string, path: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: unknown }> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = {
      [CLAIM_HEADERS.pid]: process.pid,
      ...(process.getuid ? { [CLAIM_HEADERS.uid]: process.getuid() } : {}),
      ...(process.getgid ? { [CLAIM_HEADERS.gid]: process.getgid() } : {}),
      ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
    };
    const options: RequestOptions =
      'socketPath' in this.target
        ? { socketPath: this.target.socketPath, path, method, timeout: timeoutMs, headers, agent: false }
        : { ...urlOptions(new URL(path, this.target.baseUrl)), method, timeout: timeoutMs, headers, agent: false };
    return new Promise((resolve, reject) => {
      const req = request(options, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, body: text.length > 0 ? (JSON.parse(text) as unknown) : undefined });
          } catch (e) {
            reject(new ConsolidatorError('PARSE', `the daemon at ${this.where} answered ${method} ${path} with something that is not JSON: ${errorMessage(e)}`));
          }
        });
      });
      req.on('timeout', () => req.destroy(new ConsolidatorError('COMMAND_TIMEOUT', `the daemon at ${this.where} did not answer ${method} ${path} within ${timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) =>
        reject(e instanceof ConsolidatorError ? e : new ConsolidatorError('COMMAND_FAILED', `cannot reach the daemon at ${this.where}: ${errorMessage(e)}`, { details: { errno: e.code }, cause: e })),
      );
      if (payload) req.write(payload);
      req.end();
    });
  }
}

function urlOptions(url: URL): RequestOptions {
  return { protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port, path: `${url.pathname}${url.search}` };
}

function errnoOf(e: unknown): string | undefined {
  if (e instanceof ConsolidatorError) return typeof e.details['errno'] === 'string' ? e.details['errno'] : undefined;
  return (e as { code?: string }).code;
}
