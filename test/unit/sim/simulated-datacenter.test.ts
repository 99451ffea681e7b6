import { describe, expect, it } from 'vitest';
import type { ClusterSnapshot, UsageSample } from '../../../src/model/snapshot.js';
import { columnsOf } from '../../../src/model/usage-columns.js';
import { SimulatedDatacenter } from '../../../src/sim/simulated-datacenter.js';
import { runSimulation } from '../../../src/sim/run-simulation.js';
import type { SimulationDecision, SimulationPolicy } from '../../../src/sim/simulation-policy.js';
import { NO_ACTIONS } from '../../../src/sim/simulation-policy.js';
import { demandFractionAt } from '../../../src/sim/trace-demand.js';
import { host, tinySetup, vm } from './tiny-setup.js';
import { testSetup } from '../../helpers/sim-daemon.js';

const JOULES_PER_KWH = 3.6e6;

/** A policy that plays a script: decision k (0-based) returns script[k]. */
function scripted(script: readonly Partial<SimulationDecision>[]): SimulationPolicy {
  let k = 0;
  return {
    name: 'scripted',
    decide: () => ({ ...NO_ACTIONS, ...(script[k++] ?? {}) }),
  };
}

describe('energy accounting', () => {
  it('idle-is-off (CloudSim): trapezoid between updates, nothing for an interval that starts at 0 %', () => {
    // Demand 20 % at t=300, 40 % at 600, 60 % at 900. P(u) = 100 + 100u.
    const setup = tinySetup([host('h0')], [vm('v0', [10, 20, 40, 60])]);
    const report = runSimulation(setup, scripted([]));
    // 0-300: 0 (the host reads 0 % before the first update); 300-600: (120+140)/2*300; 600-900: (140+160)/2*300.
    expect(report.energyKWh * JOULES_PER_KWH).toBeCloseTo(39000 + 45000, 6);
    expect(report.decisions).toBe(3);
  });

  it('power-managed: an idle host on draws P(0); off draws nothing; booting draws bootWatts for bootSeconds', () => {
    const setup = tinySetup([host('h0'), host('h1', { bootSeconds: 100, bootWatts: 50 })], [vm('v0', [50])], {
      idleHostsAreOff: false,
      zeroDemandEndsVm: false,
    });
    const report = runSimulation(setup, scripted([{ powerOff: ['h1'] }, { powerOn: ['h1'] }]));
    const h0 = (100 + 150) / 2 * 300 + 150 * 600; // from an unmeasured 0 % at t=0, then 50 %
    const h1 = 100 * 300 + 0 * 300 + 50 * 100 + 100 * 200; // idle, off, booting, idle
    expect(report.energyKWh * JOULES_PER_KWH).toBeCloseTo(h0 + h1, 6);
    expect(report.powerOffs).toBe(1);
    expect(report.powerOns).toBe(1);
    expect(report.hostsPoweredOffPeak).toBe(1);
  });

  it('non-power-aware accounting: every host at maximum power all the time', () => {
    const setup = tinySetup([host('h0'), host('h1')], [vm('v0', [10])]);
    const report = runSimulation(setup, { ...scripted([]), energyAccounting: 'max-power' });
    expect(report.energyKWh * JOULES_PER_KWH).toBeCloseTo(2 * 200 * 900, 6);
  });
});

