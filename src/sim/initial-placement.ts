import { powerAt } from '../model/snapshot.js';
import type { DatacenterRuntime } from './datacenter-runtime.js';
import type { InitialPlacement } from './simulation-setup.js';

/**
 * Places every VM at time 0 on its provisioned CPU (CloudSim creates VMs with their full MIPS).
 * 'first-fit': the first host with room (CloudSim's PowerVmAllocationPolicySimple);
 * 'power-aware-best-fit': CloudSim 3.0.3's PABFD at creation time: the power after allocation counts
 * the CPU already allocated to VMs created on the host, the power before is the measured one (0 at
 * time 0), so an empty host always looks cheapest and VMs spread out one per host, best type first.
 * (Its overload check cannot reject anything at creation: VMs already created request nothing yet.)
 * 'as-specified': each VM on its spec's initialHost (tests and demos that need a given spread).
 * All reserve the VM's provisioned memory, whatever the setup's admission rule afterwards.
 * VMs that fit nowhere are left out; returns how many. VMs that appear later (startSeconds > 0) are
 * not placed here (VmLifecycle places them when they appear).
 */
export function placeInitial(runtime: DatacenterRuntime, mode: InitialPlacement): number {
  const { hosts, setup } = runtime;
  let unplaced = 0;
  const available = hosts.map((h) => h.spec.cpu);
  const memoryFree = hosts.map((h) => h.spec.memoryMiB);
  for (const vm of runtime.vms) {
    if ((vm.spec.startSeconds ?? 0) > 0) continue;
    const cpu = vm.spec.cpu;
    const perCore = vm.spec.vcpus > 0 ? cpu / vm.spec.vcpus : 0;
    let chosen = -1;
    let minPowerDiff = Number.MAX_VALUE;
    if (mode === 'as-specified') chosen = vm.spec.initialHost === undefined ? -1 : (runtime.hostIndex.get(vm.spec.initialHost) ?? -1);
    for (const host of mode === 'as-specified' ? [] : hosts) {
      const free = available[host.index] ?? 0;
      const memory = Math.min(vm.spec.memoryMiB, host.spec.memoryMiB);
      if (host.spec.cpuPerCore < perCore || free < cpu || (memoryFree[host.index] ?? 0) < memory) continue;
      if (mode === 'first-fit') {
        chosen = host.index;
        break;
      }
      const model = host.spec.powerModel;
      const allocated = host.spec.cpu - free;
      const diff = powerAt(model, (allocated + cpu) / host.spec.cpu) - powerAt(model, 0);
      if (diff < minPowerDiff) {
        minPowerDiff = diff;
        chosen = host.index;
      }
    }
    const host = hosts[chosen];
    if (host === undefined) {
      unplaced++;
      continue;
    }
    available[host.index] = (available[host.index] ?? 0) - cpu;
    memoryFree[host.index] = (memoryFree[host.index] ?? 0) - vm.spec.memoryMiB;
    host.vms.push(vm.index);
    vm.reservedMiB = setup.memoryAdmission === 'overcommit' ? 0 : vm.spec.memoryMiB;
    host.memoryReservedMiB += vm.reservedMiB;
    vm.host = host.index;
    vm.alive = true;
  }
  if (!setup.idleHostsAreOff && setup.emptyHostsStartOff) {
    for (const host of hosts) {
      // An excluded host is the operator's: left as it is.
      if (host.vms.length === 0 && host.spec.excluded !== true) {
        host.power = 'off';
      }
    }
  }
  return unplaced;
}
