import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsolidatorError, errorMessage } from '../errors.js';

export const LOCK_FILE_NAME = 'consolidator.lock';

/** Rounds of "create, find it taken, take over a stale one" before giving up (each round makes progress unless someone else does). */
const MAX_ROUNDS = 8;
/** A crashed takeover leaves a claim, taken over in turn; deeper than this is not a crash, it is a bug. */
const MAX_CLAIM_DEPTH = 4;

/** Who holds a lock file: the process, the boot it ran in and when it started (so a reused pid is not mistaken for it). */
interface LockOwner {
  readonly pid: number;
  readonly bootId?: string;
  readonly startTicks?: string;
}

/**
 * One actor per state directory: the daemon holds this lock while it runs, and an operator command
 * working without a daemon takes it for the duration of its work, so two consolidators never act on
 * the same hosts. A lock left by a process that no longer exists is taken over.
 *
 * Every step is atomic, so however contenders interleave exactly one holds the lock:
 * - a lock file appears whole: it is written under a private name and hard-linked into place, and
 *   link(2) fails when the name exists (a half-written lock read as "no owner" was taken over);
 * - a stale lock is removed only by the one contender that claimed it: the claim is a hard link named
 *   after a hash of the stale file's content, and every lock carries a random token, so a claim
 *   names one lock file ever written. The claimant re-reads the lock before removing it (nobody else
 *   may remove that content meanwhile), then competes with link(2) like anyone else;
 * - a contender that finds a live claimant stops: the lock is being taken by another consolidator;
 * - a claimant that died leaves a claim that is itself stale, taken over the same way.
 * The owner records its boot id and start time, so neither a reboot nor a reused pid makes a stale
 * lock look held. (A lock written without them, by an older consolidator, is judged by its pid.)
 */
export class StateLock {
  private held: string | undefined;

  constructor(
    private readonly directory: string,
    private readonly pid: number = process.pid,
  ) {}

  get file(): string {
    return join(this.directory, LOCK_FILE_NAME);
  }

  async acquire(): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o750 });
    const token = randomUUID();
    const content = formatOwner({ pid: this.pid, ...processIdentity(this.pid) }, token);
    const mine = `${this.file}.new-${token}`;
    await this.io(`cannot create the lock ${this.file}`, async () => {
      const handle = await open(mine, 'wx', 0o600);
      try {
        await handle.writeFile(content);
      } finally {
        await handle.close();
      }
    });
    try {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        if (await this.linkIfAbsent(mine, this.file)) {
          this.held = content;
          await this.sweep();
          return;
        }
        const seen = await readIfPresent(this.file);
        if (seen === undefined) continue; // released meanwhile
        const owner = parseOwner(seen);
        if (owner !== undefined && owner.pid !== this.pid && isAlive(owner)) {
          throw new ConsolidatorError('STATE_IO', `another consolidator (pid ${owner.pid}) holds ${this.file}: stop it, or send the command to it`, {
            details: { pid: owner.pid, file: this.file },
          });
        }
        await this.takeOver(this.file, seen, mine, 0);
      }
      throw new ConsolidatorError('STATE_IO', `cannot take the lock ${this.file}: it kept changing hands`, { details: { file: this.file } });
    } finally {
      await rm(mine, { force: true });
    }
  }

  async release(): Promise<void> {
    const content = this.held;
    if (content === undefined) return;
    this.held = undefined;
    // Only our own lock: one taken over from us (we looked dead) belongs to its new holder now.
    if ((await readIfPresent(this.file)) === content) await rm(this.file, { force: true });
  }

  /**
   * Removes `target` if it still holds `seen`, as the only contender allowed to: the one whose link
   * to `claimOf(target, seen)` succeeded. Returns when the caller should try again.
   */
  private async takeOver(target: string, seen: string, mine: string, depth: number): Promise<void> {
    const claim = `${target}.takeover-${createHash('sha256').update(seen).digest('hex').slice(0, 16)}`;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (await this.linkIfAbsent(mine, claim)) {
        try {
          if ((await readIfPresent(target)) === seen) await rm(target, { force: true });
        } finally {
          await rm(claim, { force: true });
        }
        return;
      }
      const claimant = await readIfPresent(claim);
      if (claimant === undefined) continue; // finished meanwhile: claim again, then find the lock changed
      const owner = parseOwner(claimant);
      if (owner !== undefined && isAlive(owner)) {
        throw new ConsolidatorError('STATE_IO', `another consolidator (pid ${owner.pid}) is taking over the stale lock ${this.file}`, {
          details: { pid: owner.pid, file: this.file },
        });
      }
      if (depth >= MAX_CLAIM_DEPTH) break;
      await this.takeOver(claim, claimant, mine, depth + 1);
    }
    throw new ConsolidatorError('STATE_IO', `cannot take over the stale lock ${this.file}: claims on it kept changing hands`, { details: { file: this.file } });
  }

  /** Leftovers of contenders that died half way (a private lock file, a claim), once we hold the lock. */
  private async sweep(): Promise<void> {
    const names = await readdir(this.directory).catch(() => [] as string[]);
    for (const name of names) {
      if (!name.startsWith(`${LOCK_FILE_NAME}.`)) continue;
      const path = join(this.directory, name);
      const content = await readIfPresent(path);
      const owner = content === undefined ? undefined : parseOwner(content);
      // No owner yet is a private file being written (open, then write): not litter.
      if (content === undefined || owner === undefined || isAlive(owner)) continue;
      // A dead process's private file is linked by nobody; its claim is removed as any stale file is.
      if (!name.includes('.takeover-')) await rm(path, { force: true });
      else await this.takeOverQuietly(path, content);
    }
  }

  private async takeOverQuietly(path: string, content: string): Promise<void> {
    const token = randomUUID();
    const mine = `${this.file}.new-${token}`;
    try {
      await this.io(`cannot clean up ${path}`, async () => {
        const handle = await open(mine, 'wx', 0o600);
        try {
          await handle.writeFile(formatOwner({ pid: this.pid, ...processIdentity(this.pid) }, token));
        } finally {
          await handle.close();
        }
      });
      await this.takeOver(path, content, mine, 1);
    } catch {
      // Litter only: it cannot stop anyone from taking the lock, and the next holder tries again.
    } finally {
      await rm(mine, { force: true });
    }
  }

  /** link(2): true when `to` was created, false when it existed. */
  private async linkIfAbsent(from: string, to: string): Promise<boolean> {
    try {
      await link(from, to);
      return true;
    } catch (e) {
      if ((e as { code?: string }).code === 'EEXIST') return false;
      throw new ConsolidatorError('STATE_IO', `cannot create the lock ${to}: ${errorMessage(e)}`, { cause: e, details: { file: to } });
    }
  }

  private async io(message: string, run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (e) {
      throw new ConsolidatorError('STATE_IO', `${message}: ${errorMessage(e)}`, { cause: e, details: { file: this.file } });
    }
  }
}

