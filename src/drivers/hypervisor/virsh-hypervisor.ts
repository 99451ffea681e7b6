import { ConsolidatorError, errorMessage } from '../../errors.js';
import { assertDomainName, assertHostName, type HostId, type VmId } from '../../model/ids.js';
import type { Logger } from '../../observability/logger.js';
import type { CommandRunner, ExecResult } from '../exec/command-runner.js';
import type {
  DomainInfo,
  HostObservation,
  HypervisorDriver,
  MigrateOptions,
  MigrationProgress,
  MigrationResult,
  PreflightResult,
} from './hypervisor-driver.js';
import {
  isInactive,
  classifyVirshError,
  compareVersions,
  cpuCoresBetween,
  domainCpuCores,
  isPinnedMetadata,
  parseDomblklist,
  parseDomstate,
  parseDomstatsRaw,
  parseMeminfo,
  parseVirshVersion,
  SECTION_MARKER,
  splitSections,
  virshErrorLine,
  type ProcStat,
} from './virsh-parsers.js';
import { Migration, type Location, type MigrationDriver } from './virsh-migration.js';
import { observeScript, parseObservation, parseResidentGuests, residentGuestsScript } from './virsh-observation.js';

export interface VirshHypervisorSettings {
  /** Timeout of one short remote command (observation, domstate, domjobinfo, suspend, ...). */
  readonly commandTimeoutMs: number;
  /** How often a running migration is polled with `virsh domjobinfo`. */
  readonly jobPollIntervalMs: number;
  /** After `virsh domjobabort`, how long `virsh migrate` may take to give up before we verify anyway. */
  readonly abortGraceMs: number;
  /** After `virsh migrate` ends, how long we keep checking until the VM shows up where it should. */
  readonly verifyTimeoutMs: number;
  /** Read `<consolidator:pinned/>` from each domain's metadata during observation. */
  readonly readPinnedMetadata: boolean;
  /** Memory the destination must have free beyond the VM's own, for the preflight. */
  readonly preflightMemoryHeadroomMiB: number;
}

export const VIRSH_HYPERVISOR_DEFAULTS: VirshHypervisorSettings = {
  commandTimeoutMs: 30_000,
  jobPollIntervalMs: 1_000,
  abortGraceMs: 30_000,
  verifyTimeoutMs: 15_000,
  readPinnedMetadata: true,
  preflightMemoryHeadroomMiB: 0,
};

export interface VirshHypervisorDeps {
  readonly runner: CommandRunner;
  readonly logger: Logger;
  readonly settings?: Partial<VirshHypervisorSettings>;
  /** Wall clock, for observation timestamps and migration durations. */
  readonly now?: () => number;
}

/** Previous sample per host, for CPU deltas. */
interface HostSample {
  readonly stat: ProcStat;
  readonly uptimeSeconds: number;
  /** Cumulative guest CPU ns per domain UUID (or name when the UUID is not known). */
  readonly domainCpuNs: ReadonlyMap<string, number>;
}

/**
 * HypervisorDriver for libvirt hosts, over SSH with virsh. Observation reads /proc, the DMI system
 * UUID and `virsh list` + `domstats --raw` in one command per host, and fails as a whole when any virsh
 * call in it fails (virsh-observation.ts); residentGuests() counts the guests from virsh and from the
 * host's QEMU processes and libvirt run-state, in one command, and fails when they disagree. Migration runs `virsh migrate --live` on the source
 * towards qemu+ssh://DEST/system, follows it with `virsh domjobinfo`, applies the non-convergence
 * policy, aborts it with `virsh domjobabort` at its timeout, and verifies where the VM is before it
 * returns or throws.
 */
/** The host's own system libvirt (never a user's session). */
const LOCAL_SYSTEM_URI = 'qemu:///system';

export class VirshHypervisor implements HypervisorDriver, MigrationDriver {
  private readonly settings: VirshHypervisorSettings;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly samples = new Map<HostId, HostSample>();

  constructor(private readonly deps: VirshHypervisorDeps) {
    this.settings = { ...VIRSH_HYPERVISOR_DEFAULTS, ...deps.settings };
    this.log = deps.logger.child({ component: 'virsh' });
    this.now = deps.now ?? Date.now;
  }

  async inspect(host: HostId, signal: AbortSignal): Promise<HostObservation> {
    return this.observe(host, signal, true);
  }

  /** The same observation as inspect() (and the same failures), without touching the CPU deltas. */
  async listDomains(host: HostId, signal: AbortSignal): Promise<readonly DomainInfo[]> {
    return (await this.observe(host, signal, false)).domains;
  }

  async residentGuests(host: HostId, signal: AbortSignal): Promise<readonly VmId[]> {
    assertHostName(host);
    const r = await this.run(host, ['sh', '-c', residentGuestsScript()], signal);
    return parseResidentGuests(host, r);
  }

