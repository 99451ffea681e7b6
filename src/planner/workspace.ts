import type { HostId } from '../model/ids.js';
import { EPSILON, type ResourceVector } from '../model/resources.js';
import { powerAt, type HostSnapshot, type VmSnapshot } from '../model/snapshot.js';
import type { CycleDemands } from './demand.js';
import { efficiencyTiers, TieredDestinationIndex } from './destination-index.js';
import { cpuPredictors, HostCpuModel, hostDemandEstimator, isAdditiveCpu, seriesLength } from './host-demand.js';
import type { PlannerPolicy } from './types.js';

/**
 * The planner's scratch state for one cycle: hosts and VMs sorted by id (so the plan does not depend
 * on input order), their estimated demands (from the cycle's CycleDemands), and the load each host will
 * carry as moves are planned. Never escapes planCycle; the snapshot it was built from is not touched.
 */
export class Workspace {
  readonly hosts: readonly HostSnapshot[];
  readonly vms: readonly VmSnapshot[];
  readonly hostIndex: ReadonlyMap<HostId, number>;
  /** Capacity x target per resource: what a destination may be filled to. */
  readonly limitCpu: Float64Array;
  readonly limitMemory: Float64Array;
  /** Planned load per host: what the VMs on it need plus what the host uses besides them. */
  readonly loadCpu: Float64Array;
  readonly loadMemory: Float64Array;
  /** Host-level use from the window (or the VMs' sum without host samples), before any move. */
  readonly observedUse: readonly ResourceVector[];
  readonly demandCpu: Float64Array;
  readonly demandMemory: Float64Array;
  /** Planned host of each VM. */
  readonly vmHost: Int32Array;
  readonly vmsOnHost: Set<number>[];
  /** Anti-affinity: per group, how many of its VMs each host holds. */
  private readonly groupCounts = new Map<string, Map<number, number>>();
  /** Destinations, most power-efficient tier first (see TieredDestinationIndex). */
  readonly destinations: TieredDestinationIndex;
  /** Watts per unit of CPU when filled to the CPU target: lower is more efficient. */
  readonly wattsPerCpu: Float64Array;
  /**
   * Set when the policy predicts a host's CPU from the sum of its VMs' samples (hostDemand.cpu):
   * loadCpu is then that prediction plus extraCpu (what the host uses besides its VMs, and any
   * predicted rise), recomputed on every move. Undefined: loads are sums of VM demands.
   */
  private readonly cpuModel: HostCpuModel | undefined;
  private readonly extraCpu: Float64Array;
  /** The last fits() of a VM on a host with cpuModel: the host's CPU load with the VM, reused by the score. */
  private triedVm = -1;
  private triedHost = -1;
  private triedLoadCpu = 0;

