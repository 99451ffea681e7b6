/**
 * Puts the public traces the benchmarks read in bench/data (gitignored), each checked against its
 * recorded sha256 digest (bench/lib/datasets.ts):
 *
 *   npm run bench:data                  copy from ../shared/data when it exists, else download
 *   npm run bench:data -- --from DIR    copy from DIR (laid out as ../shared/data)
 *   npm run bench:data -- --offline     never download
 *
 * The PlanetLab days download from CloudSim's repository (tag cloudsim-3.0.3); the 7-day Bitbrains
 * trace is made from the 1-day one (each VM's day repeated 7 times, bench/lib/stitch-days.ts); the
 * 1-day Bitbrains trace has no scripted public source (bench/README.md says why). Exit 1 if any
 * dataset could not be put in place.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { BENCH_DATA_DIR, sharedDataDir } from './lib/bench-data.js';
import { DATASETS, SHARED_EXTRAS } from './lib/datasets.js';
import { fetchDataset } from './lib/fetch-data.js';

const { values } = parseArgs({
  options: {
    from: { type: 'string' },
    offline: { type: 'boolean', default: false },
    target: { type: 'string', default: BENCH_DATA_DIR },
  },
});
const from = values.from === undefined ? sharedDataDir() : resolve(values.from);
const target = resolve(values.target ?? BENCH_DATA_DIR);
console.log(`data folder: ${target}${from === undefined ? ' (no ../shared/data: downloading what has a public source)' : ` (copies from ${from})`}`);
let failed = 0;
for (const dataset of DATASETS) {
  try {
    const origin = await fetchDataset(dataset, { target, ...(from === undefined ? {} : { from }), offline: values.offline ?? false, log: (l) => console.log(l) });
    console.log(`ok    ${dataset.path}: ${origin}, ${dataset.files} files, sha256 ${dataset.digest.slice(0, 16)}...`);
  } catch (e) {
    failed++;
    console.log(`FAIL  ${(e as Error).message}`);
  }
}
if (from !== undefined) {
  for (const extra of SHARED_EXTRAS) {
    if (!existsSync(join(from, extra))) continue;
    await mkdir(dirname(join(target, extra)), { recursive: true });
    await copyFile(join(from, extra), join(target, extra));
  }
}
console.log(failed === 0 ? 'all datasets in place' : `${failed} dataset(s) missing`);
process.exitCode = failed === 0 ? 0 : 1;
