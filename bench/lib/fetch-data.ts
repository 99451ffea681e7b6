import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { folderDigest } from './bench-data.js';
import type { Dataset } from './datasets.js';
import { stitchDays } from './stitch-days.js';

export type Origin = 'in place' | 'copied' | 'downloaded' | 'stitched';

export interface FetchOptions {
  /** The data folder to fill (bench/data). */
  readonly target: string;
  /** A folder laid out as ../shared/data to copy from, if any. */
  readonly from?: string;
  /** Never download (a copy or nothing). */
  readonly offline?: boolean;
  readonly log?: (line: string) => void;
}

/**
 * Puts one dataset in place under `target` and checks its digest: nothing to do when it is there
 * already and right; else a copy from `from`, else (for the stitched week) made from its day, else a
 * download of its public source. A digest that does not match is an error naming both digests, and
 * nothing is left in place.
 */
export async function fetchDataset(dataset: Dataset, options: FetchOptions): Promise<Origin> {
  const dest = join(options.target, dataset.path);
  if (existsSync(dest) && (await folderDigest(dest)).digest === dataset.digest) return 'in place';
  await rm(dest, { recursive: true, force: true });
  await mkdir(dirname(dest), { recursive: true });
  const staging = `${dest}.partial`;
  await rm(staging, { recursive: true, force: true });
  let origin: Origin;
  const copy = options.from === undefined ? undefined : join(options.from, dataset.path);
  if (copy !== undefined && existsSync(copy)) {
    await cp(copy, staging, { recursive: true });
    origin = 'copied';
  } else if (dataset.source.kind === 'stitched') {
    await stitchDays(join(options.target, dataset.source.from), staging, dataset.source.days);
    origin = 'stitched';
  } else if (dataset.source.kind === 'tarball') {
    if (options.offline) throw new Error(`${dataset.path}: not in ${options.from ?? '(no copy)'} and --offline forbids the download`);
    options.log?.(`${dataset.path}: downloading ${dataset.source.url}`);
    await extractFromTarball(dataset.source.url, dataset.source.inside, staging);
    origin = 'downloaded';
  } else {
    throw new Error(`${dataset.path}: no copy at hand (${options.from ?? 'no ../shared/data'}) and no public download: ${dataset.source.why}`);
  }
  const { digest, files } = await folderDigest(staging);
  if (digest !== dataset.digest) {
    await rm(staging, { recursive: true, force: true });
    throw new Error(`${dataset.path}: sha256 digest ${digest} (${files} files) is not the recorded ${dataset.digest} (${dataset.files} files); nothing was put in place`);
  }
  await rename(staging, dest);
  return origin;
}

/** Tarballs are cached per URL for one run: the three PlanetLab days come from one. */
const downloaded = new Map<string, Promise<string>>();

async function extractFromTarball(url: string, inside: string, dest: string): Promise<void> {
  let pending = downloaded.get(url);
  if (pending === undefined) {
    pending = download(url);
    downloaded.set(url, pending);
  }
  const tarball = await pending;
  const work = await mkdtemp(join(tmpdir(), 'consolidator-bench-data-'));
  try {
    // The tarball's single top-level folder is named after the tag; take the folder under it.
    await promisify(execFile)('tar', ['-xzf', tarball, '-C', work, '--wildcards', `*/${inside}/*`], { maxBuffer: 1 << 20 });
    const [top] = await readdir(work);
    if (top === undefined) throw new Error(`${url}: ${inside} not in the tarball`);
    await rename(join(work, top, inside), dest);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function download(url: string): Promise<string> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const dir = await mkdtemp(join(tmpdir(), 'consolidator-download-'));
  const file = join(dir, 'source.tar.gz');
  await writeFile(file, Buffer.from(await response.arrayBuffer()));
  return file;
}
