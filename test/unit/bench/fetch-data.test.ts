import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { folderDigest } from '../../../bench/lib/bench-data.js';
import type { Dataset } from '../../../bench/lib/datasets.js';
import { fetchDataset } from '../../../bench/lib/fetch-data.js';

let dir = '';
let server: Server;
let tarballUrl = '';
let served = 0;

/** Two trace files, as a public tarball would hold them under its top-level folder. */
async function makeDay(root: string): Promise<string> {
  const day = join(root, 'cloudsim-x', 'workload', 'day1');
  await mkdir(day, { recursive: true });
  await writeFile(join(day, 'vm a'), '1\n2\n');
  await writeFile(join(day, 'vm-b'), '3\n4\n');
  return day;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'consolidator-bench-data-'));
  await makeDay(join(dir, 'src'));
  const tarball = join(dir, 'source.tar.gz');
  await promisify(execFile)('tar', ['-czf', tarball, '-C', join(dir, 'src'), 'cloudsim-x']);
  const bytes = await readFile(tarball);
  server = createServer((_req, res) => {
    served++;
    res.end(bytes);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  tarballUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/source.tar.gz`;
});

afterAll(async () => {
  await new Promise((ok) => server.close(ok));
  await rm(dir, { recursive: true, force: true });
});

describe('bench:data', () => {
  it('the folder digest is the one of sha256sum over the sorted file list (names with spaces too)', async () => {
    const day = join(dir, 'src', 'cloudsim-x', 'workload', 'day1');
    const { stdout } = await promisify(execFile)('bash', ['-c', `cd "${day}" && find . -type f -printf '%P\\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum`]);
    expect((await folderDigest(day)).digest).toBe(stdout.split(' ')[0]);
  });

  it('copies from a shared folder, downloads from the public source otherwise, and refuses a wrong digest', async () => {
    const day = join(dir, 'src', 'cloudsim-x', 'workload', 'day1');
    const { digest } = await folderDigest(day);
    const dataset: Dataset = { path: 'planetlab/day1', digest, files: 2, source: { kind: 'tarball', url: tarballUrl, inside: 'workload/day1' } };
    const shared = join(dir, 'shared');
    await mkdir(join(shared, 'planetlab'), { recursive: true });
    await promisify(execFile)('cp', ['-r', day, join(shared, 'planetlab', 'day1')]);

    expect(await fetchDataset(dataset, { target: join(dir, 'a'), from: shared })).toBe('copied');
    expect(await fetchDataset(dataset, { target: join(dir, 'a'), from: shared })).toBe('in place');
    expect(served).toBe(0);
    expect(await fetchDataset(dataset, { target: join(dir, 'b') })).toBe('downloaded');
    expect(served).toBe(1);
    expect(await readFile(join(dir, 'b', 'planetlab', 'day1', 'vm a'), 'utf8')).toBe('1\n2\n');
    await expect(fetchDataset(dataset, { target: join(dir, 'c'), offline: true })).rejects.toThrow(/--offline/);

    const wrong: Dataset = { ...dataset, digest: '0'.repeat(64) };
    await expect(fetchDataset(wrong, { target: join(dir, 'd'), from: shared })).rejects.toThrow(/is not the recorded 0{64}.*nothing was put in place/);
    await expect(readFile(join(dir, 'd', 'planetlab', 'day1', 'vm a'))).rejects.toThrow();
  });
});
