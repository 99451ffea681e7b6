import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ConsolidatorError, errorMessage } from '../errors.js';

export const LOCK_FILE_NAME = 'consolidator.lock';

/**
 * One actor per state directory: the daemon holds this lock while it runs, and an operator command
 * working without a daemon takes it for the duration of its work, so two consolidators never act on
 * the same hosts. A lock left by a process that no longer exists is taken over.
 */
export class StateLock {
  private held = false;

  constructor(
    private readonly directory: string,
    private readonly pid: number = process.pid,
  ) {}

  get file(): string {
    return join(this.directory, LOCK_FILE_NAME);
  }

  async acquire(): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: 0o750 });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(this.file, 'wx', 0o600);
        await handle.writeFile(`${this.pid}\n`);
        await handle.close();
        this.held = true;
        return;
      } catch (e) {
        if ((e as { code?: string }).code !== 'EEXIST') {
          throw new ConsolidatorError('STATE_IO', `cannot create the lock ${this.file}: ${errorMessage(e)}`, { cause: e });
        }
        const owner = Number((await readFile(this.file, 'utf8').catch(() => '')).trim());
        if (Number.isInteger(owner) && owner > 0 && owner !== this.pid && isAlive(owner)) {
          throw new ConsolidatorError('STATE_IO', `another consolidator (pid ${owner}) holds ${this.file}: stop it, or send the command to it`, {
            details: { pid: owner, file: this.file },
          });
        }
        await rm(this.file, { force: true });
      }
    }
    throw new ConsolidatorError('STATE_IO', `cannot take the lock ${this.file}`);
  }

  async release(): Promise<void> {
    if (!this.held) return;
    this.held = false;
    await rm(this.file, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}
