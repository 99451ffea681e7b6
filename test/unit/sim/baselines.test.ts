import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cloudSimPower } from '../../../src/sim/baselines/cloudsim-power.js';
import { createBaseline } from '../../../src/sim/baselines/create-baseline.js';
import { simpleRegression } from '../../../src/sim/baselines/simple-regression.js';
import { buildCloudSimSetup, cloudSimPowerModel } from '../../../src/sim/cloudsim-setup.js';
import { runSimulation } from '../../../src/sim/run-simulation.js';
import { SimulatedDatacenter } from '../../../src/sim/simulated-datacenter.js';
import { buildTraceSetup } from '../../../src/sim/trace-setup.js';
import { loadWorkload } from '../../../src/sim/workload/load-workload.js';
import { isConsolidatorError } from '../../../src/errors.js';
import { powerAt } from '../../../src/model/snapshot.js';
import { thrownSync } from '../../helpers/thrown.js';
import { host, tinySetup, vm } from './tiny-setup.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures');

describe('THR-MMT decisions', () => {
  it('relieves an overloaded host of its VM with the least memory, onto the cheapest host', () => {
    const setup = tinySetup([host('h0'), host('h1'), host('h2')], [vm('big', [90], { cpu: 500, memoryMiB: 1000 }), vm('small', [90], { cpu: 500, memoryMiB: 500 })]);
    const dc = new SimulatedDatacenter(setup);
    dc.placeInitial('first-fit'); // both on h0: 900 of 1000 requested > 80 %
    dc.advanceTo(300);
    dc.recordSamples();
    const decision = createBaseline('thr-mmt').decide({ snapshot: dc.snapshot(), nowMs: 300_000, inFlight: [] });
    expect(decision.migrations).toEqual([{ vm: 'small', from: 'h0', to: 'h1' }]);
  });

  it('empties the least utilised host when all its VMs fit elsewhere', () => {
    const setup = tinySetup([host('h0'), host('h1')], [vm('a', [30], { cpu: 1000 }), vm('b', [20], { cpu: 1000 })]);
    const dc = new SimulatedDatacenter(setup);
    dc.placeInitial('first-fit'); // a on h0 (30 %), b on h1 (20 %)
    dc.advanceTo(300);
    dc.recordSamples();
    const decision = createBaseline('thr-mmt').decide({ snapshot: dc.snapshot(), nowMs: 300_000, inFlight: [] });
    expect(decision.migrations).toEqual([{ vm: 'b', from: 'h1', to: 'h0' }]);
  });
});

describe('baselines on a small PlanetLab slice (reference setup, 8 hosts)', () => {
  it('run deterministically, keep every VM placed and report consistent figures', async () => {
    const workload = await loadWorkload(join(FIXTURES, 'planetlab-small'));
    const setup = buildCloudSimSetup(workload, { hostCount: 8 });
    const first = runSimulation(setup, createBaseline('thr-mmt'));
    const again = runSimulation(setup, createBaseline('thr-mmt'));
    expect({ ...again, wallSeconds: 0 }).toEqual({ ...first, wallSeconds: 0 });
    expect(first.decisions).toBe(287);
    expect(first.unplacedVms).toBe(0);
    const dvfs = runSimulation(setup, createBaseline('dvfs'));
    const npa = runSimulation(setup, createBaseline('npa'));
    expect(dvfs.migrations).toBe(0);
    expect(first.energyKWh).toBeLessThan(dvfs.energyKWh);
    // NPA: 8 hosts at maximum power (4 x 117 W + 4 x 135 W) from 0 to the last decision at 86 100.1 s.
    expect(npa.energyKWh).toBeCloseTo(((4 * 117 + 4 * 135) * 86_100.1) / 3.6e6, 9);
    expect(first.slavPct).toBeCloseTo((first.slatahPct * first.pdmPct) / 100, 12);
    expect(first.esv).toBeCloseTo((first.energyKWh * first.slavPct) / 100, 12);
    const lr = runSimulation(setup, createBaseline('lr-mmt'));
    expect(lr.decisions).toBe(287);
  });

  it('rejects an unknown baseline name', () => {
    expect(() => createBaseline('best')).toThrow(/unknown baseline "best"; valid: npa, dvfs, thr-mmt, lr-mmt/);
  });
});

describe('a power-managed setup over Bitbrains', () => {
  it('skips zero-capacity VMs and powers nothing off on its own', async () => {
    const workload = await loadWorkload(join(FIXTURES, 'bitbrains-small'));
    const setup = buildTraceSetup(workload, {
      hostType: { name: 'test', cores: 8, memoryMiB: 16_384, powerModel: { kind: 'linear', idleWatts: 100, maxWatts: 300 }, bootSeconds: 120 },
      hostCount: 3,
    });
    expect(setup.vms.map((v) => [v.id, v.vcpus, v.memoryMiB])).toEqual([
      ['vm-0', 2, 8192],
      ['vm-1', 1, 686],
    ]);
    const report = runSimulation(setup, createBaseline('dvfs'));
    expect(report.hostsPoweredOffPeak).toBe(2); // both VMs fit on host-0; the others start off
    expect(report.energyKWh).toBeGreaterThan(0);
  });
});

describe('CloudSim arithmetic', () => {
  it('power: same values as the model, and an error above 100 %', () => {
    const model = cloudSimPowerModel(1);
    for (const u of [0, 0.05, 0.1, 0.37, 0.5, 0.999, 1]) expect(cloudSimPower(model, u)).toBeCloseTo(powerAt(model, u), 9);
    expect(() => cloudSimPower(model, 1.0001)).toThrow(/outside \[0, 1\]/);
    expect(isConsolidatorError(thrownSync(() => cloudSimPower(model, 2)), 'INTERNAL')).toBe(true);
  });

  it('regression: a straight line is recovered', () => {
    const y = Float64Array.from({ length: 10 }, (_, i) => 0.2 + 0.03 * (i + 1));
    const fit = simpleRegression(y);
    expect(fit?.intercept).toBeCloseTo(0.2, 12);
    expect(fit?.slope).toBeCloseTo(0.03, 12);
    expect(simpleRegression(new Float64Array([1, 2]))).toBeUndefined();
  });
});
