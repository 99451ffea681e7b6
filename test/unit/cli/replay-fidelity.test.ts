import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { humanReplay, replayRecording } from '../../../src/cli/simulate-recording.js';
import { PolicySchema, type Policy } from '../../../src/config/schema.js';
import { RECORDING_FORMAT, RECORDING_VERSION, recordingFileName, utcDay } from '../../../src/state/recording.js';
import { captureIo } from '../../helpers/capture.js';

const START_MS = Date.UTC(2026, 2, 2, 8);
const CYCLES = 120;
const HOSTS = ['h1', 'h2', 'h3'] as const;
/** One small VM per host; v1 is the smallest, so h1 is the first the planner empties. */
const VMS = [
  { name: 'v1', host: 0, vcpus: 1, memoryMiB: 1024, cpu: 0.2 },
  { name: 'v2', host: 1, vcpus: 2, memoryMiB: 2048, cpu: 0.5 },
  { name: 'v3', host: 2, vcpus: 2, memoryMiB: 4096, cpu: 0.5 },
] as const;

const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** A dry-run recording of three under-used hosts, every minute for two hours; with `watts`, each host reports that draw. */
async function writeRecording(watts?: (host: number, cycle: number) => number): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'replay-fidelity-'));
  dirs.push(dir);
  const header = {
    format: RECORDING_FORMAT,
    version: RECORDING_VERSION,
    hosts: Object.fromEntries(HOSTS.map((h) => [h, { powerModel: { kind: 'linear', idleWatts: 150, maxWatts: 350 }, bootSeconds: 120 }])),
  };
  const lines = [JSON.stringify(header)];
  for (let c = 0; c < CYCLES; c++) {
    const t = START_MS + c * 60_000;
    const hosts = HOSTS.map((name, i) => {
      const vm = VMS[i] as (typeof VMS)[number];
      const cpuUsed = vm.cpu + 0.1 * (c % 7);
      return [name, 'on', 1, 16, 65536, cpuUsed, vm.memoryMiB + 512, watts ? watts(i, c) : null];
    });
    const vms = VMS.map((v) => [v.name, v.host, v.vcpus, v.memoryMiB, v.cpu + 0.1 * (c % 7), v.memoryMiB]);
    lines.push(JSON.stringify({ t, mode: 'dry-run', hosts, vms, acted: { migrations: 0, powerOffs: 0, powerOns: 0 } }));
  }
  await writeFile(join(dir, recordingFileName(utcDay(START_MS))), gzipSync(`${lines.join('\n')}\n`));
  return dir;
}

function policy(extra: Record<string, unknown> = {}): Policy {
  return PolicySchema.parse({
    version: 1,
    hosts: [{ name: 'h1' }, { name: 'h2' }, { name: 'h3' }],
    hypervisor: { driver: 'simulated' },
    power: { driver: 'simulated' },
    consolidation: { underloadedForSeconds: 300 },
    thresholds: { cpu: { windowSeconds: 300 }, memory: { windowSeconds: 300 } },
    ...extra,
  });
}

async function replay(dir: string, p: Policy) {
  const { summary } = await replayRecording({ dir, policy: p, policyFile: undefined, range: {}, json: true, plot: 'none' }, captureIo());
  const offs = Object.fromEntries(summary.perHost.map((h) => [h.host, h.powerOffs]));
  return { summary, offs };
}

