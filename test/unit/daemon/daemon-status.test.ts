import { describe, expect, it } from 'vitest';
import { healthFromLastCycle } from '../../../src/daemon/daemon-status.js';

describe('healthFromLastCycle', () => {
  const MINUTE_MS = 60_000;
  const base = { startedAtMs: 0, scheduleIntervalMs: 5 * MINUTE_MS, maxMissedIntervals: 3 };

  it('is healthy with a successful cycle within the allowed intervals', () => {
    expect(healthFromLastCycle({ ...base, nowMs: 100 * MINUTE_MS, lastSuccessfulCycleMs: 85 * MINUTE_MS })).toEqual({
      healthy: true,
      lastSuccessfulCycleMs: 85 * MINUTE_MS,
    });
  });

  it('is unhealthy once more intervals passed, and says for how long', () => {
    const report = healthFromLastCycle({ ...base, nowMs: 100 * MINUTE_MS, lastSuccessfulCycleMs: 84 * MINUTE_MS });
    expect(report).toEqual({
      healthy: false,
      lastSuccessfulCycleMs: 84 * MINUTE_MS,
      reason: 'no successful cycle for 960 s (more than 3 schedule intervals)',
    });
  });

  it('gives a fresh daemon the same grace from its start', () => {
    expect(healthFromLastCycle({ ...base, nowMs: 10 * MINUTE_MS, lastSuccessfulCycleMs: undefined })).toEqual({ healthy: true, reason: 'starting: no cycle has completed yet' });
    expect(healthFromLastCycle({ ...base, nowMs: 16 * MINUTE_MS, lastSuccessfulCycleMs: undefined })).toEqual({
      healthy: false,
      reason: 'no successful cycle since start for 960 s (more than 3 schedule intervals)',
    });
  });
});
