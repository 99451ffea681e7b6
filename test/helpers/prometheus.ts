import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';
import { stopProcess } from './stop-process.js';
import { waitFor, type WaitForOptions } from './wait-for.js';

/** A real Prometheus (Debian package) for integration tests: started on loopback, stopped after. */
const PROMETHEUS = '/usr/bin/prometheus';
const SCRAPE_INTERVAL = '1s';
const PROMETHEUS_READY_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
/**
 * How the tests wait for Prometheus (ready, a query's answer): a look every 200 ms; a failed request
 * ends the wait at once.
 */
export const PROMETHEUS_POLL = { intervalMs: 200, onProbeError: 'throw' } as const satisfies Omit<WaitForOptions, 'timeoutMs'>;

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
      await stopProcess(child, STOP_TIMEOUT_MS);
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor('Prometheus /-/ready', { timeoutMs: PROMETHEUS_READY_TIMEOUT_MS, ...PROMETHEUS_POLL }, async () => {
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
