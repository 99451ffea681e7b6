import { describe, expect, it } from 'vitest';
import { DatacenterEventQueue } from '../../../src/sim/datacenter-event-queue.js';

const event = (timeSeconds: number, kind: 'migration' | 'boot' | 'timer', vm = -1) => ({
  timeSeconds,
  kind,
  vm,
  host: 0,
  from: 0,
  startedAtSeconds: 0,
});

describe('DatacenterEventQueue', () => {
  it('hands events out in time order, ties in the order they were queued', () => {
    const queue = new DatacenterEventQueue();
    queue.enqueue(event(20, 'timer', 1));
    queue.enqueue(event(10, 'boot', 2));
    queue.enqueue(event(20, 'migration', 3));
    queue.enqueue(event(10, 'timer', 4));
    expect(queue.nextTimeSeconds()).toBe(10);
    expect(queue.takeDueAt(20)).toBeUndefined();
    const order: number[] = [];
    for (let at = queue.nextTimeSeconds(); at !== undefined; at = queue.nextTimeSeconds()) {
      for (let e = queue.takeDueAt(at); e !== undefined; e = queue.takeDueAt(at)) order.push(e.vm);
    }
    expect(order).toEqual([2, 4, 1, 3]);
    expect(queue.nextTimeSeconds()).toBeUndefined();
  });

  it('lists and removes in-flight migrations only', () => {
    const queue = new DatacenterEventQueue();
    queue.enqueue(event(30, 'migration', 7));
    queue.enqueue(event(5, 'timer', 7));
    queue.enqueue(event(15, 'migration', 8));
    expect(queue.migrations().map((e) => e.vm)).toEqual([8, 7]);
    expect(queue.takeMigrationOf(7)?.timeSeconds).toBe(30);
    expect(queue.takeMigrationOf(7)).toBeUndefined();
    expect(queue.migrations().map((e) => e.vm)).toEqual([8]);
    expect(queue.nextTimeSeconds()).toBe(5);
  });
});
