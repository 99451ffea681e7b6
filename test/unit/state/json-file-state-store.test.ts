import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyState, type HistoryEntry, type PersistedState } from '../../../src/state/persisted-state.js';
import { JsonFileStateStore, STATE_FILE_NAME } from '../../../src/state/json-file-state-store.js';
import { thrown } from '../../helpers/thrown.js';

function stateWithHistory(entries: number): PersistedState {
  const history: HistoryEntry[] = Array.from({ length: entries }, (_, i) => ({
    atMs: 1_000 + i,
    cycle: `c${i}`,
    actionId: `m${i}`,
    type: 'migrate',
    subject: `vm-${i}`,
    from: 'h1',
    to: 'h2',
    result: 'ok',
  }));
  return { ...emptyState(), history };
}

const isRoot = process.getuid?.() === 0;

describe('JsonFileStateStore', () => {
  let base: string;
  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'consolidator-store-'));
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('saves and loads a state, leaving no temporary file', async () => {
    const store = new JsonFileStateStore(join(base, 'plain'), () => 42);
    await store.save(stateWithHistory(3));
    const loaded = await store.load();
    expect(loaded.state.history).toHaveLength(3);
    expect(loaded.state.savedAtMs).toBe(42);
    expect(readdirSync(join(base, 'plain'))).toEqual([STATE_FILE_NAME]);
  });

  it('removes its temporary file when the rename fails, and says why', async () => {
    const dir = join(base, 'rename-fails');
    // state.json is a directory: the write and fsync succeed, the rename over it does not.
    mkdirSync(join(dir, STATE_FILE_NAME), { recursive: true });
    writeFileSync(join(dir, STATE_FILE_NAME, 'keep'), 'x');
    const error = await thrown(new JsonFileStateStore(dir).save(stateWithHistory(1)));
    expect(error.code).toBe('STATE_IO');
    expect(error.message).toContain(`cannot save the state to ${join(dir, STATE_FILE_NAME)}`);
    expect(readdirSync(dir)).toEqual([STATE_FILE_NAME]);
  });

  // A full disk needs a file system of our own: a 64 KiB tmpfs, mounted by the test (root only).
  describe.skipIf(!isRoot)('on a full disk (a 64 KiB tmpfs; needs root to mount)', () => {
    let mountPoint: string;
    let mounted = false;
    beforeAll(() => {
      mountPoint = join(base, 'tiny');
      mkdirSync(mountPoint);
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', mountPoint]);
      mounted = true;
    });
    afterAll(() => {
      if (mounted) execFileSync('umount', [mountPoint]);
    });

    it('keeps the previous state, removes the half-written temporary file and throws a clear STATE_IO', async () => {
      const store = new JsonFileStateStore(mountPoint, () => 7);
      await store.save(stateWithHistory(2));
      const before = readFileSync(join(mountPoint, STATE_FILE_NAME), 'utf8');
      // Fill the rest but about 16 KiB, so the next save (about 40 KiB) starts and fails half way.
      const filler = join(mountPoint, 'filler');
      writeFileSync(filler, Buffer.alloc(40 * 1024));
      const big = stateWithHistory(300);
      expect(JSON.stringify(big).length).toBeGreaterThan(32 * 1024);

      const error = await thrown(store.save(big));
      expect(readdirSync(mountPoint).filter((f) => f.includes('.tmp')), 'temporary files left').toEqual([]);
      expect(error.code).toBe('STATE_IO');
      expect(error.message).toMatch(/^cannot save the state to .*state\.json: the file system is full \(ENOSPC.*\); the previous state in .*state\.json is kept$/);
      expect(error.details['errno']).toBe('ENOSPC');
      expect(readFileSync(join(mountPoint, STATE_FILE_NAME), 'utf8')).toBe(before);
      expect((await store.load()).state.history).toHaveLength(2);

      // The space a failed save would have leaked is there: once the filler goes, the next save works.
      rmSync(filler);
      await store.save(big);
      expect((await new JsonFileStateStore(mountPoint).load()).state.history).toHaveLength(300);
      expect(readdirSync(mountPoint)).toEqual([STATE_FILE_NAME]);
    });
  });
});
