import { Agent, request } from 'node:http';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsolidatorError } from '../../../src/errors.js';
import bcrypt from 'bcryptjs';
import { MAX_CONCURRENT_COMPARES, type HashCompare } from '../../../src/observability/basic-auth.js';
import { parseListenAddress, startHttpServer } from '../../../src/observability/http-server.js';
import type { HealthReport, HttpServerOptions, RunningHttpServer } from '../../../src/observability/http-server.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { ConsolidatorMetrics } from '../../../src/observability/metrics.js';
import { startTestDaemon, testSetup, type TestDaemon } from '../../helpers/sim-daemon.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One HTTP request with node:http (no keep-alive agent unless one is given, so nothing outlives the test). */
function call(server: RunningHttpServer, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}, agent: Agent | false = false): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: server.address.host, port: server.address.port, method, path, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('error', reject);
    if (body !== undefined) {
      req.setHeader('Content-Type', 'application/json');
      req.end(body);
    } else req.end();
  });
}

const running: RunningHttpServer[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((s) => s.close()));
});

async function start(overrides: Partial<HttpServerOptions> = {}): Promise<{ server: RunningHttpServer; metrics: ConsolidatorMetrics }> {
  const registry = new Registry();
  const metrics = new ConsolidatorMetrics({ registry, version: '1.2.3' });
  const server = await startHttpServer({
    listen: '127.0.0.1:0',
    registry,
    health: () => ({ healthy: true, lastSuccessfulCycleMs: 1_700_000_000_000 }),
    status: () => ({ mode: 'dry-run', hosts: 3 }),
    logger: silentLogger,
    ...overrides,
  });
  running.push(server);
  return { server, metrics };
}

describe('parseListenAddress', () => {
  it.each([
    ['127.0.0.1:9464', { host: '127.0.0.1', port: 9464 }],
    ['[::1]:9464', { host: '::1', port: 9464 }],
    ['localhost:0', { host: 'localhost', port: 0 }],
  ])('parses %s', (text, expected) => {
    expect(parseListenAddress(text)).toEqual(expected);
  });

  it.each(['9464', '127.0.0.1', '::1:9464', '127.0.0.1:65536', 'host:port', ''])('refuses %j', (text) => {
    expect(() => parseListenAddress(text)).toThrow(ConsolidatorError);
  });
});

