import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsolidatorError } from '../../errors.js';
import { loadBitbrainsWorkload } from './load-bitbrains.js';
import { loadPlanetLabWorkload } from './load-planetlab.js';
import { readTraceFile } from './trace-file.js';
import type { Workload, WorkloadFormat } from './workload.js';

/** Loads a workload folder or trace file, detecting its format (see detectWorkloadFormat). */
export async function loadWorkload(path: string): Promise<Workload> {
  const format = await detectWorkloadFormat(path);
  if (format === 'trace') return readTraceFile(path);
  return format === 'bitbrains' ? loadBitbrainsWorkload(path) : loadPlanetLabWorkload(path);
}

/**
 * A file is a consolidator trace file (trace-file.ts); a folder is Bitbrains when it has `vms.csv`,
 * `cpu/` or `mem/`, PlanetLab when it holds plain files. A missing path or an empty folder is
 * WORKLOAD_INVALID.
 */
export async function detectWorkloadFormat(dir: string): Promise<WorkloadFormat> {
  const info = await stat(dir).catch((e: unknown) => {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${dir}: no such workload folder or trace file`, { details: { file: dir }, cause: e });
  });
  if (info.isFile()) return 'trace';
  if (!info.isDirectory()) {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${dir}: not a folder or a trace file`, { details: { file: dir } });
  }
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => !e.name.startsWith('.'));
  const names = new Set(entries.map((e) => e.name));
  if (names.has('vms.csv') || names.has('cpu') || names.has('mem')) return 'bitbrains';
  if (entries.some((e) => e.isFile())) return 'planetlab';
  const sub = entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  const hint = sub.length > 0 ? ` (it has sub-folders: did you mean ${sub.slice(0, 3).join(', ')}?)` : '';
  throw new ConsolidatorError('WORKLOAD_INVALID', `${dir}: empty folder, no trace files${hint}`, {
    details: { file: dir },
  });
}
