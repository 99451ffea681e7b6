import type { PowerModel } from '../model/snapshot.js';
import type { SimHostSpec, SimVmSpec, SimulationSetup } from './simulation-setup.js';
import { traceFractions } from './simulation-setup.js';
import type { Workload } from './workload/workload.js';
import { ConsolidatorError } from '../errors.js';

/**
 * The reference setup of Beloglazov & Buyya (CCPE 2012) as shipped with CloudSim 3.0.3, with every
 * quirk needed to reproduce its published figures. Sources (paths under Cloudslab/cloudsim,
 * E = examples/power, C = cloudsim): E/Constants.java, E/Helper.java, C/power/PowerDatacenter.java,
 * C/HostDynamicWorkload.java, C/VmSchedulerTimeSharedOverSubscription.java; details in
 * ../shared/data/planetlab/REFERENCE.md and cloudsim-model.json.
 */
export const CLOUDSIM = {
  hostCount: 800,
  /** Host i is of type i % 2 (E/Helper.java createHostList). */
  hostTypes: [
    {
      name: 'HP ProLiant ML110 G4 (Xeon 3040)',
      pes: 2,
      mipsPerPe: 1860,
      ramMb: 4096,
      watts: [86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117],
    },
    {
      name: 'HP ProLiant ML110 G5 (Xeon 3075)',
      pes: 2,
      mipsPerPe: 2660,
      ramMb: 4096,
      watts: [93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135],
    },
  ],
  /** VM i gets type floor(i / ceil(n / 4)) (E/Helper.java createVmList), one PE each. */
  vmTypes: [
    { name: 'High-CPU Medium', mips: 2500, ramMb: 870 },
    { name: 'Extra Large', mips: 2000, ramMb: 1740 },
    { name: 'Small', mips: 1000, ramMb: 1740 },
    { name: 'Micro', mips: 500, ramMb: 613 },
  ],
  vmPes: 1,
  /** Host link 1 Gbit/s = 1,000,000 kbit/s; migrations get half of it: bw / (2 * 8000) MB/s = 62.5. */
  hostBwKbps: 1_000_000,
  migrationBwDivisor: 2 * 8000,
  migrationSourceShare: 0.9,
  migrationDestinationShare: 0.1,
  schedulingIntervalSeconds: 300,
  simulationLimitSeconds: 24 * 60 * 60,
  /** VM creation is acknowledged after CloudSim's minimum time between events (0.1 s). */
  startOffsetSeconds: 0.1,
} as const;

export function cloudSimPowerModel(typeIndex: number): PowerModel {
  const type = CLOUDSIM.hostTypes[typeIndex % CLOUDSIM.hostTypes.length];
  if (type === undefined) throw new ConsolidatorError('INTERNAL', `no CloudSim host type ${typeIndex}`);
  return { kind: 'curve', wattsAtTenths: type.watts };
}

/**
 * The reference setup over a CPU-only workload: a PlanetLab folder (VMs in the workload's order: sorted
 * by file name) or a trace file; VM sizes are the reference types, whatever the workload says.
 */
export function buildCloudSimSetup(workload: Workload, options: { hostCount?: number } = {}): SimulationSetup {
  const hostCount = options.hostCount ?? CLOUDSIM.hostCount;
  const hosts: SimHostSpec[] = [];
  for (let i = 0; i < hostCount; i++) {
    const typeIndex = i % CLOUDSIM.hostTypes.length;
    const type = CLOUDSIM.hostTypes[typeIndex];
    if (type === undefined) throw new ConsolidatorError('INTERNAL', `no CloudSim host type ${typeIndex}`);
    const powerModel = cloudSimPowerModel(typeIndex);
    hosts.push({
      id: `host-${i}`,
      typeName: type.name,
      cpu: type.pes * type.mipsPerPe,
      cpuPerCore: type.mipsPerPe,
      memoryMiB: type.ramMb,
      powerModel,
      bootSeconds: 0,
      bootWatts: 0,
      offWatts: 0,
    });
  }
  const n = workload.vms.length;
  const blockSize = Math.ceil(n / CLOUDSIM.vmTypes.length);
  // One day for the shared traces (288 samples x 300 s = SIMULATION_LIMIT); longer traces run longer.
  const horizonSeconds = Math.max(CLOUDSIM.simulationLimitSeconds, workload.samples * workload.sampleSeconds);
  const vms: SimVmSpec[] = workload.vms.map((vm, i) => {
    const type = CLOUDSIM.vmTypes[Math.floor(i / blockSize)];
    if (type === undefined) throw new ConsolidatorError('INTERNAL', `no CloudSim VM type for VM ${i} of ${n}`);
    const startSeconds = (vm.startSample ?? 0) * workload.sampleSeconds;
    const endSeconds = startSeconds + vm.cpuPercent.length * workload.sampleSeconds;
    return {
      id: `vm-${i}`,
      typeName: type.name,
      vcpus: CLOUDSIM.vmPes,
      cpu: type.mips * CLOUDSIM.vmPes,
      memoryMiB: type.ramMb,
      cpuTrace: traceFractions(vm.cpuPercent),
      ...(startSeconds > 0 ? { startSeconds } : {}),
      ...(endSeconds < horizonSeconds ? { endSeconds } : {}),
    };
  });
  return {
    name: 'cloudsim',
    hosts,
    vms,
    sampleSeconds: workload.sampleSeconds,
    intervalSeconds: CLOUDSIM.schedulingIntervalSeconds,
    startOffsetSeconds: CLOUDSIM.startOffsetSeconds,
    horizonSeconds,
    migrationMiBps: CLOUDSIM.hostBwKbps / CLOUDSIM.migrationBwDivisor,
    migrationSourceShare: CLOUDSIM.migrationSourceShare,
    migrationDestinationShare: CLOUDSIM.migrationDestinationShare,
    idleHostsAreOff: true,
    zeroDemandEndsVm: true,
    memoryAdmission: 'reserve-at-creation',
    initialPlacement: 'power-aware-best-fit',
    emptyHostsStartOff: false,
  };
}
