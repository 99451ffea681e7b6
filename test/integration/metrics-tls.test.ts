import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROMETHEUS_POLL, query, startPrometheus, targets, type RunningPrometheus } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait-for.js';
import { startTestDaemon, testSetup, type TestDaemon } from '../helpers/sim-daemon.js';

/**
 * /metrics over TLS with basic auth, configured the Prometheus way (metrics.webConfigFile in
 * exporter-toolkit's web-config format), scraped by a real Prometheus that trusts a CA made here with
 * openssl: the right password scrapes (up == 1), a wrong one is refused with 401 (up == 0), and
 * neither the password nor the key appears in the daemon's logs.
 */

const run = promisify(execFile);
const SCRAPE_TIMEOUT_MS = 20_000;
const PASSWORD = 'correct horse battery staple';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A CA and a server certificate for localhost and 127.0.0.1 signed by it. */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  const key = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server.crt');
  const ext = join(dir, 'server.ext');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', ca, '-days', '1', '-subj', '/CN=consolidator test CA']);
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=localhost']);
  await writeFile(ext, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '1', '-extfile', ext]);
  return { ca, cert, key };
}

describe('metrics over TLS with basic auth, scraped by a real Prometheus', () => {
  let t: TestDaemon;
  let prometheus: RunningPrometheus;
  let dir: string;
  let ca: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'consolidator-tls-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const files = await makeCertificates(dir);
    ca = files.ca;
    // htpasswd -B writes $2y$; bcryptjs writes $2b$: the same algorithm.
    const hash = bcrypt.hashSync(PASSWORD, 10).replace(/^\$2b\$/, '$2y$');
    const webConfig = join(dir, 'web.yml');
    await writeFile(webConfig, ['tls_server_config:', '  cert_file: server.crt', '  key_file: server.key', 'basic_auth_users:', `  prometheus: ${hash}`, ''].join('\n'));
    await writeFile(join(dir, 'right-password'), PASSWORD);
    await writeFile(join(dir, 'wrong-password'), 'not the password');
    t = await startTestDaemon({ setup: testSetup([{ id: 'h1' }], [{ id: 'a', host: 'h1', load: 0.2 }]), policy: { metrics: { listen: '127.0.0.1:0', webConfigFile: webConfig } } });
    cleanups.push(() => t.daemon.stop());
    const target = `127.0.0.1:${t.daemon.httpAddress?.port}`;
    prometheus = await startPrometheus([
      { name: 'right', target, caFile: ca, serverName: 'localhost', username: 'prometheus', passwordFile: join(dir, 'right-password') },
      { name: 'wrong', target, caFile: ca, serverName: 'localhost', username: 'prometheus', passwordFile: join(dir, 'wrong-password') },
      { name: 'anonymous', target, caFile: ca, serverName: 'localhost' },
    ]);
    cleanups.push(() => prometheus.stop());
  });

  it('scrapes with the right password (up == 1) and gets the daemon’s metrics', async () => {
    await waitFor('up{job="right"} == 1', { timeoutMs: SCRAPE_TIMEOUT_MS, ...PROMETHEUS_POLL }, async () => ((await query(prometheus, 'up{job="right"}'))[0]?.value[1] === '1' ? true : undefined));
    const info = await query(prometheus, 'consolidator_info{job="right"}');
    expect(info[0]?.metric['version']).toBe('test');
  });

  it('is refused with 401 with a wrong password or none (up == 0)', async () => {
    for (const job of ['wrong', 'anonymous']) {
      const target = await waitFor(`a failed scrape of job ${job}`, { timeoutMs: SCRAPE_TIMEOUT_MS, ...PROMETHEUS_POLL }, async () => (await targets(prometheus)).find((x) => x.labels['job'] === job && x.health === 'down'));
      expect(target.lastError).toMatch(/401/);
      expect((await query(prometheus, `up{job="${job}"}`))[0]?.value[1]).toBe('0');
    }
  });

  it('does not speak plain HTTP on the TLS port, and logs neither the password nor the key', async () => {
    await expect(fetch(`http://127.0.0.1:${t.daemon.httpAddress?.port}/metrics`, { signal: AbortSignal.timeout(5_000) })).rejects.toThrow();
    expect(t.logs.text).toContain('"scheme":"https"');
    expect(t.logs.text).not.toContain(PASSWORD);
    expect(t.logs.text).not.toContain('PRIVATE KEY');
  });
});
