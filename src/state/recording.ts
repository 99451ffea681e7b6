import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants, createGunzip } from 'node:zlib';
import type { PowerModel, PowerState } from '../model/snapshot.js';

/**
 * The recording: what the daemon observed, cycle by cycle, in the state directory's `recording/`
 * folder. One gzip'd NDJSON file per UTC day (`recording-YYYY-MM-DD.ndjson.gz`; a second part
 * `recording-YYYY-MM-DD.N.ndjson.gz` when a day's file could not be appended to cleanly), made of
 * gzip members appended one batch at a time (concatenated gzip members are one valid gzip stream).
 * Each line is one JSON object:
 *
 * - a header, first in every file and again whenever the hosts' static facts change:
 *   `{"format":"consolidator-recording","version":1,"hosts":{"<host>":{"powerModel":...,"bootSeconds":180}}}`
 *   (powerModel as in the policy: `{"kind":"linear","idleWatts":..,"maxWatts":..}` or
 *   `{"kind":"curve","wattsAtTenths":[11 values]}`);
 * - a cycle: `{"t":<ms>,"mode":"dry-run","hosts":[...],"vms":[...],"acted":{"migrations":0,"powerOffs":0,"powerOns":0}}`
 *   with `t` the observation's time (ms since the epoch, the daemon's clock), and tuples
 *   host: `[name, power "on"|"off"|"unknown", reachable 0|1, cpus, memoryMiB, cpuUsedCores|null, memoryUsedMiB|null, watts|null]`
 *   (capacity after the policy's reserve; use is the last sample, null before the first; watts as the
 *   BMC reported them, null where it does not),
 *   vm: `[name, hostIndex (into this line's hosts), vcpus, memoryMiB, cpuUsedCores|null, memoryUsedMiB|null]`,
 *   and `byUs`: the indexes of the hosts that were off because consolidator powered them off (absent in
 *   lines written before it was added: read as none). Watts of an off host are its BMC's standby reading.
 */
export const RECORDING_FORMAT = 'consolidator-recording';
export const RECORDING_VERSION = 1;
export const RECORDING_FILE = /^recording-(\d{4}-\d{2}-\d{2})(?:\.(\d+))?\.ndjson\.gz$/;

export type RecordedHost = readonly [
  name: string,
  power: PowerState,
  reachable: 0 | 1,
  cpus: number,
  memoryMiB: number,
  cpuUsed: number | null,
  memoryUsedMiB: number | null,
  watts: number | null,
];
export type RecordedVm = readonly [name: string, host: number, vcpus: number, memoryMiB: number, cpuUsed: number | null, memoryUsedMiB: number | null];

export interface RecordedHostInfo {
  readonly powerModel: PowerModel;
  readonly bootSeconds: number;
}

export interface RecordingHeader {
  readonly format: typeof RECORDING_FORMAT;
  readonly version: number;
  readonly hosts: Readonly<Record<string, RecordedHostInfo>>;
}

export interface RecordedCycle {
  readonly t: number;
  readonly mode: 'dry-run' | 'enforce';
  readonly hosts: readonly RecordedHost[];
  readonly vms: readonly RecordedVm[];
  readonly acted: { readonly migrations: number; readonly powerOffs: number; readonly powerOns: number };
  readonly byUs?: readonly number[];
}

export function recordingFileName(day: string, part = 1): string {
  return part <= 1 ? `recording-${day}.ndjson.gz` : `recording-${day}.${part}.ndjson.gz`;
}

/** The UTC day of a time, as file names carry it. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export interface LoadedRecording {
  /** Cycles in time order (files read in name order, then sorted by t). */
  readonly cycles: RecordedCycle[];
  /** The host facts, the latest header's for each host. */
  readonly hosts: Readonly<Record<string, RecordedHostInfo>>;
  readonly files: readonly string[];
  /** One line per file or line skipped, and why. */
  readonly warnings: readonly string[];
}

export interface RecordingRange {
  readonly fromMs?: number;
  readonly toMs?: number;
}

export interface RecordingScan {
  readonly files: readonly string[];
  /** The host facts, the latest header's for each host. */
  readonly hosts: Readonly<Record<string, RecordedHostInfo>>;
  readonly warnings: readonly string[];
}

