import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsolidatorError } from '../../src/errors.js';
import { startHttpServer } from '../../src/observability/http-server.js';
import type { RunningHttpServer } from '../../src/observability/http-server.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ConsolidatorMetrics } from '../../src/observability/metrics.js';

/**
 * The daemon's /metrics against the real Prometheus toolchain (Debian package `prometheus`):
 * `promtool check metrics` lints the exposition, and a real Prometheus, started here on loopback with
 * its own config and storage in a temp dir, scrapes it; values come back through its HTTP API.
 */

const PROMETHEUS = '/usr/bin/prometheus';
const PROMTOOL = '/usr/bin/promtool';
const SCRAPE_INTERVAL = '1s';
const PROMETHEUS_READY_TIMEOUT_MS = 20_000;
const QUERY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const POLL_MS = 200;

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A daemon-like endpoint: a ConsolidatorMetrics with every metric given a value, served on 127.0.0.1:0. */
async function startDaemonEndpoint(): Promise<{ server: RunningHttpServer; metrics: ConsolidatorMetrics }> {
  const registry = new Registry();
  const metrics = new ConsolidatorMetrics({ registry, version: '0.1.0' });
  metrics.setHostStates({ on: 12, off: 4, unknown: 1, maintenance: 2 });
  metrics.setHostUtilisation([
    { host: 'kvm-01', cpu: 0.42, memory: 0.61 },
    { host: 'kvm-02.example.net', cpu: 0.05, memory: 0.12 },
  ]);
  metrics.setKeptHosts({ PinnedVm: 1, NoRoomForVms: 3, MinHostsOn: 1 });
  metrics.setHostsNeedingAttention([{ host: 'kvm-07', reason: 'BootTimeout' }]);
  metrics.countPlannedActions('migrate', 5);
  metrics.countPlannedActions('power-off', 1);
  metrics.countExecutedAction('migrate', 'ok');
  metrics.countExecutedAction('migrate', 'failed');
  metrics.countExecutedAction('power-off', 'dry-run');
  metrics.observeMigrationSeconds(37.5);
  metrics.countPowerAction('off', 'ok');
  for (const phase of ['observe', 'plan', 'check', 'persist', 'act', 'total'] as const) metrics.observeCyclePhaseSeconds(phase, 0.3);
  metrics.recordCycle('ok', Date.now());
  metrics.recordCycle('skipped', Date.now());
  metrics.setPowerSavedWatts(600);
  metrics.addEnergySaved(600, 300);
  metrics.countError(new ConsolidatorError('MIGRATION_TIMEOUT', 'too slow'));
  metrics.countError(new Error('boom'));
  metrics.setDryRun(true);
  const server = await startHttpServer({
    listen: '127.0.0.1:0',
    registry,
    health: () => ({ healthy: true }),
    status: () => ({}),
    logger: silentLogger,
  });
  cleanups.push(() => server.close());
  return { server, metrics };
}

async function fetchText(url: string): Promise<string> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

function runWithStdin(command: string, args: string[], stdin: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, output }));
    child.stdin.end(stdin);
  });
}

/** A port that was free a moment ago (Prometheus cannot report the port it picked for :0). */
function freePort(): Promise<number> {
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

interface RunningPrometheus {
  readonly url: string;
  readonly log: () => string;
  stop(): Promise<void>;
}

async function startPrometheus(target: string): Promise<RunningPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'consolidator-prometheus-'));
  const config = [
    'global:',
    `  scrape_interval: ${SCRAPE_INTERVAL}`,
    `  scrape_timeout: ${SCRAPE_INTERVAL}`,
    'scrape_configs:',
    '  - job_name: consolidator',
    '    static_configs:',
    `      - targets: ['${target}']`,
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
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Polls `probe` until it returns a value, or throws naming what was awaited. */
async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

interface QueryResponse {
  status: string;
  data: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

async function query(prometheus: RunningPrometheus, promql: string): Promise<QueryResponse['data']['result']> {
  const body = (await (await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(promql)}`)).json()) as QueryResponse;
  if (body.status !== 'success') throw new Error(`query ${promql} failed: ${JSON.stringify(body)}`);
  return body.data.result;
}

/** Waits until `promql` returns exactly one sample equal to `expected`. */
async function expectQueryValue(prometheus: RunningPrometheus, promql: string, expected: string): Promise<void> {
  await waitFor(`${promql} == ${expected} in Prometheus`, QUERY_TIMEOUT_MS, async () => {
    const result = await query(prometheus, promql);
    return result.length === 1 && result[0]?.value[1] === expected ? true : undefined;
  });
}

describe('promtool check metrics', () => {
  it('passes on the daemon’s real /metrics output, every metric set', async () => {
    const { server } = await startDaemonEndpoint();
    const text = await fetchText(`http://127.0.0.1:${server.address.port}/metrics`);
    expect(text).toContain('consolidator_hosts_needing_attention{host="kvm-07",reason="BootTimeout"} 1');
    const result = await runWithStdin(PROMTOOL, ['check', 'metrics'], text);
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('fails on an exposition that breaks the conventions (the check bites)', async () => {
    const bad = '# HELP consolidator_migrations counter without suffix\n# TYPE consolidator_migrations counter\nconsolidator_migrations 1\n';
    const result = await runWithStdin(PROMTOOL, ['check', 'metrics'], bad);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('should have "_total" suffix');
  });
});

describe('a real Prometheus scraping the daemon on loopback', () => {
  let prometheus: RunningPrometheus;
  let metrics: ConsolidatorMetrics;

  beforeAll(async () => {
    const endpoint = await startDaemonEndpoint();
    metrics = endpoint.metrics;
    prometheus = await startPrometheus(`127.0.0.1:${endpoint.server.address.port}`);
    cleanups.push(() => prometheus.stop());
  });

  it('scrapes the target successfully', async () => {
    await expectQueryValue(prometheus, 'up{job="consolidator"}', '1');
  });

  it('returns the values the daemon exported through /api/v1/query', async () => {
    await expectQueryValue(prometheus, 'consolidator_hosts{state="on"}', '12');
    await expectQueryValue(prometheus, 'consolidator_host_utilisation_ratio{host="kvm-01",resource="memory"}', '0.61');
    await expectQueryValue(prometheus, 'consolidator_estimated_energy_saved_joules_total', '180000');
    await expectQueryValue(prometheus, 'consolidator_errors_total{code="MIGRATION_TIMEOUT"}', '1');
    await expectQueryValue(prometheus, 'consolidator_migration_duration_seconds_count', '1');
    await expectQueryValue(prometheus, 'consolidator_dry_run', '1');
    const kept = await query(prometheus, 'sum(consolidator_hosts_kept)');
    expect(kept[0]?.value[1]).toBe('5');
  });

  it('sees a value change on a later scrape, and a vanished host disappear', async () => {
    metrics.setHostStates({ on: 9, off: 7, unknown: 1, maintenance: 2 });
    metrics.setHostUtilisation([{ host: 'kvm-01', cpu: 0.5, memory: 0.7 }]);
    await expectQueryValue(prometheus, 'consolidator_hosts{state="off"}', '7');
    await expectQueryValue(prometheus, 'count(consolidator_host_utilisation_ratio)', '2');
    expect(prometheus.log()).not.toMatch(/level=error/);
  });
});
