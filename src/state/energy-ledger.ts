import type { HostId } from '../model/ids.js';
import { powerAt, type ClusterSnapshot, type PowerModel, type PowerState } from '../model/snapshot.js';
import type { RecordedCycle, RecordedHostInfo } from './recording.js';

/** What the ledger needs of one host at one observation. */
export interface LedgerHost {
  readonly name: string;
  readonly power: PowerState;
  /** Powered off by consolidator (the only off hosts whose draw counts as saved). */
  readonly offByUs: boolean;
  /** CPU use as a fraction of the host's capacity, null when not known (an off host, no sample yet). */
  readonly cpuRatio: number | null;
  /** The BMC's reading, watts, null where it has none. */
  readonly watts: number | null;
  readonly powerModel: PowerModel;
}

export interface LedgerTotals {
  /** Time between observations that counted, and time skipped as gaps (the daemon was not running). */
  readonly coveredSeconds: number;
  readonly gapSeconds: number;
  /** Every host on (the counterfactual): what each host drew, and the idle draw of each host consolidator kept off. */
  readonly allHostsOnKWh: number;
  /** What the hosts drew. */
  readonly actualKWh: number;
  readonly savedKWh: number;
  /** Of actualKWh, the part that comes from BMC readings (the rest from the power model). */
  readonly measuredKWh: number;
  /** Host-hours off by consolidator's doing. */
  readonly hostHoursOff: number;
  /** Per host kept off: how its idle draw was estimated. */
  readonly idleMethod: Readonly<Record<string, 'measured' | 'model'>>;
}

/** One interval between two observations: what it adds to the totals. */
interface Interval {
  readonly seconds: number;
  readonly allOnJ: number;
  readonly actualJ: number;
  readonly measuredJ: number;
  readonly offSeconds: number;
}

function addInterval(sums: { allOnJ: number; actualJ: number; measuredJ: number; offSeconds: number; covered: number }, i: Interval): void {
  sums.allOnJ += i.allOnJ;
  sums.actualJ += i.actualJ;
  sums.measuredJ += i.measuredJ;
  sums.offSeconds += i.offSeconds;
  sums.covered += i.seconds;
}

/** BMC readings while on a host needs before its own readings replace the model's idle draw. */
const MIN_READINGS_FOR_IDLE = 5;
const JOULES_PER_KWH = 3_600_000;

/**
 * Energy consolidator saved against every host on, observation by observation. Between two
 * observations each host is taken to stay as the first one saw it. A host on draws its BMC reading
 * where there is one, else its power model at its CPU use. A host consolidator powered off draws its
 * BMC's standby reading (0 where there is none) and, in the counterfactual, its idle draw: measured
 * (the mean of its readings while on, less the model's dynamic part at each reading's CPU use) once it
 * has enough readings, else the model's. The load an off host would carry is on the hosts that carry
 * it, so only the idle draw is saved. A host whose state is unknown, or that is off but not by
 * consolidator, counts the same on both sides: nothing is claimed for it. An interval longer than
 * maxIntervalSeconds is a gap (the daemon stopped) and counts for nothing.
 */
export class EnergyLedger {
  private readonly maxIntervalMs: number | undefined;
  /** Without a fixed limit: every interval, so that totals() can tell the gaps once it knows the typical one. */
  private readonly kept: Interval[] | undefined;
  private previous: { readonly atMs: number; readonly hosts: readonly LedgerHost[] } | undefined;
  private readonly idle = new Map<string, { n: number; sum: number }>();
  private readonly sums = { allOnJ: 0, actualJ: 0, measuredJ: 0, offSeconds: 0, covered: 0, gap: 0 };
  private readonly methods: Record<string, 'measured' | 'model'> = {};

  /**
   * With maxIntervalSeconds, a longer interval is a gap as it is observed (the live metric). Without,
   * the ledger keeps each interval and totals(maxIntervalSeconds) decides (a report over a recording,
   * whose typical interval is known only at its end).
   */
  constructor(options: { readonly maxIntervalSeconds?: number } = {}) {
    this.maxIntervalMs = options.maxIntervalSeconds === undefined ? undefined : options.maxIntervalSeconds * 1000;
    this.kept = options.maxIntervalSeconds === undefined ? [] : undefined;
  }

  /**
   * Adds the interval from the previous observation to this one (at the previous one's states) and
   * returns the joules saved in it. An observation older than the previous one is ignored.
   */
  observe(atMs: number, hosts: readonly LedgerHost[]): number {
    for (const h of hosts) this.learnIdle(h);
    const prev = this.previous;
    if (prev !== undefined && atMs < prev.atMs) return 0;
    this.previous = { atMs, hosts };
    if (prev === undefined) return 0;
    const seconds = (atMs - prev.atMs) / 1000;
    if (seconds === 0) return 0;
    if (this.maxIntervalMs !== undefined && atMs - prev.atMs > this.maxIntervalMs) {
      this.sums.gap += seconds;
      return 0;
    }
    const interval = this.intervalOf(prev.hosts, seconds);
    if (this.kept) this.kept.push(interval);
    else addInterval(this.sums, interval);
    return interval.allOnJ - interval.actualJ;
  }

  /** The median time between observations, seconds (undefined before two). */
  typicalIntervalSeconds(): number | undefined {
    const seconds = (this.kept ?? []).map((i) => i.seconds).sort((a, b) => a - b);
    return seconds[Math.floor(seconds.length / 2)];
  }

