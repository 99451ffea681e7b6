import { ConsolidatorError } from '../errors.js';
import type { HostId, VmId } from '../model/ids.js';
import type { UsageSample } from '../model/snapshot.js';
import type { PendingMigration } from './simulated-migration.js';
import type { SimHostSpec, SimVmSpec, SimulationSetup } from './simulation-setup.js';
import { SlidingColumns } from './sliding-columns.js';

export type HostPowerState = 'on' | 'off' | 'booting';

/** Why the datacenter refused an action of a decision (counted in the report, never thrown). */
export type RejectReason =
  | 'unknown-vm'
  | 'vm-gone'
  | 'wrong-source'
  | 'unknown-host'
  | 'same-host'
  | 'target-off'
  | 'target-unreachable'
  | 'no-memory'
  | 'already-migrating-to-target'
  | 'not-empty';

/** Labels every simulated host carries: its type and the CPU one vCPU can get. */
const HOST_TYPE_LABEL = 'sim/host-type';
export const CPU_PER_CORE_LABEL = 'sim/cpu-per-core';

export interface HostRuntime {
  readonly index: number;
  readonly spec: SimHostSpec;
  readonly labels: Readonly<Record<string, string>>;
  /** CloudSim's host vmList: VMs placed here plus VMs migrating in, in arrival order. */
  readonly vms: number[];
  /** VMs migrating in (also in vms). */
  readonly incoming: number[];
  /** Changes only at update times, after the update: during accrual it is the state of the segment. */
  power: HostPowerState;
  utilCpu: number;
  prevUtilCpu: number;
  requestedCpu: number;
  memoryReservedMiB: number;
  memoryUsedMiB: number;
  memoryOverAtLastUpdate: boolean;
  histTime: number;
  histAlloc: number;
  histRequested: number;
  histActive: boolean;
  activeSeconds: number;
  saturatedSeconds: number;
  pendingPowerOff: boolean;
  /** Migrations waiting for this host to finish booting. */
  readonly waitingMigrations: PendingMigration[];
  readonly samples: UsageSample[];
  /** The same samples as columns, for the planner (see UsageColumns). */
  readonly columns: SlidingColumns;
  vanished: boolean;
  powerOns: number;
  powerOffs: number;
}

export interface VmRuntime {
  readonly index: number;
  readonly spec: SimVmSpec;
  /** Host the VM runs on (CloudSim's vmTable); -1 once gone. */
  host: number;
  alive: boolean;
  migrating: number;
  /** Memory this VM holds reserved on its host (and on a destination while migrating in). */
  reservedMiB: number;
  demandCpu: number;
  memoryUseMiB: number;
  allocCpu: number;
  histTime: number;
  histAlloc: number;
  histRequested: number;
  histInMigration: boolean;
  requestedCpuSeconds: number;
  allocatedCpuSeconds: number;
  migrationDeficitCpuSeconds: number;
  readonly samples: UsageSample[];
  readonly columns: SlidingColumns;
}

/**
 * The mutable state of a simulated datacenter, shared by its parts: one runtime record per host and
 * VM (indexed as in the setup), the id indexes, the time of the last state update, the hosts that
 * actions touched since the last recomputation, and the count of refused actions.
 */
export class DatacenterRuntime {
  readonly setup: SimulationSetup;
  readonly hosts: HostRuntime[];
  readonly vms: VmRuntime[];
  readonly hostIndex = new Map<HostId, number>();
  readonly vmIndex = new Map<VmId, number>();
  /** Hosts touched by actions at the current time, recomputed together (CpuScheduler.recomputeTouched). */
  readonly touched = new Set<number>();
  readonly rejected: Partial<Record<RejectReason, number>> = {};
  /** Time of the last state update: the time actions take effect at. */
  lastUpdateSeconds = 0;

  constructor(setup: SimulationSetup) {
    this.setup = setup;
    this.hosts = setup.hosts.map((spec, index) => {
      if (this.hostIndex.has(spec.id)) throw new ConsolidatorError('INTERNAL', `duplicate host id ${spec.id}`);
      this.hostIndex.set(spec.id, index);
      return {
        index,
        spec,
        labels: { [HOST_TYPE_LABEL]: spec.typeName, [CPU_PER_CORE_LABEL]: String(spec.cpuPerCore) },
        vms: [],
        incoming: [],
        power: 'on',
        utilCpu: 0,
        prevUtilCpu: 0,
        requestedCpu: 0,
        memoryReservedMiB: 0,
        memoryUsedMiB: 0,
        memoryOverAtLastUpdate: false,
        histTime: -1,
        histAlloc: 0,
        histRequested: 0,
        histActive: true,
        activeSeconds: 0,
        saturatedSeconds: 0,
        pendingPowerOff: false,
        waitingMigrations: [],
        samples: [],
        columns: new SlidingColumns(),
        vanished: false,
        powerOns: 0,
        powerOffs: 0,
      };
    });
    this.vms = setup.vms.map((spec, index) => {
      if (this.vmIndex.has(spec.id)) throw new ConsolidatorError('INTERNAL', `duplicate VM id ${spec.id}`);
      this.vmIndex.set(spec.id, index);
      return {
        index,
        spec,
        host: -1,
        alive: false,
        migrating: 0,
        reservedMiB: 0,
        demandCpu: 0,
        memoryUseMiB: 0,
        allocCpu: 0,
        histTime: -1,
        histAlloc: 0,
        histRequested: 0,
        histInMigration: false,
        requestedCpuSeconds: 0,
        allocatedCpuSeconds: 0,
        migrationDeficitCpuSeconds: 0,
        samples: [],
        columns: new SlidingColumns(),
      };
    });
  }

  host(index: number): HostRuntime {
    const host = this.hosts[index];
    if (host === undefined) throw new ConsolidatorError('INTERNAL', `no simulated host #${index}`);
    return host;
  }

  vm(index: number): VmRuntime {
    const vm = this.vms[index];
    if (vm === undefined) throw new ConsolidatorError('INTERNAL', `no simulated VM #${index}`);
    return vm;
  }

  /** The index of a host that must exist (scripted faults name hosts of the setup). */
  requireHost(hostId: HostId): number {
    const index = this.hostIndex.get(hostId);
    if (index === undefined) throw new ConsolidatorError('INTERNAL', `no simulated host ${hostId}`);
    return index;
  }

  /** Counts a refused action and returns its reason. */
  reject(reason: RejectReason): RejectReason {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
    return reason;
  }

  /** CloudSim's getCompletedVms: a VM not migrating whose demand is 0 at an update is deallocated for good. */
  removeFinishedVms(): void {
    for (const host of this.hosts) {
      for (let i = 0; i < host.vms.length; i++) {
        const index = host.vms[i] ?? -1;
        const vm = this.vm(index);
        if (vm.migrating > 0 || vm.host !== host.index || vm.demandCpu !== 0) continue;
        host.vms.splice(i, 1);
        i--;
        host.memoryReservedMiB -= vm.reservedMiB;
        vm.reservedMiB = 0;
        vm.alive = false;
        vm.host = -1;
      }
    }
  }
}
