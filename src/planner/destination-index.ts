/**
 * Finds, fast, the destination host that fits a VM best. Hosts are kept in a grid of buckets by their
 * remaining room on each resource (room = capacity x target - load), measured against the largest
 * host, so a search visits only buckets whose hosts can possibly fit, tightest first. That keeps a
 * 10,000-host, 100,000-VM plan around a second, where scanning every host for every VM would take
 * minutes. Bucket edges grow with the square of the index: as consolidation fills hosts, most of
 * them end with little room, and fine buckets there keep full hosts out of small VMs' searches.
 */
export interface RoomSource {
  /** Room left per resource on host i (may be negative when a host is above target). */
  roomCpu(i: number): number;
  roomMemory(i: number): number;
}

/** Buckets per resource; 64 x 64 keeps buckets small at 10,000 hosts, and fits a row in two 32-bit masks. */
const BUCKETS = 64;

export class DestinationIndex {
  /** Made on first use: a plan touches a few dozen of the 4,096, and the planner makes an index every cycle. */
  private readonly buckets = new Map<number, Set<number>>();
  private readonly bucketOf: Int32Array;
  /** Per CPU row, which memory buckets hold hosts: bits 0-31 and 32-63, to skip empty buckets fast. */
  private readonly lowBits = new Int32Array(BUCKETS);
  private readonly highBits = new Int32Array(BUCKETS);
  private readonly scaleCpu: number;
  private readonly scaleMemory: number;

  constructor(
    hostCount: number,
    private readonly room: RoomSource,
    maxLimitCpu: number,
    maxLimitMemory: number,
  ) {
    this.bucketOf = new Int32Array(hostCount).fill(-1);
    this.scaleCpu = maxLimitCpu > 0 ? 1 / maxLimitCpu : 0;
    this.scaleMemory = maxLimitMemory > 0 ? 1 / maxLimitMemory : 0;
  }

  has(host: number): boolean {
    return (this.bucketOf[host] ?? -1) >= 0;
  }

  add(host: number): void {
    if (this.has(host)) return;
    const b = this.bucketFor(this.room.roomCpu(host), this.room.roomMemory(host));
    this.bucketOf[host] = b;
    let bucket = this.buckets.get(b);
    if (bucket === undefined) {
      bucket = new Set<number>();
      this.buckets.set(b, bucket);
    }
    bucket.add(host);
    if (bucket.size === 1) this.setOccupied(b, true);
  }

  remove(host: number): void {
    const b = this.bucketOf[host] ?? -1;
    if (b < 0) return;
    const bucket = this.buckets.get(b) as Set<number>;
    bucket.delete(host);
    if (bucket.size === 0) this.setOccupied(b, false);
    this.bucketOf[host] = -1;
  }

  /** Call after a host's load changed. */
  update(host: number): void {
    if (!this.has(host)) return;
    const b = this.bucketFor(this.room.roomCpu(host), this.room.roomMemory(host));
    if (b === this.bucketOf[host]) return;
    this.remove(host);
    this.add(host);
  }

  /**
   * The best host for a demand: among hosts that `fits` accepts, the one `score` ranks lowest, looking
   * at the tightest occupied buckets that hold a fitting host and the next diagonal (ties: lowest index).
   */
  find(demandCpu: number, demandMemory: number, fits: (host: number) => boolean, score: (host: number) => number): number | undefined {
    const minI = bucketIndex(demandCpu * this.scaleCpu);
    const minJ = bucketIndex(demandMemory * this.scaleMemory);
    let best: number | undefined;
    let bestScore = Number.POSITIVE_INFINITY;
    let stopAfter = Number.POSITIVE_INFINITY;
    for (let s = this.nextDiagonal(minI, minJ, minI + minJ); s >= 0 && s <= stopAfter; s = this.nextDiagonal(minI, minJ, s + 1)) {
      for (let i = minI; i < BUCKETS; i++) {
        const j = s - i;
        if (j < minJ) break;
        if (j >= BUCKETS || !this.isOccupied(i, j)) continue;
        for (const host of this.buckets.get(i * BUCKETS + j) as Set<number>) {
          if (!fits(host)) continue;
          const value = score(host);
          if (value < bestScore || (value === bestScore && best !== undefined && host < best)) {
            best = host;
            bestScore = value;
          }
        }
      }
      if (best !== undefined && stopAfter === Number.POSITIVE_INFINITY) stopAfter = s + 1;
    }
    return best;
  }

  /** The smallest diagonal i + j >= from holding an occupied bucket with i >= minI, j >= minJ; -1 if none. */
  private nextDiagonal(minI: number, minJ: number, from: number): number {
    let bestS = -1;
    for (let i = minI; i < BUCKETS; i++) {
      const j = this.firstOccupied(i, Math.max(minJ, from - i));
      if (j < 0) continue;
      const s = i + j;
      if (bestS < 0 || s < bestS) bestS = s;
      if (bestS === from) break;
    }
    return bestS;
  }

