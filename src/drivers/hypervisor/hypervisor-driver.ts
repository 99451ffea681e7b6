import type { HostId, VmId } from '../../model/ids.js';
import type { ResourceVector } from '../../model/resources.js';
import type { VmState } from '../../model/snapshot.js';

export interface DomainInfo {
  readonly name: VmId;
  /** The domain's UUID (lower-case), when the host reported it (virsh: `virsh list --uuid`). */
  readonly uuid?: string;
  readonly state: VmState;
  readonly vcpus: number;
  /** Memory the domain holds on the host (balloon current, else maximum), MiB. */
  readonly memoryMiB: number;
  /** Cumulative guest CPU time, ns (for deltas between observations). */
  readonly cpuTimeNs?: number;
  /** CPU in use, cores, from the delta since the previous observation (undefined on the first). */
  readonly cpuCores?: number;
  /** Pinned through libvirt metadata (<consolidator:pinned/>). */
  readonly pinnedByMetadata: boolean;
}

export interface HostObservation {
  readonly host: HostId;
  readonly atMs: number;
  /** Total CPUs and memory (MiB) of the host, before the policy's reserve. */
  readonly capacity: ResourceVector;
  /** Host-wide use: CPU cores busy (from /proc/stat deltas; undefined on the first pass) and memory MiB in use. */
  readonly cpuCores?: number;
  readonly memoryUsedMiB: number;
  readonly domains: readonly DomainInfo[];
  readonly versions: { readonly libvirt?: string; readonly qemu?: string };
  /**
   * The host's SMBIOS system UUID (/sys/class/dmi/id/product_uuid, lower-case), the one its BMC
   * reports; undefined when the host does not show one.
   */
  readonly systemUuid?: string;
}

export type NonConvergenceAction = 'auto-converge' | 'postcopy' | 'pause' | 'abort';

export interface MigrateOptions {
  /** 0 = no cap. */
  readonly bandwidthMiBps: number;
  readonly timeoutMs: number;
  readonly nonConvergence: NonConvergenceAction;
  /** For postcopy / pause / abort: how long pre-copy may run before the action applies. */
  readonly convergenceDeadlineMs: number;
  readonly persistent: boolean;
  readonly undefineSource: boolean;
}

export interface MigrationProgress {
  readonly vm: VmId;
  readonly elapsedMs: number;
  readonly dataProcessedMiB?: number;
  readonly dataRemainingMiB?: number;
  readonly dataTotalMiB?: number;
  readonly memoryBandwidthMiBps?: number;
  /** Pre-copy pass number (1 = the first full pass over memory). */
  readonly iteration?: number;
  /** How hard auto-converge throttles the guest's vCPUs right now, percent (0 or absent = not at all). */
  readonly autoConvergeThrottlePercent?: number;
  /** What was applied so far beyond plain pre-copy: 'postcopy', 'paused', ... */
  readonly phase: 'precopy' | 'postcopy' | 'paused' | 'aborting';
}

export interface MigrationResult {
  readonly durationMs: number;
  /** The VM's state on the destination, verified. */
  readonly state: VmState;
  /** Set when a non-convergence action had to be applied. */
  readonly nonConvergenceApplied?: NonConvergenceAction;
}

export interface PreflightResult {
  readonly ok: boolean;
  /** Why the migration must not run, one entry per failed check. */
  readonly problems: readonly string[];
}

/**
 * Observes hosts and moves VMs. migrate() resolves only when the VM is running (or paused, if it
 * was) on `to` and gone from `from`; otherwise it throws MIGRATION_FAILED / MIGRATION_TIMEOUT and the
 * VM is left running where it was.
 *
 * A failed query never reads as "no guests": inspect() and listDomains() throw when any part of the
 * host's answer failed or does not add up, instead of returning fewer domains.
 */
export interface HypervisorDriver {
  inspect(host: HostId, signal: AbortSignal): Promise<HostObservation>;
  listDomains(host: HostId, signal: AbortSignal): Promise<readonly DomainInfo[]>;
  /**
   * The check made just before a power-off: the names of the guests on `host` that are not shut off
   * (running, paused, in shutdown, crashed, ...), counted from two independent sources on the host
   * (the hypervisor's list and the host's own processes / run-state). Throws GUEST_COUNT_UNCERTAIN when
   * either source fails or they disagree (the message names both lists); an empty array means both
   * sources agree that nothing runs.
   */
  residentGuests(host: HostId, signal: AbortSignal): Promise<readonly VmId[]>;
  preflight(vm: VmId, from: HostId, to: HostId, signal: AbortSignal): Promise<PreflightResult>;
  migrate(
    vm: VmId,
    from: HostId,
    to: HostId,
    options: MigrateOptions,
    signal: AbortSignal,
    onProgress?: (progress: MigrationProgress) => void,
  ): Promise<MigrationResult>;
  abortMigration(vm: VmId, from: HostId, signal: AbortSignal): Promise<void>;
}
