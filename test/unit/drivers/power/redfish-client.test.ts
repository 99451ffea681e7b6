import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedfishClient } from '../../../../src/drivers/power/redfish-client.js';
import type { HttpsAnswer, HttpsExchange, HttpsTransport } from '../../../../src/drivers/power/redfish-transport.js';
import { RecordingLogger } from '../../../lab/lab-drivers.js';

const PASSWORD = 's3cret-Pa55';
let dir = '';
let passwordFile = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'redfish-client-'));
  passwordFile = join(dir, 'pw');
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

type Route = (exchange: HttpsExchange) => HttpsAnswer | Promise<HttpsAnswer>;

/** A transport answering from a function, writing down every exchange. */
class ScriptedTransport implements HttpsTransport {
  readonly seen: HttpsExchange[] = [];
  constructor(private readonly route: Route) {}
  async send(_endpoint: unknown, _trust: unknown, exchange: HttpsExchange): Promise<HttpsAnswer> {
    this.seen.push(exchange);
    return this.route(exchange);
  }
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpsAnswer => ({ status, headers, body: JSON.stringify(body) });
const ROOT = { Systems: { '@odata.id': '/redfish/v1/Systems' }, Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } } };

function client(transport: HttpsTransport, logger = new RecordingLogger()) {
  return new RedfishClient({
    endpoint: { host: 'h1', address: '10.0.0.5', port: 443 },
    trust: { kind: 'insecure' },
    credentials: { user: 'admin', passwordFile },
    transport,
    requestTimeoutMs: 1000,
    logger,
  });
}

describe('the Redfish client', () => {
  it('falls back to basic auth when the service refuses session logins (405)', async () => {
    const transport = new ScriptedTransport((x) => {
      if (x.path === '/redfish/v1/') return json(200, ROOT);
      if (x.method === 'POST') return json(405, {});
      return x.headers['Authorization'] === `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` ? json(200, { ok: true }) : json(401, {});
    });
    const logger = new RecordingLogger();
    expect(await client(transport, logger).get('/redfish/v1/Systems', AbortSignal.timeout(1000))).toEqual({ ok: true });
    expect(logger.count('redfish session login not offered, using basic auth', { status: 405 })).toBe(1);
  });

  it('logs in once for requests that arrive together, and reuses the session', async () => {
    let logins = 0;
    const transport = new ScriptedTransport(async (x) => {
      if (x.path === '/redfish/v1/' && x.method === 'GET') return json(200, ROOT);
      if (x.method === 'POST') {
        logins += 1;
        await new Promise((r) => setTimeout(r, 20));
        return json(201, {}, { 'x-auth-token': 'T1', location: 'https://10.0.0.5/redfish/v1/SessionService/Sessions/1' });
      }
      if (x.method === 'DELETE') return json(500, {});
      return x.headers['X-Auth-Token'] === 'T1' ? json(200, { path: x.path }) : json(401, {});
    });
    const logger = new RecordingLogger();
    const c = client(transport, logger);
    const signal = AbortSignal.timeout(1000);
    await Promise.all([c.get('/a', signal), c.get('/b', signal), c.get('/c', signal)]);
    await c.get('/d', signal);
    expect(logins).toBe(1);
    // A logout the service fails is a warning, never a throw; the client is closed after it.
    await c.close();
    expect(transport.seen.at(-1)).toMatchObject({ method: 'DELETE', path: '/redfish/v1/SessionService/Sessions/1' });
    expect(logger.count('redfish session not closed: the service will expire it', { status: 500 })).toBe(1);
    await expect(c.get('/e', signal)).rejects.toMatchObject({ code: 'POWER_FAILED' });
    // The password went only into the login body.
    expect(transport.seen.filter((x) => JSON.stringify(x).includes(PASSWORD)).map((x) => `${x.method} ${x.path}`)).toEqual(['POST /redfish/v1/SessionService/Sessions']);
    expect(JSON.stringify(logger.lines)).not.toContain(PASSWORD);
  });

  it('a refused action is POWER_FAILED quoting the service; an unreadable password file is BMC_AUTH', async () => {
    const transport = new ScriptedTransport((x) => {
      if (x.path === '/redfish/v1/') return json(200, { Links: {} });
      return json(409, { error: { '@Message.ExtendedInfo': [{ Message: 'Server is already powered ON.' }] } });
    });
    const e = await client(transport)
      .post('/reset', { ResetType: 'On' }, AbortSignal.timeout(1000))
      .catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'POWER_FAILED', message: 'the BMC of h1 refused POST /reset (HTTP 409: Server is already powered ON.)' });
    const missing = new RedfishClient({
      endpoint: { host: 'h1', address: '10.0.0.5', port: 443 },
      trust: { kind: 'insecure' },
      credentials: { user: 'admin', passwordFile: join(dir, 'absent') },
      transport,
      requestTimeoutMs: 1000,
      logger: new RecordingLogger(),
    });
    await expect(missing.get('/x', AbortSignal.timeout(1000))).rejects.toMatchObject({ code: 'BMC_AUTH' });
  });
});
