import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { emptyAttentionState } from '../../../src/state/power-attention.js';
import type { HistoryEntry } from '../../../src/state/persisted-state.js';
import { recordingFileName } from '../../../src/state/recording.js';
import { buildSavingsReport } from '../../../src/state/savings-report.js';

const T0 = Date.parse('2026-01-10T00:00:00Z');
const MIN = 60_000;
const MODEL = { kind: 'linear', idleWatts: 100, maxWatts: 300 };
const HEADER = JSON.stringify({ format: 'consolidator-recording', version: 1, hosts: { h1: { powerModel: MODEL, bootSeconds: 60 }, h2: { powerModel: MODEL, bootSeconds: 60 } } });

type Power = 'on' | 'off';
function cycle(t: number, h2: Power, vmOn: 0 | 1, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    t,
    mode: 'enforce',
    hosts: [
      ['h1', 'on', 1, 16, 65536, 8, 4096, null],
      ['h2', h2, h2 === 'on' ? 1 : 0, 16, 65536, h2 === 'on' ? 0 : null, null, null],
    ],
    vms: [['a', vmOn, 2, 4096, 1, 2048]],
    acted: { migrations: 0, powerOffs: 0, powerOns: 0 },
    ...extra,
  });
}

let dir = '';
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'consolidator-savings-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(lines: string[]): Promise<void> {
  await writeFile(join(dir, recordingFileName('2026-01-10')), gzipSync(`${[HEADER, ...lines].join('\n')}\n`));
}

const history: HistoryEntry[] = [
  { atMs: T0 + 1 * MIN, cycle: 'c1', actionId: '1', type: 'migrate', subject: 'a', from: 'h2', to: 'h1', result: 'ok' },
  { atMs: T0 + 1 * MIN, cycle: 'c1', actionId: '2', type: 'power-off', subject: 'h2', result: 'ok' },
  { atMs: T0 + 20 * MIN, cycle: 'c9', actionId: '3', type: 'power-on', subject: 'h2', result: 'failed', code: 'POWER_TIMEOUT', reason: 'still off' },
];

describe('the savings report over a recording', () => {
  it('counts the migration, the VM move with its memory, the power cycle, the time off and what it saved', async () => {
    await write([
      cycle(T0, 'on', 1),
      cycle(T0 + 1 * MIN, 'on', 0, { acted: { migrations: 1, powerOffs: 1, powerOns: 0 } }),
      cycle(T0 + 2 * MIN, 'off', 0, { byUs: [1] }),
      cycle(T0 + 62 * MIN, 'off', 0, { byUs: [1] }),
      cycle(T0 + 63 * MIN, 'on', 0),
    ]);
    const r = await buildSavingsReport({ recordingDir: dir, history, attention: emptyAttentionState(), range: {} });
    expect(r.cycles).toBe(5);
    expect(r.migrations).toBe(1);
    expect(r.vmMoves).toBe(1);
    expect(r.movedGiB).toBe(4);
    expect(r.powerCycles).toEqual([{ host: 'h2', powerOffs: 1, powerOns: 1 }]);
    // The typical interval is 1 minute: the hour between the 3rd and 4th cycle is a gap.
    expect(r.gapHours).toBe(1);
    expect(r.hostHoursOff).toBeCloseTo(1 / 60, 9);
    expect(r.energy.savedKWh).toBeCloseTo((100 * 60) / 3_600_000, 9);
    expect(r.failures).toEqual({ POWER_TIMEOUT: 1 });
    expect(r.attentionEvents).toEqual([{ at: new Date(T0 + 20 * MIN).toISOString(), host: 'h2', type: 'power-on', code: 'POWER_TIMEOUT', reason: 'still off' }]);
  });

  it('claims nothing for hosts off that the recording does not say consolidator powered off (lines written before byUs)', async () => {
    await write([cycle(T0, 'off', 0), cycle(T0 + MIN, 'off', 0), cycle(T0 + 2 * MIN, 'off', 0)]);
    const r = await buildSavingsReport({ recordingDir: dir, history: [], attention: emptyAttentionState(), range: {} });
    expect(r.energy.savedKWh).toBe(0);
    expect(r.hostHoursOff).toBe(0);
    expect(r.energy.actualKWh).toBeGreaterThan(0);
  });

  it('only the period asked for; a corrupt file is a warning, not an error', async () => {
    await write([cycle(T0, 'off', 0, { byUs: [1] }), cycle(T0 + MIN, 'off', 0, { byUs: [1] }), cycle(T0 + 2 * MIN, 'off', 0, { byUs: [1] }), cycle(T0 + 3 * MIN, 'off', 0, { byUs: [1] })]);
    await writeFile(join(dir, recordingFileName('2026-01-11')), 'not gzip');
    const r = await buildSavingsReport({ recordingDir: dir, history, attention: emptyAttentionState(), range: { fromMs: T0 + MIN, toMs: T0 + 3 * MIN } });
    expect(r.cycles).toBe(2);
    expect(r.coveredHours).toBeCloseTo(1 / 60, 9);
    // The failure at 00:20 is outside the period.
    expect(r.failures).toEqual({});
    const all = await buildSavingsReport({ recordingDir: dir, history, attention: emptyAttentionState(), range: {} });
    expect(all.warnings.join('\n')).toMatch(/2026-01-11/);
    expect(all.cycles).toBe(4);
  });
});
