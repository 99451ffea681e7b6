import { writeFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readRecording } from '../../../src/state/recording.js';
import { cycleAt, daemonsStoppedAfterEach, logLines, testSetup, THIN_HOSTS, THIN_VMS } from '../../helpers/sim-daemon.js';

const startDaemon = daemonsStoppedAfterEach();

describe('the daemon records what it observes', () => {
  it('per cycle, per host and per VM, with the BMC watts and what it did, in enforce mode', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS) });
    for (const at of [300, 600, 900, 1200, 1500]) await cycleAt(t, at);
    await t.daemon.flushRecording();
    const rec = await readRecording(join(t.dir, 'recording'));
    expect(rec.warnings).toEqual([]);
    expect(rec.cycles.length).toBe(5);
    expect(Object.keys(rec.hosts).sort()).toEqual(['h1', 'h2', 'h3', 'h4']);
    expect(rec.hosts['h1']).toEqual({ powerModel: { kind: 'linear', idleWatts: 100, maxWatts: 300 }, bootSeconds: 60 });
    const last = rec.cycles[rec.cycles.length - 1];
    expect(last?.mode).toBe('enforce');
    expect(last?.hosts.map((h) => h[0])).toEqual(['h1', 'h2', 'h3', 'h4']);
    const h1 = last?.hosts[0];
    expect([h1?.[1], h1?.[2], h1?.[3], h1?.[4]]).toEqual(['on', 1, 16, 65536]);
    expect(typeof h1?.[5]).toBe('number');
    // The simulated BMC reports watts (on hosts).
    expect(typeof h1?.[7]).toBe('number');
    expect(last?.vms.map((v) => v[0]).sort()).toEqual(['a', 'b', 'c', 'd', 'e']);
    const a = last?.vms.find((v) => v[0] === 'a');
    expect([a?.[2], a?.[3]]).toEqual([2, 4096]);
    expect(rec.cycles.reduce((n, c) => n + c.acted.migrations, 0)).toBeGreaterThan(0);
    expect(rec.cycles.some((c) => c.hosts.some((h) => h[1] === 'off'))).toBe(true);
  });

  it('in dry-run mode too', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS), policy: { mode: 'dry-run' } });
    await cycleAt(t, 300);
    await cycleAt(t, 600);
    await t.daemon.flushRecording();
    const rec = await readRecording(join(t.dir, 'recording'));
    expect(rec.cycles.map((c) => c.mode)).toEqual(['dry-run', 'dry-run']);
  });

  it('a recording that cannot be written never fails a cycle: a warning and consolidator_recording_errors_total', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS) });
    // The recording folder's place is taken by a file.
    await rm(join(t.dir, 'recording'), { recursive: true, force: true });
    await writeFile(join(t.dir, 'recording'), '');
    const report = await cycleAt(t, 300);
    await t.daemon.flushRecording();
    expect(report.result).toBe('ok');
    expect(await t.daemon.registry.metrics()).toMatch(/consolidator_recording_errors_total [1-9]/);
    expect(logLines(t).some((l) => String(l['message']).startsWith('recording: write failed'))).toBe(true);
    // Once the folder can be written again, recording resumes.
    await rm(join(t.dir, 'recording'));
    await mkdir(join(t.dir, 'recording'));
    await cycleAt(t, 600);
    await t.daemon.flushRecording();
    expect((await readRecording(join(t.dir, 'recording'))).cycles.length).toBe(1);
  });

  it('recording.enabled: false records nothing', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS), policy: { recording: { enabled: false } } });
    await cycleAt(t, 300);
    await t.daemon.flushRecording();
    await expect(readRecording(join(t.dir, 'recording'))).rejects.toThrow();
  });
});
