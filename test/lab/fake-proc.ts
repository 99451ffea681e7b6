/**
 * Per-host figures for the lab: the contents of the fake /proc/stat and /proc/meminfo that a lab
 * host sees instead of the real machine's (bind-mounted over them inside its mount namespace).
 */

/** Linux reports /proc/stat times in USER_HZ ticks, 100 per second on every architecture we run. */
export const USER_HZ = 100;
const KIB_PER_MIB = 1024;

export interface HostFigures {
  readonly cpus: number;
  readonly memoryMiB: number;
  /** Memory in use (MemTotal - MemAvailable), MiB. */
  readonly memoryUsedMiB: number;
}

/** Cumulative CPU ticks of one host, advanced by the lab to produce a chosen load. */
export interface CpuCounters {
  user: number;
  system: number;
  idle: number;
}

export function initialCounters(cpus: number): CpuCounters {
  // A host that has been up a while, mostly idle.
  return { user: 1000 * cpus, system: 500 * cpus, idle: 100_000 * cpus };
}

/** Advances the counters as if `busyCores` of the host's CPUs had been busy for `seconds`. */
export function advanceCounters(counters: CpuCounters, cpus: number, busyCores: number, seconds: number): CpuCounters {
  const busyTicks = Math.round(busyCores * USER_HZ * seconds);
  const idleTicks = Math.round((cpus - busyCores) * USER_HZ * seconds);
  const userTicks = Math.round(busyTicks * 0.75);
  return { user: counters.user + userTicks, system: counters.system + (busyTicks - userTicks), idle: counters.idle + idleTicks };
}

/** /proc/stat as Linux 6.x writes it: aggregate line, one line per CPU, then the other counters. */
export function procStatText(cpus: number, c: CpuCounters): string {
  const line = (label: string, user: number, system: number, idle: number) => `${label} ${user} 0 ${system} ${idle} 0 0 0 0 0 0`;
  const lines = [line('cpu ', c.user, c.system, c.idle)];
  for (let i = 0; i < cpus; i++) {
    const share = (n: number) => Math.floor(n / cpus) + (i < n % cpus ? 1 : 0);
    lines.push(line(`cpu${i}`, share(c.user), share(c.system), share(c.idle)));
  }
  lines.push('intr 0', 'ctxt 0', 'btime 1700000000', 'processes 1', 'procs_running 1', 'procs_blocked 0', 'softirq 0 0 0 0 0 0 0 0 0 0 0');
  return `${lines.join('\n')}\n`;
}

/** /proc/meminfo with the fields the driver reads (and a few it must ignore). */
export function procMeminfoText(f: HostFigures): string {
  const total = f.memoryMiB * KIB_PER_MIB;
  const available = (f.memoryMiB - f.memoryUsedMiB) * KIB_PER_MIB;
  const row = (key: string, kib: number) => `${`${key}:`.padEnd(16)}${String(kib).padStart(8)} kB`;
  return `${[
    row('MemTotal', total),
    row('MemFree', Math.round(available * 0.6)),
    row('MemAvailable', available),
    row('Buffers', 1024),
    row('Cached', Math.round(available * 0.3)),
    row('SwapCached', 0),
    row('Active', 4096),
    row('Inactive', 4096),
    row('SwapTotal', 0),
    row('SwapFree', 0),
    row('Dirty', 12),
    'HugePages_Total:       0',
    'HugePages_Free:        0',
    row('Hugepagesize', 2048),
  ].join('\n')}\n`;
}
