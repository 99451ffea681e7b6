/**
 * Finds, fast, the destination host that fits a VM best. Hosts are kept in a grid of buckets by their
 * remaining room on each resource (room = capacity x target - load), measured against the largest
 * host, so a search visits only buckets whose hosts can possibly fit, tightest first. That keeps a
 * 10,000-host, 100,000-VM plan well under a second, where scanning every host for every VM would
 * take minutes.
 */
export interface RoomSource {
  /** Room left per resource on host i (may be negative when a host is above target). */
  roomCpu(i: number): number;
  roomMemory(i: number): number;
}

/** Buckets per resource; 64 x 64 keeps buckets small at 10,000 hosts without many empty visits. */
const BUCKETS = 64;

export class DestinationIndex {
  private readonly buckets: Set<number>[] = Array.from({ length: BUCKETS * BUCKETS }, () => new Set<number>());
  private readonly bucketOf: Int32Array;
  private readonly scaleCpu: number;
  private readonly scaleMemory: number;

  constructor(
    hostCount: number,
    private readonly room: RoomSource,
    maxLimitCpu: number,
    maxLimitMemory: number,
  ) {
    this.bucketOf = new Int32Array(hostCount).fill(-1);
    this.scaleCpu = maxLimitCpu > 0 ? BUCKETS / maxLimitCpu : 0;
    this.scaleMemory = maxLimitMemory > 0 ? BUCKETS / maxLimitMemory : 0;
  }

  has(host: number): boolean {
    return (this.bucketOf[host] ?? -1) >= 0;
  }

  add(host: number): void {
    if (this.has(host)) return;
    const b = this.bucketFor(this.room.roomCpu(host), this.room.roomMemory(host));
    this.bucketOf[host] = b;
    (this.buckets[b] as Set<number>).add(host);
  }

  remove(host: number): void {
    const b = this.bucketOf[host] ?? -1;
    if (b < 0) return;
    (this.buckets[b] as Set<number>).delete(host);
    this.bucketOf[host] = -1;
  }

  /** Call after a host's load changed. */
  update(host: number): void {
    if (!this.has(host)) return;
    this.remove(host);
    this.add(host);
  }

  /**
   * The best host for a demand: among hosts that `fits` accepts, the one `score` ranks lowest, looking
   * at the tightest buckets that hold a fitting host and the next diagonal (ties: lowest index).
   */
  find(demandCpu: number, demandMemory: number, fits: (host: number) => boolean, score: (host: number) => number): number | undefined {
    const minI = Math.min(BUCKETS - 1, Math.floor(demandCpu * this.scaleCpu));
    const minJ = Math.min(BUCKETS - 1, Math.floor(demandMemory * this.scaleMemory));
    let best: number | undefined;
    let bestScore = Number.POSITIVE_INFINITY;
    let stopAfter = Number.POSITIVE_INFINITY;
    for (let s = minI + minJ; s <= 2 * (BUCKETS - 1) && s <= stopAfter; s++) {
      const fromI = Math.max(minI, s - (BUCKETS - 1));
      const toI = Math.min(BUCKETS - 1, s - minJ);
      for (let i = fromI; i <= toI; i++) {
        const bucket = this.buckets[i * BUCKETS + (s - i)] as Set<number>;
        if (bucket.size === 0) continue;
        for (const host of bucket) {
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

  private bucketFor(roomCpu: number, roomMemory: number): number {
    const i = clampBucket(Math.floor(roomCpu * this.scaleCpu));
    const j = clampBucket(Math.floor(roomMemory * this.scaleMemory));
    return i * BUCKETS + j;
  }
}

function clampBucket(b: number): number {
  if (!(b > 0)) return 0;
  return b >= BUCKETS ? BUCKETS - 1 : b;
}