describe('migration model', () => {
  it('takes memory/speed seconds, costs the VM 10 % at its source and reserves 10 % at its destination', () => {
    // 625 MiB at 62.5 MiB/s = 10 s. Demand 500 (50 % of 1000).
    const setup = tinySetup([host('h0'), host('h1')], [vm('v0', [50])]);
    const report = runSimulation(setup, scripted([{ migrations: [{ vm: 'v0', from: 'h0', to: 'h1' }] }]));
    expect(report.migrations).toBe(1);
    // Energy: 300-310 h0 at 50 % (150 W) and h1 at 5 % (105 W); 310-900 h1 at 50 %; h0 idle (off) after.
    expect(report.energyKWh * JOULES_PER_KWH).toBeCloseTo(150 * 10 + 105 * 10 + 150 * 590, 6);
    // PDM: 10 % of 500 for 10 s over 500 requested for 600 s (history from 300 to 900).
    expect(report.pdmPct).toBeCloseTo(((0.1 * 500 * 10) / (500 * 600)) * 100, 9);
    // SLATAH: the destination gets 10 % of what it is asked during the migration (a CloudSim artefact).
    // Active time: h0 10 s, h1 600 s; saturated: h1 10 s.
    expect(report.slatahPct).toBeCloseTo((10 / 610) * 100, 9);
    expect(report.overallSlaViolationPct).toBeCloseTo(report.pdmPct, 9);
  });

  it('moves the VM only when the migration ends', () => {
    const dc = new SimulatedDatacenter(tinySetup([host('h0'), host('h1')], [vm('v0', [50])]));
    dc.placeInitial('first-fit');
    dc.advanceTo(300);
    expect(dc.startMigration('v0', 'h0', 'h1')).toBeUndefined();
    dc.settle();
    expect(dc.vmHost('v0')).toBe('h0');
    expect(dc.hostView('h1')?.vms.map((v) => [v.id, v.incoming])).toEqual([['v0', true]]);
    expect(dc.hostView('h1')?.cpuUsed).toBeCloseTo(50, 9);
    expect(dc.hostView('h0')?.vms[0]?.cpuUsed).toBeCloseTo(450, 9);
    dc.advanceTo(309);
    expect(dc.vmHost('v0')).toBe('h0');
    dc.advanceTo(311);
    expect(dc.vmHost('v0')).toBe('h1');
    expect(dc.hostView('h0')?.vms).toEqual([]);
    expect(dc.hostView('h1')?.vms.map((v) => [v.id, v.incoming, v.cpuUsed])).toEqual([['v0', false, 500]]);
  });

  it('refuses a migration from the wrong source, of an unknown VM, onto the same host, and counts it', () => {
    const setup = tinySetup([host('h0'), host('h1')], [vm('v0', [50])]);
    const report = runSimulation(
      setup,
      scripted([
        {
          migrations: [
            { vm: 'v0', from: 'h1', to: 'h0' },
            { vm: 'nope', from: 'h0', to: 'h1' },
            { vm: 'v0', from: 'h0', to: 'h0' },
          ],
        },
      ]),
    );
    expect(report.migrations).toBe(0);
    expect(report.rejectedActions).toEqual({ 'wrong-source': 1, 'unknown-vm': 1, 'same-host': 1 });
  });

  it("with 'reserve' memory, a destination without room refuses", () => {
    const setup = tinySetup([host('h0'), host('h1', { memoryMiB: 1000 })], [vm('v0', [10], { cpu: 500 }), vm('v1', [10], { cpu: 500, memoryMiB: 900 })], {
      memoryAdmission: 'reserve',
      initialPlacement: 'first-fit',
    });
    const dc = new SimulatedDatacenter(setup);
    dc.placeInitial('first-fit');
    dc.advanceTo(300);
    expect(dc.startMigration('v1', 'h0', 'h1')).toBeUndefined();
    expect(dc.startMigration('v0', 'h0', 'h1')).toBe('no-memory');
  });
});

describe('power actions (power-managed setups)', () => {
  const managed = { idleHostsAreOff: false, zeroDemandEndsVm: false } as const;

  it('refuses to power off a host that still has VMs, and counts it', () => {
    const setup = tinySetup([host('h0'), host('h1')], [vm('v0', [50])], managed);
    const report = runSimulation(setup, scripted([{ powerOff: ['h0'] }]));
    expect(report.rejectedActions).toEqual({ 'not-empty': 1 });
    expect(report.powerOffs).toBe(0);
  });

  it('powers off a host once the VMs leaving it in the same decision have left', () => {
    const dc = new SimulatedDatacenter(tinySetup([host('h0'), host('h1')], [vm('v0', [50])], managed));
    dc.placeInitial('first-fit');
    dc.advanceTo(300);
    dc.startMigration('v0', 'h0', 'h1');
    expect(dc.powerOff('h0')).toBeUndefined();
    dc.settle();
    expect(dc.hostView('h0')?.power).toBe('on');
    dc.advanceTo(320);
    expect(dc.hostView('h0')?.power).toBe('off');
  });

  it('a migration onto a booting host waits for the boot', () => {
    const setup = tinySetup([host('h0'), host('h1', { bootSeconds: 100 })], [vm('v0', [50])], { ...managed, emptyHostsStartOff: true });
    const dc = new SimulatedDatacenter(setup);
    dc.placeInitial('first-fit');
    expect(dc.hostView('h1')?.power).toBe('off');
    dc.advanceTo(300);
    expect(dc.startMigration('v0', 'h0', 'h1')).toBe('target-off');
    dc.powerOn('h1');
    expect(dc.startMigration('v0', 'h0', 'h1')).toBeUndefined();
    dc.advanceTo(399);
    expect(dc.hostView('h1')?.power).toBe('booting');
    expect(dc.inFlight()).toEqual([]);
    dc.advanceTo(400);
    expect(dc.hostView('h1')?.power).toBe('on');
    expect(dc.inFlight().map((m) => [m.vm, m.from, m.to, m.endsAtSeconds])).toEqual([['v0', 'h0', 'h1', 410]]);
    dc.advanceTo(411);
    expect(dc.vmHost('v0')).toBe('h1');
  });
});