/**
 * Reads every recording file in `dir`, in file-name order (days in order), handing each cycle in
 * [fromMs, toMs) to `onCycle` as it is decoded, with the host facts of the headers read so far, so that a week of a large cluster is never held in
 * memory at once. A file that is corrupt or truncated (the daemon stopped mid-write) keeps what
 * decodes before the damage and says so; a line that is not a record is skipped with a warning.
 * Nothing here throws for bad data; a folder that cannot be read does.
 */
export async function scanRecording(
  dir: string,
  onCycle: (cycle: RecordedCycle, hosts: Readonly<Record<string, RecordedHostInfo>>) => void,
  range: RecordingRange = {},
): Promise<RecordingScan> {
  const names = (await readdir(dir)).filter((n) => RECORDING_FILE.test(n)).sort(byDayThenPart);
  const warnings: string[] = [];
  let hosts: Record<string, RecordedHostInfo> = {};
  const fromDay = range.fromMs === undefined ? undefined : utcDay(range.fromMs);
  const toDay = range.toMs === undefined ? undefined : utcDay(range.toMs);
  const files: string[] = [];
  for (const name of names) {
    const day = RECORDING_FILE.exec(name)?.[1] ?? '';
    if ((fromDay !== undefined && day < fromDay) || (toDay !== undefined && day > toDay)) continue;
    const file = join(dir, name);
    files.push(file);
    const { text, problem } = await gunzipTolerant(await readFile(file));
    if (problem !== undefined) warnings.push(`${file}: ${problem}; the records before it are kept`);
    let bad = 0;
    let start = 0;
    for (;;) {
      const end = text.indexOf('\n', start);
      if (end < 0) {
        if (start < text.length) warnings.push(`${file}: the last line is incomplete (the daemon stopped while writing it); skipped`);
        break;
      }
      const line = text.slice(start, end);
      start = end + 1;
      if (line === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        bad++;
        continue;
      }
      if (isHeader(value)) hosts = { ...hosts, ...value.hosts };
      else if (isCycle(value)) {
        if ((range.fromMs === undefined || value.t >= range.fromMs) && (range.toMs === undefined || value.t < range.toMs)) onCycle(value, hosts);
      } else bad++;
    }
    if (bad > 0) warnings.push(`${file}: ${bad} line(s) that are not recording records skipped`);
  }
  return { files, hosts, warnings };
}

/** Every cycle of a recording at once, in time order (small recordings, tests; see scanRecording). */
export async function readRecording(dir: string, range: RecordingRange = {}): Promise<LoadedRecording> {
  const cycles: RecordedCycle[] = [];
  const scan = await scanRecording(dir, (c) => cycles.push(c), range);
  cycles.sort((a, b) => a.t - b.t);
  return { cycles, ...scan };
}

function byDayThenPart(a: string, b: string): number {
  const ma = RECORDING_FILE.exec(a);
  const mb = RECORDING_FILE.exec(b);
  const da = ma?.[1] ?? '';
  const db = mb?.[1] ?? '';
  if (da !== db) return da < db ? -1 : 1;
  return Number(ma?.[2] ?? 1) - Number(mb?.[2] ?? 1);
}

/** Decodes as much of a gzip stream (one or more members) as is intact. */
function gunzipTolerant(bytes: Buffer): Promise<{ text: string; problem?: string }> {
  return new Promise((resolvePromise) => {
    const chunks: Buffer[] = [];
    const gunzip = createGunzip({ finishFlush: constants.Z_SYNC_FLUSH });
    const done = (problem?: string) => {
      const text = Buffer.concat(chunks).toString('utf8');
      resolvePromise(problem === undefined ? { text } : { text, problem });
    };
    gunzip.on('data', (c: Buffer) => chunks.push(c));
    gunzip.on('error', (e: Error) => done(`not a valid gzip stream past some point (${e.message})`));
    gunzip.on('end', () => done());
    gunzip.end(bytes);
  });
}

function isHeader(v: unknown): v is RecordingHeader {
  return typeof v === 'object' && v !== null && (v as { format?: unknown }).format === RECORDING_FORMAT && typeof (v as { hosts?: unknown }).hosts === 'object';
}

function isCycle(v: unknown): v is RecordedCycle {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Partial<RecordedCycle>;
  return typeof c.t === 'number' && Array.isArray(c.hosts) && Array.isArray(c.vms);
}