describe('the HTTP server', () => {
  it('listens on the loopback address it was given, on a free port for port 0', async () => {
    const { server } = await start();
    expect(server.address.host).toBe('127.0.0.1');
    expect(server.address.port).toBeGreaterThan(0);
  });

  it('listens on IPv6 loopback given as [::1]:port', async () => {
    const { server } = await start({ listen: '[::1]:0' });
    expect(server.address.host).toBe('::1');
    expect((await call(server, 'GET', '/healthz')).status).toBe(200);
  });

  it('serves /metrics from the registry with the Prometheus content type', async () => {
    const { server, metrics } = await start();
    metrics.setHostStates({ on: 4, off: 2, unknown: 0, maintenance: 1 });
    const reply = await call(server, 'GET', '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(reply.text).toContain('consolidator_hosts{state="on"} 4');
    expect(reply.text).toContain('consolidator_info{version="1.2.3"} 1');
    // A query string does not change the path.
    expect((await call(server, 'GET', '/metrics?name[]=x')).status).toBe(200);
  });

  it('answers /healthz with 200 and the report when healthy', async () => {
    const { server } = await start();
    const reply = await call(server, 'GET', '/healthz');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(reply.text)).toEqual({ healthy: true, lastSuccessfulCycleMs: 1_700_000_000_000 });
  });

  it('answers /healthz with 503 when the health callback says the cycles are stale, asking it on every request', async () => {
    let report: HealthReport = { healthy: false, reason: 'no successful cycle for 3 schedule intervals' };
    const { server } = await start({ health: () => report });
    const stale = await call(server, 'GET', '/healthz');
    expect(stale.status).toBe(503);
    expect(JSON.parse(stale.text)).toEqual({ healthy: false, reason: 'no successful cycle for 3 schedule intervals' });
    report = { healthy: true };
    expect((await call(server, 'GET', '/healthz')).status).toBe(200);
  });

  it('serves /status as JSON from the callback', async () => {
    const { server } = await start();
    const reply = await call(server, 'GET', '/status');
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.text)).toEqual({ mode: 'dry-run', hosts: 3 });
  });

  it('awaits callbacks that return promises', async () => {
    const { server } = await start({ status: async () => ({ cycle: 7 }), health: async () => ({ healthy: false, reason: 'starting' }) });
    expect(JSON.parse((await call(server, 'GET', '/status')).text)).toEqual({ cycle: 7 });
    expect((await call(server, 'GET', '/healthz')).status).toBe(503);
  });

  it('answers 404 for unknown paths and 405 (with Allow) for other methods on its own paths', async () => {
    const { server } = await start();
    expect((await call(server, 'GET', '/')).status).toBe(404);
    expect((await call(server, 'GET', '/metricsx')).status).toBe(404);
    const post = await call(server, 'POST', '/metrics', '{}');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
    expect((await call(server, 'DELETE', '/healthz')).status).toBe(405);
    const head = await call(server, 'HEAD', '/healthz');
    expect(head.status).toBe(200);
    expect(head.text).toBe('');
  });

  it('answers 500 without details when a callback throws, and keeps serving', async () => {
    const { server } = await start({
      status: () => {
        throw new Error('secret internals');
      },
    });
    const reply = await call(server, 'GET', '/status');
    expect(reply.status).toBe(500);
    expect(reply.text).not.toContain('secret internals');
    expect((await call(server, 'GET', '/healthz')).status).toBe(200);
  });

  it('is read-only: every method but GET and HEAD is 405 with Allow: GET, HEAD, on any path', async () => {
    const { server } = await start();
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      for (const path of ['/metrics', '/status', '/operator/drain', '/anything']) {
        const reply = await call(server, method, path, method === 'DELETE' || method === 'OPTIONS' ? undefined : '{}');
        expect(reply.status, `${method} ${path}`).toBe(405);
        expect(reply.headers.allow).toBe('GET, HEAD');
      }
    }
    expect((await call(server, 'GET', '/operator/drain')).status).toBe(404);
  });

  it('asks for basic auth when the web config has users: 401 with WWW-Authenticate: Basic unless the password is right', async () => {
    const hash = bcrypt.hashSync('right horse battery', 4);
    const { server } = await start({ webConfig: { file: 'web.yml', basicAuthUsers: new Map([['prometheus', hash]]) } });
    const as = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
    for (const headers of [{}, as('prometheus', 'wrong'), as('nobody', 'right horse battery'), { Authorization: 'Bearer x' }]) {
      const reply = await call(server, 'GET', '/metrics', undefined, headers);
      expect(reply.status).toBe(401);
      expect(reply.headers['www-authenticate']).toBe('Basic');
      expect(reply.text).not.toContain('consolidator_');
    }
    const ok = await call(server, 'GET', '/metrics', undefined, as('prometheus', 'right horse battery'));
    expect(ok.status).toBe(200);
    expect(ok.text).toContain('consolidator_info');
    // Unauthenticated requests learn nothing, not even that the method is wrong.
    expect((await call(server, 'POST', '/metrics', '{}')).status).toBe(401);
  });

  it('reports a port that is taken as a ConsolidatorError', async () => {
    const { server } = await start();
    await expect(start({ listen: `127.0.0.1:${server.address.port}` })).rejects.toThrow(/cannot listen on 127\.0\.0\.1:\d+/);
  });

  it('closes promptly even while a client holds a keep-alive connection', async () => {
    const { server } = await start();
    const keepAlive = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: server.address.port, path: '/healthz', headers: { Connection: 'keep-alive' } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end();
    });
    expect(keepAlive).toBe(200);
    const started = Date.now();
    await running.splice(0)[0]?.close();
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('basic auth under a flood of wrong passwords', () => {
  const FLOOD_REQUESTS = 50;
  /** Loose on purpose (2 shared cores): one bcryptjs slice is at most ~100 ms; without the limit the loop stalls for seconds. */
  const MAX_LOOP_LAG_MS = 300;
  const as = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
  const agents: Agent[] = [];
  afterEach(() => {
    for (const agent of agents.splice(0)) agent.destroy();
  });

  it('runs at most MAX_CONCURRENT_COMPARES bcrypt compares, answers the rest 429 with Retry-After at once, and keeps the cached scraper and the event loop going', { timeout: 60_000 }, async () => {
    // The usual cost 10 (the decoy hash's too): about 100 ms of bcryptjs per compare.
    const hash = bcrypt.hashSync('right horse battery', 10);
    let inFlight = 0;
    let maxInFlight = 0;
    let compares = 0;
    let compareStarted = () => {};
    const countingCompare: HashCompare = async (password, against) => {
      compares++;
      compareStarted();
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      try {
        return await bcrypt.compare(password, against);
      } finally {
        inFlight--;
      }
    };
    const { server } = await start({ webConfig: { file: 'web.yml', basicAuthUsers: new Map([['prometheus', hash]]) }, basicAuthCompare: countingCompare });
    const right = as('prometheus', 'right horse battery');
    // Prometheus keeps its connection open; its first scrape costs one compare, then its credentials are cached.
    const prometheus = new Agent({ keepAlive: true, maxSockets: 1 });
    // The attacker opens its connections first (requests without credentials: 401 without bcrypt) and then
    // sends every guess at once, so they all reach the server in the same turn of its event loop. (Fresh
    // connections are accepted about one per turn, which spreads a flood out by itself.)
    const attacker = new Agent({ keepAlive: true, maxSockets: FLOOD_REQUESTS });
    agents.push(prometheus, attacker);
    expect((await call(server, 'GET', '/metrics', undefined, right, prometheus)).status).toBe(200);
    const opened = await Promise.all(Array.from({ length: FLOOD_REQUESTS }, () => call(server, 'GET', '/metrics', undefined, {}, attacker)));
    expect(opened.every((r) => r.status === 401)).toBe(true);
    compares = 0;
    maxInFlight = 0;
    const firstCompare = new Promise<void>((resolve) => (compareStarted = resolve));

    // Event-loop lag: a chain of setTimeout(0) for as long as the flood lasts, each one's delay measured.
    let flooding = true;
    let maxLagMs = 0;
    let firstLagMs: number | undefined;
    const sampled = new Promise<void>((resolve) => {
      const sample = () => {
        const scheduled = performance.now();
        setTimeout(() => {
          const lag = performance.now() - scheduled;
          firstLagMs ??= lag;
          maxLagMs = Math.max(maxLagMs, lag);
          if (flooding) sample();
          else resolve();
        }, 0);
      };
      sample();
    });

    const floodStarted = performance.now();
    // Wrong passwords for the real user and for unknown ones (the decoy hash): both need a compare.
    const flood = Array.from({ length: FLOOD_REQUESTS }, (_, i) => call(server, 'GET', '/metrics', undefined, i % 5 === 0 ? as(`nobody${i}`, 'guess') : as('prometheus', `guess ${i}`), attacker));
    // While the flood's first compare runs, the real Prometheus scrapes again with its cached credentials.
    await Promise.race([firstCompare, Promise.all(flood)]);
    const scrapeSent = performance.now();
    const scrape = await call(server, 'GET', '/metrics', undefined, right, prometheus);
    const scrapeMs = performance.now() - scrapeSent;
    const replies = await Promise.all(flood);
    const floodMs = performance.now() - floodStarted;
    flooding = false;
    await sampled;

    const tooMany = replies.filter((r) => r.status === 429);
    const unauthorized = replies.filter((r) => r.status === 401);
    console.log(
      `flood of ${FLOOD_REQUESTS}: ${tooMany.length} x 429, ${unauthorized.length} x 401 in ${floodMs.toFixed(0)} ms; ${compares} compares, at most ${maxInFlight} at once; ` +
        `cached scrape ${scrape.status} in ${scrapeMs.toFixed(0)} ms; setTimeout(0) lag first ${firstLagMs?.toFixed(1)} ms, max ${maxLagMs.toFixed(1)} ms`,
    );

    expect(scrape.status).toBe(200);
    expect(scrape.text).toContain('consolidator_info');
    expect(scrapeMs).toBeLessThan(1000);
    expect(compares).toBeGreaterThan(0);
    expect(maxInFlight).toBeLessThanOrEqual(MAX_CONCURRENT_COMPARES);
    expect(tooMany.length).toBeGreaterThan(FLOOD_REQUESTS / 2);
    expect(tooMany.length + unauthorized.length).toBe(FLOOD_REQUESTS);
    // Every request that was not turned away ran exactly one compare; the 429s ran none.
    expect(unauthorized.length).toBe(compares);
    for (const reply of tooMany) {
      expect(reply.headers['retry-after']).toBe('1');
      expect(reply.headers['www-authenticate']).toBeUndefined();
      expect(reply.text).not.toContain('consolidator_');
    }
    expect(maxLagMs).toBeLessThan(MAX_LOOP_LAG_MS);
  });
});

describe('the metrics listener of a running daemon', () => {
  let t: TestDaemon | undefined;
  afterEach(async () => {
    await t?.daemon.stop();
    t = undefined;
  });

  it('refuses the cross-origin text/plain drain-with-power-off a web page could send (405) and drains nothing', async () => {
    t = await startTestDaemon({ setup: testSetup([{ id: 'h1' }, { id: 'h2' }, { id: 'h3' }], [{ id: 'a', host: 'h1', load: 0.2 }, { id: 'b', host: 'h2', load: 0.2 }]) });
    const address = t.daemon.httpAddress;
    if (!address) throw new Error('no http address');
    // What a browser sends for a "simple" cross-origin request: no preflight, so the server must refuse it.
    const response = await fetch(`http://127.0.0.1:${address.port}/operator/drain`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain', Origin: 'http://evil.example' },
      body: JSON.stringify({ host: 'h1', powerOff: true }),
    });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(t.daemon.state.isInMaintenance('h1')).toBe(false);
    expect(t.datacenter.hostView('h1')?.power).toBe('on');
    expect(t.datacenter.hostView('h1')?.vms.map((v) => v.id)).toEqual(['a']);
    expect(t.datacenter.totals().migrations).toBe(0);
  });
});
