import type { MigrationListener } from './simulated-migration.js';

/** Something due at a time: a migration's completion, a boot's end, or a port's timer. */
export interface QueuedEvent {
  readonly timeSeconds: number;
  readonly seq: number;
  readonly kind: 'migration' | 'boot' | 'timer';
  readonly vm: number;
  readonly host: number;
  readonly startedAtSeconds: number;
  readonly from: number;
  readonly listener?: MigrationListener;
  readonly timer?: () => void;
}

/** The datacenter's future: events in time order, ties in the order they were queued. */
export class DatacenterEventQueue {
  private readonly events: QueuedEvent[] = [];
  private seq = 0;

  /** Queues an event; it is numbered here, after every event queued before it. */
  enqueue(event: Omit<QueuedEvent, 'seq'>): void {
    const queued: QueuedEvent = { ...event, seq: this.seq++ };
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const other = this.events[mid];
      if (other !== undefined && (other.timeSeconds < queued.timeSeconds || (other.timeSeconds === queued.timeSeconds && other.seq < queued.seq))) lo = mid + 1;
      else hi = mid;
    }
    this.events.splice(lo, 0, queued);
  }

  /** Time of the earliest event, if any. */
  nextTimeSeconds(): number | undefined {
    return this.events[0]?.timeSeconds;
  }

  /** Removes and returns the earliest event if it is due at `timeSeconds`. */
  takeDueAt(timeSeconds: number): QueuedEvent | undefined {
    if (this.events[0] === undefined || this.events[0].timeSeconds !== timeSeconds) return undefined;
    return this.events.shift();
  }

  /** Removes and returns the in-flight migration of a VM, if there is one. */
  takeMigrationOf(vm: number): QueuedEvent | undefined {
    const at = this.events.findIndex((e) => e.kind === 'migration' && e.vm === vm);
    const event = this.events[at];
    if (event !== undefined) this.events.splice(at, 1);
    return event;
  }

  /** Migrations in flight, in completion order. */
  migrations(): QueuedEvent[] {
    return this.events.filter((e) => e.kind === 'migration');
  }
}
