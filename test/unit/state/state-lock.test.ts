import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCK_FILE_NAME, StateLock } from '../../../src/state/state-lock.js';
import { thrown } from '../../helpers/thrown.js';

const CONTENDER = join(import.meta.dirname, 'lock-contender.ts');
const CONTENDERS = 4;
const ROUNDS = 200;

/** A pid that belonged to a process which has exited (the owner of a stale lock). */
function deadPid(): number {
  const child = spawnSync('true');
  return child.pid as number;
}

function bootId(): string {
  return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
}

function startTicks(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] as string;
}

interface Contender {
  readonly child: ChildProcessWithoutNullStreams;
  readonly answers: Map<string, (answer: string) => void>;
}

function startContender(): Promise<Contender> {
  const child = spawn(process.execPath, ['--import', 'tsx', CONTENDER], { stdio: ['pipe', 'pipe', 'pipe'] });
  const answers = new Map<string, (answer: string) => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    const [dir, ...answer] = line.split(' ');
    answers.get(dir ?? '')?.(answer.join(' '));
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('exit', (code) => {
    if (code !== 0) console.error(`lock contender exited with ${code}: ${stderr}`);
  });
  // Ready once its module graph is loaded: an empty round trip.
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdin.write('\n', () => resolve({ child, answers }));
  });
}

describe('StateLock', () => {
  let base: string;
  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'consolidator-lock-'));
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  function lockIn(name: string): { dir: string; file: string } {
    const dir = join(base, name);
    mkdirSync(dir, { recursive: true });
    return { dir, file: join(dir, LOCK_FILE_NAME) };
  }

  it('is held by one process: another is refused with the holder named, and takes it once released', async () => {
    const { dir } = lockIn('simple');
    const holder = new StateLock(dir);
    await holder.acquire();
    // Seen from another process (another pid): this one is alive and holds it.
    const error = await thrown(new StateLock(dir, deadPid()).acquire());
    expect(error.code).toBe('STATE_IO');
    expect(error.message).toContain(`another consolidator (pid ${process.pid}) holds`);
    await holder.release();
    const other = new StateLock(dir, deadPid());
    await other.acquire();
    await other.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('writes the lock whole: the pid first, then who it is', async () => {
    const { dir, file } = lockIn('content');
    const lock = new StateLock(dir);
    await lock.acquire();
    const [pid, boot, start, token] = readFileSync(file, 'utf8').trim().split('\n');
    expect(pid).toBe(String(process.pid));
    expect(boot).toMatch(/^boot [0-9a-f-]{36}$/);
    expect(start).toMatch(/^start \d+$/);
    expect(token).toMatch(/^token [0-9a-f-]{36}$/);
    expect(readdirSync(dir)).toEqual([LOCK_FILE_NAME]);
    await lock.release();
  });

  it.each([
    ['its owner exited', () => `${deadPid()}\n`],
    ['it is empty (written by a process that died before writing it whole)', () => ''],
    ['its pid now belongs to another process (pid reuse)', () => `${process.ppid}\nboot ${bootId()}\nstart 1\ntoken t\n`],
    ['it was written before a reboot', () => `${process.ppid}\nboot 00000000-0000-0000-0000-000000000000\nstart ${startTicks(process.ppid)}\ntoken t\n`],
  ])('takes over a lock when %s', async (_why, content) => {
    const { dir, file } = lockIn(`stale-${Math.random()}`);
    writeFileSync(file, content());
    const lock = new StateLock(dir);
    await lock.acquire();
    expect(readFileSync(file, 'utf8').split('\n')[0]).toBe(String(process.pid));
    await lock.release();
    expect(readdirSync(dir)).toEqual([]);
  });

  it.each([
    ['an older consolidator, by pid alone', () => `${process.ppid}\n`],
    ['a running process, by pid, boot and start time', () => `${process.ppid}\nboot ${bootId()}\nstart ${startTicks(process.ppid)}\ntoken t\n`],
  ])('leaves alone a lock held by %s', async (_who, content) => {
    const { dir, file } = lockIn(`held-${Math.random()}`);
    writeFileSync(file, content());
    const error = await thrown(new StateLock(dir).acquire());
    expect(error.message).toContain(`pid ${process.ppid}`);
    expect(readFileSync(file, 'utf8')).toBe(content());
  });

  it('takes over a stale lock whose takeover crashed half way, and cleans up what the crash left', async () => {
    const { dir, file } = lockIn('crashed-takeover');
    const stale = `${deadPid()}\n`;
    writeFileSync(file, stale);
    const claimant = `${deadPid()}\ntoken c\n`;
    const claim = `${file}.takeover-${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`;
    writeFileSync(claim, claimant);
    writeFileSync(`${file}.new-c`, claimant);
    const lock = new StateLock(dir);
    await lock.acquire();
    expect(readdirSync(dir)).toEqual([LOCK_FILE_NAME]);
    await lock.release();
  });

  it('refuses while a live process is taking over the stale lock', async () => {
    const { dir, file } = lockIn('live-takeover');
    const stale = `${deadPid()}\n`;
    writeFileSync(file, stale);
    writeFileSync(`${file}.takeover-${createHash('sha256').update(stale).digest('hex').slice(0, 16)}`, `${process.ppid}\n`);
    const error = await thrown(new StateLock(dir).acquire());
    expect(error.message).toContain(`another consolidator (pid ${process.ppid}) is taking over`);
    expect(readFileSync(file, 'utf8')).toBe(stale);
  });

  it('release leaves a lock that is no longer its own', async () => {
    const { dir, file } = lockIn('not-mine');
    const lock = new StateLock(dir);
    await lock.acquire();
    writeFileSync(file, `${process.ppid}\n`);
    await lock.release();
    expect(readFileSync(file, 'utf8')).toBe(`${process.ppid}\n`);
  });

  it(
    `has exactly one winner when ${CONTENDERS} processes race for a stale lock, ${ROUNDS} rounds`,
    async () => {
      const contenders = await Promise.all(Array.from({ length: CONTENDERS }, startContender));
      try {
        const stale = deadPid();
        const badRounds: string[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          const dir = join(base, `race-${round}`);
          // A stale lock: its owner has exited.
          mkdirSync(dir, { recursive: true });
          writeFileSync(join(dir, LOCK_FILE_NAME), `${stale}\n`);
          const startAtMs = performance.timeOrigin + performance.now() + 8;
          const results = await Promise.all(
            contenders.map(
              (c) =>
                new Promise<string>((resolve) => {
                  c.answers.set(dir, resolve);
                  c.child.stdin.write(`go ${dir} ${startAtMs}\n`);
                }),
            ),
          );
          const winners = results.filter((r) => r === 'won').length;
          if (winners !== 1) badRounds.push(`round ${round}: ${results.join(', ')}`);
        }
        expect(badRounds).toEqual([]);
        // Nothing left but the winner's lock: no private file, no claim.
        for (let round = 0; round < ROUNDS; round++) expect(readdirSync(join(base, `race-${round}`))).toEqual([LOCK_FILE_NAME]);
      } finally {
        for (const c of contenders) c.child.stdin.end();
      }
    },
    120_000,
  );
});
