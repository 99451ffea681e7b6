import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isConsolidatorError } from '../../../src/errors.js';
import { detectWorkloadFormat, loadWorkload } from '../../../src/sim/workload/load-workload.js';
import { parseTrace } from '../../../src/sim/workload/parse-trace.js';
import { TRACE_SAMPLES_PER_DAY } from '../../../src/sim/workload/workload.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures');
const DAY = TRACE_SAMPLES_PER_DAY;

function day(value: number | string): string {
  return `${Array.from({ length: DAY }, () => String(value)).join('\n')}\n`;
}

async function expectInvalid(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isConsolidatorError(error, 'WORKLOAD_INVALID'), String(error)).toBe(true);
  expect((error as Error).message).toMatch(pattern);
}

describe('loadWorkload: PlanetLab', () => {
  it('reads one trace per file, sorted by name, as CPU percents', async () => {
    const workload = await loadWorkload(join(FIXTURES, 'planetlab-small'));
    expect(workload.format).toBe('planetlab');
    expect(workload.samples).toBe(DAY);
    expect(workload.sampleSeconds).toBe(300);
    expect(workload.vms.map((v) => v.name)).toEqual([
      '146-179_surfsnel_dsl_internl_net_colostate_557',
      '146-179_surfsnel_dsl_internl_net_rnp_dcc_ufjf',
      'planetlab-2_cs_uic_edu_uw_oneswarm',
      'plink_cs_uwaterloo_ca_yale_p4p',
    ]);
    const first = workload.vms[0];
    expect(first?.cpuPercent.length).toBe(DAY);
    expect([first?.cpuPercent[0], first?.cpuPercent[1], first?.cpuPercent[2]]).toEqual([24, 34, 29]);
  });
});

describe('loadWorkload: Bitbrains', () => {
  it('reads vms.csv and the cpu/ and mem/ traces in vms.csv order', async () => {
    const workload = await loadWorkload(join(FIXTURES, 'bitbrains-small'));
    expect(workload.format).toBe('bitbrains');
    expect(workload.vms.map((v) => [v.name, v.cores, v.cpuCapacityMhz, v.memoryCapacityMiB])).toEqual([
      ['1', 2, 5852, 8192],
      ['3', 1, 2600, 686],
      ['54', 0, 0, 0],
    ]);
    const vm = workload.vms[0];
    expect([vm?.cpuPercent[0], vm?.memoryPercent?.[0]]).toEqual([13, 16]);
    expect(vm?.memoryPercent?.length).toBe(DAY);
  });
});

describe('loadWorkload: bad input names the file and line', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'consolidator-workload-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a non-number in a PlanetLab trace', async () => {
    const lines = day(5).split('\n');
    lines[41] = '4x';
    await writeFile(join(dir, 'vm-a'), lines.join('\n'));
    await expectInvalid(loadWorkload(dir), /vm-a:42: expected a non-negative number, found "4x"/);
  });

  it('a negative number', async () => {
    await writeFile(join(dir, 'vm-a'), `-1\n${day(5)}`);
    await expectInvalid(loadWorkload(dir), /vm-a:1: expected a non-negative number/);
  });

  it('an empty line in the middle', async () => {
    const lines = day(5).split('\n');
    lines[9] = '';
    await writeFile(join(dir, 'vm-a'), lines.join('\n'));
    await expectInvalid(loadWorkload(dir), /vm-a:10:/);
  });

  it('any number of samples: a shorter trace is a VM that leaves earlier', async () => {
    await writeFile(join(dir, 'vm-a'), '1\n2\n3\n');
    await writeFile(join(dir, 'vm-b'), `${day(5)}${day(6)}`);
    const workload = await loadWorkload(dir);
    expect(workload.vms.map((v) => v.cpuPercent.length)).toEqual([3, 2 * DAY]);
    expect(workload.samples).toBe(2 * DAY);
  });

  it('an empty trace file', async () => {
    await writeFile(join(dir, 'vm-a'), '');
    await expectInvalid(loadWorkload(dir), /vm-a:1: empty trace/);
  });

  it('a Bitbrains VM whose memory trace is shorter than its CPU trace', async () => {
    await writeFile(join(dir, 'vms.csv'), 'vm,cores,cpu_capacity_mhz,mem_capacity_mb\n7,1,2600,1024\n');
    await mkdir(join(dir, 'cpu'));
    await mkdir(join(dir, 'mem'));
    await writeFile(join(dir, 'cpu', '7'), day(3));
    await writeFile(join(dir, 'mem', '7'), '1\n2\n');
    await expectInvalid(loadWorkload(dir), /mem\/7:2: expected 288 samples \(as many as .*cpu\/7\), found 2/);
  });

  it('an empty folder', async () => {
    await expectInvalid(loadWorkload(dir), /empty folder/);
  });

  it('a folder that does not exist', async () => {
    await expectInvalid(loadWorkload(join(dir, 'nope')), /no such workload folder or trace file/);
  });

  it('cpu/ and mem/ without vms.csv', async () => {
    await mkdir(join(dir, 'cpu'));
    await mkdir(join(dir, 'mem'));
    await expectInvalid(loadWorkload(dir), /vms\.csv: missing vms\.csv/);
  });

  it('a non-number in vms.csv', async () => {
    await writeFile(join(dir, 'vms.csv'), 'vm,cores,cpu_capacity_mhz,mem_capacity_mb\n1,2,2600,4096\n2,two,2600,4096\n');
    await expectInvalid(loadWorkload(dir), /vms\.csv:3: column cores: expected a non-negative number, found "two"/);
  });

  it('a missing column in vms.csv', async () => {
    await writeFile(join(dir, 'vms.csv'), 'vm,cores,cpu_capacity_mhz\n1,2,2600\n');
    await expectInvalid(loadWorkload(dir), /vms\.csv:1: missing column "mem_capacity_mb"/);
  });

  it('a VM of vms.csv without its trace', async () => {
    await writeFile(join(dir, 'vms.csv'), 'vm,cores,cpu_capacity_mhz,mem_capacity_mb\n7,1,2600,1024\n');
    await mkdir(join(dir, 'cpu'));
    await mkdir(join(dir, 'mem'));
    await writeFile(join(dir, 'mem', '7'), day(3));
    await expectInvalid(loadWorkload(dir), /cpu\/7: missing trace file/);
  });

  it('a bad Bitbrains memory trace', async () => {
    await writeFile(join(dir, 'vms.csv'), 'vm,cores,cpu_capacity_mhz,mem_capacity_mb\n7,1,2600,1024\n');
    await mkdir(join(dir, 'cpu'));
    await mkdir(join(dir, 'mem'));
    await writeFile(join(dir, 'cpu', '7'), day(3));
    await writeFile(join(dir, 'mem', '7'), day('NaN'));
    await expectInvalid(loadWorkload(dir), /mem\/7:1: expected a non-negative number, found "NaN"/);
  });

  it('detects the format from the folder', async () => {
    await writeFile(join(dir, 'vms.csv'), '');
    expect(await detectWorkloadFormat(dir)).toBe('bitbrains');
    expect(await detectWorkloadFormat(join(FIXTURES, 'planetlab-small'))).toBe('planetlab');
  });
});

describe('parseTrace', () => {
  it('accepts CRLF line ends and decimals', () => {
    const text = `${Array.from({ length: 3 }, (_, i) => `${i}.5`).join('\r\n')}\r\n`;
    expect([...parseTrace(text, 'f', 3)]).toEqual([0.5, 1.5, 2.5]);
  });
});
