import type { HostRuntime, VmRuntime } from './datacenter-runtime.js';

/**
 * The SLA figures, accumulated from per-update history entries as CloudSim's Helper reads them: each
 * entry (allocated vs requested CPU at an update) holds until the next entry at a later time; an entry
 * at the same time replaces the previous one.
 */
export class SlaAccounting {
  /** Intervals in which a VM got less CPU than it requested, and the sum of their relative shortfalls. */
  private violationIntervals = 0;
  private violationShortfallSum = 0;

  vmHistoryEntry(vm: VmRuntime, t: number, alloc: number, requested: number, inMigration: boolean): void {
    if (vm.histTime !== t && vm.histTime >= 0) {
      const dt = t - vm.histTime;
      vm.allocatedCpuSeconds += vm.histAlloc * dt;
      vm.requestedCpuSeconds += vm.histRequested * dt;
      if (vm.histAlloc < vm.histRequested) {
        this.violationIntervals++;
        this.violationShortfallSum += (vm.histRequested - vm.histAlloc) / vm.histRequested;
        if (vm.histInMigration) vm.migrationDeficitCpuSeconds += (vm.histRequested - vm.histAlloc) * dt;
      }
    }
    vm.histTime = t;
    vm.histAlloc = alloc;
    vm.histRequested = requested;
    vm.histInMigration = inMigration;
  }

  hostHistoryEntry(host: HostRuntime, t: number, alloc: number, requested: number, active: boolean): void {
    if (host.histTime !== t && host.histTime >= 0 && host.histActive) {
      const dt = t - host.histTime;
      host.activeSeconds += dt;
      if (host.histAlloc < host.histRequested) host.saturatedSeconds += dt;
    }
    host.histTime = t;
    host.histAlloc = alloc;
    host.histRequested = requested;
    host.histActive = active;
  }

  /** Mean relative shortfall over intervals where a VM got less than it asked ("Average SLA violation"). */
  averageShortfall(): number {
    return this.violationIntervals > 0 ? this.violationShortfallSum / this.violationIntervals : 0;
  }
}
