import { describe, expect, it } from 'vitest';
import { traceEpochMs } from '../../../src/cli/build-drivers.js';
import { simulationSummary } from '../../../src/cli/run.js';
import type { DatacenterTotals } from '../../../src/sim/datacenter-totals.js';

describe('traceEpochMs: where the demo clock starts', () => {
  const now = Date.parse('2026-12-02T13:14:15Z');
  it('is the policy date when given, else the workload folder named after its date, else midnight UTC today', () => {
    expect(new Date(traceEpochMs('2011-03-03T06:00:00+01:00', 'demo-workload', now)).toISOString()).toBe('2011-03-03T05:00:00.000Z');
    expect(new Date(traceEpochMs(undefined, '../data/planetlab/20110420', now)).toISOString()).toBe('2011-04-20T00:00:00.000Z');
    expect(new Date(traceEpochMs(undefined, 'demo-workload', now)).toISOString()).toBe('2026-12-02T00:00:00.000Z');
  });
});

describe('simulationSummary: the demo story', () => {
  it('compares the energy with every host on, and counts host-hours off, migrations and power cycles', () => {
    const totals = {
      energyJoules: 25.3 * 3.6e6,
      allHostsOnEnergyJoules: 36.1 * 3.6e6,
      hostOffSeconds: 113 * 3600,
      migrations: 50,
      powerOffs: 8,
      powerOns: 4,
      hostsPoweredOffPeak: 7,
      memoryOverloadHostSeconds: 0,
    } as DatacenterTotals;
    const { story, figures } = simulationSummary(totals, 24 * 3600, 12);
    expect(story).toBe(
      'simulation summary: 25.3 kWh instead of 36.1 kWh with every host on: 29.9 % saved; 113 host-hours off of 288 ' +
        '(at most 7 of 12 hosts off at once), 50 migrations, 8 power-offs and 4 power-ons in 24 simulated hours',
    );
    expect(figures).toMatchObject({ energyKWh: 25.3, allHostsOnEnergyKWh: 36.1, energySavedPercent: 29.9, hostHoursOff: 113, hostsPoweredOffPeak: 7 });
  });
});
