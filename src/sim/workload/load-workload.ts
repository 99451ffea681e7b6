import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsolidatorError } from '../../errors.js';
import { loadBitbrainsWorkload } from './load-bitbrains.js';
import { loadPlanetLabWorkload } from './load-planetlab.js';
import type { Workload, WorkloadFormat } from './workload.js';

/** Loads a workload folder, detecting its format (see detectWorkloadFormat). */
export async function loadWorkload(dir: string): Promise<Workload> {
  const format = await detectWorkloadFormat(dir);
  return format === 'bitbrains' ? loadBitbrainsWorkload(dir) : loadPlanetLabWorkload(dir);
}

/**
 * Bitbrains when the folder has `vms.csv`, `cpu/` or `mem/`; PlanetLab when it holds plain files.
 * A missing or empty folder is WORKLOAD_INVALID.
 */
export async function detectWorkloadFormat(dir: string): Promise<WorkloadFormat> {
  const info = await stat(dir).catch((e: unknown) => {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${dir}: no such workload folder`, { details: { file: dir }, cause: e });
  });
  if (!info.isDirectory()) {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${dir}: not a folder`, { details: { file: dir } });
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
