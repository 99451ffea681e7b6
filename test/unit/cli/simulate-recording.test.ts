import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runCli } from '../../../src/cli/cli.js';
import { captureIo } from '../../helpers/capture.js';
import { cycleAt, daemonsStoppedAfterEach, testSetup, THIN_HOSTS, THIN_VMS } from '../../helpers/sim-daemon.js';

const startDaemon = daemonsStoppedAfterEach();

function lastJson(text: string): Record<string, unknown> {
  return JSON.parse(text.trimEnd().split('\n').pop() ?? '') as Record<string, unknown>;
}

describe('consolidator simulate --recording', () => {
  it("replays a dry-run daemon's recording under a policy: the saving against every host on, and per-host figures", async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS), policy: { mode: 'dry-run' } });
    for (let at = 300; at <= 300 * 24; at += 300) await cycleAt(t, at);
    await t.daemon.flushRecording();
    const dir = join(t.dir, 'recording');
    const policyFile = join(t.dir, 'replay-policy.yaml');
    await writeFile(
      policyFile,
      stringify({
        version: 1,
        hosts: [{ name: 'x' }],
        hypervisor: { driver: 'simulated' },
        power: { driver: 'simulated' },
        consolidation: { underloadedForSeconds: 600 },
        thresholds: { cpu: { windowSeconds: 900, statistic: 'max' }, memory: { windowSeconds: 900, statistic: 'max' } },
      }),
    );
    const io = captureIo();
    expect(await runCli(['simulate', '--recording', dir, '--policy', policyFile, '--json'], io)).toBe(0);
    const s = lastJson(io.stdout.text);
    expect(s).toMatchObject({ cycles: 24, intervalSeconds: 300, hosts: 4, vms: 5, recordedModes: ['dry-run'] });
    // The dry run moved nothing; the replay under the policy empties hosts and saves energy.
    expect(s['policyKWh']).toBeLessThan(s['allHostsOnKWh'] as number);
    expect(s['savedPct']).toBeGreaterThan(0);
    expect(s['migrations']).toBeGreaterThan(0);
    expect(s['migratedGiB']).toBeGreaterThan(0);
    expect(s['hostHoursOff']).toBeGreaterThan(0);
    const perHost = s['perHost'] as { host: string; powerOffs: number; peakCpuRatio: number }[];
    expect(perHost.map((h) => h.host)).toEqual(['h1', 'h2', 'h3', 'h4']);
    expect(perHost.reduce((n, h) => n + h.powerOffs, 0)).toBe(s['powerOffs']);

    // Another policy (no consolidation) on the same recording: nothing saved, nothing moved.
    const off = join(t.dir, 'off.yaml');
    await writeFile(off, stringify({ version: 1, hosts: [{ name: 'x' }], hypervisor: { driver: 'simulated' }, power: { driver: 'simulated' }, consolidation: { enabled: false } }));
    const io2 = captureIo();
    expect(await runCli(['simulate', '--recording', dir, '--policy', off, '--json'], io2)).toBe(0);
    expect(lastJson(io2.stdout.text)).toMatchObject({ migrations: 0, powerOffs: 0 });

    const human = captureIo();
    expect(await runCli(['simulate', '--recording', dir, '--policy', policyFile, '--plot', join(t.dir, 'p.svg')], human)).toBe(0);
    expect(human.stdout.text).toMatch(/every host on\s+\d+\.\d\d kWh/);
    expect(human.stdout.text).toMatch(/saving\s+\d+\.\d\d kWh, \d+\.\d %, \d+\.\d\d kWh per day/);
    expect(human.stdout.text).toMatch(/HOST\s+POWER-OFFS\s+POWER-ONS\s+PEAK CPU\s+PEAK MEMORY\s+OVER TARGET/);
    expect(human.stdout.text).toContain(`plot: ${join(t.dir, 'p.svg')}`);
  });

  it('usage errors and a missing folder', async () => {
    const io = captureIo();
    expect(await runCli(['simulate', '--recording', '/nonexistent-recording', '--json'], io)).toBe(65);
    expect(io.stderr.text).toContain('no such recording folder');
    const both = captureIo();
    expect(await runCli(['simulate', 'x', '--recording', '/tmp'], both)).toBe(64);
    const bad = captureIo();
    expect(await runCli(['simulate', '--recording', '/tmp', '--from', 'yesterday'], bad)).toBe(64);
  });
});
