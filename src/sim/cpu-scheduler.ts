import type { DatacenterRuntime, HostRuntime, VmRuntime } from './datacenter-runtime.js';
import type { SlaAccounting } from './sla-accounting.js';
import { demandFractionAt } from './trace-demand.js';

/**
 * How the hosts share out CPU: each VM's demand from its trace at an update, then per host
 * HostDynamicWorkload.updateVmsProcessing + VmSchedulerTimeSharedOverSubscription (CPU shared in
 * proportion to demand on an oversubscribed host, floored where the setup says so; a migrating VM
 * gets the source share at its source while its destination reserves the destination share), writing
 * each VM's and host's SLA history entry.
 */
export class CpuScheduler {
  private readonly runtime: DatacenterRuntime;
  private readonly sla: SlaAccounting;

  constructor(deps: { readonly runtime: DatacenterRuntime; readonly sla: SlaAccounting }) {
    this.runtime = deps.runtime;
    this.sla = deps.sla;
  }

  /** Every live VM's CPU demand and memory in use at `t`, from its traces. */
  updateDemands(t: number): void {
    const { setup } = this.runtime;
    for (const vm of this.runtime.vms) {
      if (!vm.alive) continue;
      // A VM that appeared later reads its traces from its own start.
      const at = vm.spec.startSeconds === undefined ? t : t - vm.spec.startSeconds;
      vm.demandCpu = demandFractionAt(vm.spec.cpuTrace, at, setup.sampleSeconds) * vm.spec.cpu;
      const memoryTrace = vm.spec.memoryTrace;
      vm.memoryUseMiB =
        memoryTrace === undefined ? vm.spec.memoryMiB : demandFractionAt(memoryTrace, at, setup.sampleSeconds) * vm.spec.memoryMiB;
    }
  }

  /** Recomputes every host at `t`. */
  computeAll(t: number): void {
    for (const host of this.runtime.hosts) this.computeHost(host, t);
  }

  /** Recomputes the hosts touched by actions at the last update's time (no energy is accrued). */
  recomputeTouched(): void {
    const { touched } = this.runtime;
    if (touched.size === 0) return;
    const t = this.runtime.lastUpdateSeconds;
    for (const index of [...touched].sort((a, b) => a - b)) {
      const host = this.runtime.hosts[index];
      if (host !== undefined) this.computeHost(host, t);
    }
    touched.clear();
  }

  /** HostDynamicWorkload.updateVmsProcessing + VmSchedulerTimeSharedOverSubscription, for one host. */
  private computeHost(host: HostRuntime, t: number): void {
    const { setup } = this.runtime;
    const capacity = host.spec.cpu;
    const perCoreCap = host.spec.cpuPerCore;
    const sourceShare = setup.migrationSourceShare;
    const destinationShare = setup.migrationDestinationShare;
    const floorShares = setup.floorOversubscribedShares ?? true;
    let available = capacity;
    let oversubscribed = false;
    let required = 0;
    const list = host.vms;
    for (const index of list) {
      const vm = this.runtime.vm(index);
      const capped = cappedRequest(vm, perCoreCap);
      const request = host.incoming.includes(index) ? capped * destinationShare : capped;
      required += request;
      if (available >= request) available -= request;
      else {
        oversubscribed = true;
        available = 0;
      }
    }
    const scale = oversubscribed ? capacity / required : 1;
    let util = 0;
    let requested = 0;
    let memoryUsed = 0;
    for (const index of list) {
      const vm = this.runtime.vm(index);
      const incoming = host.incoming.includes(index);
      const outgoing = vm.migrating > 0 && !incoming;
      const vcpus = Math.max(1, vm.spec.vcpus);
      const perCore = vm.demandCpu / vcpus;
      const cappedPerCore = perCore > perCoreCap ? perCoreCap : perCore;
      let alloc = 0;
      for (let core = 0; core < vcpus; core++) {
        let mips = cappedPerCore;
        if (oversubscribed) {
          if (outgoing) mips = mips * scale * sourceShare;
          else if (incoming) mips = mips * destinationShare * scale;
          else mips = mips * scale;
          if (floorShares) mips = Math.floor(mips);
        } else if (outgoing) mips *= sourceShare;
        else if (incoming) mips *= destinationShare;
        alloc += mips;
      }
      memoryUsed += vm.memoryUseMiB;
      if (incoming) {
        util += alloc;
      } else {
        vm.allocCpu = alloc;
        this.sla.vmHistoryEntry(vm, t, alloc, vm.demandCpu, outgoing);
        util += vm.migrating > 0 ? alloc / sourceShare : alloc;
      }
      requested += vm.demandCpu;
    }
    host.prevUtilCpu = host.utilCpu;
    host.utilCpu = util;
    host.requestedCpu = requested;
    host.memoryUsedMiB = memoryUsed;
    this.sla.hostHistoryEntry(host, t, util, requested, util > 0);
  }
}

/** A vCPU's request is capped at one physical core (VmSchedulerTimeSharedOverSubscription). */
function cappedRequest(vm: VmRuntime, perCoreCap: number): number {
  const vcpus = Math.max(1, vm.spec.vcpus);
  const perCore = vm.demandCpu / vcpus;
  const capped = perCore > perCoreCap ? perCoreCap : perCore;
  let total = 0;
  for (let core = 0; core < vcpus; core++) total += capped;
  return total;
}
