import type { HostId, VmId } from '../model/ids.js';
import type { PowerModel } from '../model/snapshot.js';

/**
 * Everything a simulation needs besides the decision policy: hosts, VMs with their demand traces,
 * the time grid and the rules of the simulated world (migration model, power model, quirks).
 * CPU is in the setup's unit: MIPS for the CloudSim reference setup, cores otherwise; the planner only
 * uses ratios. Memory is in MiB.
 */
export interface SimHostSpec {
  readonly id: HostId;
  readonly typeName: string;
  /** Total CPU capacity. */
  readonly cpu: number;
  /** The most one vCPU can get (one physical core / PE); a larger per-vCPU request is capped. */
  readonly cpuPerCore: number;
  readonly memoryMiB: number;
  /** What the host draws (the energy figures). */
  readonly powerModel: PowerModel;
  /**
   * The model the policy declares, which the planner sees in its snapshots, when the world differs
   * from it (a replay whose hosts' draw is calibrated on recorded watts); absent = powerModel.
   */
  readonly declaredPowerModel?: PowerModel;
  /** Excluded by the policy (observed, never touched): as the daemon marks it in its snapshots. */
  readonly excluded?: boolean;
  /** Power-on to a host that takes VMs; ignored when idle hosts are implicitly off. */
  readonly bootSeconds: number;
  /** Draw while booting. */
  readonly bootWatts: number;
  /** Draw while powered off (BMC standby). */
  readonly offWatts: number;
}

export interface SimVmSpec {
  readonly id: VmId;
  readonly typeName: string;
  readonly vcpus: number;
  /** Provisioned CPU (all vCPUs together), in the setup's CPU unit. */
  readonly cpu: number;
  /** Provisioned memory: what a migration moves and, with 'reserve' admission, what a host must have free. */
  readonly memoryMiB: number;
  /** Demand as a fraction of `cpu`, one value per trace sample plus the last one repeated. */
  readonly cpuTrace: Float64Array;
  /** Memory in use as a fraction of `memoryMiB` (same grid); absent = always all of it. */
  readonly memoryTrace?: Float64Array;
  /**
   * Where the VM starts: for the 'as-specified' initial placement (tests, demos), and for a VM that
   * appears later, the host it is placed on when that host is on (a recording's host).
   */
  readonly initialHost?: HostId;
  /** When the VM appears (its traces start then); 0 when absent. */
  readonly startSeconds?: number;
  /** When it disappears for good; never when absent. */
  readonly endSeconds?: number;
  /** The policy's vmRules for it, as the daemon marks them in its snapshots (absent: none). */
  readonly pinned?: boolean;
  readonly protected?: boolean;
  readonly antiAffinityGroups?: readonly string[];
}

export type InitialPlacement = 'power-aware-best-fit' | 'first-fit' | 'as-specified';

/**
 * 'reserve': a VM reserves its provisioned memory; placement and migration need that much free.
 * 'reserve-at-creation': CloudSim 3.0.3 as its PlanetLab examples run it: a VM reserves its memory
 * only when created (Vm.getCurrentRequestedRam returns the full RAM while "being instantiated", then
 * UtilizationModelNull x RAM = 0), so the initial placement is memory-bound but no later migration
 * checks or reserves memory; the reservation is released when the VM leaves its first host.
 * 'overcommit': memory is not reserved; hosts may go over 100 % of memory in use, which the report
 * counts in host-seconds.
 */
export type MemoryAdmission = 'reserve' | 'reserve-at-creation' | 'overcommit';

export interface SimulationSetup {
  readonly name: string;
  readonly hosts: readonly SimHostSpec[];
  readonly vms: readonly SimVmSpec[];
  /** Spacing of trace samples. */
  readonly sampleSeconds: number;
  /** A decision every interval. */
  readonly intervalSeconds: number;
  /** Decisions happen at offset + k * interval, k >= 1 (CloudSim: 0.1 s, the VM creation delay). */
  readonly startOffsetSeconds: number;
  /** Nothing at or after this time is simulated. */
  readonly horizonSeconds: number;
  /** Migration time = memoryMiB / migrationMiBps. */
  readonly migrationMiBps: number;
  /** Share of its CPU demand a migrating VM still gets at its source. */
  readonly migrationSourceShare: number;
  /** Share of the VM's CPU demand its destination reserves while it migrates in. */
  readonly migrationDestinationShare: number;
  /** CloudSim: a host at 0 % CPU is off, draws nothing, and is usable at once (no boot). */
  readonly idleHostsAreOff: boolean;
  /** CloudSim quirk: a VM whose demand is 0 at an update (two consecutive 0 samples) is gone for good. */
  readonly zeroDemandEndsVm: boolean;
  readonly memoryAdmission: MemoryAdmission;
  readonly initialPlacement: InitialPlacement;
  /** Hosts left empty by the initial placement start powered off (ignored when idle hosts are off). */
  readonly emptyHostsStartOff: boolean;
  /**
   * CloudSim quirk: on a CPU-oversubscribed host each vCPU's share is rounded down to a whole unit
   * (VmSchedulerTimeSharedOverSubscription floors MIPS). Right for MIPS; in cores it would round most
   * shares to 0, so setups in cores turn it off. Defaults to true.
   */
  readonly floorOversubscribedShares?: boolean;
}

/** Builds the demand array of a trace: fractions, with the last sample repeated (CloudSim's 289th value). */
export function traceFractions(percent: Float64Array): Float64Array {
  const out = new Float64Array(percent.length + 1);
  for (let i = 0; i < percent.length; i++) out[i] = (percent[i] ?? 0) / PERCENT;
  out[percent.length] = out[percent.length - 1] ?? 0;
  return out;
}

const PERCENT = 100;
