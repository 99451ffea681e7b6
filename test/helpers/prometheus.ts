import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A real Prometheus (Debian package) for integration tests: started on loopback, stopped after. */
const PROMETHEUS = '/usr/bin/prometheus';
const SCRAPE_INTERVAL = '1s';
const PROMETHEUS_READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
const POLL_MS = 200;

/** A port that was free a moment ago (Prometheus cannot report the port it picked for :0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export interface RunningPrometheus {
  readonly url: string;
  readonly log: () => string;
  stop(): Promise<void>;
}

/** A scrape job beyond the default one: HTTPS with a CA, basic auth with a password file. */
export interface ScrapeJob {
  readonly name: string;
  readonly target: string;
  readonly caFile?: string;
  readonly serverName?: string;
  readonly username?: string;
  readonly passwordFile?: string;
}

export async function startPrometheus(target: string | readonly ScrapeJob[]): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'consolidator-prometheus-'));
  const jobs: readonly ScrapeJob[] = typeof target === 'string' ? [{ name: 'consolidator', target }] : target;
  const config = [
    'global:',
    `  scrape_interval: ${SCRAPE_INTERVAL}`,
    `  scrape_timeout: ${SCRAPE_INTERVAL}`,
    'scrape_configs:',
    ...jobs.flatMap((job) => [
      `  - job_name: ${job.name}`,
      ...(job.caFile ? ['    scheme: https', '    tls_config:', `      ca_file: ${job.caFile}`, ...(job.serverName ? [`      server_name: ${job.serverName}`] : [])] : []),
      ...(job.username ? ['    basic_auth:', `      username: ${job.username}`, ...(job.passwordFile ? [`      password_file: ${job.passwordFile}`] : [])] : []),
      '    static_configs:',
      `      - targets: ['${job.target}']`,
    ]),
    '',
  ].join('\n');
  await writeFile(join(dir, 'prometheus.yml'), config);
  const port = await freePort();
  const child = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  const handle: RunningPrometheus = {
    url,
    log: () => log,
    stop: async () => {
      await stopProcess(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('Prometheus /-/ready', PROMETHEUS_READY_TIMEOUT_MS, async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}: ${log}`);
      const response = await fetch(`${url}/-/ready`).catch(() => undefined);
      return response?.status === 200 ? true : undefined;
    });
  } catch (e) {
    await handle.stop();
    throw e;
  }
  return handle;
}

/** SIGTERM, then SIGKILL if it has not exited within STOP_TIMEOUT_MS. */
export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Polls `probe` until it returns a value, or throws naming what was awaited. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export interface QueryResponse {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

export async function query(prometheus: RunningPrometheus, promql: string): Promise<QueryResponse['data']['result']> {
  const body = (await (await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(promql)}`)).json()) as QueryResponse;
  if (body.status !== 'success') throw new Error(`query ${promql} failed: ${JSON.stringify(body)}`);
  return body.data.result;
}


export interface ScrapeTarget {
  labels: Record<string, string>;
  health: string;
  lastError: string;
}

/** Prometheus' view of its targets (/api/v1/targets): health and the last scrape error. */
export async function targets(prometheus: RunningPrometheus): Promise<ScrapeTarget[]> {
  const body = (await (await fetch(`${prometheus.url}/api/v1/targets`)).json()) as { data: { activeTargets: ScrapeTarget[] } };
  return body.data.activeTargets;
}
