import type { DatacenterRuntime, RejectReason } from './datacenter-runtime.js';

export interface DatacenterTotals {
  readonly energyJoules: number;
  /** The energy had no host ever been off: off and booting hosts drawing their idle power instead. */
  readonly allHostsOnEnergyJoules: number;
  /** Host-seconds spent powered off. */
  readonly hostOffSeconds: number;
  readonly migrations: number;
  readonly chainedMigrations: number;
  /** Memory the migrations copied, MiB. */
  readonly migratedMiB: number;
  readonly activeHostSeconds: number;
  readonly saturatedHostSeconds: number;
  readonly requestedCpuSeconds: number;
  readonly allocatedCpuSeconds: number;
  readonly migrationDeficitCpuSeconds: number;
  /** Mean over hosts of saturated/active time (paper-style SLATAH), hosts that were ever active. */
  readonly slatahPerHostMean: number;
  /** Mean over VMs of migration deficit/requested (paper-style PDM). */
  readonly pdmPerVmMean: number;
  /** Mean relative shortfall over intervals where a VM got less than it asked ("Average SLA violation"). */
  readonly averageShortfall: number;
  readonly memoryOverloadHostSeconds: number;
  readonly hostsPoweredOffPeak: number;
  readonly powerOns: number;
  readonly powerOffs: number;
  readonly rejected: Readonly<Partial<Record<RejectReason, number>>>;
  readonly vmsAlive: number;
  readonly unplacedVms: number;
}

/** The figures kept outside the host and VM records. */
export interface DatacenterCounters {
  readonly energyJoules: number;
  readonly allHostsOnEnergyJoules: number;
  readonly hostOffSeconds: number;
  readonly migrations: number;
  readonly chainedMigrations: number;
  readonly averageShortfall: number;
  readonly memoryOverloadHostSeconds: number;
  readonly hostsPoweredOffPeak: number;
  readonly unplacedVms: number;
  readonly migratedMiB: number;
}

/** The run's figures: sums over the host and VM records plus the counters. */
export function sumTotals(runtime: DatacenterRuntime, counters: DatacenterCounters): DatacenterTotals {
  let activeHostSeconds = 0;
  let saturatedHostSeconds = 0;
  let ratioSum = 0;
  let hostsEverActive = 0;
  let powerOns = 0;
  let powerOffs = 0;
  for (const host of runtime.hosts) {
    activeHostSeconds += host.activeSeconds;
    saturatedHostSeconds += host.saturatedSeconds;
    if (host.activeSeconds > 0) {
      hostsEverActive++;
      ratioSum += host.saturatedSeconds / host.activeSeconds;
    }
    powerOns += host.powerOns;
    powerOffs += host.powerOffs;
  }
  let requested = 0;
  let allocated = 0;
  let deficit = 0;
  let pdmSum = 0;
  let vmsWithDemand = 0;
  let vmsAlive = 0;
  for (const vm of runtime.vms) {
    requested += vm.requestedCpuSeconds;
    allocated += vm.allocatedCpuSeconds;
    deficit += vm.migrationDeficitCpuSeconds;
    if (vm.requestedCpuSeconds > 0) {
      vmsWithDemand++;
      pdmSum += vm.migrationDeficitCpuSeconds / vm.requestedCpuSeconds;
    }
    if (vm.alive) vmsAlive++;
  }
  return {
    energyJoules: counters.energyJoules,
    allHostsOnEnergyJoules: counters.allHostsOnEnergyJoules,
    hostOffSeconds: counters.hostOffSeconds,
    migrations: counters.migrations,
    chainedMigrations: counters.chainedMigrations,
    migratedMiB: counters.migratedMiB,
    activeHostSeconds,
    saturatedHostSeconds,
    requestedCpuSeconds: requested,
    allocatedCpuSeconds: allocated,
    migrationDeficitCpuSeconds: deficit,
    slatahPerHostMean: hostsEverActive > 0 ? ratioSum / hostsEverActive : 0,
    pdmPerVmMean: vmsWithDemand > 0 ? pdmSum / vmsWithDemand : 0,
    averageShortfall: counters.averageShortfall,
    memoryOverloadHostSeconds: counters.memoryOverloadHostSeconds,
    hostsPoweredOffPeak: counters.hostsPoweredOffPeak,
    powerOns,
    powerOffs,
    rejected: { ...runtime.rejected },
    vmsAlive,
    unplacedVms: counters.unplacedVms,
  };
}
