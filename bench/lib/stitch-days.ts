import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Makes an n-day Bitbrains trace from a one-day one, in the same layout (vms.csv, cpu/<vm>,
 * mem/<vm>): each VM's trace is its one-day trace repeated n times (288 x n samples: 2016 for a
 * week). Deterministic, and honest about what it is: the same day, n times; the days join at
 * midnight where the last sample of the day meets the first. vms.csv is copied as it is (its
 * summary statistics are those of the one day, which are also those of the repetition).
 */
export async function stitchDays(sourceDir: string, outDir: string, days: number): Promise<{ vms: number; samplesPerVm: number }> {
  if (!Number.isInteger(days) || days < 1) throw new Error(`days must be a whole number >= 1, got ${days}`);
  await mkdir(join(outDir, 'cpu'), { recursive: true });
  await mkdir(join(outDir, 'mem'), { recursive: true });
  await copyFile(join(sourceDir, 'vms.csv'), join(outDir, 'vms.csv'));
  let vms = 0;
  let samplesPerVm = 0;
  for (const kind of ['cpu', 'mem'] as const) {
    const names = (await readdir(join(sourceDir, kind))).filter((n) => !n.startsWith('.')).sort();
    for (const name of names) {
      const text = await readFile(join(sourceDir, kind, name), 'utf8');
      const day = text.endsWith('\n') ? text : `${text}\n`;
      await writeFile(join(outDir, kind, name), day.repeat(days));
      if (kind === 'cpu') {
        vms++;
        samplesPerVm = (day.match(/\n/g)?.length ?? 0) * days;
      }
    }
  }
  return { vms, samplesPerVm };
}
