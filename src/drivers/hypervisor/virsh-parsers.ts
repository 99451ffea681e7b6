import { ConsolidatorError } from '../../errors.js';
import type { VmState } from '../../model/snapshot.js';

/**
 * Pure parsers for what a libvirt host prints: /proc files, `virsh version`, `virsh domstats --raw`,
 * `virsh domjobinfo`, `virsh domstate --reason`, `virsh domblklist --details` and virsh's error
 * messages. No I/O, no clock: table-driven tests run them over output captured from the lab
 * (test/fixtures/virsh/).
 */

const KIB_PER_MIB = 1024;
const NS_PER_SECOND = 1e9;

function parseError(what: string, detail: string): ConsolidatorError {
  return new ConsolidatorError('PARSE', `cannot parse ${what}: ${detail}`);
}

// ---------------------------------------------------------------------------------------------
// /proc/stat, /proc/meminfo, /proc/uptime

export interface ProcStat {
  /** CPUs listed (cpu0, cpu1, ...). */
  readonly cpus: number;
  /** Aggregate ticks (USER_HZ) spent busy and in total since boot. */
  readonly busyTicks: number;
  readonly totalTicks: number;
}

/**
 * The aggregate `cpu` line: user nice system idle iowait irq softirq steal [guest guest_nice].
 * guest and guest_nice are already counted in user and nice, so they are left out of the total.
 */
export function parseProcStat(text: string): ProcStat {
  let aggregate: number[] | undefined;
  let cpus = 0;
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const label = fields[0];
    if (label === 'cpu') aggregate = fields.slice(1, 9).map(Number);
    else if (label !== undefined && /^cpu\d+$/.test(label)) cpus++;
  }
  if (!aggregate || aggregate.length < 4 || aggregate.some((n) => !Number.isFinite(n))) throw parseError('/proc/stat', 'no aggregate cpu line');
  if (cpus === 0) throw parseError('/proc/stat', 'no per-CPU lines');
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = aggregate;
  const busyTicks = user + nice + system + irq + softirq + steal;
  return { cpus, busyTicks, totalTicks: busyTicks + idle + iowait };
}

/** Cores busy between two /proc/stat samples; undefined when no time passed (or the host rebooted). */
export function cpuCoresBetween(previous: ProcStat, current: ProcStat): number | undefined {
  const total = current.totalTicks - previous.totalTicks;
  const busy = current.busyTicks - previous.busyTicks;
  if (total <= 0 || busy < 0) return undefined;
  return (busy / total) * current.cpus;
}

export interface Meminfo {
  readonly totalMiB: number;
  readonly availableMiB: number;
  /** MemTotal - MemAvailable: what the host would miss if it had to make room. */
  readonly usedMiB: number;
}

export function parseMeminfo(text: string): Meminfo {
  const kib = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9_()]+):\s+(\d+)(?:\s+kB)?\s*$/.exec(line);
    if (m?.[1] && m[2]) kib.set(m[1], Number(m[2]));
  }
  const total = kib.get('MemTotal');
  if (total === undefined) throw parseError('/proc/meminfo', 'no MemTotal');
  // MemAvailable exists since Linux 3.14; before that, free + page cache is the usual estimate.
  const available = kib.get('MemAvailable') ?? (kib.get('MemFree') ?? 0) + (kib.get('Buffers') ?? 0) + (kib.get('Cached') ?? 0);
  const totalMiB = total / KIB_PER_MIB;
  const availableMiB = Math.min(total, available) / KIB_PER_MIB;
  return { totalMiB, availableMiB, usedMiB: totalMiB - availableMiB };
}

/** /proc/uptime's first field: seconds since boot (monotonic, for per-VM CPU deltas). */
export function parseUptimeSeconds(text: string): number {
  const value = Number(text.trim().split(/\s+/)[0]);
  if (!Number.isFinite(value)) throw parseError('/proc/uptime', JSON.stringify(text.slice(0, 40)));
  return value;
}

// ---------------------------------------------------------------------------------------------
// virsh version

export interface Versions {
  readonly libvirt?: string;
  readonly qemu?: string;
}

