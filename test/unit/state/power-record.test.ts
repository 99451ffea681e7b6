import { describe, expect, it } from 'vitest';
import {
  DAY_MS,
  type PowerActionEntry,
  PowerRecorder,
  emptyPowerRecord,
  lastPowerAction,
  parsePowerRecord,
  powerActionsInLast24h,
  powerActionsLast24hByHost,
  withPowerAction,
} from '../../../src/state/power-record.js';
import { isConsolidatorError } from '../../../src/errors.js';
import { thrownSync } from '../../helpers/thrown.js';

const T0 = Date.UTC(2025, 0, 1);
const HOUR_MS = 60 * 60 * 1000;
const entry = (atMs: number, action: 'on' | 'off' = 'off', result: PowerActionEntry['result'] = 'ok'): PowerActionEntry => ({
  atMs,
  action,
  ...(action === 'off' ? { mode: 'soft' as const } : {}),
  result,
  durationMs: 1000,
});

describe('the power record', () => {
  it('counts the actions of one host in the 24 h before now, failed ones included', () => {
    let record = emptyPowerRecord();
    record = withPowerAction(record, 'h1', entry(T0));
    record = withPowerAction(record, 'h1', entry(T0 + 2 * HOUR_MS, 'on', 'POWER_TIMEOUT'));
    record = withPowerAction(record, 'h2', entry(T0 + 3 * HOUR_MS));
    record = withPowerAction(record, 'h1', entry(T0 + 10 * HOUR_MS));
    expect(powerActionsInLast24h(record, 'h1', T0 + 10 * HOUR_MS)).toBe(3);
    expect(powerActionsInLast24h(record, 'h2', T0 + 10 * HOUR_MS)).toBe(1);
    expect(powerActionsInLast24h(record, 'h3', T0 + 10 * HOUR_MS)).toBe(0);
    expect(powerActionsLast24hByHost(record, T0 + 10 * HOUR_MS)).toEqual({ h1: 3, h2: 1 });
    expect(powerActionsLast24hByHost(record, T0 + DAY_MS + 5 * HOUR_MS)).toEqual({ h1: 1 });
  });

  it.each([
    [T0 + DAY_MS - 1, 2],
    [T0 + DAY_MS, 1], // exactly 24 h ago is outside the window
    [T0 + HOUR_MS + DAY_MS, 0],
    [T0 - 1, 0], // entries after now do not count
  ])('at %d counts %d', (nowMs, count) => {
    let record = withPowerAction(emptyPowerRecord(), 'h1', entry(T0));
    record = withPowerAction(record, 'h1', entry(T0 + HOUR_MS));
    expect(powerActionsInLast24h(record, 'h1', nowMs)).toBe(count);
  });

  it('drops entries older than a day when adding, and hosts left empty', () => {
    let record = withPowerAction(emptyPowerRecord(), 'h1', entry(T0));
    record = withPowerAction(record, 'h2', entry(T0 + 2 * DAY_MS));
    expect(record.hosts).toEqual({ h2: [entry(T0 + 2 * DAY_MS)] });
  });

  it('never changes the record it is given', () => {
    const before = withPowerAction(emptyPowerRecord(), 'h1', entry(T0));
    const copy = structuredClone(before);
    withPowerAction(before, 'h1', entry(T0 + HOUR_MS));
    expect(before).toEqual(copy);
  });

  it('survives a JSON round trip and is checked when read back', () => {
    const record = withPowerAction(withPowerAction(emptyPowerRecord(), 'h1', entry(T0)), 'h1', entry(T0 + 1, 'on', 'BMC_UNREACHABLE'));
    expect(parsePowerRecord(JSON.parse(JSON.stringify(record)))).toEqual(record);
    expect(lastPowerAction(record, 'h1')).toEqual(entry(T0 + 1, 'on', 'BMC_UNREACHABLE'));
  });

  it.each([
    [null, 'version'],
    [{ version: 2, hosts: {} }, 'version'],
    [{ version: 1, hosts: [] }, 'hosts'],
    [{ version: 1, hosts: { h1: [{ atMs: 'x' }] } }, 'hosts.h1[0].atMs'],
    [{ version: 1, hosts: { h1: [{ atMs: 1, action: 'reboot' }] } }, 'hosts.h1[0].action'],
    [{ version: 1, hosts: { h1: [{ atMs: 1, action: 'on', result: 'NOPE', durationMs: 1 }] } }, 'hosts.h1[0].result'],
  ])('rejects a corrupt record (%j) naming %s', (value, path) => {
    const e = thrownSync(() => parsePowerRecord(value));
    expect(isConsolidatorError(e, 'STATE_CORRUPT')).toBe(true);
    expect(e.message).toContain(path);
  });

  it('PowerRecorder holds the current record', () => {
    const recorder = new PowerRecorder();
    recorder.add('h1', entry(T0));
    recorder.add('h1', entry(T0 + 1));
    expect(powerActionsInLast24h(recorder.record, 'h1', T0 + 1)).toBe(2);
  });
});
