import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';

/** The repository's root (this file is bench/lib/bench-data.ts). */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..');

/** Where `npm run bench:data` puts the traces (gitignored). */
export const BENCH_DATA_DIR = join(REPO_ROOT, 'bench', 'data');

/** The environment variable that points the benchmarks at another data folder. */
export const DATA_ENV = 'CONSOLIDATOR_BENCH_DATA';

/**
 * The data folder the benchmarks read, laid out as ../shared/data is (planetlab/<day>,
 * bitbrains/<trace>): $CONSOLIDATOR_BENCH_DATA, else bench/data (made by `npm run bench:data`), else
 * the shared folder beside the repository (../shared/data). Throws with what to do when none exists.
 */
export function benchDataDir(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env[DATA_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  if (existsSync(BENCH_DATA_DIR)) return BENCH_DATA_DIR;
  const shared = sharedDataDir();
  if (shared !== undefined) return shared;
  throw new Error(`no benchmark data: run "npm run bench:data" (or set ${DATA_ENV}, or pass --data DIR)`);
}

/**
 * ../shared/data beside the repository, if it exists; in a git worktree (whose folder is elsewhere),
 * also beside the main checkout (found from the worktree's .git file).
 */
export function sharedDataDir(): string | undefined {
  const beside = join(REPO_ROOT, '..', 'shared', 'data');
  if (existsSync(beside)) return beside;
  const mainCheckout = mainCheckoutOfWorktree(REPO_ROOT);
  if (mainCheckout === undefined) return undefined;
  const besideMain = join(mainCheckout, '..', 'shared', 'data');
  return existsSync(besideMain) ? besideMain : undefined;
}

function mainCheckoutOfWorktree(root: string): string | undefined {
  try {
    // A worktree's .git is a file "gitdir: <main>/.git/worktrees/<name>".
    const dotGit = join(root, '.git');
    if (!statSync(dotGit).isFile()) return undefined;
    const match = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, 'utf8'));
    if (!match?.[1]) return undefined;
    const gitdir = resolve(root, match[1].trim());
    const worktrees = dirname(gitdir);
    return worktrees.endsWith(join('.git', 'worktrees')) ? dirname(dirname(worktrees)) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The digest of a folder: sha256 over the lines "<sha256 of the file>  <path>\n" of every file under
 * it, sorted by path (byte order). The same as
 *   cd DIR && find . -type f -printf '%P\0' | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum
 */
export async function folderDigest(dir: string): Promise<{ digest: string; files: number }> {
  const files = (await listFiles(dir)).map((f) => relative(dir, f)).sort(byteOrder);
  const outer = createHash('sha256');
  for (const file of files) {
    const inner = createHash('sha256').update(await readFile(join(dir, file))).digest('hex');
    outer.update(`${inner}  ${file}\n`);
  }
  return { digest: outer.digest('hex'), files: files.length };
}

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