  /** Lowest occupied memory bucket >= from in cpu row i, or -1. */
  private firstOccupied(i: number, from: number): number {
    if (from < 32) {
      const m = (this.lowBits[i] as number) & (~0 << from);
      if (m !== 0) return lowestBit(m);
      from = 32;
    }
    if (from < BUCKETS) {
      const m = (this.highBits[i] as number) & (~0 << (from - 32));
      if (m !== 0) return 32 + lowestBit(m);
    }
    return -1;
  }

  private isOccupied(i: number, j: number): boolean {
    return j < 32 ? ((this.lowBits[i] as number) & (1 << j)) !== 0 : ((this.highBits[i] as number) & (1 << (j - 32))) !== 0;
  }

  private setOccupied(b: number, occupied: boolean): void {
    const i = Math.floor(b / BUCKETS);
    const j = b % BUCKETS;
    const bits = j < 32 ? this.lowBits : this.highBits;
    const bit = 1 << (j < 32 ? j : j - 32);
    bits[i] = occupied ? (bits[i] as number) | bit : (bits[i] as number) & ~bit;
  }

  private bucketFor(roomCpu: number, roomMemory: number): number {
    return bucketIndex(roomCpu * this.scaleCpu) * BUCKETS + bucketIndex(roomMemory * this.scaleMemory);
  }
}

/**
 * Bucket of a room (or demand) given as a share of the largest host: floor(BUCKETS x sqrt(share)).
 * Monotonic, so a host in a bucket below a demand's bucket cannot fit it.
 */
function bucketIndex(share: number): number {
  if (!(share > 0)) return 0;
  const b = Math.floor(BUCKETS * Math.sqrt(share));
  return b >= BUCKETS ? BUCKETS - 1 : b;
}

function lowestBit(mask: number): number {
  return 31 - Math.clz32(mask & -mask);
}

/**
 * Destinations grouped in tiers of power efficiency, most efficient first: a VM goes to the best fit
 * among the hosts of the first tier that has room for it. On a cluster of one hardware type there is
 * one tier and this is exactly best fit; on a mixed cluster the efficient hosts fill up first, so the
 * inefficient ones run out of VMs and are the ones emptied and powered off.
 */
export class TieredDestinationIndex {
  private readonly tiers: DestinationIndex[];

  constructor(
    private readonly tierOf: Int32Array,
    tierCount: number,
    room: RoomSource,
    maxLimitCpu: number,
    maxLimitMemory: number,
  ) {
    this.tiers = Array.from({ length: Math.max(1, tierCount) }, () => new DestinationIndex(tierOf.length, room, maxLimitCpu, maxLimitMemory));
  }

  has(host: number): boolean {
    return this.tier(host).has(host);
  }

  add(host: number): void {
    this.tier(host).add(host);
  }

  remove(host: number): void {
    this.tier(host).remove(host);
  }

  update(host: number): void {
    this.tier(host).update(host);
  }

  /** The best fit in the most efficient tier that has a host `fits` accepts. */
  find(demandCpu: number, demandMemory: number, fits: (host: number) => boolean, score: (host: number) => number): number | undefined {
    for (const tier of this.tiers) {
      const best = tier.find(demandCpu, demandMemory, fits, score);
      if (best !== undefined) return best;
    }
    return undefined;
  }

  private tier(host: number): DestinationIndex {
    return this.tiers[this.tierOf[host] ?? 0] as DestinationIndex;
  }
}

/**
 * Hosts within this factor of the most efficient host of their tier share it: power curves are
 * measured figures, and a few per cent between two models is within what load, firmware and
 * temperature change; splitting hairs would only fragment the search.
 */
export const EFFICIENCY_TIER_FACTOR = 1.05;

/**
 * Power-efficiency tier per host from its watts per unit of CPU (lower is better; Infinity for a
 * host without CPU): hosts sorted by efficiency, a new tier whenever one is more than
 * EFFICIENCY_TIER_FACTOR worse than the first host of the current tier.
 */
export function efficiencyTiers(wattsPerCpu: readonly number[]): { readonly tierOf: Int32Array; readonly tierCount: number } {
  const order = wattsPerCpu.map((_, i) => i).sort((a, b) => (wattsPerCpu[a] as number) - (wattsPerCpu[b] as number) || a - b);
  const tierOf = new Int32Array(wattsPerCpu.length);
  let tier = -1;
  let tierStart = Number.NaN;
  for (const i of order) {
    const w = wattsPerCpu[i] as number;
    if (tier < 0 || !(w <= tierStart * EFFICIENCY_TIER_FACTOR)) {
      tier++;
      tierStart = w;
    }
    tierOf[i] = tier;
  }
  return { tierOf, tierCount: tier + 1 };
}
