import { describe, expect, it } from 'vitest';
import { loadPolicyFile } from '../../../src/config/load.js';
import { replayRecording } from '../../../src/cli/simulate-recording.js';
import { humanReport } from '../../../src/cli/report.js';
import type { ReplayRunner } from '../../../src/daemon/operator-api.js';
import { CapturedStream } from '../../helpers/capture.js';
import { cycleAt, daemonsStoppedAfterEach, testSetup, THIN_HOSTS, THIN_VMS, type TestDaemon } from '../../helpers/sim-daemon.js';

const startDaemon = daemonsStoppedAfterEach();

async function metric(t: TestDaemon, name: string): Promise<number> {
  const line = (await t.daemon.registry.metrics()).split('\n').find((l) => l.startsWith(`${name} `));
  return Number(line?.split(' ')[1]);
}

async function run(t: TestDaemon, cycles: number): Promise<void> {
  for (let i = 1; i <= cycles; i++) await cycleAt(t, i * 300);
}

/** The replay the CLI runs, in this process (the daemon's own runs it in a child). */
const inProcessReplay: ReplayRunner = async ({ recordingDir, policyFile, range }) => {
  const loaded = await loadPolicyFile(policyFile);
  if (!loaded.ok) throw new Error('policy');
  const io = { stdout: new CapturedStream(), stderr: new CapturedStream(), isTty: false };
  const { summary } = await replayRecording({ dir: recordingDir, policy: loaded.value.policy, policyFile, range, json: true, plot: 'none' }, io);
  return summary as unknown as Record<string, unknown>;
};

describe('consolidator report, from the daemon', () => {
  it('in enforce mode: the energy saved agrees with consolidator_energy_saved_kwh_total, and the power cycles and migrations with the history', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS) });
    await run(t, 12);
    const { report, replay, mode } = await t.daemon.report({}, { replay: true });
    expect(mode).toBe('enforce');
    expect(replay).toBeUndefined();
    expect(report.cyclesByMode).toEqual({ enforce: 12, 'dry-run': 0 });
    expect(report.energy.savedKWh).toBeGreaterThan(0);
    // Both price the same observations, the metric with the readings one cycle behind.
    expect(report.energy.savedKWh).toBeCloseTo(await metric(t, 'consolidator_energy_saved_kwh_total'), 3);
    const history = t.daemon.history(1000);
    const ok = (type: string) => history.filter((h) => h.type === type && h.result === 'ok').length;
    expect(report.migrations).toBe(ok('migrate'));
    expect(report.powerCycles.reduce((n, h) => n + h.powerOffs, 0)).toBe(ok('power-off'));
    expect(report.hostHoursOff).toBeGreaterThan(0);
    expect(report.energy.allHostsOnKWh).toBeCloseTo(report.energy.actualKWh + report.energy.savedKWh, 9);
    const text = humanReport({ mode, report });
    expect(text).toMatch(/saved\s+\d+\.\d\d kWh/);
    expect(text).toMatch(/method: Against every host on/);
  });

  it('a period: --last on the daemon clock, --from/--to', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS) });
    await run(t, 8);
    const all = (await t.daemon.report({}, { replay: false })).report;
    const last = (await t.daemon.report({}, { replay: false, lastSeconds: 900 })).report;
    expect(last.cycles).toBeLessThan(all.cycles);
    expect(last.cycles).toBeGreaterThanOrEqual(3);
    const none = (await t.daemon.report({ fromMs: t.datacenter.nowMs + 60_000 }, { replay: false })).report;
    expect(none.cycles).toBe(0);
    expect(humanReport({ mode: 'enforce', report: none })).toMatch(/No recorded cycle/);
  });

  it('in dry-run mode: it saved nothing, and the replay says what it would have saved', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS), policy: { mode: 'dry-run' }, replay: inProcessReplay });
    await run(t, 12);
    const result = await t.daemon.report({}, { replay: true });
    expect(result.mode).toBe('dry-run');
    expect(result.report.energy.savedKWh).toBe(0);
    expect(result.report.hostHoursOff).toBe(0);
    expect(result.replay && 'figures' in result.replay).toBe(true);
    const figures = (result.replay as { figures: { savedKWh: number; cycles: number } }).figures;
    expect(figures.cycles).toBe(12);
    expect(figures.savedKWh).toBeGreaterThan(0);
    expect(humanReport(result)).toMatch(/what the policy would have saved/);
    // Without the replay: just the report.
    expect((await t.daemon.report({}, { replay: false })).replay).toBeUndefined();
  });

  it('a replay that fails is said so; the report is still there', async () => {
    const t = await startDaemon({
      setup: testSetup(THIN_HOSTS, THIN_VMS),
      policy: { mode: 'dry-run' },
      replay: () => Promise.reject(new Error('the replay stopped (exit 1)')),
    });
    await run(t, 3);
    const result = await t.daemon.report({}, { replay: true });
    expect(result.replay).toEqual({ error: 'the replay stopped (exit 1)' });
    expect(result.report.cycles).toBe(3);
    expect(humanReport(result)).toMatch(/would have saved in dry-run: not known \(the replay stopped/);
  });
});