describe('CPU sharing', () => {
  it('an oversubscribed host shares its CPU in proportion to demand, floored (CloudSim)', () => {
    const dc = new SimulatedDatacenter(tinySetup([host('h0'), host('h1')], [vm('a', [80]), vm('b', [40])]));
    dc.placeInitial('first-fit'); // a on h0, b on h1 (each provisions all 1000 of a host)
    dc.advanceTo(300);
    dc.startMigration('b', 'h1', 'h0');
    dc.settle();
    // While b migrates in, h0 only reserves 10 % of it: 800 + 40 <= 1000, no sharing yet.
    expect(dc.hostView('h0')?.vms.map((v) => v.cpuUsed)).toEqual([800, 0]);
    dc.advanceTo(311);
    // 800 + 400 > 1000: each gets floor(demand * 1000 / 1200).
    expect(dc.hostView('h0')?.vms.map((v) => [v.id, v.cpuUsed])).toEqual([
      ['a', 666],
      ['b', 333],
    ]);
    expect(dc.hostView('h0')?.cpuUsed).toBe(999);
    dc.advanceTo(611);
    const totals = dc.totals();
    // h0 is saturated (less CPU than requested) from 310 on.
    expect(totals.saturatedHostSeconds).toBeCloseTo(10 + 301, 9);
    expect(totals.requestedCpuSeconds - totals.allocatedCpuSeconds).toBeGreaterThan(0);
  });

  it('caps a vCPU at one physical core of its host', () => {
    const dc = new SimulatedDatacenter(tinySetup([host('h0'), host('h1', { cpu: 2000, cpuPerCore: 600 })], [vm('a', [80])]));
    dc.placeInitial('first-fit');
    dc.advanceTo(300);
    dc.startMigration('a', 'h0', 'h1');
    dc.advanceTo(311);
    expect(dc.hostView('h1')?.vms.map((v) => v.cpuUsed)).toEqual([600]);
    expect(dc.hostView('h1')?.cpuUsed).toBe(600);
  });

  it('leaves out a VM that fits nowhere at creation', () => {
    const dc = new SimulatedDatacenter(tinySetup([host('h0', { cpuPerCore: 600, cpu: 1200 })], [vm('a', [80])]));
    dc.placeInitial('first-fit');
    expect(dc.vmHost('a')).toBeUndefined();
    expect(dc.totals().unplacedVms).toBe(1);
  });
});

describe('the VM-death quirk (CloudSim: demand 0 at an update ends the VM)', () => {
  const cloudsimTimes = { startOffsetSeconds: 0.1, horizonSeconds: 2000 } as const;

  it('removes a VM at the first k >= 1 with trace[k] = trace[k+1] = 0', () => {
    const dc = new SimulatedDatacenter(
      tinySetup([host('h0')], [vm('dies-at-1', [5, 0, 0, 3], { cpu: 250 }), vm('dies-at-3', [5, 0, 7, 0, 0, 4], { cpu: 250 }), vm('lives', [0, 0, 5], { cpu: 250 })], cloudsimTimes),
    );
    dc.placeInitial('first-fit');
    dc.advanceTo(300.1);
    expect([dc.vmHost('dies-at-1'), dc.vmHost('dies-at-3'), dc.vmHost('lives')]).toEqual([undefined, 'h0', 'h0']);
    dc.advanceTo(600.1);
    expect(dc.vmHost('dies-at-3')).toBe('h0');
    dc.advanceTo(900.1);
    expect(dc.vmHost('dies-at-3')).toBeUndefined();
    expect(dc.hostView('h0')?.vms.map((v) => v.id)).toEqual(['lives']);
    expect(dc.totals().vmsAlive).toBe(1);
  });

  it('is off in setups without the quirk', () => {
    const dc = new SimulatedDatacenter(tinySetup([host('h0')], [vm('v', [5, 0, 0, 3])], { ...cloudsimTimes, zeroDemandEndsVm: false }));
    dc.placeInitial('first-fit');
    dc.advanceTo(300.1);
    expect(dc.vmHost('v')).toBe('h0');
  });
});