async function readIfPresent(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return undefined;
    throw new ConsolidatorError('STATE_IO', `cannot read the lock ${file}: ${errorMessage(e)}`, { cause: e, details: { file } });
  }
}

/** The pid alone on the first line (what an operator reads, and all an older consolidator wrote), then `key value` lines. */
function formatOwner(owner: LockOwner, token: string): string {
  const lines = [`${owner.pid}`];
  if (owner.bootId !== undefined) lines.push(`boot ${owner.bootId}`);
  if (owner.startTicks !== undefined) lines.push(`start ${owner.startTicks}`);
  lines.push(`token ${token}`);
  return `${lines.join('\n')}\n`;
}

/** The owner a lock file names; undefined when it names none (empty or garbage: nobody holds it). */
function parseOwner(content: string): LockOwner | undefined {
  const [first, ...rest] = content.split('\n');
  const pid = Number((first ?? '').trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const fields = new Map(rest.map((line) => [line.slice(0, line.indexOf(' ')), line.slice(line.indexOf(' ') + 1)] as const));
  const bootId = fields.get('boot');
  const startTicks = fields.get('start');
  return { pid, ...(bootId !== undefined ? { bootId } : {}), ...(startTicks !== undefined ? { startTicks } : {}) };
}

/** Boot id and start time of a process, where the system tells them (Linux /proc); empty elsewhere. */
function processIdentity(pid: number): { bootId?: string; startTicks?: string } {
  const bootId = readBootId();
  const startTicks = readStartTicks(pid);
  return { ...(bootId !== undefined ? { bootId } : {}), ...(startTicks !== undefined ? { startTicks } : {}) };
}

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot); the name before it may hold spaces and parentheses. */
function readStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote a lock still runs: its pid exists and, where recorded, it is the same boot and the same process. */
function isAlive(owner: LockOwner): boolean {
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    if ((e as { code?: string }).code !== 'EPERM') return false;
  }
  if (owner.bootId !== undefined) {
    const bootId = readBootId();
    if (bootId !== undefined && bootId !== owner.bootId) return false;
  }
  if (owner.startTicks !== undefined) {
    const startTicks = readStartTicks(owner.pid);
    if (startTicks !== undefined && startTicks !== owner.startTicks) return false;
  }
  return true;
}
