import type { ResolvedHost } from '../config/resolve.js';
import type { Policy } from '../config/schema.js';
import type { HostObservation, HypervisorDriver } from '../drivers/hypervisor/hypervisor-driver.js';
import type { PowerDriver } from '../drivers/power/power-driver.js';
import { errorMessage, isConsolidatorError } from '../errors.js';
import type { HostId, VmId } from '../model/ids.js';
import type { ResourceVector } from '../model/resources.js';
import type { ClusterSnapshot, HostSnapshot, PowerState, UsageSample, VmSnapshot } from '../model/snapshot.js';
import type { Logger } from '../observability/logger.js';
import { vmRuleFlags } from './vm-rules.js';

export interface ObserverDeps {
  readonly hypervisor: HypervisorDriver;
  readonly power: PowerDriver;
  readonly logger: Logger;
  /** Hosts observed at once; the rest wait their turn. */
  readonly concurrency: number;
  /**
   * The system UUID of the machine the daemon runs on (lower case). When it is a VM on a managed host,
   * the domain with this UUID is the controller itself: protected.
   */
  readonly selfUuid?: string;
}

export interface ObservationContext {
  readonly policy: Policy;
  readonly hosts: readonly ResolvedHost[];
  readonly maintenance: ReadonlySet<HostId>;
  /** Last capacity seen per host (for hosts that are off now). */
  readonly knownCapacity: Readonly<Record<HostId, ResourceVector>>;
  /** Hosts believed off (consolidator powered them off): their BMC is asked before any SSH attempt. */
  readonly believedOff?: readonly HostId[];
}

export interface Observation {
  readonly snapshot: ClusterSnapshot;
  /**
   * Hosts that did not answer although not off, with why: each one is unreachable in the snapshot,
   * never a failed cycle. A host whose BMC says it is off is off, not unreachable: it is not listed.
   */
  readonly failures: ReadonlyMap<HostId, string>;
  /** Total capacity (before the reserve) of hosts that answered, for the state's memory. */
  readonly capacities: Readonly<Record<HostId, ResourceVector>>;
  /** The system UUID each host that answered reports: what its BMC must report before a power action. */
  readonly systemUuids: Readonly<Record<HostId, string>>;
}

/**
 * Observes every host and turns what they report into the planner's ClusterSnapshot: capacity less
 * the policy's reserve, use over a sliding window of samples kept between cycles, VMs with their
 * pinning and anti-affinity groups. A host that does not answer is asked about through its BMC: off
 * (known), or on but unreachable / unknown; it never fails the observation.
 */
export class ClusterObserver {
  private readonly hostSamples = new Map<HostId, UsageSample[]>();
  private readonly vmSamples = new Map<VmId, UsageSample[]>();
  /** The VMs each host held at its last observation. */
  private readonly hostResidents = new Map<HostId, string>();
  /** Hosts whose BMC said "off" at their last observation. */
  private readonly seenOff = new Set<HostId>();
  /** Hosts whose system UUID is the daemon's own: it runs on them, on bare metal. */
  private readonly selfHosts = new Set<HostId>();
  /** Hosts where the daemon's own VM was seen (logged once). */
  private readonly selfSeenOn = new Set<HostId>();
  private readonly log: Logger;

  constructor(private readonly deps: ObserverDeps) {
    this.log = deps.logger.child({ component: 'observer' });
  }

