import { ConsolidatorError } from '../errors.js';
import type { PowerModel } from '../model/snapshot.js';
import type { InitialPlacement, SimHostSpec, SimVmSpec, SimulationSetup } from './simulation-setup.js';
import { traceFractions } from './simulation-setup.js';
import type { Workload } from './workload/workload.js';

/** A host type for setups in cores and MiB (the daemon's units), e.g. declared by a benchmark. */
export interface HostType {
  readonly name: string;
  readonly cores: number;
  readonly memoryMiB: number;
  readonly powerModel: PowerModel;
  readonly bootSeconds: number;
  /** Draw while booting; defaults to the power at 100 % (a conservative POST / boot storm figure). */
  readonly bootWatts?: number;
  /** BMC standby draw while off; defaults to 0. */
  readonly offWatts?: number;
}

export interface TraceSetupOptions {
  readonly hostType: HostType;
  readonly hostCount: number;
  /** Migration speed; defaults to DEFAULT_MIGRATION_MIBPS (a 1 Gbit/s link). */
  readonly migrationMiBps?: number;
  /** Memory of PlanetLab VMs, which the trace does not give; defaults to DEFAULT_PLANETLAB_VM_MEMORY_MIB. */
  readonly planetLabVmMemoryMiB?: number;
  readonly initialPlacement?: InitialPlacement;
  readonly name?: string;
}

/** 1 Gbit/s in MiB/s. */
export const DEFAULT_MIGRATION_MIBPS = 1e9 / 8 / (1024 * 1024);
export const DEFAULT_PLANETLAB_VM_MEMORY_MIB = 1024;
/** A migrating VM keeps 90 % of its CPU at its source; the destination reserves 10 % (CloudSim's model). */
const SOURCE_SHARE = 0.9;
const DESTINATION_SHARE = 0.1;

/**
 * A power-managed datacenter for any workload, in cores and MiB: `hostCount` identical hosts that
 * really power off (only when empty) and take `bootSeconds` to come back; hosts left empty by the
 * initial placement start off. Memory is not reserved: a host may run over 100 % of memory in use,
 * which the report counts. A VM lives from its first sample to its last (no CloudSim quirks).
 * Bitbrains VMs and those of a trace file get their provisioned cores and memory from the source;
 * Bitbrains VMs that report zero cores or memory (a quirk of the source) are left out. PlanetLab VMs
 * (and trace-file VMs without sizes) get one core each and `planetLabVmMemoryMiB`.
 */
export function buildTraceSetup(workload: Workload, options: TraceSetupOptions): SimulationSetup {
  const type = options.hostType;
  if (options.hostCount <= 0) throw new ConsolidatorError('USAGE', 'hostCount must be positive');
  const hosts: SimHostSpec[] = [];
  for (let i = 0; i < options.hostCount; i++) {
    hosts.push({
      id: `host-${i}`,
      typeName: type.name,
      cpu: type.cores,
      cpuPerCore: 1,
      memoryMiB: type.memoryMiB,
      powerModel: type.powerModel,
      bootSeconds: type.bootSeconds,
      bootWatts: type.bootWatts ?? maxWatts(type.powerModel),
      offWatts: type.offWatts ?? 0,
    });
  }
  const vms: SimVmSpec[] = [];
  const horizonSeconds = workload.samples * workload.sampleSeconds;
  workload.vms.forEach((vm, i) => {
    // PlanetLab gives no sizes: one core and a default memory; Bitbrains and trace files give them.
    const cores = vm.cores ?? (workload.format === 'bitbrains' ? 0 : 1);
    const memoryMiB = vm.memoryCapacityMiB ?? (workload.format === 'bitbrains' ? 0 : (options.planetLabVmMemoryMiB ?? DEFAULT_PLANETLAB_VM_MEMORY_MIB));
    if (cores <= 0 || memoryMiB <= 0) return;
    const startSeconds = (vm.startSample ?? 0) * workload.sampleSeconds;
    const endSeconds = startSeconds + vm.cpuPercent.length * workload.sampleSeconds;
    vms.push({
      id: `vm-${i}`,
      typeName: workload.format === 'planetlab' ? 'planetlab' : `${cores}c-${memoryMiB}MiB`,
      vcpus: cores,
      cpu: cores,
      memoryMiB,
      cpuTrace: traceFractions(vm.cpuPercent),
      ...(vm.memoryPercent === undefined ? {} : { memoryTrace: traceFractions(vm.memoryPercent) }),
      ...(startSeconds > 0 ? { startSeconds } : {}),
      ...(endSeconds < horizonSeconds ? { endSeconds } : {}),
    });
  });
  return {
    name: options.name ?? `${workload.format}-${type.name}`,
    hosts,
    vms,
    sampleSeconds: workload.sampleSeconds,
    intervalSeconds: workload.sampleSeconds,
    startOffsetSeconds: 0,
    horizonSeconds,
    migrationMiBps: options.migrationMiBps ?? DEFAULT_MIGRATION_MIBPS,
    migrationSourceShare: SOURCE_SHARE,
    migrationDestinationShare: DESTINATION_SHARE,
    idleHostsAreOff: false,
    zeroDemandEndsVm: false,
    memoryAdmission: 'overcommit',
    initialPlacement: options.initialPlacement ?? 'first-fit',
    emptyHostsStartOff: true,
    floorOversubscribedShares: false,
  };
}

function maxWatts(model: PowerModel): number {
  return model.kind === 'linear' ? model.maxWatts : (model.wattsAtTenths[model.wattsAtTenths.length - 1] ?? 0);
}