  /** Watts saved at the latest observation (for a gauge). */
  savingWattsNow(): number {
    let watts = 0;
    for (const h of this.previous?.hosts ?? []) {
      const { actual, allOn } = this.wattsOf(h);
      watts += allOn - actual;
    }
    return watts;
  }

  /** The totals; an interval longer than maxIntervalSeconds (for a ledger made without one) is a gap. */
  totals(maxIntervalSeconds = Number.POSITIVE_INFINITY): LedgerTotals {
    let sums = this.sums;
    if (this.kept) {
      sums = { allOnJ: 0, actualJ: 0, measuredJ: 0, offSeconds: 0, covered: 0, gap: 0 };
      for (const i of this.kept) {
        if (i.seconds > maxIntervalSeconds) sums.gap += i.seconds;
        else addInterval(sums, i);
      }
    }
    return {
      coveredSeconds: sums.covered,
      gapSeconds: sums.gap,
      allHostsOnKWh: sums.allOnJ / JOULES_PER_KWH,
      actualKWh: sums.actualJ / JOULES_PER_KWH,
      savedKWh: (sums.allOnJ - sums.actualJ) / JOULES_PER_KWH,
      measuredKWh: sums.measuredJ / JOULES_PER_KWH,
      hostHoursOff: sums.offSeconds / 3600,
      idleMethod: { ...this.methods },
    };
  }

  private intervalOf(hosts: readonly LedgerHost[], seconds: number): Interval {
    const interval = { seconds, allOnJ: 0, actualJ: 0, measuredJ: 0, offSeconds: 0 };
    for (const h of hosts) {
      const { actual, allOn, measured } = this.wattsOf(h);
      interval.actualJ += actual * seconds;
      interval.allOnJ += allOn * seconds;
      if (measured) interval.measuredJ += actual * seconds;
      if (h.power === 'off' && h.offByUs) interval.offSeconds += seconds;
    }
    return interval;
  }

  /** The idle draw the counterfactual gives a host. */
  idleWatts(host: LedgerHost): number {
    const seen = this.idle.get(host.name);
    return seen !== undefined && seen.n >= MIN_READINGS_FOR_IDLE ? seen.sum / seen.n : powerAt(host.powerModel, 0);
  }

  private wattsOf(h: LedgerHost): { actual: number; allOn: number; measured: boolean } {
    if (h.power === 'on') {
      const actual = h.watts ?? powerAt(h.powerModel, clampRatio(h.cpuRatio ?? 0));
      return { actual, allOn: actual, measured: h.watts !== null };
    }
    if (h.power === 'off') {
      const standby = h.watts ?? 0;
      if (!h.offByUs) return { actual: standby, allOn: standby, measured: h.watts !== null };
      const seen = this.idle.get(h.name);
      this.methods[h.name] = seen !== undefined && seen.n >= MIN_READINGS_FOR_IDLE ? 'measured' : 'model';
      return { actual: standby, allOn: Math.max(standby, this.idleWatts(h)), measured: h.watts !== null };
    }
    // Unknown: as idle on both sides; nothing claimed.
    const idle = this.idleWatts(h);
    return { actual: idle, allOn: idle, measured: false };
  }

  private learnIdle(h: LedgerHost): void {
    if (h.power !== 'on' || h.watts === null || h.cpuRatio === null) return;
    const ratio = clampRatio(h.cpuRatio);
    const idle = h.watts - (powerAt(h.powerModel, ratio) - powerAt(h.powerModel, 0));
    const seen = this.idle.get(h.name) ?? { n: 0, sum: 0 };
    seen.n++;
    seen.sum += Math.max(0, idle);
    this.idle.set(h.name, seen);
  }
}

function clampRatio(x: number): number {
  return Math.min(1, Math.max(0, x));
}

/** A cycle's observation as the ledger sees it. */
export function ledgerHostsOfSnapshot(snapshot: ClusterSnapshot, offByUs: ReadonlySet<HostId>, watts: ReadonlyMap<HostId, number>): LedgerHost[] {
  return snapshot.hosts.map((h) => {
    const last = h.samples[h.samples.length - 1];
    return {
      name: h.id,
      power: h.power === 'on' && !h.reachable ? 'unknown' : h.power,
      offByUs: offByUs.has(h.id),
      cpuRatio: last && h.capacity.cpu > 0 ? last.use.cpu / h.capacity.cpu : null,
      watts: watts.get(h.id) ?? null,
      powerModel: h.powerModel,
    };
  });
}

/**
 * A recorded cycle as the ledger sees it. Hosts the header does not describe are left out; a
 * recording from before `byUs` was written has no host off by consolidator (nothing claimed).
 */
export function ledgerHostsOfRecorded(cycle: RecordedCycle, info: Readonly<Record<string, RecordedHostInfo>>): LedgerHost[] {
  const byUs = new Set(cycle.byUs ?? []);
  const out: LedgerHost[] = [];
  cycle.hosts.forEach(([name, power, reachable, cpus, , cpuUsed, , watts], i) => {
    const facts = info[name];
    if (facts === undefined) return;
    out.push({
      name,
      power: power === 'on' && reachable === 0 ? 'unknown' : power,
      offByUs: byUs.has(i),
      cpuRatio: cpuUsed !== null && cpus > 0 ? cpuUsed / cpus : null,
      watts,
      powerModel: facts.powerModel,
    });
  });
  return out;
}
