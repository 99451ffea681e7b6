import { describe, expect, it } from 'vitest';
import { SimulatedDatacenter } from '../../../src/sim/simulated-datacenter.js';
import { runSimulation } from '../../../src/sim/run-simulation.js';
import { NO_ACTIONS } from '../../../src/sim/simulation-policy.js';
import { host, tinySetup, vm } from './tiny-setup.js';

const POWER_MANAGED = { idleHostsAreOff: false, zeroDemandEndsVm: false, memoryAdmission: 'overcommit', emptyHostsStartOff: true } as const;

describe('VMs that appear and disappear', () => {
  it('a VM appears at its start on its recorded host, reads its trace from its own start, and leaves at its end', () => {
    const setup = tinySetup(
      [host('h0'), host('h1')],
      [vm('always', [10]), vm('late', [50, 60], { startSeconds: 600, initialHost: 'h1' }), vm('early', [20], { endSeconds: 600 })],
      { ...POWER_MANAGED, emptyHostsStartOff: false },
    );
    const dc = new SimulatedDatacenter(setup);
    dc.placeInitial('first-fit');
    dc.advanceTo(300);
    expect(dc.snapshot().vms.map((v) => v.id)).toEqual(['always', 'early']);
    dc.advanceTo(600);
    const at600 = dc.snapshot();
    expect(at600.vms.map((v) => [v.id, v.host])).toEqual([
      ['always', 'h0'],
      ['late', 'h1'],
    ]);
    // 'late' starts at its first sample (50 % of 1000) at t = 600.
    expect(dc.hostView('h1')?.cpuUsed).toBeCloseTo(500, 6);
    dc.advanceTo(750);
    expect(dc.hostView('h1')?.cpuUsed).toBeCloseTo(550, 6);
  });

  it('a VM whose recorded host is off goes to a powered-on host with room; a run counts what is alive at the end', () => {
    const setup = tinySetup([host('h0'), host('h1')], [vm('a', [10]), vm('b', [10], { startSeconds: 300, initialHost: 'h1' })], POWER_MANAGED);
    const report = runSimulation(setup, { name: 'none', decide: () => NO_ACTIONS });
    expect(report.vmsAliveAtEnd).toBe(2);
    expect(report.unplacedVms).toBe(0);
    // h1 started off (empty) and stayed off: 'b' joined 'a' on h0.
    expect(report.hostHoursOff).toBeGreaterThan(0);
  });

  it('a migrating VM leaves once its migration has ended', () => {
    const setup = tinySetup([host('h0'), host('h1')], [vm('a', [10], { endSeconds: 305, memoryMiB: 6250 })], { ...POWER_MANAGED, emptyHostsStartOff: false });
    const dc = new SimulatedDatacenter(setup);
    dc.placeInitial('first-fit');
    dc.advanceTo(300);
    dc.startMigration('a', 'h0', 'h1');
    dc.settle();
    dc.advanceTo(310); // 6250 MiB at 62.5 MiB/s: the migration runs until 400
    expect(dc.vmHost('a')).toBe('h0');
    dc.advanceTo(600);
    expect(dc.vmHost('a')).toBeUndefined();
    expect(dc.totals().migratedMiB).toBe(6250);
  });
});
