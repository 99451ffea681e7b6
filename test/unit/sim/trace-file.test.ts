import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stitchDays } from '../../../bench/lib/stitch-days.js';
import { isConsolidatorError } from '../../../src/errors.js';
import { runCli } from '../../../src/cli/cli.js';
import { loadWorkload } from '../../../src/sim/workload/load-workload.js';
import { formatTraceFile, parseTraceFile, writeTraceFile } from '../../../src/sim/workload/trace-file.js';
import { captureIo } from '../../helpers/capture.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures');
const HOST_TYPE = 'bench/bitbrains-host.yaml';
const POLICY = 'bench/planetlab-policy.yaml';

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'consolidator-trace-file-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function invalid(text: string): string {
  try {
    parseTraceFile(text, 'f.csv');
  } catch (e) {
    expect(isConsolidatorError(e, 'WORKLOAD_INVALID')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('parsed');
}

const HEAD = '#consolidator-trace v1\n#sample_seconds 60\nvm,vcpus,memory_mib,start,cpu_pct,memory_pct\n';

describe('the consolidator trace file', () => {
  it('reads any interval, sizes, VMs that start later, and an absent memory trace', () => {
    const w = parseTraceFile(`${HEAD}web,4,8192,0,10 20.5 30,50 50 51\nbatch,,,5,80 95,\n`, 'f.csv');
    expect(w).toMatchObject({ format: 'trace', sampleSeconds: 60, samples: 7 });
    expect(w.vms.map((v) => [v.name, v.cores, v.memoryCapacityMiB, v.startSample ?? 0, [...v.cpuPercent], v.memoryPercent && [...v.memoryPercent]])).toEqual([
      ['web', 4, 8192, 0, [10, 20.5, 30], [50, 50, 51]],
      ['batch', undefined, undefined, 5, [80, 95], undefined],
    ]);
  });

  it('names the line of a problem', () => {
    expect(invalid('hello\n')).toMatch(/f\.csv:1: expected "#consolidator-trace v1"/);
    expect(invalid('#consolidator-trace v1\nvm,vcpus,memory_mib,start,cpu_pct,memory_pct\n')).toMatch(/missing header line "#sample_seconds N"/);
    expect(invalid(`${HEAD}a,1,1,0,1 x,\n`)).toMatch(/f\.csv:4: column cpu_pct/);
    expect(invalid(`${HEAD}a,1,1,0,1 2,3\n`)).toMatch(/f\.csv:4: column memory_pct: 1 samples, cpu_pct has 2/);
    expect(invalid(`${HEAD}a,1,1,-1,1,\n`)).toMatch(/column start/);
    expect(invalid(`${HEAD}a,1,1,0,1,\na,1,1,0,1,\n`)).toMatch(/f\.csv:5: duplicate vm "a"/);
    expect(invalid(`${HEAD}a,1,1,0,1\n`)).toMatch(/expected 6 fields/);
    expect(invalid(HEAD)).toMatch(/no VM lines/);
  });

  it('a converted folder reads back the same, plain or gzip', async () => {
    const bitbrains = await loadWorkload(join(FIXTURES, 'bitbrains-small'));
    const file = join(dir, 'bb.csv.gz');
    await writeTraceFile(file, bitbrains, { source: 'test' });
    const back = await loadWorkload(file);
    expect(back.samples).toBe(bitbrains.samples);
    expect(back.vms.map((v) => [v.name, v.cores, v.memoryCapacityMiB, [...v.cpuPercent], [...(v.memoryPercent ?? [])]])).toEqual(
      bitbrains.vms.map((v) => [v.name, v.cores, v.memoryCapacityMiB, [...v.cpuPercent], [...(v.memoryPercent ?? [])]]),
    );
    const plain = join(dir, 'bb.csv');
    await writeFile(plain, formatTraceFile(bitbrains));
    expect((await loadWorkload(plain)).vms.length).toBe(3);
    await writeFile(join(dir, 'gz.csv.gz'), gzipSync(formatTraceFile(bitbrains)));
    expect((await loadWorkload(join(dir, 'gz.csv.gz'))).vms.length).toBe(3);
  });

  it('simulate replays a trace file with VMs that come and go, and reports the lower bound on a declared host type', async () => {
    const cpu = (n: number, v: number) => Array.from({ length: n }, () => String(v)).join(' ');
    const file = join(dir, 'churn.csv');
    await writeFile(file, `${HEAD}a,4,8192,0,${cpu(120, 20)},\nb,8,16384,30,${cpu(60, 50)},${cpu(60, 40)}\nc,2,4096,0,${cpu(40, 90)},\n`);
    const io = captureIo();
    expect(await runCli(['simulate', file, '--host-type', HOST_TYPE, '--policy', POLICY, '--hosts', '3', '--json'], io)).toBe(0);
    const report = JSON.parse(io.stdout.text.trimEnd().split('\n').pop() ?? '') as Record<string, number | string>;
    expect(report).toMatchObject({ format: 'trace', setup: 'trace Dell PowerEdge R720 (2 x 8-core 2.6 GHz Xeon, 256 GiB)', vms: 3, hosts: 3, vmsAliveAtEnd: 1 });
    expect(report['simulatedSeconds']).toBeLessThanOrEqual(120 * 60);
    expect(report['lowerBoundKWh']).toBeGreaterThan(0);
    expect(report['energyKWh']).toBeGreaterThan(report['lowerBoundKWh'] as number);
    expect(report['allHostsOnKWh']).toBeGreaterThanOrEqual(report['energyKWh'] as number);
  });

  it('convert-trace writes a file simulate reads', async () => {
    const out = join(dir, 'pl.csv.gz');
    const io = captureIo();
    expect(await runCli(['convert-trace', join(FIXTURES, 'planetlab-small'), out], io)).toBe(0);
    expect(io.stdout.text).toContain('4 VMs, 288 samples of 300 s');
    const sim = captureIo();
    expect(await runCli(['simulate', out, '--setup', 'cloudsim', '--baseline', 'thr-mmt', '--hosts', '8', '--json'], sim)).toBe(0);
    const direct = captureIo();
    expect(await runCli(['simulate', join(FIXTURES, 'planetlab-small'), '--baseline', 'thr-mmt', '--hosts', '8', '--json'], direct)).toBe(0);
    const a = JSON.parse(sim.stdout.text.trimEnd().split('\n').pop() ?? '') as Record<string, number>;
    const b = JSON.parse(direct.stdout.text.trimEnd().split('\n').pop() ?? '') as Record<string, number>;
    expect([a['energyKWh'], a['migrations']]).toEqual([b['energyKWh'], b['migrations']]);
  });
});

describe('a multi-day Bitbrains trace in the one-day layout', () => {
  it('a week stitched from the day (2016 samples per VM) runs, for a week of simulated time', async () => {
    const week = join(dir, 'bitbrains-7d');
    expect(await stitchDays(join(FIXTURES, 'bitbrains-small'), week, 7)).toEqual({ vms: 3, samplesPerVm: 2016 });
    const io = captureIo();
    expect(await runCli(['simulate', week, '--host-type', HOST_TYPE, '--policy', POLICY, '--json'], io)).toBe(0);
    const report = JSON.parse(io.stdout.text.trimEnd().split('\n').pop() ?? '') as Record<string, number>;
    expect(report['decisions']).toBe(2015);
    expect(report['simulatedSeconds']).toBeGreaterThan(6.9 * 86400);
    expect(report['lowerBoundKWh']).toBeGreaterThan(0);
  });
});