describe('a replay honours the policy as the daemon does', () => {
  it('never moves a pinned or protected VM: its host is never emptied', async () => {
    const dir = await writeRecording();
    const free = await replay(dir, policy());
    // The control: without rules, h1 (the easiest) is emptied and powered off.
    expect(free.offs['h1']).toBeGreaterThan(0);
    expect(free.summary.rules).toEqual({ pinnedVms: 0, protectedVms: 0, antiAffinityVms: 0, excludedHosts: 0 });

    const pinned = await replay(dir, policy({ vmRules: { pinned: ['v1'] } }));
    expect(pinned.offs['h1']).toBe(0);
    expect(pinned.summary.rules.pinnedVms).toBe(1);
    expect(pinned.summary.migrations).toBeGreaterThan(0); // the others still consolidate

    const guarded = await replay(dir, policy({ vmRules: { protected: ['v?'] } }));
    expect(guarded.summary.migrations).toBe(0);
    expect(guarded.summary.powerOffs).toBe(0);
    expect(guarded.summary.rules).toMatchObject({ pinnedVms: 3, protectedVms: 3 });
  });

  it('never touches an excluded host', async () => {
    const dir = await writeRecording();
    const { summary, offs } = await replay(dir, policy({ hosts: [{ name: 'h1', exclude: true }, { name: 'h2' }, { name: 'h3' }] }));
    expect(offs['h1']).toBe(0);
    expect(summary.rules.excludedHosts).toBe(1);
    expect(summary.powerOffs).toBeGreaterThan(0);
    expect(humanReplay(summary)).toContain('1 host(s) excluded');
  });

  it('keeps the VMs of an anti-affinity group apart', async () => {
    const dir = await writeRecording();
    // One VM per host, all three in one group: no host can be emptied.
    const { summary } = await replay(dir, policy({ vmRules: { antiAffinity: [{ name: 'spread', vms: ['v*'] }] } }));
    expect(summary.rules.antiAffinityVms).toBe(3);
    expect(summary.migrations).toBe(0);
    expect(summary.powerOffs).toBe(0);
  });
});

describe('a replay uses the recorded watts where the recording has them', () => {
  it('without watts, both figures come from the power models', async () => {
    const { summary } = await replay(await writeRecording(), policy());
    expect(summary).toMatchObject({ allHostsOnMethod: 'model', policyMethod: 'model', calibratedHosts: 0, allHostsOnMeasuredPct: 0 });
    expect(summary.allHostsOnKWh).toBe(summary.modelAllHostsOnKWh);
    expect(humanReplay(summary)).toMatch(/every host on\s+\d+\.\d\d kWh \(the power models: the recording has no watts\)/);
  });

  it('measures the every-host-on counterfactual and calibrates each host on its readings', async () => {
    // Hosts that draw far less than the declared 150-350 W: 60 W idle + 100 W per unit of CPU use.
    const draw = (i: number, c: number) => 60 + 100 * (((VMS[i] as (typeof VMS)[number]).cpu + 0.1 * (c % 7)) / 16);
    const dir = await writeRecording(draw);
    const { summary } = await replay(dir, policy());
    expect(summary).toMatchObject({ allHostsOnMethod: 'measured', policyMethod: 'calibrated model', calibratedHosts: 3, allHostsOnMeasuredPct: 100 });
    let joules = 0;
    for (let c = 0; c < CYCLES; c++) for (let i = 0; i < HOSTS.length; i++) joules += draw(i, c) * 60;
    expect(summary.allHostsOnKWh).toBeCloseTo(joules / 3.6e6, 9);
    // The declared models alone say far more: the recorded watts change the figures.
    const model = await replay(await writeRecording(), policy());
    expect(model.summary.allHostsOnKWh).toBeGreaterThan(summary.allHostsOnKWh * 2);
    expect(summary.policyKWh).toBeLessThan(model.summary.policyKWh / 2);
    // Simulated with the calibrated draw, every host on comes out as measured.
    expect(summary.modelAllHostsOnKWh / summary.allHostsOnKWh).toBeCloseTo(1, 1);
    expect(summary.savedKWh).toBeGreaterThan(0);
    expect(humanReplay(summary)).toMatch(/every host on\s+\d+\.\d\d kWh \(measured: the BMCs' watts\)/);
    expect(humanReplay(summary)).toContain('3 of 3 hosts drawing as their recorded watts show');
  });

  it('mixes measured and modelled host-hours when only some hosts report watts', async () => {
    const dir = await writeRecording((i) => (i === 0 ? 80 : Number.NaN));
    // NaN is not JSON: it is written as null, as the daemon writes a host without a reading.
    const { summary } = await replay(dir, policy());
    expect(summary.allHostsOnMethod).toBe('measured and model');
    expect(summary.allHostsOnMeasuredPct).toBeCloseTo(100 / 3, 6);
    expect(summary.calibratedHosts).toBe(1);
  });
});