  async preflight(vm: VmId, from: HostId, to: HostId, signal: AbortSignal): Promise<PreflightResult> {
    assertDomainName(vm);
    assertHostName(from);
    assertHostName(to);
    const problems: string[] = [];
    if (from === to) return { ok: false, problems: [`source and destination are the same host (${from})`] };

    // On the source: is the destination's name resolvable there, the VM's state, size and disks.
    const m = SECTION_MARKER;
    const sourceScript = [
      `echo '${m} resolve'; getent hosts "$1" || echo '${m} unresolvable'`,
      `echo '${m} version'; virsh version --daemon`,
      `echo '${m} domstats'; virsh domstats --raw "$2"`,
      `echo '${m} blk'; virsh domblklist --details "$2"`,
      `echo '${m} end'`,
    ].join('\n');
    let source: Map<string, string>;
    try {
      const r = await this.run(from, ['sh', '-c', sourceScript, 'sh', to, vm], signal);
      source = splitSections(r.stdout);
      if (!source.has('end') || !source.has('domstats')) {
        return { ok: false, problems: [`source ${from}: ${virshErrorLine(r.stderr) || 'incomplete answer'}`] };
      }
      if (classifyVirshError(r.stderr) === 'no-domain' || (source.get('domstats') ?? '').trim() === '') {
        return { ok: false, problems: [`VM ${vm} is not defined on ${from}`] };
      }
    } catch (e) {
      return { ok: false, problems: [`source ${from} unreachable: ${errorMessage(e)}`] };
    }
    if (source.has('unresolvable')) problems.push(`destination name ${to} does not resolve on ${from} (getent hosts ${to})`);
    const [stats] = parseDomstatsRaw(source.get('domstats') ?? '');
    if (!stats) return { ok: false, problems: [`VM ${vm} is not defined on ${from}`] };
    if (isInactive(stats.state)) problems.push(`VM ${vm} is not running or paused on ${from}`);
    const sourceVersions = parseVirshVersion(source.get('version') ?? '');
    const disks = parseDomblklist(source.get('blk') ?? '');
    const localPaths: string[] = [];
    for (const d of disks) {
      if (d.source === undefined || d.type === 'network') continue;
      if (d.type === 'file' || d.type === 'block' || d.type === 'dir') localPaths.push(d.source);
      else problems.push(`disk ${d.target} of ${vm} is a ${d.type} disk; cannot check that ${to} sees it`);
    }

    // On the destination: libvirtd answers, versions, free memory, the VM's disk paths exist.
    const destScript = [
      `echo '${m} version'; virsh version --daemon`,
      `echo '${m} meminfo'; cat /proc/meminfo`,
      `echo '${m} missing'; for p; do [ -e "$p" ] || printf '%s\\n' "$p"; done`,
      `echo '${m} end'`,
    ].join('\n');
    let dest: Map<string, string>;
    try {
      const r = await this.run(to, ['sh', '-c', destScript, 'sh', ...localPaths], signal);
      dest = splitSections(r.stdout);
      const destVersions = parseVirshVersion(dest.get('version') ?? '');
      if (!dest.has('end') || destVersions.libvirt === undefined) {
        problems.push(`libvirtd on ${to} does not answer: ${virshErrorLine(r.stderr) || 'no version'}`);
      } else {
        if (sourceVersions.qemu && destVersions.qemu && compareVersions(destVersions.qemu, sourceVersions.qemu) < 0) {
          problems.push(`QEMU on ${to} (${destVersions.qemu}) is older than on ${from} (${sourceVersions.qemu})`);
        }
        if (!destVersions.qemu) problems.push(`${to} reports no QEMU hypervisor`);
        if (sourceVersions.libvirt && compareVersions(destVersions.libvirt, sourceVersions.libvirt) < 0) {
          problems.push(`libvirt on ${to} (${destVersions.libvirt}) is older than on ${from} (${sourceVersions.libvirt})`);
        }
      }
      const mem = parseMeminfo(dest.get('meminfo') ?? '');
      const needed = stats.memoryMiB + this.settings.preflightMemoryHeadroomMiB;
      if (mem.availableMiB < needed) {
        problems.push(`${to} has ${Math.floor(mem.availableMiB)} MiB available, ${vm} needs ${Math.ceil(needed)} MiB`);
      }
      for (const path of (dest.get('missing') ?? '').split('\n').filter(Boolean)) {
        problems.push(`disk ${path} of ${vm} does not exist on ${to} (no shared storage?)`);
      }
    } catch (e) {
      problems.push(`destination ${to} unreachable: ${errorMessage(e)}`);
    }
    return { ok: problems.length === 0, problems };
  }

  async migrate(
    vm: VmId,
    from: HostId,
    to: HostId,
    options: MigrateOptions,
    signal: AbortSignal,
    onProgress?: (progress: MigrationProgress) => void,
  ): Promise<MigrationResult> {
    assertDomainName(vm);
    assertHostName(from);
    assertHostName(to);
    if (from === to) throw new ConsolidatorError('MIGRATION_FAILED', `cannot migrate ${vm}: ${from} is both source and destination`, { details: { vm, from, to } });
    return new Migration(this, vm, from, to, options, signal, onProgress).run();
  }

