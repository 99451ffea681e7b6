import { describe, expect, it } from 'vitest';
import { cycleAt, daemonsStoppedAfterEach, logLines, testSetup, THIN_HOSTS, THIN_VMS, worldViolations } from '../../helpers/sim-daemon.js';

const startDaemon = daemonsStoppedAfterEach();

describe('the daemon on a simulated datacenter', () => {
  it('empties underloaded hosts, powers them off, and keeps every VM running exactly once', async () => {
    const setup = testSetup(THIN_HOSTS, THIN_VMS);
    const t = await startDaemon({ setup });
    // Underloaded for 600 s before a host is emptied: cycles at 0, 300, 600, 900 s.
    for (const at of [300, 600, 900, 1200]) await cycleAt(t, at);
    const last = await cycleAt(t);
    expect(last.result).toBe('ok');
    const off = THIN_HOSTS.filter((h) => t.datacenter.hostView(h.id)?.power === 'off').map((h) => h.id);
    expect(off.length).toBeGreaterThanOrEqual(2);
    expect(worldViolations(t.datacenter, THIN_VMS.map((v) => v.id), THIN_HOSTS.map((h) => h.id))).toEqual([]);
    expect(t.daemon.state.poweredOffByUs().sort()).toEqual(off.sort());
    const metrics = await t.daemon.registry.metrics();
    expect(metrics).toMatch(/consolidator_hosts\{state="off"\} [2-3]/);
    expect(metrics).toMatch(/consolidator_actions_executed_total\{type="migrate",result="ok"\} [1-9]/);
    expect(metrics).toMatch(/consolidator_estimated_power_saved_watts [1-9]/);
    expect(logLines(t).some((l) => l['message'] === 'power-off done')).toBe(true);
  });

  it('a scheduled tick that comes while a cycle runs is skipped and counted, never run alongside it', async () => {
    let tick: (() => Promise<void>) | undefined;
    const t = await startDaemon({
      setup: testSetup(THIN_HOSTS, THIN_VMS),
      scheduler: (_expression, _timeZone, job) => {
        tick = job;
        return { stop: () => undefined };
      },
    });
    const fire = tick as () => Promise<void>;
    const first = t.daemon.runCycle();
    await fire();
    await fire();
    await first;
    let metrics = await t.daemon.registry.metrics();
    expect(metrics).toMatch(/consolidator_cycles_total\{result="skipped"\} 2/);
    expect(metrics).toMatch(/consolidator_cycles_total\{result="ok"\} 1/);
    expect(logLines(t).filter((l) => l['message'] === 'cycle skipped' && l['reason'] === 'the previous cycle is still running')).toHaveLength(2);
    // Once the cycle is over, a tick runs one.
    await fire();
    metrics = await t.daemon.registry.metrics();
    expect(metrics).toMatch(/consolidator_cycles_total\{result="ok"\} 2/);
  });

  it('in dry-run mode plans and logs, and touches nothing', async () => {
    const setup = testSetup(THIN_HOSTS, THIN_VMS);
    const t = await startDaemon({ setup, policy: { mode: 'dry-run' } });
    for (const at of [300, 600, 900, 1200]) await cycleAt(t, at);
    expect(THIN_HOSTS.every((h) => t.datacenter.hostView(h.id)?.power === 'on')).toBe(true);
    expect(t.datacenter.totals().migrations).toBe(0);
    expect(logLines(t).some((l) => typeof l['message'] === 'string' && l['message'].startsWith('would migrate'))).toBe(true);
    expect(t.daemon.state.recentHistory(100).some((h) => h.result === 'dry-run')).toBe(true);
  });
});