/** `virsh version [--daemon]`: the daemon's libvirt if shown, else the library's; the QEMU that runs. */
export function parseVirshVersion(text: string): Versions {
  const daemon = /^Running against daemon:\s*(\S+)/m.exec(text)?.[1];
  const library = /^Using library: libvirt\s+(\S+)/m.exec(text)?.[1];
  const qemu = /^Running hypervisor: QEMU\s+(\S+)/m.exec(text)?.[1];
  const libvirt = daemon ?? library;
  return { ...(libvirt ? { libvirt } : {}), ...(qemu ? { qemu } : {}) };
}

/** Compares dotted versions numerically: -1, 0 or 1. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// virsh domstats --raw

export interface DomainStats {
  readonly name: string;
  readonly state: VmState;
  /** libvirt's virDomainState number (1 running, 3 paused, 5 shut off, ...). */
  readonly stateCode: number;
  readonly vcpus: number;
  readonly memoryMiB: number;
  /** Cumulative guest CPU time, ns; undefined for a domain that is not running. */
  readonly cpuTimeNs?: number;
}

/** libvirt's virDomainState values. */
export const DOMAIN_STATE = { running: 1, blocked: 2, paused: 3, shutdown: 4, shutoff: 5, crashed: 6, pmsuspended: 7 } as const;

export function vmStateOf(stateCode: number): VmState {
  if (stateCode === DOMAIN_STATE.running || stateCode === DOMAIN_STATE.blocked) return 'running';
  if (stateCode === DOMAIN_STATE.paused) return 'paused';
  if (stateCode === DOMAIN_STATE.shutoff) return 'shutoff';
  return 'other';
}

/** A domain that is neither running nor paused (shut off, crashed, pmsuspended, shutting down). */
export function isInactive(state: VmState): boolean {
  return state !== 'running' && state !== 'paused';
}

/** Splits `Domain: 'NAME'` blocks of `key=value` lines. */
export function parseDomstatsRaw(text: string): DomainStats[] {
  const domains: DomainStats[] = [];
  let name: string | undefined;
  let fields = new Map<string, string>();
  const flush = () => {
    if (name !== undefined) domains.push(domainStatsOf(name, fields));
    name = undefined;
    fields = new Map();
  };
  for (const line of text.split('\n')) {
    const header = /^Domain: '(.*)'\s*$/.exec(line);
    if (header) {
      flush();
      name = header[1] ?? '';
      continue;
    }
    const kv = /^\s+([A-Za-z0-9_.-]+)=(.*)$/.exec(line);
    if (kv?.[1] !== undefined && kv[2] !== undefined) {
      if (name === undefined) throw parseError('virsh domstats', `a statistic before any Domain: line: ${line}`);
      fields.set(kv[1], kv[2]);
    } else if (line.trim() !== '') {
      throw parseError('virsh domstats', `unexpected line ${JSON.stringify(line)}`);
    }
  }
  flush();
  return domains;
}

function domainStatsOf(name: string, f: ReadonlyMap<string, string>): DomainStats {
  const num = (key: string): number | undefined => {
    const v = f.get(key);
    if (v === undefined) return undefined;
    const n = Number(v);
    return Number.isFinite(n) ? n : undefined;
  };
  const stateCode = num('state.state');
  if (stateCode === undefined) throw parseError('virsh domstats', `domain ${name} has no state.state`);
  const state = vmStateOf(stateCode);
  const memoryKiB = num('balloon.current') ?? num('balloon.maximum');
  const vcpus = num('vcpu.current') ?? num('vcpu.maximum');
  if (memoryKiB === undefined || vcpus === undefined) throw parseError('virsh domstats', `domain ${name} lacks balloon.* or vcpu.*`);
  const cpuTimeNs = num('cpu.time');
  return {
    name,
    state,
    stateCode,
    vcpus,
    memoryMiB: memoryKiB / KIB_PER_MIB,
    // An inactive domain keeps the counters of its last run; they say nothing about now.
    ...(!isInactive(state) && cpuTimeNs !== undefined ? { cpuTimeNs } : {}),
  };
}

/** Cores a domain used between two samples taken `elapsedSeconds` apart. */
export function domainCpuCores(previousNs: number, currentNs: number, elapsedSeconds: number): number | undefined {
  if (elapsedSeconds <= 0 || currentNs < previousNs) return undefined;
  return (currentNs - previousNs) / NS_PER_SECOND / elapsedSeconds;
}

