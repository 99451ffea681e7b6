import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsolidatorError } from '../../errors.js';
import { parseTrace } from './parse-trace.js';
import { gridLength, TRACE_SAMPLE_SECONDS, type Workload, type WorkloadVm } from './workload.js';

const REQUIRED_COLUMNS = ['vm', 'cores', 'cpu_capacity_mhz', 'mem_capacity_mb'] as const;
const NUMBER = /^\d+(?:\.\d+)?$/;

/**
 * A Bitbrains trace: `vms.csv` (vm, cores, cpu_capacity_mhz, mem_capacity_mb, ...) and, per VM,
 * `cpu/<vm>` and `mem/<vm>` with one percent per line, every 300 s, as many lines as the trace is
 * long (288 for the shared day, 2016 for a week); a VM's two files must have the same length. VMs
 * keep the order of vms.csv. VMs that report zero capacity (seven in the shared trace) are kept: the
 * setup decides what to do with them.
 */
export async function loadBitbrainsWorkload(dir: string): Promise<Workload> {
  const csvFile = join(dir, 'vms.csv');
  const csv = await readFile(csvFile, 'utf8').catch((e: unknown) => {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${csvFile}: missing vms.csv (Bitbrains format needs it)`, {
      details: { file: csvFile },
      cause: e,
    });
  });
  const rows = parseVmsCsv(csv, csvFile);
  const vms = await Promise.all(
    rows.map(async (row): Promise<WorkloadVm> => {
      const cpuFile = join(dir, 'cpu', row.name);
      const memoryFile = join(dir, 'mem', row.name);
      const cpuPercent = await readTrace(cpuFile);
      const memoryPercent = await readTrace(memoryFile);
      if (memoryPercent.length !== cpuPercent.length) {
        throw new ConsolidatorError(
          'WORKLOAD_INVALID',
          `${memoryFile}:${memoryPercent.length}: expected ${cpuPercent.length} samples (as many as ${cpuFile}), found ${memoryPercent.length}`,
          { details: { file: memoryFile, line: memoryPercent.length } },
        );
      }
      return { ...row, cpuPercent, memoryPercent };
    }),
  );
  return { format: 'bitbrains', dir, sampleSeconds: TRACE_SAMPLE_SECONDS, samples: gridLength(vms), vms };
}

interface VmRow {
  readonly name: string;
  readonly cores: number;
  readonly cpuCapacityMhz: number;
  readonly memoryCapacityMiB: number;
}

function parseVmsCsv(text: string, file: string): VmRow[] {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  const header = (lines[0] ?? '').split(',').map((c) => c.trim());
  const index = new Map(header.map((c, i) => [c, i]));
  for (const column of REQUIRED_COLUMNS) {
    if (!index.has(column)) {
      throw new ConsolidatorError('WORKLOAD_INVALID', `${file}:1: missing column ${JSON.stringify(column)}`, {
        details: { file, line: 1 },
      });
    }
  }
  const rows: VmRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    if (raw.trim() === '') continue;
    const line = i + 1;
    const cells = raw.split(',').map((c) => c.trim());
    const cell = (column: (typeof REQUIRED_COLUMNS)[number]): string => cells[index.get(column) ?? -1] ?? '';
    const name = cell('vm');
    if (name === '' || name.includes('/') || name.startsWith('.')) {
      throw new ConsolidatorError('WORKLOAD_INVALID', `${file}:${line}: invalid vm name ${JSON.stringify(name)}`, {
        details: { file, line },
      });
    }
    const num = (column: 'cores' | 'cpu_capacity_mhz' | 'mem_capacity_mb'): number => {
      const value = cell(column);
      if (!NUMBER.test(value)) {
        throw new ConsolidatorError(
          'WORKLOAD_INVALID',
          `${file}:${line}: column ${column}: expected a non-negative number, found ${JSON.stringify(value)}`,
          { details: { file, line } },
        );
      }
      return Number(value);
    };
    rows.push({ name, cores: num('cores'), cpuCapacityMhz: num('cpu_capacity_mhz'), memoryCapacityMiB: num('mem_capacity_mb') });
  }
  if (rows.length === 0) {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${file}: no VM rows`, { details: { file, line: 1 } });
  }
  return rows;
}

async function readTrace(file: string): Promise<Float64Array> {
  const text = await readFile(file, 'utf8').catch((e: unknown) => {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${file}: missing trace file`, { details: { file }, cause: e });
  });
  return parseTrace(text, file);
}
