import { request } from 'node:http';
import { ConsolidatorError, errorMessage } from '../errors.js';
import { parseListenAddress } from '../observability/http-server.js';

/** How long to wait for a daemon to answer before deciding none runs. */
const PROBE_TIMEOUT_MS = 2_000;

/** Talks to a running daemon's HTTP endpoint (the one /metrics is on). */
export class DaemonClient {
  constructor(readonly baseUrl: string) {}

  static forListen(listen: string): DaemonClient {
    const { host, port } = parseListenAddress(listen);
    return new DaemonClient(`http://${host.includes(':') ? `[${host}]` : host}:${port}`);
  }

  /** The daemon's /status, or undefined when nothing answers there. */
  async status(): Promise<Record<string, unknown> | undefined> {
    try {
      const { status, body } = await this.call('GET', '/status', undefined, PROBE_TIMEOUT_MS);
      return status === 200 ? (body as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }

  async post(path: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: unknown }> {
    return this.call('POST', path, body, timeoutMs);
  }

  private call(method: string, path: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: unknown }> {
    const url = new URL(path, this.baseUrl);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        { method, timeout: timeoutMs, headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {} },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => {
            try {
              resolve({ status: res.statusCode ?? 0, body: text.length > 0 ? (JSON.parse(text) as unknown) : undefined });
            } catch (e) {
              reject(new ConsolidatorError('PARSE', `the daemon at ${this.baseUrl} answered ${method} ${path} with something that is not JSON: ${errorMessage(e)}`));
            }
          });
        },
      );
      req.on('timeout', () => req.destroy(new ConsolidatorError('COMMAND_TIMEOUT', `the daemon at ${this.baseUrl} did not answer ${method} ${path} within ${timeoutMs} ms`)));
      req.on('error', (e) => reject(e instanceof ConsolidatorError ? e : new ConsolidatorError('COMMAND_FAILED', `cannot reach the daemon at ${this.baseUrl}: ${errorMessage(e)}`, { cause: e })));
      if (payload) req.write(payload);
      req.end();
    });
  }
}