/** `virsh list --all --uuid --name`: `UUID NAME` per line. */
export function parseUuidNameList(text: string): Map<string, string> {
  const byUuid = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s+(.+?)\s*$/.exec(line);
    if (m?.[1] && m[2]) byUuid.set(m[1], m[2]);
  }
  return byUuid;
}

/** Output of `virsh metadata DOM --uri https://consolidator.dev/xmlns/1`: does it say pinned? */
export function isPinnedMetadata(text: string): boolean {
  return /<(?:[A-Za-z0-9_-]+:)?pinned\b[^>]*\/?>/.test(text);
}

// ---------------------------------------------------------------------------------------------
// virsh domjobinfo

export type JobType = 'none' | 'bounded' | 'unbounded' | 'completed' | 'failed' | 'cancelled' | 'unknown';

export interface JobInfo {
  readonly type: JobType;
  readonly operation?: string;
  readonly elapsedMs?: number;
  readonly dataProcessedMiB?: number;
  readonly dataRemainingMiB?: number;
  readonly dataTotalMiB?: number;
  readonly memoryBandwidthMiBps?: number;
  readonly dirtyRatePagesPerSecond?: number;
  readonly iteration?: number;
  readonly postcopyRequests?: number;
  readonly autoConvergeThrottlePercent?: number;
  readonly totalDowntimeMs?: number;
  readonly expectedDowntimeMs?: number;
}

const SIZE_UNITS_MIB: Readonly<Record<string, number>> = {
  B: 1 / (1024 * 1024),
  KiB: 1 / 1024,
  MiB: 1,
  GiB: 1024,
  TiB: 1024 * 1024,
};

/** `12.5 MiB` -> 12.5; `906.267 KiB/s` -> 0.885 (MiB or MiB/s). */
export function parseSizeMiB(text: string): number | undefined {
  const m = /^\s*([\d.]+)\s*([KMGT]?i?B)(?:\/s)?\s*$/.exec(text);
  if (!m?.[1] || !m[2]) return undefined;
  const factor = SIZE_UNITS_MIB[m[2]];
  return factor === undefined ? undefined : Number(m[1]) * factor;
}

export function parseDomjobinfo(text: string): JobInfo {
  const fields = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z][A-Za-z /()-]*?):\s+(.*?)\s*$/.exec(line);
    if (m?.[1] && m[2] !== undefined) fields.set(m[1], m[2]);
  }
  const typeText = fields.get('Job type');
  if (typeText === undefined) throw parseError('virsh domjobinfo', 'no "Job type" line');
  const type: JobType = (['none', 'bounded', 'unbounded', 'completed', 'failed', 'cancelled'] as const).find((t) => t === typeText.toLowerCase()) ?? 'unknown';
  const int = (key: string): number | undefined => {
    const m = /^(\d+)/.exec(fields.get(key) ?? '');
    return m?.[1] ? Number(m[1]) : undefined;
  };
  const size = (key: string): number | undefined => {
    const v = fields.get(key);
    return v === undefined ? undefined : parseSizeMiB(v);
  };
  const info: Record<string, unknown> = {
    type,
    operation: fields.get('Operation'),
    elapsedMs: int('Time elapsed'),
    dataProcessedMiB: size('Data processed'),
    dataRemainingMiB: size('Data remaining'),
    dataTotalMiB: size('Data total'),
    memoryBandwidthMiBps: size('Memory bandwidth'),
    dirtyRatePagesPerSecond: int('Dirty rate'),
    iteration: int('Iteration'),
    postcopyRequests: int('Postcopy requests'),
    autoConvergeThrottlePercent: int('Auto converge throttle'),
    totalDowntimeMs: int('Total downtime'),
    expectedDowntimeMs: int('Expected downtime'),
  };
  for (const key of Object.keys(info)) if (info[key] === undefined) delete info[key];
  return info as unknown as JobInfo;
}

// ---------------------------------------------------------------------------------------------
// virsh domstate --reason

export interface DomainState {
  /** As virsh prints it: running, paused, shut off, crashed, in shutdown, pmsuspended, idle. */
  readonly state: string;
  readonly reason?: string;
  readonly vmState: VmState;
}

