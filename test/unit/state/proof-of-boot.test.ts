import { describe, expect, it } from 'vitest';
import { emptyState, parsePersistedState } from '../../../src/state/persisted-state.js';
import { longestOffMs, proofsStartedInLast24h } from '../../../src/state/proof-of-boot.js';
import { thrownSync } from '../../helpers/thrown.js';

const DAY_MS = 24 * 60 * 60 * 1000;
const NOW = Date.parse('2026-11-26T12:00:00Z');

describe('the proof-of-boot record', () => {
  it('round-trips through the state file, and is empty in a state written before proof of boot', () => {
    const state = { ...emptyState(), proofOfBoot: { h1: { atMs: NOW, result: 'ok' as const, durationMs: 95_000 }, h2: { atMs: NOW, result: 'failed' as const, durationMs: 600_000, code: 'POWER_TIMEOUT' } } };
    expect(parsePersistedState(JSON.parse(JSON.stringify(state))).proofOfBoot).toEqual(state.proofOfBoot);
    const { proofOfBoot: _, ...older } = emptyState();
    expect(parsePersistedState(JSON.parse(JSON.stringify(older))).proofOfBoot).toEqual({});
  });

  it('refuses an entry with a result it does not know', () => {
    const bad = { ...emptyState(), proofOfBoot: { h1: { atMs: NOW, result: 'maybe', durationMs: 1 } } };
    expect(thrownSync(() => parsePersistedState(JSON.parse(JSON.stringify(bad))))).toMatchObject({ code: 'STATE_CORRUPT' });
  });

  it('counts the proofs started in the last 24 h, failed ones too', () => {
    const record = {
      h1: { atMs: NOW - DAY_MS - 1, result: 'ok' as const, durationMs: 1 },
      h2: { atMs: NOW - DAY_MS + 1, result: 'failed' as const, durationMs: 1 },
      h3: { atMs: NOW, result: 'ok' as const, durationMs: 1 },
    };
    expect(proofsStartedInLast24h(record, NOW)).toBe(2);
  });

  it('says how long the longest-off host has been off (0 when none)', () => {
    expect(longestOffMs({}, NOW)).toBe(0);
    expect(longestOffMs({ h1: NOW - 3 * DAY_MS, h2: NOW - DAY_MS }, NOW)).toBe(3 * DAY_MS);
  });
});
