import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { ConsolidatorError, errorMessage } from '../../errors.js';
import type { HostId } from '../../model/ids.js';

/** How the BMC's HTTPS certificate is checked; exactly one way is chosen by the policy. */
export type RedfishTrust =
  | { readonly kind: 'ca'; readonly caPem: string; readonly pinnedSha256?: string }
  | { readonly kind: 'pinned'; readonly pinnedSha256: string }
  | { readonly kind: 'insecure' };

export interface RedfishEndpoint {
  readonly host: HostId;
  /** An IP address or DNS name; IPv6 with or without brackets. */
  readonly address: string;
  readonly port: number;
}

export interface HttpsExchange {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  /** Absolute path on the service, /redfish/v1/... */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface HttpsAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** The smallest HTTPS the Redfish client needs; the real one checks the certificate before it writes a byte. */
export interface HttpsTransport {
  send(endpoint: RedfishEndpoint, trust: RedfishTrust, exchange: HttpsExchange, timeoutMs: number, signal: AbortSignal): Promise<HttpsAnswer>;
}

const MAX_BODY_BYTES = 4 * 1024 * 1024;
const MS_PER_SECOND = 1000;
/** OpenSSL and node names of certificate verification failures (not network ones). */
const CERTIFICATE_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|DEPTH_ZERO|ERR_TLS_/;

/** "AB:CD:..." or "abcd..." -> "abcd...". */
export function normaliseFingerprint(fingerprint: string): string {
  return fingerprint.replaceAll(':', '').toLowerCase();
}

/**
 * One request per TLS connection (BMCs keep few connections and drop idle ones): connect, complete
 * the handshake, check the certificate (chain and name against the CA, and/or the pinned SHA-256
 * fingerprint), and only then write the HTTP request over that socket. One deadline covers all of it.
 * Thrown: BMC_UNREACHABLE (no connection, no answer in time), BMC_AUTH with failure "certificate"
 * (the certificate is not the one the policy trusts), ABORTED.
 */
export class NodeHttpsTransport implements HttpsTransport {
  async send(endpoint: RedfishEndpoint, trust: RedfishTrust, exchange: HttpsExchange, timeoutMs: number, signal: AbortSignal): Promise<HttpsAnswer> {
    const what = `${exchange.method} ${exchange.path}`;
    const bmc = describeEndpoint(endpoint);
    const details = { host: endpoint.host, bmc, request: what };
    if (signal.aborted) throw new ConsolidatorError('ABORTED', `aborted before ${what} to the BMC of ${endpoint.host}`, { details });
    const hostname = endpoint.address.replace(/^\[(.*)\]$/, '$1');
    return new Promise<HttpsAnswer>((resolve, reject) => {
      let settled = false;
      const finish = (error: ConsolidatorError | undefined, answer?: HttpsAnswer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        if (error !== undefined) reject(error);
        else if (answer !== undefined) resolve(answer);
      };
      const timer = setTimeout(() => {
        finish(
          new ConsolidatorError('BMC_UNREACHABLE', `the BMC of ${endpoint.host} (${bmc}) did not answer ${what} within ${timeoutMs / MS_PER_SECOND} s`, {
            details: { ...details, failure: 'timeout', timeoutMs },
          }),
        );
      }, timeoutMs);
      const onAbort = () => finish(new ConsolidatorError('ABORTED', `aborted during ${what} to the BMC of ${endpoint.host}`, { details, cause: signal.reason }));
      signal.addEventListener('abort', onAbort, { once: true });

      const socket: TLSSocket = tlsConnect({
        host: hostname,
        port: endpoint.port,
        ...(isIP(hostname) === 0 ? { servername: hostname } : {}),
        ...(trust.kind === 'ca' ? { ca: trust.caPem, rejectUnauthorized: true } : { rejectUnauthorized: false }),
      });
      socket.once('error', (e: NodeJS.ErrnoException) => finish(transportError(endpoint, what, e)));
      socket.once('secureConnect', () => {
        const tls = socket;
        const pinned = trust.kind === 'insecure' ? undefined : trust.pinnedSha256;
        if (pinned !== undefined) {
          const seen = normaliseFingerprint(tls.getPeerCertificate().fingerprint256 ?? '');
          if (seen !== normaliseFingerprint(pinned)) {
            finish(
              new ConsolidatorError(
                'BMC_AUTH',
                `the HTTPS certificate of the BMC of ${endpoint.host} (${bmc}) has SHA-256 fingerprint ${seen}, not the pinned ${normaliseFingerprint(pinned)}: nothing was sent`,
                { details: { ...details, failure: 'certificate', seenSha256: seen, pinnedSha256: normaliseFingerprint(pinned) } },
              ),
            );
            return;
          }
        }
        const req = httpRequest(
          {
            createConnection: () => tls,
            method: exchange.method,
            path: exchange.path,
            headers: {
              Host: endpoint.port === 443 ? endpoint.address : `${endpoint.address}:${endpoint.port}`,
              Accept: 'application/json',
              Connection: 'close',
              ...exchange.headers,
              ...(exchange.body !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(exchange.body)) } : {}),
            },
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > MAX_BODY_BYTES) {
                finish(new ConsolidatorError('PARSE', `the BMC of ${endpoint.host} answered ${what} with more than ${MAX_BODY_BYTES} bytes`, { details }));
                return;
              }
              chunks.push(chunk);
            });
            res.once('end', () => finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
            res.once('error', (e: NodeJS.ErrnoException) => finish(transportError(endpoint, what, e)));
          },
        );
        req.once('error', (e: NodeJS.ErrnoException) => finish(transportError(endpoint, what, e)));
        req.end(exchange.body);
      });
    });
  }
}

export function describeEndpoint(endpoint: RedfishEndpoint): string {
  const bare = endpoint.address.replace(/^\[(.*)\]$/, '$1');
  return `https://${bare.includes(':') ? `[${bare}]` : bare}:${endpoint.port}`;
}

function transportError(endpoint: RedfishEndpoint, what: string, e: NodeJS.ErrnoException): ConsolidatorError {
  const bmc = describeEndpoint(endpoint);
  const code = e.code ?? '';
  if (CERTIFICATE_ERROR.test(code)) {
    return new ConsolidatorError(
      'BMC_AUTH',
      `the HTTPS certificate of the BMC of ${endpoint.host} (${bmc}) is not trusted by bmc.redfish.caFile (${errorMessage(e)}): nothing was sent`,
      { details: { host: endpoint.host, bmc, request: what, failure: 'certificate', tls: code }, cause: e },
    );
  }
  return new ConsolidatorError('BMC_UNREACHABLE', `cannot reach the BMC of ${endpoint.host} (${bmc}) for ${what}: ${errorMessage(e)}`, {
    details: { host: endpoint.host, bmc, request: what, failure: 'network', errno: code },
    cause: e,
  });
}