const STATE_WORDS: Readonly<Record<string, VmState>> = { running: 'running', idle: 'running', paused: 'paused', 'shut off': 'shutoff' };

export function parseDomstate(text: string): DomainState {
  const line = text.split('\n').find((l) => l.trim() !== '');
  if (line === undefined) throw parseError('virsh domstate', 'empty output');
  const m = /^\s*([a-z ]+?)\s*(?:\(([^)]*)\))?\s*$/.exec(line);
  if (!m?.[1]) throw parseError('virsh domstate', JSON.stringify(line));
  return { state: m[1], ...(m[2] ? { reason: m[2] } : {}), vmState: STATE_WORDS[m[1]] ?? 'other' };
}

// ---------------------------------------------------------------------------------------------
// virsh domblklist --details

export interface BlockDevice {
  readonly type: string;
  readonly device: string;
  readonly target: string;
  /** Path for file and block disks, volume/export name for network ones; undefined when empty (`-`). */
  readonly source?: string;
}

export function parseDomblklist(text: string): BlockDevice[] {
  const lines = text.split('\n');
  const ruler = lines.findIndex((l) => /^-{5,}/.test(l.trim()));
  if (ruler < 0) throw parseError('virsh domblklist', 'no header ruler');
  const devices: BlockDevice[] = [];
  for (const line of lines.slice(ruler + 1)) {
    if (line.trim() === '') continue;
    const m = /^\s*(\S+)\s+(\S+)\s+(\S+)\s+(.*?)\s*$/.exec(line);
    if (!m?.[1] || !m[2] || !m[3]) throw parseError('virsh domblklist', JSON.stringify(line));
    const source = m[4];
    devices.push({ type: m[1], device: m[2], target: m[3], ...(source && source !== '-' ? { source } : {}) });
  }
  return devices;
}

// ---------------------------------------------------------------------------------------------
// virsh error messages

export type VirshFailure =
  | 'no-domain'
  | 'no-job'
  | 'aborted-by-client'
  | 'unreachable'
  | 'unresolvable'
  | 'same-host'
  | 'not-in-migration'
  | 'other';

/** What a virsh error (stderr) means for the caller. */
export function classifyVirshError(stderr: string): VirshFailure {
  if (/failed to get domain|Domain not found/i.test(stderr)) return 'no-domain';
  if (/no job is active on the domain/i.test(stderr)) return 'no-job';
  if (/post-copy can only be started while outgoing migration is in progress/i.test(stderr)) return 'not-in-migration';
  if (/canceled by client|operation aborted/i.test(stderr)) return 'aborted-by-client';
  if (/Could not resolve hostname|Name or service not known|Temporary failure in name resolution/i.test(stderr)) return 'unresolvable';
  if (/Attempt to migrate guest to the same host/i.test(stderr)) return 'same-host';
  if (/No route to host|Connection timed out|Connection refused|Cannot recv data|unable to connect|End of file while reading data/i.test(stderr)) return 'unreachable';
  return 'other';
}

/** The first `error: ...` line of virsh's stderr, for messages (without the prefix). */
export function virshErrorLine(stderr: string): string {
  const line = stderr.split('\n').find((l) => l.startsWith('error: ')) ?? stderr.split('\n').find((l) => l.trim() !== '') ?? '';
  return line.replace(/^error: /, '').trim();
}

// ---------------------------------------------------------------------------------------------
// The observation script's output: sections separated by marker lines.

export const SECTION_MARKER = '@@consolidator';

/** Splits `@@consolidator NAME [ARG]` sections; the key is `NAME` or `NAME ARG`. */
export function splitSections(text: string): Map<string, string> {
  const sections = new Map<string, string>();
  let key: string | undefined;
  let lines: string[] = [];
  const flush = () => {
    if (key !== undefined) sections.set(key, lines.join('\n'));
  };
  for (const line of text.split('\n')) {
    if (line.startsWith(`${SECTION_MARKER} `)) {
      flush();
      key = line.slice(SECTION_MARKER.length + 1).trim();
      lines = [];
    } else if (key !== undefined) {
      lines.push(line);
    }
  }
  flush();
  return sections;
}
