import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { dirname, join } from 'node:path';
import { ConsolidatorError, errorMessage } from '../errors.js';
import { emptyState, parsePersistedState, type PersistedState } from './persisted-state.js';
import type { LoadedState, StateStore } from './state-store.js';

export const STATE_FILE_NAME = 'state.json';

/**
 * The state as one JSON file in the state directory. Saves are atomic: write a temporary file, fsync
 * it, rename it over the old one, fsync the directory; a crash leaves either the old or the new file,
 * never half of one. A corrupt file is moved aside (state.json.corrupt-TIME) and the state rebuilt.
 */
export class JsonFileStateStore implements StateStore {
  readonly file: string;
  /** Saves run one after another: two renames racing could put an older state last. */
  private queue: Promise<void> = Promise.resolve();
  private sequence = 0;
  /** Two stores on one file in one process (a restart in tests) never share a temporary file. */
  private readonly instance = randomUUID().slice(0, 8);

  constructor(
    directory: string,
    private readonly nowMs: () => number = Date.now,
  ) {
    this.file = join(directory, STATE_FILE_NAME);
  }

  async load(): Promise<LoadedState> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return { state: emptyState(), fresh: true };
      return { state: emptyState(), problem: `cannot read ${this.file} (${errorMessage(e)}): starting afresh` };
    }
    try {
      return { state: parsePersistedState(JSON.parse(text) as unknown) };
    } catch (e) {
      const aside = `${this.file}.corrupt-${this.nowMs()}`;
      let kept = `moved to ${aside}`;
      try {
        await rename(this.file, aside);
      } catch (renameError) {
        kept = `could not be moved aside (${errorMessage(renameError)})`;
      }
      return { state: emptyState(), problem: `${this.file} is corrupt (${errorMessage(e)}); ${kept}; state rebuilt from what the hosts report` };
    }
  }

  save(state: PersistedState): Promise<void> {
    const run = this.queue.then(() => this.write(state));
    // The next save waits for this one whether it succeeds or fails; this caller sees its own result.
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async write(state: PersistedState): Promise<void> {
    const directory = dirname(this.file);
    const temporary = `${this.file}.tmp-${process.pid}-${this.instance}-${++this.sequence}`;
    let renamed = false;
    try {
      await mkdir(directory, { recursive: true, mode: 0o750 });
      const handle = await open(temporary, 'w', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify({ ...state, savedAtMs: this.nowMs() })}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temporary, this.file);
      renamed = true;
      const dir = await open(directory, 'r');
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (e) {
      if (e instanceof ConsolidatorError) throw e;
      // Before the rename the old file is untouched; the half-written temporary goes, or a full disk stays full.
      let leftover = '';
      if (!renamed) {
        try {
          await rm(temporary, { force: true });
        } catch (rmError) {
          leftover = `; the temporary file ${temporary} could not be removed (${errorMessage(rmError)})`;
        }
      }
      const code = (e as { code?: unknown }).code;
      const why = typeof code === 'string' && code in IO_HINTS ? `${IO_HINTS[code]} (${errorMessage(e)})` : errorMessage(e);
      const kept = renamed ? 'the new state is in place but may not survive a power loss' : `the previous state in ${this.file} is kept`;
      throw new ConsolidatorError('STATE_IO', `cannot save the state to ${this.file}: ${why}; ${kept}${leftover}`, {
        cause: e,
        details: { file: this.file, ...(typeof code === 'string' ? { errno: code } : {}) },
      });
    }
  }
}

/** What the usual reasons a save fails mean for the operator. */
const IO_HINTS: Readonly<Record<string, string>> = {
  ENOSPC: 'the file system is full',
  EDQUOT: 'the disk quota is exhausted',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EIO: 'an I/O error (failing disk?)',
};