  constructor(hosts: readonly HostSnapshot[], vms: readonly VmSnapshot[], policy: PlannerPolicy, demands: CycleDemands) {
    this.hosts = [...hosts].sort((a, b) => compareIds(a.id, b.id));
    this.hostIndex = new Map(this.hosts.map((h, i) => [h.id, i]));
    this.vms = [...vms].filter((vm) => this.hostIndex.has(vm.host)).sort((a, b) => compareIds(a.id, b.id));
    const n = this.hosts.length;
    this.limitCpu = new Float64Array(n);
    this.limitMemory = new Float64Array(n);
    this.loadCpu = new Float64Array(n);
    this.loadMemory = new Float64Array(n);
    this.vmsOnHost = Array.from({ length: n }, () => new Set<number>());
    this.demandCpu = new Float64Array(this.vms.length);
    this.demandMemory = new Float64Array(this.vms.length);
    this.vmHost = new Int32Array(this.vms.length);
    this.extraCpu = new Float64Array(n);
    const nowMs = demands.nowMs;
    this.cpuModel = isAdditiveCpu(policy) ? undefined : new HostCpuModel(cpuPredictors(policy), this.vms, n, seriesLength(vms, policy, nowMs), policy, nowMs);

    let maxLimitCpu = 0;
    let maxLimitMemory = 0;
    this.hosts.forEach((h, i) => {
      this.limitCpu[i] = h.capacity.cpu * policy.thresholds.cpu.targetRatio;
      this.limitMemory[i] = h.capacity.memory * policy.thresholds.memory.targetRatio;
      maxLimitCpu = Math.max(maxLimitCpu, this.limitCpu[i] as number);
      maxLimitMemory = Math.max(maxLimitMemory, this.limitMemory[i] as number);
    });
    this.vms.forEach((vm, v) => {
      const d = demands.vm(vm);
      const h = this.hostIndex.get(vm.host) as number;
      this.demandCpu[v] = d.cpu;
      this.demandMemory[v] = d.memory;
      this.vmHost[v] = h;
      (this.vmsOnHost[h] as Set<number>).add(v);
      this.loadCpu[h] = (this.loadCpu[h] as number) + d.cpu;
      this.loadMemory[h] = (this.loadMemory[h] as number) + d.memory;
      for (const g of vm.antiAffinityGroups) this.bumpGroup(g, h, 1);
      this.cpuModel?.add(v, h);
    });
    const estimator = this.cpuModel ? hostDemandEstimator(vms, policy, nowMs) : undefined;
    // What the host uses besides its VMs (hypervisor, page cache held back, ...) stays with it.
    this.observedUse = this.hosts.map((h, i) => {
      const observed = demands.host(h);
      const vmsCpu = this.loadCpu[i] as number;
      const vmsMemory = this.loadMemory[i] as number;
      if (this.cpuModel) {
        // The same predictors on the host's own samples: what it uses beyond what its VMs predict stays with it.
        const predicted = this.cpuModel.predict(i);
        this.extraCpu[i] = Math.max(0, (estimator?.ofHost(h)?.cpu ?? predicted) - predicted);
        this.loadCpu[i] = predicted + (this.extraCpu[i] as number);
      }
      if (observed) {
        if (!this.cpuModel) this.loadCpu[i] = vmsCpu + Math.max(0, observed.cpu - vmsCpu);
        this.loadMemory[i] = vmsMemory + Math.max(0, observed.memory - vmsMemory);
        return observed;
      }
      return { cpu: this.cpuModel ? (this.loadCpu[i] as number) : vmsCpu, memory: vmsMemory };
    });
    this.wattsPerCpu = new Float64Array(n);
    this.hosts.forEach((h, i) => {
      const target = policy.thresholds.cpu.targetRatio;
      this.wattsPerCpu[i] = h.capacity.cpu > 0 ? powerAt(h.powerModel, target) / h.capacity.cpu : Number.POSITIVE_INFINITY;
    });
    const tiers = efficiencyTiers(Array.from(this.wattsPerCpu));
    this.destinations = new TieredDestinationIndex(
      tiers.tierOf,
      tiers.tierCount,
      { roomCpu: (i) => this.roomCpu(i), roomMemory: (i) => this.roomMemory(i) },
      maxLimitCpu,
      maxLimitMemory,
    );
  }

  roomCpu(h: number): number {
    return (this.limitCpu[h] as number) - (this.loadCpu[h] as number);
  }

  roomMemory(h: number): number {
    return (this.limitMemory[h] as number) - (this.loadMemory[h] as number);
  }

  /** The VM fits on h under target, and no VM of its anti-affinity groups is there. */
  fits(v: number, h: number): boolean {
    if (this.cpuModel) {
      const loadCpu = this.cpuModel.predictWith(h, v) + (this.extraCpu[h] as number);
      this.triedVm = v;
      this.triedHost = h;
      this.triedLoadCpu = loadCpu;
      if (loadCpu > (this.limitCpu[h] as number) + EPSILON) return false;
    } else if ((this.demandCpu[v] as number) > this.roomCpu(h) + EPSILON) return false;
    if ((this.demandMemory[v] as number) > this.roomMemory(h) + EPSILON) return false;
    for (const g of (this.vms[v] as VmSnapshot).antiAffinityGroups) {
      if ((this.groupCounts.get(g)?.get(h) ?? 0) > 0) return false;
    }
    return true;
  }