describe('demandFractionAt', () => {
  const trace = new Float64Array([0.1, 0.3, 0.2]);
  it('reads samples on the grid and interpolates between them as CloudSim does', () => {
    expect(demandFractionAt(trace, 300, 300)).toBe(0.3);
    expect(demandFractionAt(trace, 450, 300)).toBeCloseTo(0.25, 12);
    expect(demandFractionAt(trace, 300.1, 300)).toBe(0.3 + ((0.2 - 0.3) / 300) * 0.1);
    expect(demandFractionAt(trace, 5000, 300)).toBe(0.2);
  });
});

describe('the datacenter figures the demo summary reads', () => {
  it('dates its clock from the epoch given, measures hosts off as the clock moves, and prices every host on', () => {
    const setup = testSetup([{ id: 'h1' }, { id: 'h2' }, { id: 'h3' }], [{ id: 'a', host: 'h1', load: 0.5 }]);
    const dc = new SimulatedDatacenter(setup, { epochMs: Date.parse('2011-03-03T00:00:00Z') });
    dc.placeInitial('as-specified');
    dc.advanceTo(1);
    expect(new Date(dc.nowMs).toISOString()).toBe('2011-03-03T00:00:01.000Z');
    expect(dc.powerOff('h2')).toBeUndefined();
    expect(dc.powerOff('h3')).toBeUndefined();
    dc.advanceTo(3601);
    // No recordSamples (the daemon's ports never call it): the peak is measured all the same.
    const totals = dc.totals();
    expect(totals.hostsPoweredOffPeak).toBe(2);
    expect(totals.hostOffSeconds).toBeCloseTo(2 * 3600, 0);
    // The test hosts idle at 100 W and draw 5 W off: every host on costs 2 hosts x 95 W x 1 h more.
    expect(totals.allHostsOnEnergyJoules - totals.energyJoules).toBeCloseTo(2 * 95 * 3600, -2);
  });
});

describe('snapshots', () => {
  it('hand out each sample array with columns that hold its values, and an earlier snapshot keeps its own', () => {
    const setup = tinySetup([host('h1'), host('h2')], [vm('a', [10, 40, 20, 90, 30, 50, 70, 60]), vm('b', [80, 20, 60, 10, 5, 45, 15, 25])], { horizonSeconds: 3000 });
    const dc = new SimulatedDatacenter(setup, { historyLength: 3 });
    dc.placeInitial('first-fit');
    const asColumns = (samples: readonly UsageSample[]) => {
      const c = columnsOf(samples);
      if (c === undefined) return undefined;
      return Array.from({ length: c.length }, (_, i) => ({ atMs: c.atMs[c.offset + i], use: { cpu: c.cpu[c.offset + i], memory: c.memory[c.offset + i] } }));
    };
    const taken: { snapshot: ClusterSnapshot; copy: string }[] = [];
    for (let t = 300; t <= 2400; t += 300) {
      dc.advanceTo(t);
      dc.recordSamples();
      const snapshot = dc.snapshot();
      for (const entity of [...snapshot.hosts, ...snapshot.vms]) expect(asColumns(entity.samples)).toEqual(entity.samples);
      taken.push({ snapshot, copy: JSON.stringify(snapshot) });
    }
    expect(taken.at(-1)?.snapshot.vms[0]?.samples).toHaveLength(3);
    for (const { snapshot, copy } of taken) {
      expect(JSON.stringify(snapshot)).toBe(copy);
      for (const entity of [...snapshot.hosts, ...snapshot.vms]) expect(asColumns(entity.samples)).toEqual(entity.samples);
    }
  });
});
