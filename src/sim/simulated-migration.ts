import type { HostId, VmId } from '../model/ids.js';

/** A migration as the datacenter reports it (in flight, done or cancelled). */
export interface SimulatedMigration {
  readonly vm: VmId;
  readonly from: HostId;
  readonly to: HostId;
  readonly startedAtSeconds: number;
  readonly endsAtSeconds: number;
}

export interface StartMigrationOptions {
  /** Told when the migration ends or is cancelled (the simulated hypervisor resolves its promise there). */
  readonly listener?: MigrationListener;
  /** Caps the migration speed (MiB/s); 0 or absent = the setup's speed. */
  readonly bandwidthMiBps?: number;
}

export interface MigrationListener {
  done(migration: SimulatedMigration): void;
  cancelled(migration: SimulatedMigration, reason: string): void;
}

/** A migration waiting for its destination to finish booting (indexes into the datacenter's tables). */
export interface PendingMigration {
  readonly vm: number;
  readonly to: number;
  readonly options: StartMigrationOptions;
}
