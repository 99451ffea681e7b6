import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ReportResult } from '../../src/daemon/operator-api.js';
import { freePort } from '../helpers/free-port.js';
import { PROMETHEUS_POLL, query, startPrometheus, type RunningPrometheus } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The built daemon as an operator runs it (`node dist/main.js run`, the README's demo command) on the
 * demo's simulated datacenter, faster, scraped by a real Prometheus on loopback: hosts are powered
 * off and the migrations and the watts saved show in Prometheus; /healthz answers; SIGHUP with a
 * broken policy is rejected and the daemon keeps going; SIGTERM stops it with exit 0. Its figures
 * agree: one clock from the trace's date, energy saved in simulated time, a measured peak of hosts
 * off, the same migration durations in both log lines, powered-off hosts off and not unreachable, a
 * summary against every host on, and no temporary state left behind.
 */

const CONSOLIDATION_TIMEOUT_MS = 60_000;
const execFileAsync = promisify(execFile);
const EXIT_TIMEOUT_MS = 20_000;

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface RunningDaemon {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
  readonly policyFile: string;
  readonly socket: string;
}

async function startDemoDaemon(mode: 'enforce' | 'dry-run' = 'enforce'): Promise<RunningDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'consolidator-demo-test-'));
  const port = await freePort();
  const demo = await readFile('config/demo.yaml', 'utf8');
  const policy = demo
    .replace('listen: 127.0.0.1:9464', `listen: 127.0.0.1:${port}`)
    .replace('socket: /tmp/consolidator-demo.sock', `socket: ${join(dir, 'control.sock')}`)
    .replace('workload: demo-workload', `workload: ${resolve('config/demo-workload')}`)
    .replace('speedup: 300', 'speedup: 600')
    .replace('schedule: "*/2 * * * * *"', 'schedule: "* * * * * *"')
    .replace('format: pretty', 'format: json')
    .replace('mode: enforce', `mode: ${mode}`);
  const policyFile = join(dir, 'demo.yaml');
  await writeFile(policyFile, policy);
  const child = spawn('node', ['dist/main.js', 'run', '--policy', policyFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  return { child, url: `http://127.0.0.1:${port}`, output: () => output, policyFile, socket: join(dir, 'control.sock') };
}

/** `consolidator report --json` of the built CLI, over the daemon's operator socket. */
async function reportOf(daemon: RunningDaemon): Promise<ReportResult> {
  const { stdout } = await execFileAsync('node', ['dist/main.js', 'report', '--socket', daemon.socket, '--json'], { timeout: 120_000 });
  return JSON.parse(stdout) as ReportResult;
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

function metricValue(text: string, name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

async function numberOf(prometheus: RunningPrometheus, promql: string): Promise<number | undefined> {
  const result = await query(prometheus, promql);
  const value = result[0]?.value[1];
  return value === undefined ? undefined : Number(value);
}

describe('the built daemon on the demo datacenter, scraped by a real Prometheus', () => {
  it('powers hosts off, shows it in Prometheus, survives a broken reload, and stops cleanly on SIGTERM', async () => {
    const daemon = await startDemoDaemon();
    const target = daemon.url.replace('http://', '');
    const prometheus = await startPrometheus(target);
    cleanups.push(() => prometheus.stop());
    try {
      const off = await waitFor('hosts powered off, seen through Prometheus', { timeoutMs: CONSOLIDATION_TIMEOUT_MS, ...PROMETHEUS_POLL }, async () => {
        const value = await numberOf(prometheus, 'consolidator_hosts{state="off"}');
        return value !== undefined && value > 0 ? value : undefined;
      });
      expect(off).toBeGreaterThan(0);
      expect(await numberOf(prometheus, 'sum(consolidator_actions_executed_total{type="migrate",result="ok"})')).toBeGreaterThan(0);
      await waitFor('estimated watts saved in Prometheus', { timeoutMs: CONSOLIDATION_TIMEOUT_MS, ...PROMETHEUS_POLL }, async () => {
        const watts = await numberOf(prometheus, 'consolidator_estimated_power_saved_watts');
        return watts !== undefined && watts > 0 ? watts : undefined;
      });
      const health = await fetch(`${daemon.url}/healthz`);
      expect(health.status).toBe(200);
      const healthBody = (await health.json()) as { lastSuccessfulCycleMs: number };
      expect(new Date(healthBody.lastSuccessfulCycleMs).toISOString()).toMatch(/^2011-03-03T/);
      const status = (await (await fetch(`${daemon.url}/status`)).json()) as { lastCycle: { cycle: string; startedAt: string }; hostsByState: { on: string[]; off: string[] }; poweredOffByUs: string[] };
      expect(status.lastCycle.startedAt).toMatch(/^2011-03-03T/);
      expect(status.lastCycle.cycle.startsWith(status.lastCycle.startedAt)).toBe(true);
      expect(status.hostsByState.on.filter((h) => status.poweredOffByUs.includes(h))).toEqual([]);
      // Simulated seconds: one cycle (1 real second) prices the watts saved over 600 simulated seconds;
      // counted in real seconds, the counter would need ten minutes to get there.
      await waitFor('the energy saved to count simulated time', { timeoutMs: CONSOLIDATION_TIMEOUT_MS, ...PROMETHEUS_POLL }, async () => {
        const text = await (await fetch(`${daemon.url}/metrics`)).text();
        const kWh = metricValue(text, 'consolidator_energy_saved_kwh_total');
        const joules = kWh === undefined ? undefined : kWh * 3_600_000;
        const watts = metricValue(text, 'consolidator_estimated_power_saved_watts');
        return joules !== undefined && watts !== undefined && watts > 0 && joules >= watts * 600 ? true : undefined;
      });

      // consolidator report over the operator socket: what it saved, from its recording.
      const enforced = await reportOf(daemon);
      const kWh = metricValue(await (await fetch(`${daemon.url}/metrics`)).text(), 'consolidator_energy_saved_kwh_total') ?? 0;
      expect(enforced.mode).toBe('enforce');
      expect(enforced.replay).toBeUndefined();
      expect(enforced.report.energy.savedKWh).toBeGreaterThan(0);
      // The metric counts up to the newest cycle, the report up to the newest recorded one (a cycle apart at most).
      expect(Math.abs(enforced.report.energy.savedKWh - kWh)).toBeLessThanOrEqual(Math.max(0.15 * kWh, 0.2));
      expect(enforced.report.powerCycles.length).toBeGreaterThan(0);

      // A broken policy on SIGHUP: rejected with its position, the daemon goes on.
      const good = await readFile(daemon.policyFile, 'utf8');
      await writeFile(daemon.policyFile, good.replace('mode: enforce', 'mode: enforced'));
      daemon.child.kill('SIGHUP');
      await waitFor('the reload to be rejected', { timeoutMs: 10_000, ...PROMETHEUS_POLL }, async () => (daemon.output().includes('policy rejected on reload') ? true : undefined));
      expect(daemon.output()).toMatch(/demo\.yaml:\d+:7 mode: must be one of \\?"enforce\\?", \\?"dry-run\\?", got \\?"enforced\\?"/);
      const cyclesBefore = await numberOf(prometheus, 'sum(consolidator_cycles_total)');
      await waitFor('cycles to go on after the rejected reload', { timeoutMs: 15_000, ...PROMETHEUS_POLL }, async () => {
        const now = await numberOf(prometheus, 'sum(consolidator_cycles_total)');
        return now !== undefined && cyclesBefore !== undefined && now > cyclesBefore ? true : undefined;
      });

      daemon.child.kill('SIGTERM');
      const exit = await Promise.race([exitOf(daemon.child), new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), EXIT_TIMEOUT_MS))]);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(daemon.output()).toContain('"message":"stopped"');

      const lines = jsonLines(daemon.output());
      const cycles = lines.filter((l) => typeof l['cycle'] === 'string').map((l) => String(l['cycle']));
      expect(cycles.length).toBeGreaterThan(0);
      for (const id of cycles) expect(id).toMatch(/^2011-03-03T/);
      const finished = lines.filter((l) => l['message'] === 'migration finished');
      expect(finished.length).toBeGreaterThan(0);
      for (const f of finished) {
        const done = lines.find((l) => l['message'] === 'migrate done' && l['action'] === f['action'] && l['cycle'] === f['cycle']);
        expect(done?.['durationMs'], `migrate done of ${String(f['action'])}`).toBe(f['durationMs']);
      }
      for (const l of lines.filter((l) => l['message'] === 'cycle finished')) expect(l['unreachable']).toBe(0);
      const summary = lines.find((l) => typeof l['message'] === 'string' && l['message'].startsWith('simulation summary'));
      expect(summary?.['message']).toMatch(/^simulation summary: [\d.]+ kWh instead of [\d.]+ kWh with every host on: [\d.]+ % saved; [\d.]+ host-hours off/);
      expect(Number(summary?.['hostsPoweredOffPeak'])).toBeGreaterThanOrEqual(off);
      expect(Number(summary?.['allHostsOnEnergyKWh'])).toBeGreaterThan(Number(summary?.['energyKWh']));
      expect(Number(summary?.['hostHoursOff'])).toBeGreaterThan(0);
      const stateDirectory = String(lines.find((l) => l['message'] === 'simulated datacenter')?.['stateDirectory']);
      await expect(access(stateDirectory)).rejects.toThrow(/ENOENT/);
    } catch (e) {
      console.error(`daemon output (tail):\n${daemon.output().slice(-4000)}\nprometheus log:\n${prometheus.log().slice(-2000)}`);
      throw e;
    }
  });

  it('consolidator report in dry-run: nothing was saved, and the daemon replays its recording in a child process to say what would have been', async () => {
    const daemon = await startDemoDaemon('dry-run');
    try {
      await waitFor('a dozen recorded cycles', { timeoutMs: CONSOLIDATION_TIMEOUT_MS, ...PROMETHEUS_POLL }, async () => {
        const text = await fetch(`${daemon.url}/metrics`).then((r) => r.text(), () => '');
        const cycles = metricValue(text, 'consolidator_cycles_total{result="ok"}');
        return cycles !== undefined && cycles >= 12 ? true : undefined;
      });
      const result = await reportOf(daemon);
      expect(result.mode).toBe('dry-run');
      expect(result.report.energy.savedKWh).toBe(0);
      expect(result.report.cyclesByMode.enforce).toBe(0);
      const replay = result.replay as { figures?: { savedKWh: number; cycles: number; policyFile: string }; error?: string };
      expect(replay.error).toBeUndefined();
      expect(replay.figures?.policyFile).toBe(daemon.policyFile);
      expect(replay.figures?.cycles).toBeGreaterThanOrEqual(12);
      expect(replay.figures?.savedKWh).toBeGreaterThan(0);
      const { stdout } = await execFileAsync('node', ['dist/main.js', 'report', '--socket', daemon.socket, '--no-replay'], { timeout: 60_000 });
      expect(stdout).toMatch(/saved\s+0\.00 kWh/);
      expect(stdout).not.toMatch(/would have saved/);
    } catch (e) {
      console.error(`daemon output (tail):\n${daemon.output().slice(-4000)}`);
      throw e;
    }
  });
});