  async abortMigration(vm: VmId, from: HostId, signal: AbortSignal): Promise<void> {
    assertDomainName(vm);
    assertHostName(from);
    const r = await this.run(from, ['virsh', 'domjobabort', '--domain', vm], signal);
    if (r.exitCode !== 0 && classifyVirshError(r.stderr) !== 'no-job') {
      throw new ConsolidatorError('COMMAND_FAILED', `virsh domjobabort ${vm} on ${from}: ${virshErrorLine(r.stderr)}`, { details: { vm, host: from } });
    }
  }

  // -------------------------------------------------------------------------------------------
  // Internals shared with Migration

  /** Runs a short command with the default timeout. */
  /**
   * Every command on a host goes through here, with libvirt's system URI set: without it, virsh run by
   * a non-root SSH user talks to qemu:///session and sees none of the host's guests.
   */
  run(host: HostId, argv: readonly string[], signal: AbortSignal, timeoutMs = this.settings.commandTimeoutMs): Promise<ExecResult> {
    return this.deps.runner.run(host, ['env', `LIBVIRT_DEFAULT_URI=${LOCAL_SYSTEM_URI}`, ...argv], { timeoutMs, signal });
  }

  get config(): VirshHypervisorSettings {
    return this.settings;
  }

  get logger(): Logger {
    return this.log;
  }

  clock(): number {
    return this.now();
  }

  /** Where a domain is on one host: its state, absent, or unknown (the host did not answer). */
  async domainStateOn(host: HostId, vm: VmId, signal: AbortSignal): Promise<Location> {
    try {
      const r = await this.run(host, ['virsh', 'domstate', '--reason', '--domain', vm], signal);
      if (r.exitCode === 0) return { kind: 'present', state: parseDomstate(r.stdout) };
      if (classifyVirshError(r.stderr) === 'no-domain') return { kind: 'absent' };
      return { kind: 'unknown', why: virshErrorLine(r.stderr) };
    } catch (e) {
      return { kind: 'unknown', why: errorMessage(e) };
    }
  }

  private async observe(host: HostId, signal: AbortSignal, updateDeltas: boolean): Promise<HostObservation> {
    assertHostName(host);
    const atMs = this.now();
    const { readPinnedMetadata } = this.settings;
    const r = await this.run(host, ['sh', '-c', observeScript(readPinnedMetadata)], signal);
    const o = parseObservation(host, r, readPinnedMetadata);
    const uuidByName = new Map<string, string>();
    for (const [uuid, name] of o.listed) uuidByName.set(name, uuid);
    const previous = this.samples.get(host);
    const elapsedSeconds = previous ? o.uptimeSeconds - previous.uptimeSeconds : 0;
    const domainCpuNs = new Map<string, number>();
    const domains: DomainInfo[] = [];
    for (const d of o.domstats) {
      const uuid = uuidByName.get(d.name);
      const key = uuid ?? d.name;
      const previousNs = previous?.domainCpuNs.get(key);
      if (d.cpuTimeNs !== undefined) domainCpuNs.set(key, d.cpuTimeNs);
      const cpuCores = previousNs !== undefined && d.cpuTimeNs !== undefined ? domainCpuCores(previousNs, d.cpuTimeNs, elapsedSeconds) : undefined;
      let pinnedByMetadata = false;
      if (o.metadataByUuid) {
        // A domain that appeared between the list and domstats has unread metadata: treat it as
        // pinned for this cycle rather than risk moving a VM its owner pinned.
        const metadata = uuid === undefined ? undefined : o.metadataByUuid.get(uuid);
        pinnedByMetadata = uuid === undefined ? true : metadata !== undefined && isPinnedMetadata(metadata);
      }
      domains.push({
        name: d.name,
        ...(uuid !== undefined ? { uuid } : {}),
        state: d.state,
        vcpus: d.vcpus,
        memoryMiB: d.memoryMiB,
        pinnedByMetadata,
        ...(d.cpuTimeNs !== undefined ? { cpuTimeNs: d.cpuTimeNs } : {}),
        ...(cpuCores !== undefined ? { cpuCores } : {}),
      });
    }
    const cpuCores = previous ? cpuCoresBetween(previous.stat, o.stat) : undefined;
    if (updateDeltas) this.samples.set(host, { stat: o.stat, uptimeSeconds: o.uptimeSeconds, domainCpuNs });
    return {
      host,
      atMs,
      capacity: { cpu: o.stat.cpus, memory: o.meminfo.totalMiB },
      ...(cpuCores !== undefined ? { cpuCores } : {}),
      memoryUsedMiB: o.meminfo.usedMiB,
      domains,
      versions: o.versions,
      ...(o.systemUuid !== undefined ? { systemUuid: o.systemUuid } : {}),
    };
  }
}
