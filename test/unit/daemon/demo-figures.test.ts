import { describe, expect, it } from 'vitest';
import { hostStates } from '../../../src/daemon/daemon-status.js';
import type { CycleReport } from '../../../src/daemon/cycle-report.js';
import { cycleAt, daemonsStoppedAfterEach, logLines, placed, testSetup, THIN_HOSTS, THIN_VMS } from '../../helpers/sim-daemon.js';

/**
 * The figures a user of the demo sees, on the simulated datacenter: one clock (a real date), the
 * energy saved counted in simulated time, migration durations that agree, powered-off hosts that
 * are off (not unreachable), and a status that never lists a host both on and powered off.
 */

const startDaemon = daemonsStoppedAfterEach();
const TRACE_STARTS_AT_MS = Date.parse('2011-03-03T00:00:00Z');

async function consolidated() {
  const setup = testSetup(THIN_HOSTS, THIN_VMS);
  const t = await startDaemon({ setup, datacenter: placed(setup, { epochMs: TRACE_STARTS_AT_MS }) });
  const reports: CycleReport[] = [];
  // Steps of 7 simulated seconds: a cycle's steps end between two of them, as the demo's clock moves in steps.
  for (const at of [300, 600, 900, 1200, 1500, 1800]) reports.push(await cycleAt(t, at, 7));
  return { t, reports };
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`no ${name} in the metrics`);
  return Number(line.split(' ')[1]);
}

describe('the demo figures on the simulated datacenter', () => {
  it('cycle ids, /status, /healthz and history all read the simulated clock, which starts at the trace date', async () => {
    const { t, reports } = await consolidated();
    for (const r of reports) expect(r.cycle.startsWith('2011-03-03T')).toBe(true);
    const cycleIds = new Set(logLines(t).map((l) => l['cycle']).filter((c) => typeof c === 'string'));
    for (const id of cycleIds) expect(String(id)).toMatch(/^2011-03-03T/);
    const status = t.daemon.status() as { lastCycle: { startedAt: string }; health: { lastSuccessfulCycleMs: number } };
    expect(status.lastCycle.startedAt).toMatch(/^2011-03-03T/);
    expect(new Date(status.health.lastSuccessfulCycleMs).toISOString()).toBe(status.lastCycle.startedAt);
    const history = t.daemon.history(100);
    expect(history.length).toBeGreaterThan(0);
    for (const h of history) expect(new Date(h.atMs).toISOString()).toMatch(/^2011-03-03T/);
  });

  it('the energy saved counts simulated seconds: the watts saved times the simulated time between cycles', async () => {
    const { t } = await consolidated();
    await cycleAt(t, t.datacenter.nowSeconds + 300, 7);
    const before = metric(await t.daemon.registry.metrics(), 'consolidator_energy_saved_kwh_total') * 3_600_000;
    const watts = metric(await t.daemon.registry.metrics(), 'consolidator_estimated_power_saved_watts');
    expect(watts).toBeGreaterThan(0);
    await cycleAt(t);
    const after = metric(await t.daemon.registry.metrics(), 'consolidator_energy_saved_kwh_total') * 3_600_000;
    // The two cycles started 300 simulated seconds apart (and a few real milliseconds): with real
    // seconds the counter would grow by watts times a fraction of a second.
    expect(after - before).toBeCloseTo(watts * 300, 0);
  });

  it('a migration lasts as long in "migrate done" as in "migration finished"', async () => {
    const { t } = await consolidated();
    const lines = logLines(t);
    const finished = lines.filter((l) => l['message'] === 'migration finished');
    expect(finished.length).toBeGreaterThan(0);
    for (const f of finished) {
      const done = lines.find((l) => l['message'] === 'migrate done' && l['action'] === f['action'] && l['cycle'] === f['cycle']);
      expect(done?.['durationMs']).toBe(f['durationMs']);
    }
  });

  it('a host powered off is off, not unreachable; status never lists a host both on and powered off by consolidator', async () => {
    const { t, reports } = await consolidated();
    const off = t.daemon.state.poweredOffByUs();
    expect(off.length).toBeGreaterThan(0);
    const last = reports[reports.length - 1] as CycleReport;
    for (const host of off) expect(last.unreachable.has(host)).toBe(false);
    const finished = logLines(t).filter((l) => l['message'] === 'cycle finished');
    for (const f of finished) expect(f['unreachable']).toBe(0);
    for (const r of reports) {
      const states = hostStates(r, off, new Set());
      for (const host of off) expect(states.get(host)).toBe('off');
    }
    const status = t.daemon.status() as { hostsByState: { on: string[]; off: string[] }; poweredOffByUs: string[] };
    expect(status.hostsByState.on.filter((h) => status.poweredOffByUs.includes(h))).toEqual([]);
    expect(status.hostsByState.off).toEqual(expect.arrayContaining(status.poweredOffByUs));
  });

  it('the datacenter measures the hosts-off peak, the host-hours off, and what every host on would have used', async () => {
    const { t } = await consolidated();
    const totals = t.datacenter.totals();
    const off = t.daemon.state.poweredOffByUs().length;
    expect(totals.hostsPoweredOffPeak).toBeGreaterThanOrEqual(off);
    expect(totals.hostsPoweredOffPeak).toBeGreaterThan(0);
    expect(totals.hostOffSeconds).toBeGreaterThan(0);
    expect(totals.allHostsOnEnergyJoules).toBeGreaterThan(totals.energyJoules);
  });
});

describe('hostStates', () => {
  const host = (id: string, power: 'on' | 'off') => ({ id, power, reachable: power === 'on' });
  const report = (hosts: ReturnType<typeof host>[], outcomes: { type: 'power-off' | 'power-on'; host: string }[]) =>
    ({
      snapshot: { hosts, vms: [], takenAtMs: 0 },
      outcomes: outcomes.map((o, i) => ({ action: { id: `${i}`, type: o.type, host: o.host }, result: 'ok', durationMs: 0 })),
    }) as unknown as CycleReport;

  it('applies the last cycle power actions to what it observed, then what the daemon powered off since', () => {
    const r = report([host('h1', 'on'), host('h2', 'on'), host('h3', 'off'), host('h4', 'on')], [
      { type: 'power-off', host: 'h2' },
      { type: 'power-on', host: 'h3' },
    ]);
    expect(Object.fromEntries(hostStates(r, ['h4'], new Set()))).toEqual({ h1: 'on', h2: 'off', h3: 'on', h4: 'off' });
    expect(hostStates(r, ['h4'], new Set(['h4'])).get('h4')).toBe('maintenance');
  });
});