  async observe(ctx: ObservationContext, nowMs: number, signal: AbortSignal): Promise<Observation> {
    const believedOff = new Set([...this.seenOff, ...(ctx.believedOff ?? [])]);
    const results = await mapLimited(ctx.hosts, this.deps.concurrency, (host) => this.observeHost(host.name, believedOff.has(host.name), signal));
    const windowMs = Math.max(ctx.policy.thresholds.cpu.windowSeconds, ctx.policy.thresholds.memory.windowSeconds, ctx.policy.hostDemand.windowSeconds ?? 0) * 1000;
    const hosts: HostSnapshot[] = [];
    const vms: VmSnapshot[] = [];
    const failures = new Map<HostId, string>();
    const capacities: Record<HostId, ResourceVector> = {};
    const systemUuids: Record<HostId, string> = {};
    const seenVms = new Set<VmId>();

    ctx.hosts.forEach((resolved, i) => {
      const result = results[i] as HostResult;
      const maintenance = ctx.maintenance.has(resolved.name);
      if (result.kind === 'observed') {
        const obs = result.observation;
        capacities[resolved.name] = obs.capacity;
        if (obs.systemUuid !== undefined) systemUuids[resolved.name] = obs.systemUuid.toLowerCase();
        if (this.deps.selfUuid !== undefined && obs.systemUuid?.toLowerCase() === this.deps.selfUuid && !this.selfHosts.has(resolved.name)) {
          this.selfHosts.add(resolved.name);
          this.log.info('the daemon runs on this host: observed only, never emptied or powered off', { host: resolved.name });
        }
        const capacity = {
          cpu: Math.max(0, obs.capacity.cpu - resolved.reserve.cpus),
          memory: Math.max(0, obs.capacity.memory - resolved.reserve.memoryMiB),
        };
        // Host-level samples describe the VMs the host had then: once its VMs change (a migration),
        // older samples no longer say anything about it, and its use is the sum of its VMs' for a while.
        const residents = obs.domains
          .filter((d) => d.state !== 'shutoff')
          .map((d) => d.name)
          .sort()
          .join('\u0000');
        if (this.hostResidents.get(resolved.name) !== residents) this.hostSamples.delete(resolved.name);
        this.hostResidents.set(resolved.name, residents);
        if (obs.cpuCores !== undefined) {
          this.remember(this.hostSamples, resolved.name, { atMs: obs.atMs, use: { cpu: obs.cpuCores, memory: obs.memoryUsedMiB } }, nowMs, windowMs);
        }
        hosts.push(this.hostSnapshot(resolved, 'on', true, capacity, this.hostSamples.get(resolved.name) ?? [], maintenance));
        for (const domain of obs.domains) {
          if (domain.state === 'shutoff') continue; // a definition only: holds nothing, moves nothing
          seenVms.add(domain.name);
          if (domain.cpuCores !== undefined) {
            this.remember(this.vmSamples, domain.name, { atMs: obs.atMs, use: { cpu: domain.cpuCores, memory: domain.memoryMiB } }, nowMs, windowMs);
          }
          const rules = vmRuleFlags(domain.name, ctx.policy.vmRules);
          const isSelf = this.deps.selfUuid !== undefined && domain.uuid?.toLowerCase() === this.deps.selfUuid;
          if (isSelf && !this.selfSeenOn.has(resolved.name)) {
            this.selfSeenOn.add(resolved.name);
            this.log.info('the daemon runs in this VM: protected, its host is never emptied or powered off', { vm: domain.name, host: resolved.name });
          }
          const guarded = isSelf || rules.protected;
          vms.push({
            id: domain.name,
            host: resolved.name,
            state: domain.state,
            vcpus: domain.vcpus,
            memoryMiB: domain.memoryMiB,
            samples: this.vmSamples.get(domain.name) ?? [],
            // A crashed, pmsuspended or stopping guest cannot be live-migrated: it holds its host on.
            pinned: guarded || domain.state === 'other' || rules.pinned || (ctx.policy.vmRules.honourLibvirtMetadata && domain.pinnedByMetadata),
            antiAffinityGroups: rules.antiAffinityGroups,
            ...(guarded ? { protected: true } : {}),
          });
        }
      } else {
        if (result.power !== 'off') failures.set(resolved.name, result.reason);
        this.hostSamples.delete(resolved.name);
        this.hostResidents.delete(resolved.name);
        const known = ctx.knownCapacity[resolved.name] ?? { cpu: 0, memory: 0 };
        const capacity = { cpu: Math.max(0, known.cpu - resolved.reserve.cpus), memory: Math.max(0, known.memory - resolved.reserve.memoryMiB) };
        hosts.push(this.hostSnapshot(resolved, result.power, false, capacity, [], maintenance));
      }
    });
    for (const vm of [...this.vmSamples.keys()]) if (!seenVms.has(vm)) this.vmSamples.delete(vm);
    return { snapshot: { takenAtMs: nowMs, hosts, vms }, failures, capacities, systemUuids };
  }

  /** Forgets samples (tests). */
  reset(): void {
    this.hostResidents.clear();
    this.seenOff.clear();
    this.hostSamples.clear();
    this.vmSamples.clear();
  }

  /**
   * A host believed off is asked about through its BMC first: when it says off, SSH is not tried (a
   * powered-off host does not answer, and waiting for the SSH connect timeout on every cycle would
   * slow every cycle down by as much). Any other answer, or a host not believed off, goes through SSH.
   */
  private async observeHost(host: HostId, believedOff: boolean, signal: AbortSignal): Promise<HostResult> {
    if (believedOff && (await this.powerStatus(host, signal)) === 'off') {
      this.log.debug('host did not answer', { host, power: 'off', reason: 'its BMC says it is off: not asked over SSH' });
      this.seenOff.add(host);
      return { kind: 'failed', power: 'off', reason: 'powered off (its BMC says so)' };
    }
    try {
      const observation = await this.deps.hypervisor.inspect(host, signal);
      this.seenOff.delete(host);
      return { kind: 'observed', observation };
    } catch (e) {
      if (signal.aborted) throw e;
      const reason = errorMessage(e);
      const power = await this.powerStatus(host, signal);
      if (power === 'off') this.seenOff.add(host);
      else this.seenOff.delete(host);
      // A host whose BMC says "on" but whose hypervisor did not answer is on and unreachable: worth a
      // warning. One that is off is expected not to answer.
      (power === 'off' ? this.log.debug : this.log.warn).call(this.log, 'host did not answer', { host, power, code: isConsolidatorError(e) ? e.code : 'INTERNAL', reason });
      return { kind: 'failed', power, reason };
    }
  }

  /** The BMC's answer, or unknown when it has none (logged). */
  private async powerStatus(host: HostId, signal: AbortSignal): Promise<PowerState> {
    try {
      return await this.deps.power.status(host, signal);
    } catch (powerError) {
      if (signal.aborted) throw powerError;
      this.log.warn('power status unknown', { host, err: powerError });
      return 'unknown';
    }
  }

  private remember(store: Map<string, UsageSample[]>, key: string, sample: UsageSample, nowMs: number, windowMs: number): void {
    const kept = (store.get(key) ?? []).filter((s) => s.atMs >= nowMs - windowMs && s.atMs < sample.atMs);
    kept.push(sample);
    store.set(key, kept);
  }

  private hostSnapshot(
    resolved: ResolvedHost,
    power: PowerState,
    reachable: boolean,
    capacity: ResourceVector,
    samples: readonly UsageSample[],
    maintenance: boolean,
  ): HostSnapshot {
    return {
      id: resolved.name,
      power,
      reachable,
      capacity,
      samples,
      // The host the daemon itself runs on (bare metal) is treated as excluded: observed, never touched.
      excluded: resolved.exclude || this.selfHosts.has(resolved.name),
      maintenance,
      labels: resolved.labels,
      powerModel: resolved.powerModel,
      bootSeconds: resolved.bootSeconds,
    };
  }
}

type HostResult = { kind: 'observed'; observation: HostObservation } | { kind: 'failed'; power: PowerState; reason: string };

/** Runs fn over items with at most `limit` at once, keeping the order of results. */
export async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}
