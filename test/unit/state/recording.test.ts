import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readRecording, recordingFileName } from '../../../src/state/recording.js';
import { RecordingWriter } from '../../../src/state/recording-writer.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-01-10T00:00:00Z');
const HEADER = JSON.stringify({ format: 'consolidator-recording', version: 1, hosts: { h1: { powerModel: { kind: 'linear', idleWatts: 100, maxWatts: 300 }, bootSeconds: 60 } } });

function cycle(t: number, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ t, mode: 'dry-run', hosts: [['h1', 'on', 1, 16, 65536, 2, 4096, null]], vms: [['a', 0, 2, 4096, 1, 2048]], acted: { migrations: 0, powerOffs: 0, powerOns: 0 }, ...extra });
}

let dir = '';
const errors: string[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'consolidator-recording-'));
  errors.length = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function writer(limits = { retentionDays: 30, maxBytes: 1 << 30 }): RecordingWriter {
  return new RecordingWriter({ dir, limits, onError: (what, e) => errors.push(`${what}: ${(e as Error).message}`) });
}

describe('the recording', () => {
  it('one gzip file per UTC day, a header first, cycles read back in time order', async () => {
    const w = writer();
    w.append(T0 + 1000, cycle(T0 + 1000), HEADER);
    w.append(T0 + 2000, cycle(T0 + 2000), HEADER);
    await w.flush();
    w.append(T0 + DAY + 5, cycle(T0 + DAY + 5), HEADER);
    await w.flush();
    expect((await readdir(dir)).sort()).toEqual([recordingFileName('2026-01-10'), recordingFileName('2026-01-11')]);
    const text = (await readRecording(dir)).cycles.map((c) => c.t);
    expect(text).toEqual([T0 + 1000, T0 + 2000, T0 + DAY + 5]);
    const loaded = await readRecording(dir);
    expect(loaded.hosts['h1']?.bootSeconds).toBe(60);
    expect(loaded.warnings).toEqual([]);
    expect(errors).toEqual([]);
    expect((await readRecording(dir, { fromMs: T0 + 1500, toMs: T0 + DAY })).cycles.map((c) => c.t)).toEqual([T0 + 2000]);
  });

  it('a truncated last member (the daemon died mid-write) is skipped with a warning; the next run starts a new part', async () => {
    const w = writer();
    w.append(T0 + 1000, cycle(T0 + 1000), HEADER);
    await w.flush();
    const file = join(dir, recordingFileName('2026-01-10'));
    const member = gzipSync(`${cycle(T0 + 2000)}\n${cycle(T0 + 3000)}\n`);
    await appendFile(file, member.subarray(0, member.length - 12));
    const read = await readRecording(dir);
    expect(read.cycles.map((c) => c.t)).toContain(T0 + 1000);
    expect(read.warnings.join('\n')).toMatch(/incomplete|not a valid gzip/);
    // A new process appends after damage only in a new part.
    const next = writer();
    next.append(T0 + 4000, cycle(T0 + 4000), HEADER);
    await next.flush();
    expect((await readdir(dir)).sort()).toEqual([recordingFileName('2026-01-10', 2), recordingFileName('2026-01-10')].sort());
    expect((await readRecording(dir)).cycles.map((c) => c.t)).toEqual(expect.arrayContaining([T0 + 1000, T0 + 4000]));
  });

  it('a corrupt file and lines that are not records are skipped with a warning, never fatal', async () => {
    await writeFile(join(dir, recordingFileName('2026-01-09')), 'not gzip at all');
    await writeFile(join(dir, recordingFileName('2026-01-10')), gzipSync(`${HEADER}\n{"hello":1}\nnot json\n${cycle(T0 + 1)}\n`));
    const read = await readRecording(dir);
    expect(read.cycles.map((c) => c.t)).toEqual([T0 + 1]);
    expect(read.warnings.length).toBe(2);
    expect(read.warnings.join('\n')).toMatch(/2 line\(s\) that are not recording records skipped/);
  });

  it('keeps retentionDays of days and never more than maxBytes, the oldest going first', async () => {
    const w = writer({ retentionDays: 3, maxBytes: 1 << 30 });
    for (let d = 0; d < 6; d++) w.append(T0 + d * DAY, cycle(T0 + d * DAY), HEADER);
    await w.flush();
    expect((await readdir(dir)).sort()).toEqual(['2026-01-12', '2026-01-13', '2026-01-14', '2026-01-15'].map((d) => recordingFileName(d)));

    await rm(dir, { recursive: true, force: true });
    const size = gzipSync(`${HEADER}\n${cycle(T0)}\n`).length;
    const capped = writer({ retentionDays: 30, maxBytes: size * 2 + 10 });
    for (let d = 0; d < 5; d++) {
      capped.append(T0 + d * DAY, cycle(T0 + d * DAY), HEADER);
      await capped.flush();
    }
    const files = await readdir(dir);
    let total = 0;
    for (const f of files) total += (await stat(join(dir, f))).size;
    expect(total).toBeLessThanOrEqual(size * 2 + 10);
    expect(files.sort()).toEqual(['2026-01-13', '2026-01-14'].map((d) => recordingFileName(d)));
    // One day alone over the cap: its records are dropped, with an error, and the file stays bounded.
    for (let i = 1; i < 50; i++) capped.append(T0 + 4 * DAY + i, cycle(T0 + 4 * DAY + i, { pad: 'x'.repeat(200) }), HEADER);
    await capped.flush();
    expect(capped.dropped).toBeGreaterThan(0);
    expect(errors.join('\n')).toMatch(/recording.maxBytes/);
    expect((await readFile(join(dir, recordingFileName('2026-01-14')))).length).toBeLessThanOrEqual(size * 2 + 10);
  });

  it('a folder that cannot be written is an error reported, not thrown', async () => {
    await writeFile(join(dir, 'file'), '');
    const w = new RecordingWriter({ dir: join(dir, 'file', 'sub'), limits: { retentionDays: 1, maxBytes: 1 << 20 }, onError: (what) => errors.push(what) });
    w.append(T0, cycle(T0), HEADER);
    await w.flush();
    expect(errors).toEqual(['write']);
  });
});
