import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsolidatorError } from '../../errors.js';
import { parseTrace } from './parse-trace.js';
import { gridLength, TRACE_SAMPLE_SECONDS, type Workload, type WorkloadVm } from './workload.js';

/**
 * A PlanetLab trace: one file per VM, one integer CPU percent per line every 300 s (288 lines for
 * one of the shared days; any length is read, and a shorter file is a VM that leaves earlier). Files are sorted by name
 * (UTF-16 code unit order, as java.io.File sorts them), which fixes the VM types of the reference
 * setup; dot files are ignored.
 */
export async function loadPlanetLabWorkload(dir: string): Promise<Workload> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort(compareCodeUnits);
  if (names.length === 0) {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${dir}: empty folder, expected one trace file per VM`, {
      details: { file: dir },
    });
  }
  const vms = await Promise.all(
    names.map(async (name): Promise<WorkloadVm> => {
      const file = join(dir, name);
      const text = await readFile(file, 'utf8');
      return { name, cpuPercent: parseTrace(text, file) };
    }),
  );
  return { format: 'planetlab', dir, sampleSeconds: TRACE_SAMPLE_SECONDS, samples: gridLength(vms), vms };
}

export function compareCodeUnits(a: string, b: string): number {
  if (a < b) return -1;
  return a > b ? 1 : 0;
}
