import { appendFile, mkdir, readdir, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import { RECORDING_FILE, recordingFileName, utcDay } from './recording.js';

export interface RecordingLimits {
  /** Files of days older than this many days before the newest record are removed. */
  readonly retentionDays: number;
  /** The folder never holds more than this: the oldest files go first; past it with one file, records are dropped until the next day. */
  readonly maxBytes: number;
}

export interface RecordingWriterOptions {
  readonly dir: string;
  readonly limits: RecordingLimits;
  /** Called for every failure (the writer never throws into its caller). */
  readonly onError: (what: string, error: unknown) => void;
}

interface Pending {
  readonly day: string;
  readonly line: string;
  readonly header: string;
}

const DAY_MS = 86_400_000;
const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/**
 * Appends recording lines off the caller's path: append() only queues the line; a batch is gzip'd (in
 * libuv's thread pool) and appended as one gzip member to the day's file, one batch at a time, after
 * the current tick. Each file starts with the header, which is written again when it changes. After
 * every batch the retention and the size cap are applied. A day file that does not decode cleanly
 * when this process first writes to it (a crash mid-write) is left as it is and a new part is started,
 * so that damage stays at the end of a file where the reader can skip it.
 */
export class RecordingWriter {
  private readonly dir: string;
  private limits: RecordingLimits;
  private readonly onError: RecordingWriterOptions['onError'];
  private pending: Pending[] = [];
  private chain: Promise<void> = Promise.resolve();
  private scheduled = false;
  /** The file this process appends to, per day, and the header last written to it. */
  private readonly current = new Map<string, { file: string; header: string }>();
  private fullDay: string | undefined;
  private droppedLines = 0;
  private bytes = 0;

  constructor(options: RecordingWriterOptions) {
    this.dir = options.dir;
    this.limits = options.limits;
    this.onError = options.onError;
  }

  setLimits(limits: RecordingLimits): void {
    this.limits = limits;
  }

  /** Bytes the recording folder held after the last batch. */
  get sizeBytes(): number {
    return this.bytes;
  }

  /** Lines not written because the size cap was reached with one file left. */
  get dropped(): number {
    return this.droppedLines;
  }

  /** Queues one line (no newline) recorded at `atMs`; `header` is the header line its file must carry. */
  append(atMs: number, line: string, header: string): void {
    this.pending.push({ day: utcDay(atMs), line, header });
    if (this.scheduled) return;
    this.scheduled = true;
    this.chain = this.chain.then(
      () =>
        new Promise<void>((done) => {
          setImmediate(() => {
            this.scheduled = false;
            this.writeBatch().then(done, (e: unknown) => {
              this.onError('write', e);
              done();
            });
          });
        }),
    );
  }

  /** Resolves once every queued line is written (or has failed). */
  async flush(): Promise<void> {
    for (;;) {
      const chain = this.chain;
      await chain;
      if (chain === this.chain && !this.scheduled) return;
    }
  }

  private async writeBatch(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    if (batch.length === 0) return;
    await mkdir(this.dir, { recursive: true, mode: 0o750 });
    const byDay = new Map<string, Pending[]>();
    for (const p of batch) byDay.set(p.day, [...(byDay.get(p.day) ?? []), p]);
    for (const [day, lines] of byDay) {
      if (this.fullDay === day) {
        this.droppedLines += lines.length;
        continue;
      }
      const target = await this.fileFor(day);
      let text = '';
      for (const p of lines) {
        if (p.header !== target.header) {
          text += `${p.header}\n`;
          target.header = p.header;
        }
        text += `${p.line}\n`;
      }
      const member = await gzipAsync(text);
      if (!(await this.makeRoom(day, target.file, member.length))) {
        this.droppedLines += lines.length;
        continue;
      }
      await appendFile(join(this.dir, target.file), member, { mode: 0o640 });
    }
    await this.applyLimits(batch[batch.length - 1]?.day ?? '');
  }

  private async fileFor(day: string): Promise<{ file: string; header: string }> {
    const known = this.current.get(day);
    if (known) return known;
    for (let part = 1; ; part++) {
      const file = recordingFileName(day, part);
      const path = join(this.dir, file);
      const size = await stat(path).then(
        (s) => s.size,
        () => -1,
      );
      if (size < 0) {
        const entry = { file, header: '' };
        this.current.set(day, entry);
        return entry;
      }
      // A file from an earlier run: append to it only if it ends cleanly.
      const clean = await readFile(path).then(gunzipAsync).then(
        () => true,
        () => false,
      );
      if (clean) {
        // Its header may differ from ours: write ours before the first record.
        const entry = { file, header: '' };
        this.current.set(day, entry);
        return entry;
      }
    }
  }

  /** Frees room for `bytes` more in `file` (today's); false when even alone it would pass the cap. */
  private async makeRoom(day: string, file: string, bytes: number): Promise<boolean> {
    const files = await this.listFiles();
    let total = files.reduce((sum, f) => sum + f.size, 0);
    for (const f of files) {
      if (total + bytes <= this.limits.maxBytes) break;
      if (f.name === file) continue;
      await unlink(join(this.dir, f.name)).catch((e: unknown) => this.onError('remove', e));
      total -= f.size;
    }
    if (total + bytes <= this.limits.maxBytes) return true;
    if (this.fullDay !== day) this.onError('size cap', new Error(`recording reached recording.maxBytes (${this.limits.maxBytes}) with only ${file} left: records of ${day} are dropped until the next day`));
    this.fullDay = day;
    return false;
  }

  private async applyLimits(newestDay: string): Promise<void> {
    const cutoff = utcDay(Date.parse(`${newestDay}T00:00:00Z`) - this.limits.retentionDays * DAY_MS);
    let total = 0;
    for (const f of await this.listFiles()) {
      if (f.day < cutoff) {
        await unlink(join(this.dir, f.name)).catch((e: unknown) => this.onError('remove', e));
        this.current.delete(f.day);
      } else total += f.size;
    }
    this.bytes = total;
  }

  /** The recording files, oldest first (by day, then part). */
  private async listFiles(): Promise<{ name: string; day: string; part: number; size: number }[]> {
    const out: { name: string; day: string; part: number; size: number }[] = [];
    for (const name of await readdir(this.dir)) {
      const match = RECORDING_FILE.exec(name);
      if (!match) continue;
      const size = await stat(join(this.dir, name)).then(
        (s) => s.size,
        () => 0,
      );
      out.push({ name, day: match[1] ?? '', part: Number(match[2] ?? 1), size });
    }
    return out.sort((a, b) => (a.day === b.day ? a.part - b.part : a.day < b.day ? -1 : 1));
  }
}
