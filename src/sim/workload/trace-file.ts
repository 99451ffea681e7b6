import { readFile, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { ConsolidatorError, errorMessage } from '../../errors.js';
import { gridLength, type Workload, type WorkloadVm } from './workload.js';

/**
 * The consolidator trace file: the general trace format `simulate` replays, one text file (gzip'd
 * when its name ends in .gz), one line per VM so that it reads fast:
 *
 *   #consolidator-trace v1
 *   #sample_seconds 300
 *   vm,vcpus,memory_mib,start,cpu_pct,memory_pct
 *   web-1,4,8192,0,12.5 13 14.25,50 50 51
 *   batch-7,,,2,80 95,
 *
 * `start` is the grid index of the VM's first sample (it appears at start x sample_seconds) and the VM
 * leaves after its last one; `cpu_pct` and `memory_pct` are space-separated percents of the VM's own
 * vCPUs and memory, one per sample; an empty `memory_pct` means all of its memory is in use; an empty
 * `vcpus` or `memory_mib` leaves the size to the simulation setup (PlanetLab gives none). Lines that
 * start with `#` before the column line are header lines (`#name value`); unknown ones are ignored.
 * VM names must not contain a comma.
 */
export const TRACE_FILE_MAGIC = '#consolidator-trace v1';
const COLUMNS = 'vm,vcpus,memory_mib,start,cpu_pct,memory_pct';
const FIELDS = 6;
/** Percents are written with at most this many decimals (the shared traces are whole numbers). */
const DECIMALS = 1000;

export async function readTraceFile(file: string): Promise<Workload> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = await promisify(gunzip)(bytes);
  } catch (e) {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${file}: cannot read the trace file: ${errorMessage(e)}`, { details: { file }, cause: e });
  }
  return parseTraceFile(bytes.toString('utf8'), file);
}

export function parseTraceFile(text: string, file: string): Workload {
  const lines = text.split('\n');
  const fail = (line: number, message: string): never => {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${file}:${line}: ${message}`, { details: { file, line } });
  };
  if ((lines[0] ?? '').replace(/\r$/, '') !== TRACE_FILE_MAGIC) fail(1, `expected ${JSON.stringify(TRACE_FILE_MAGIC)} (a consolidator trace file)`);
  let sampleSeconds: number | undefined;
  let i = 1;
  for (; i < lines.length && (lines[i] ?? '').startsWith('#'); i++) {
    const [name, value] = (lines[i] ?? '').slice(1).trim().split(/\s+/);
    if (name === 'sample_seconds') {
      const n = Number(value);
      if (!(Number.isFinite(n) && n > 0)) fail(i + 1, `sample_seconds must be a positive number, found ${JSON.stringify(value)}`);
      sampleSeconds = n;
    }
  }
  if (sampleSeconds === undefined) fail(i, 'missing header line "#sample_seconds N"');
  if ((lines[i] ?? '').replace(/\r$/, '') !== COLUMNS) fail(i + 1, `expected the column line ${JSON.stringify(COLUMNS)}`);
  const vms: WorkloadVm[] = [];
  const names = new Set<string>();
  for (i++; i < lines.length; i++) {
    const raw = (lines[i] ?? '').replace(/\r$/, '');
    if (raw === '') continue;
    const line = i + 1;
    const cells = raw.split(',');
    if (cells.length !== FIELDS) fail(line, `expected ${FIELDS} fields (${COLUMNS}), found ${cells.length}`);
    const [name = '', vcpus = '', memory = '', start = '', cpu = '', mem = ''] = cells;
    if (name === '' || names.has(name)) fail(line, name === '' ? 'empty vm name' : `duplicate vm ${JSON.stringify(name)}`);
    names.add(name);
    const size = (value: string, column: string): number | undefined => {
      if (value === '') return undefined;
      const n = Number(value);
      if (!(Number.isFinite(n) && n >= 0)) fail(line, `column ${column}: expected a non-negative number, found ${JSON.stringify(value)}`);
      return n;
    };
    const startSample = Number(start);
    if (!(Number.isInteger(startSample) && startSample >= 0)) fail(line, `column start: expected a whole number >= 0, found ${JSON.stringify(start)}`);
    const cpuPercent = parseSeries(cpu, () => fail(line, 'column cpu_pct: expected space-separated non-negative numbers'));
    if (cpuPercent.length === 0) fail(line, 'column cpu_pct: no samples');
    const memoryPercent = mem === '' ? undefined : parseSeries(mem, () => fail(line, 'column memory_pct: expected space-separated non-negative numbers'));
    if (memoryPercent !== undefined && memoryPercent.length !== cpuPercent.length) {
      fail(line, `column memory_pct: ${memoryPercent.length} samples, cpu_pct has ${cpuPercent.length}`);
    }
    const cores = size(vcpus, 'vcpus');
    const memoryCapacityMiB = size(memory, 'memory_mib');
    vms.push({
      name,
      cpuPercent,
      ...(memoryPercent === undefined ? {} : { memoryPercent }),
      ...(cores === undefined ? {} : { cores }),
      ...(memoryCapacityMiB === undefined ? {} : { memoryCapacityMiB }),
      ...(startSample === 0 ? {} : { startSample }),
    });
  }
  if (vms.length === 0) fail(lines.length, 'no VM lines');
  return { format: 'trace', dir: file, sampleSeconds: sampleSeconds as number, samples: gridLength(vms), vms };
}

/** Space-separated numbers, parsed without a regex per value (a week of 1,000 VMs is 2 million of them). */
function parseSeries(text: string, bad: () => never): Float64Array {
  const parts = text.split(' ');
  const out = new Float64Array(parts.length);
  for (let k = 0; k < parts.length; k++) {
    const part = parts[k] ?? '';
    const n = part === '' ? NaN : Number(part);
    if (!(n >= 0) || n === Infinity) bad();
    out[k] = n;
  }
  return out;
}

/** The trace file's text for a workload (any source). */
export function formatTraceFile(workload: Pick<Workload, 'sampleSeconds' | 'vms'>, header: Readonly<Record<string, string>> = {}): string {
  const out: string[] = [TRACE_FILE_MAGIC, `#sample_seconds ${workload.sampleSeconds}`];
  for (const [name, value] of Object.entries(header)) out.push(`#${name} ${value.replace(/\s+/g, ' ')}`);
  out.push(COLUMNS);
  for (const vm of workload.vms) {
    if (vm.name.includes(',') || vm.name.includes('\n')) {
      throw new ConsolidatorError('USAGE', `VM name ${JSON.stringify(vm.name)} cannot be written to a trace file (comma or newline)`);
    }
    const series = (values: Float64Array): string => Array.from(values, (v) => String(Math.round(v * DECIMALS) / DECIMALS)).join(' ');
    out.push(
      [
        vm.name,
        vm.cores === undefined ? '' : String(vm.cores),
        vm.memoryCapacityMiB === undefined ? '' : String(vm.memoryCapacityMiB),
        String(vm.startSample ?? 0),
        series(vm.cpuPercent),
        vm.memoryPercent === undefined ? '' : series(vm.memoryPercent),
      ].join(','),
    );
  }
  return `${out.join('\n')}\n`;
}

/** Writes a workload as a trace file, gzip'd when the name ends in .gz. */
export async function writeTraceFile(file: string, workload: Pick<Workload, 'sampleSeconds' | 'vms'>, header: Readonly<Record<string, string>> = {}): Promise<void> {
  const text = formatTraceFile(workload, header);
  await writeFile(file, file.endsWith('.gz') ? await promisify(gzip)(text) : text);
}
