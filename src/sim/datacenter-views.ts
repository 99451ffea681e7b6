import type { HostId, VmId } from '../model/ids.js';
import type { ClusterSnapshot, HostSnapshot, UsageSample, VmSnapshot } from '../model/snapshot.js';
import { attachColumns } from '../model/usage-columns.js';
import type { DatacenterRuntime, HostPowerState } from './datacenter-runtime.js';
import type { EnergyMeter } from './energy-meter.js';
import type { HostPower } from './host-power.js';
import type { SimHostSpec, SimVmSpec } from './simulation-setup.js';
import type { SlidingColumns } from './sliding-columns.js';

/** One host as the simulated ports see it (its hypervisor and its BMC). */
export interface HostView {
  readonly id: HostId;
  readonly spec: SimHostSpec;
  readonly power: HostPowerState;
  readonly vanished: boolean;
  readonly cpuUsed: number;
  readonly memoryUsedMiB: number;
  readonly powerWatts: number;
  readonly vms: readonly {
    readonly id: VmId;
    readonly spec: SimVmSpec;
    readonly incoming: boolean;
    readonly migrating: boolean;
    readonly cpuUsed: number;
    readonly memoryUsedMiB: number;
  }[];
}

export function viewHost(runtime: DatacenterRuntime, energy: EnergyMeter, hostId: HostId): HostView | undefined {
  const index = runtime.hostIndex.get(hostId);
  if (index === undefined) return undefined;
  const host = runtime.host(index);
  return {
    id: host.spec.id,
    spec: host.spec,
    power: host.power,
    vanished: host.vanished,
    cpuUsed: host.utilCpu,
    memoryUsedMiB: host.memoryUsedMiB,
    powerWatts: energy.hostWatts(host),
    vms: host.vms.map((v) => {
      const vm = runtime.vm(v);
      const incoming = host.incoming.includes(v);
      return {
        id: vm.spec.id,
        spec: vm.spec,
        incoming,
        migrating: vm.migrating > 0,
        // A VM migrating in runs at its source; here it only holds a reservation.
        cpuUsed: incoming ? 0 : vm.allocCpu,
        memoryUsedMiB: vm.memoryUseMiB,
      };
    }),
  };
}

/** The host a live VM runs on. */
export function hostOfVm(runtime: DatacenterRuntime, vmId: VmId): HostId | undefined {
  const index = runtime.vmIndex.get(vmId);
  if (index === undefined) return undefined;
  const vm = runtime.vm(index);
  return vm.alive ? runtime.hosts[vm.host]?.spec.id : undefined;
}

/**
 * Appends one sample per host and VM at `atMs`, keeping the last `historyLength` (what snapshots
 * hand out). Returns how many hosts are off now.
 */
export function recordSamples(runtime: DatacenterRuntime, power: HostPower, atMs: number, historyLength: number, withoutMemory = false): number {
  let off = 0;
  for (const host of runtime.hosts) {
    const memory = withoutMemory ? 0 : host.memoryUsedMiB;
    pushBounded(host.samples, { atMs, use: { cpu: host.utilCpu, memory } }, historyLength);
    host.columns.push(atMs, host.utilCpu, memory, historyLength);
    if (power.isOff(host)) off++;
  }
  for (const vm of runtime.vms) {
    if (!vm.alive) continue;
    const memory = withoutMemory ? 0 : vm.memoryUseMiB;
    pushBounded(vm.samples, { atMs, use: { cpu: vm.demandCpu, memory } }, historyLength);
    vm.columns.push(atMs, vm.demandCpu, memory, historyLength);
  }
  return off;
}

/** See SimulatedDatacenter.snapshot. */
export function snapshotOf(runtime: DatacenterRuntime, takenAtMs: number): ClusterSnapshot {
  const hosts: HostSnapshot[] = [];
  const vms: VmSnapshot[] = [];
  const idleOff = runtime.setup.idleHostsAreOff;
  const samplesOf = (entity: { readonly samples: readonly UsageSample[]; readonly columns: SlidingColumns }): readonly UsageSample[] => {
    const samples = entity.samples.slice();
    return entity.columns.length === samples.length ? attachColumns(samples, entity.columns.view()) : samples;
  };
  for (const host of runtime.hosts) {
    hosts.push({
      id: host.spec.id,
      power: idleOff ? (host.vms.length === 0 ? 'off' : 'on') : host.power === 'off' ? 'off' : 'on',
      reachable: !host.vanished && (idleOff || host.power === 'on'),
      capacity: { cpu: host.spec.cpu, memory: host.spec.memoryMiB },
      samples: samplesOf(host),
      excluded: host.spec.excluded === true,
      maintenance: false,
      labels: host.labels,
      powerModel: host.spec.declaredPowerModel ?? host.spec.powerModel,
      bootSeconds: idleOff ? 0 : host.spec.bootSeconds,
    });
    for (const index of host.vms) {
      const vm = runtime.vm(index);
      if (vm.host !== host.index) continue;
      vms.push({
        id: vm.spec.id,
        host: host.spec.id,
        state: 'running',
        vcpus: vm.spec.vcpus,
        memoryMiB: vm.spec.memoryMiB,
        samples: samplesOf(vm),
        pinned: vm.spec.pinned === true || vm.spec.protected === true,
        antiAffinityGroups: vm.spec.antiAffinityGroups ?? NO_GROUPS,
        ...(vm.spec.protected === true ? { protected: true } : {}),
      });
    }
  }
  return { takenAtMs, hosts, vms };
}

const NO_GROUPS: readonly string[] = Object.freeze([]);

function pushBounded<T>(list: T[], value: T, limit: number): void {
  list.push(value);
  while (list.length > limit) list.shift();
}