  /** Moves a VM in the plan, keeping loads, groups and the destination index in step. */
  move(v: number, to: number): void {
    const from = this.vmHost[v] as number;
    if (from === to) return;
    const dc = this.demandCpu[v] as number;
    const dm = this.demandMemory[v] as number;
    this.loadMemory[from] = (this.loadMemory[from] as number) - dm;
    this.loadMemory[to] = (this.loadMemory[to] as number) + dm;
    if (this.cpuModel) {
      this.cpuModel.remove(v, from);
      this.cpuModel.add(v, to);
      this.loadCpu[from] = this.cpuModel.predict(from) + (this.extraCpu[from] as number);
      this.loadCpu[to] = this.cpuModel.predict(to) + (this.extraCpu[to] as number);
    } else {
      this.loadCpu[from] = (this.loadCpu[from] as number) - dc;
      this.loadCpu[to] = (this.loadCpu[to] as number) + dc;
    }
    (this.vmsOnHost[from] as Set<number>).delete(v);
    (this.vmsOnHost[to] as Set<number>).add(v);
    this.vmHost[v] = to;
    for (const g of (this.vms[v] as VmSnapshot).antiAffinityGroups) {
      this.bumpGroup(g, from, -1);
      this.bumpGroup(g, to, 1);
    }
    this.destinations.update(from);
    this.destinations.update(to);
  }

  /**
   * The destination for VM v among the indexed hosts other than its own: best fit over the resource
   * vector, the host left tightest (smallest normalised room on CPU and memory) after the move, in the
   * most power-efficient tier that has room.
   */
  bestDestination(v: number): number | undefined {
    const from = this.vmHost[v] as number;
    const dc = this.demandCpu[v] as number;
    const dm = this.demandMemory[v] as number;
    const model = this.cpuModel;
    return this.destinations.find(
      model ? model.lowerBound(v) : dc,
      dm,
      (h) => h !== from && this.fits(v, h),
      (h) => {
        const lc = this.limitCpu[h] as number;
        const lm = this.limitMemory[h] as number;
        const roomAfter = model ? lc - (this.triedVm === v && this.triedHost === h ? this.triedLoadCpu : model.predictWith(h, v) + (this.extraCpu[h] as number)) : this.roomCpu(h) - dc;
        const rc = lc > 0 ? roomAfter / lc : 0;
        const rm = lm > 0 ? (this.roomMemory(h) - dm) / lm : 0;
        return rc * rc + rm * rm;
      },
    );
  }

  /** Plans for at least this load on h (a predicted rise): the extra stays with the host. */
  raiseLoad(h: number, load: ResourceVector): void {
    if (this.cpuModel) this.extraCpu[h] = (this.extraCpu[h] as number) + Math.max(0, load.cpu - (this.loadCpu[h] as number));
    this.loadCpu[h] = Math.max(this.loadCpu[h] as number, load.cpu);
    this.loadMemory[h] = Math.max(this.loadMemory[h] as number, load.memory);
    this.destinations.update(h);
  }

  utilisation(h: number): ResourceVector {
    const host = this.hosts[h] as HostSnapshot;
    return {
      cpu: host.capacity.cpu > 0 ? (this.loadCpu[h] as number) / host.capacity.cpu : 0,
      memory: host.capacity.memory > 0 ? (this.loadMemory[h] as number) / host.capacity.memory : 0,
    };
  }

  private bumpGroup(group: string, h: number, delta: number): void {
    let perHost = this.groupCounts.get(group);
    if (!perHost) {
      perHost = new Map();
      this.groupCounts.set(group, perHost);
    }
    perHost.set(h, (perHost.get(h) ?? 0) + delta);
  }
}

/** Plain code-point order: stable across locales, so plans are the same on every machine. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
