import { spawn } from 'node:child_process';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsolidatorError } from '../../src/errors.js';
import { startHttpServer } from '../../src/observability/http-server.js';
import type { RunningHttpServer } from '../../src/observability/http-server.js';
import { silentLogger } from '../../src/observability/logger.js';
import { ConsolidatorMetrics } from '../../src/observability/metrics.js';
import { PROMETHEUS_POLL, query, startPrometheus, type RunningPrometheus } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The daemon's /metrics against the real Prometheus toolchain (Debian package `prometheus`):
 * `promtool check metrics` lints the exposition, and a real Prometheus, started here on loopback with
 * its own config and storage in a temp dir, scrapes it; values come back through its HTTP API.
 */

const PROMTOOL = '/usr/bin/promtool';
const QUERY_TIMEOUT_MS = 15_000;

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
  metrics.addEnergySavedJoules(1_800_000);
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

/** Waits until `promql` returns exactly one sample equal to `expected`. */
async function expectQueryValue(prometheus: RunningPrometheus, promql: string, expected: string): Promise<void> {
  await waitFor(`${promql} == ${expected} in Prometheus`, { timeoutMs: QUERY_TIMEOUT_MS, ...PROMETHEUS_POLL }, async () => {
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
    await expectQueryValue(prometheus, 'consolidator_energy_saved_kwh_total', '0.5');
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
