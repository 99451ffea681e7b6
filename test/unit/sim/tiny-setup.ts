import type { PowerModel } from '../../../src/model/snapshot.js';
import type { SimHostSpec, SimVmSpec, SimulationSetup } from '../../../src/sim/simulation-setup.js';
import { traceFractions } from '../../../src/sim/simulation-setup.js';

/** P(u) = 100 + 100u W: easy to compute by hand. */
export const LINEAR_CURVE: PowerModel = { kind: 'curve', wattsAtTenths: [100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200] };

export const SAMPLE_SECONDS = 300;

export function host(id: string, overrides: Partial<SimHostSpec> = {}): SimHostSpec {
  return {
    id,
    typeName: 'test',
    cpu: 1000,
    cpuPerCore: 1000,
    memoryMiB: 4096,
    powerModel: LINEAR_CURVE,
    bootSeconds: 0,
    bootWatts: 0,
    offWatts: 0,
    ...overrides,
  };
}

/** A VM whose CPU trace (percent per 300 s sample) starts with `percents` and repeats the last value. */
export function vm(id: string, percents: readonly number[], overrides: Partial<SimVmSpec> = {}): SimVmSpec {
  const samples = new Float64Array(Math.max(percents.length, 8));
  for (let i = 0; i < samples.length; i++) samples[i] = percents[Math.min(i, percents.length - 1)] ?? 0;
  return { id, typeName: 'test', vcpus: 1, cpu: 1000, memoryMiB: 625, cpuTrace: traceFractions(samples), ...overrides };
}

/** CloudSim-like rules (idle hosts off, 62.5 MiB/s migrations) unless overridden; decisions at 300, 600, 900. */
export function tinySetup(hosts: SimHostSpec[], vms: SimVmSpec[], overrides: Partial<SimulationSetup> = {}): SimulationSetup {
  return {
    name: 'tiny',
    hosts,
    vms,
    sampleSeconds: SAMPLE_SECONDS,
    intervalSeconds: SAMPLE_SECONDS,
    startOffsetSeconds: 0,
    horizonSeconds: 1000,
    migrationMiBps: 62.5,
    migrationSourceShare: 0.9,
    migrationDestinationShare: 0.1,
    idleHostsAreOff: true,
    zeroDemandEndsVm: true,
    memoryAdmission: 'reserve-at-creation',
    initialPlacement: 'first-fit',
    emptyHostsStartOff: false,
    ...overrides,
  };
}
