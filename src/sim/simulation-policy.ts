import type { HostId, VmId } from '../model/ids.js';
import type { ClusterSnapshot } from '../model/snapshot.js';
import type { EnergyAccounting } from './energy-meter.js';
import type { InitialPlacement } from './simulation-setup.js';

export interface SimulationMigration {
  readonly vm: VmId;
  readonly from: HostId;
  readonly to: HostId;
}

/**
 * What a policy wants done now. The engine applies it in this order: power-ons, migrations (in list
 * order; onto a booting host they wait for the boot), power-offs (an empty host at once; a host
 * whose VMs are all leaving once they have left; any other host is refused and counted).
 */
export interface SimulationDecision {
  readonly migrations: readonly SimulationMigration[];
  readonly powerOff: readonly HostId[];
  readonly powerOn: readonly HostId[];
}

export interface SimulationInput {
  readonly snapshot: ClusterSnapshot;
  readonly nowMs: number;
  /** Migrations still running from earlier decisions (never any in the CloudSim setup: they last < 30 s). */
  readonly inFlight: readonly SimulationMigration[];
  /** The snapshot's samples carry memory use 0 (the engine did what hidesMemoryUse asked). */
  readonly memoryUseHidden?: boolean;
}

/** A decision policy the engine calls once per interval: consolidator's planner or a baseline. */
export interface SimulationPolicy {
  readonly name: string;
  decide(input: SimulationInput): SimulationDecision;
  /** How VMs are placed at time 0; defaults to the setup's. */
  readonly initialPlacement?: InitialPlacement;
  /** 'max-power' only for the non-power-aware baseline. */
  readonly energyAccounting?: EnergyAccounting;
  /** Snapshots with memory use 0 in every sample (the planner's 'admitted' memory view), made by the engine at no cost. */
  readonly hidesMemoryUse?: boolean;
  /** How far back its snapshots' samples must reach, seconds (the longest window it reads); the engine keeps at least 30 samples. */
  readonly historySeconds?: number;
}

export const NO_ACTIONS: SimulationDecision = Object.freeze({ migrations: [], powerOff: [], powerOn: [] });
