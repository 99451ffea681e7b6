import { ConsolidatorError } from '../../errors.js';
import type { PowerModel } from '../../model/snapshot.js';
import { CPU_PER_CORE_LABEL } from '../datacenter-runtime.js';
import type { SimulationDecision, SimulationInput, SimulationMigration, SimulationPolicy } from '../simulation-policy.js';
import { cloudSimPower } from './cloudsim-power.js';
import { simpleRegression } from './simple-regression.js';

/**
 * CloudSim 3.0.3's dynamic consolidation (PowerVmAllocationPolicyMigrationAbstract.optimizeAllocation)
 * with MMT VM selection and PABFD placement, over a snapshot. The planning state is rebuilt from the
 * snapshot exactly as CloudSim holds it at decision time, quirks included:
 * - two views of a host's CPU: the CPU it delivered at the last update (stale during planning; it
 *   picks under-utilised and switched-off hosts and is the "power before" of PABFD) and the CPU the
 *   scheduler has allocated to its planned VMs (getUtilizationOfCpuMips(host) in 3.0.3: the "power
 *   after" and the guard of the overload-after-allocation check); available CPU follows the plan;
 * - a host with nothing allocated is not checked for overload after allocation;
 * - hosts that just received VMs from overloaded hosts are not excluded from the underload pass
 *   (their VMs, the new ones included, may be sent on: a chained migration);
 * - memory is never checked: a VM requests its RAM only while being created (its cloudlet's RAM
 *   model is UtilizationModelNull), so Host.isSuitableForVm's RAM test always passes afterwards;
 * - ties go to the first host / VM in list order.
 * Sources: C/power/PowerVmAllocationPolicyMigrationAbstract.java, ...StaticThreshold.java,
 * ...LocalRegression.java, PowerVmSelectionPolicyMinimumMigrationTime.java, C/Host.java.
 */
export type OverloadDetector =
  | { readonly kind: 'thr'; readonly threshold: number }
  | {
      readonly kind: 'lr';
      readonly safety: number;
      /** Static threshold used while fewer than LR_WINDOW samples exist (RunnerAbstract: 0.7). */
      readonly fallbackThreshold: number;
      readonly intervalSeconds: number;
      /** Migration speed, to predict over the longest migration off the host (ceil(ram / speed / interval)). */
      readonly migrationMiBps: number;
    };

/** LR regresses over the last 10 samples (PowerVmAllocationPolicyMigrationLocalRegression: "length = 10"). */
export const LR_WINDOW = 10;
/** PowerVm.HISTORY_LENGTH. */
const VM_HISTORY_LENGTH = 30;
/** CloudSim clamps a utilisation in (1, 1.01) to 1. */
const UTILISATION_CLAMP_LIMIT = 1.01;

export function createCloudSimMigrationPolicy(name: string, detector: OverloadDetector): SimulationPolicy {
  return {
    name,
    initialPlacement: 'power-aware-best-fit',
    decide: (input) => new Planning(input, detector).optimizeAllocation(),
  };
}

class Planning {
  private readonly detector: OverloadDetector;
  private readonly hostIds: string[];
  private readonly capacity: Float64Array;
  private readonly perCore: Float64Array;
  private readonly staleUtil: Float64Array;
  private readonly available: Float64Array;
  private readonly models: PowerModel[];
  private readonly lists: number[][];
  /** CPU the scheduler allocates to each VM of lists[h], same order. */
  private readonly allocs: number[][];
  private readonly vmIds: string[];
  private readonly vmHost: Int32Array;
  private readonly request: Float64Array;
  private readonly vmMemory: Float64Array;
  private readonly vmVcpus: Int32Array;
  private readonly migrating: Uint8Array;
  /** LR: per VM, its last LR_WINDOW samples newest first, and its last non-zero history index. */
  private readonly recent: Float64Array;
  private readonly lastNonZero: Int32Array;
  /** Scratch buffers of the LR test (reused: it runs for every candidate destination). */
  private readonly window = new Float64Array(LR_WINDOW);
  private readonly oldestFirst = new Float64Array(LR_WINDOW);

  constructor(input: SimulationInput, detector: OverloadDetector) {
    this.detector = detector;
    const { hosts, vms } = input.snapshot;
    const hostCount = hosts.length;
    this.hostIds = hosts.map((h) => h.id);
    this.capacity = new Float64Array(hostCount);
    this.perCore = new Float64Array(hostCount);
    this.staleUtil = new Float64Array(hostCount);
    this.available = new Float64Array(hostCount);
    this.models = hosts.map((h) => h.powerModel);
    this.lists = hosts.map(() => []);
    this.allocs = hosts.map(() => []);
    const hostIndex = new Map<string, number>();
    hosts.forEach((h, i) => {
      hostIndex.set(h.id, i);
      this.capacity[i] = h.capacity.cpu;
      const label = h.labels[CPU_PER_CORE_LABEL];
      this.perCore[i] = label === undefined ? h.capacity.cpu : Number(label);
      this.staleUtil[i] = h.samples[h.samples.length - 1]?.use.cpu ?? 0;
    });
    const vmCount = vms.length;
    this.vmIds = vms.map((v) => v.id);
    this.vmHost = new Int32Array(vmCount);
    this.request = new Float64Array(vmCount);
    this.vmMemory = new Float64Array(vmCount);
    this.vmVcpus = new Int32Array(vmCount);
    this.migrating = new Uint8Array(vmCount);
    this.recent = new Float64Array(vmCount * LR_WINDOW);
    this.lastNonZero = new Int32Array(vmCount).fill(-1);
    const inFlight = new Set(input.inFlight.map((m) => m.vm));
    vms.forEach((vm, j) => {
      const h = hostIndex.get(vm.host);
      if (h === undefined) throw new ConsolidatorError('INTERNAL', `VM ${vm.id} on unknown host ${vm.host}`);
      this.vmHost[j] = h;
      this.request[j] = vm.samples[vm.samples.length - 1]?.use.cpu ?? 0;
      this.vmMemory[j] = vm.memoryMiB;
      this.vmVcpus[j] = Math.max(1, vm.vcpus);
      this.migrating[j] = inFlight.has(vm.id) ? 1 : 0;
      this.lists[h]?.push(j);
      const n = Math.min(vm.samples.length, VM_HISTORY_LENGTH);
      for (let i = 0; i < n; i++) {
        const value = vm.samples[vm.samples.length - 1 - i]?.use.cpu ?? 0;
        if (i < LR_WINDOW) this.recent[j * LR_WINDOW + i] = value;
        if (value !== 0) this.lastNonZero[j] = i;
      }
    });
    for (let h = 0; h < hostCount; h++) this.recomputeAvailable(h);
  }

  optimizeAllocation(): SimulationDecision {
    const hostCount = this.hostIds.length;
    const overloaded: number[] = [];
    for (let h = 0; h < hostCount; h++) if (this.isOverloaded(h, -1)) overloaded.push(h);

    const migrations: SimulationMigration[] = [];
    // VM selection (MMT) off overloaded hosts, then PABFD placement excluding overloaded hosts.
    const toMigrate: number[] = [];
    for (const h of overloaded) {
      for (;;) {
        const vm = this.minimumMigrationTimeVm(h);
        if (vm < 0) break;
        toMigrate.push(vm);
        this.destroy(h, vm);
        if (!this.isOverloaded(h, -1)) break;
      }
    }
    const excludedForPlacement = new Uint8Array(hostCount);
    for (const h of overloaded) excludedForPlacement[h] = 1;
    for (const vm of this.sortByRequestDescending(toMigrate)) {
      const target = this.findHostForVm(vm, excludedForPlacement);
      if (target < 0) continue;
      this.create(target, vm);
      migrations.push(this.migration(vm, target));
    }

    // Underload: try to empty hosts from the least utilised up, all VMs or none.
    const excludedForUnderload = new Uint8Array(hostCount);
    for (const h of overloaded) excludedForUnderload[h] = 1;
    for (let h = 0; h < hostCount; h++) {
      if (this.staleUtil[h] === 0) {
        excludedForUnderload[h] = 1;
        excludedForPlacement[h] = 1;
      }
    }
    for (const h of this.underloadCandidates()) {
      if (excludedForUnderload[h] === 1 || this.allMigratingOut(h)) continue;
      excludedForUnderload[h] = 1;
      excludedForPlacement[h] = 1;
      const leaving = (this.lists[h] ?? []).filter((vm) => this.migrating[vm] === 0);
      if (leaving.length === 0) continue;
      const placed: { vm: number; target: number }[] = [];
      for (const vm of this.sortByRequestDescending(leaving)) {
        const target = this.findHostForVm(vm, excludedForPlacement);
        if (target < 0) {
          for (const p of placed) this.destroy(p.target, p.vm);
          placed.length = 0;
          break;
        }
        this.create(target, vm);
        placed.push({ vm, target });
      }
      for (const p of placed) {
        excludedForUnderload[p.target] = 1;
        migrations.push(this.migration(p.vm, p.target));
      }
    }
    return { migrations, powerOff: [], powerOn: [] };
  }

  private migration(vm: number, target: number): SimulationMigration {
    return { vm: this.vmIds[vm] ?? '', from: this.hostIds[this.vmHost[vm] ?? 0] ?? '', to: this.hostIds[target] ?? '' };
  }

  /** Active hosts below 100 %, least utilised first (ties: lower index), as getUnderUtilizedHost picks them. */
  private underloadCandidates(): number[] {
    const candidates: number[] = [];
    for (let h = 0; h < this.hostIds.length; h++) {
      const u = this.utilisation(h);
      if (u > 0 && u < 1) candidates.push(h);
    }
    return candidates.sort((a, b) => this.utilisation(a) - this.utilisation(b) || a - b);
  }

  /** areAllVmsMigratingOutOrAnyVmMigratingIn (no VM migrates in at decision time in this model). */
  private allMigratingOut(h: number): boolean {
    for (const vm of this.lists[h] ?? []) if (this.migrating[vm] === 0) return false;
    return true;
  }

  private utilisation(h: number): number {
    const u = (this.staleUtil[h] ?? 0) / (this.capacity[h] ?? 1);
    return u > 1 && u < UTILISATION_CLAMP_LIMIT ? 1 : u;
  }

  /** PowerVmList.sortByCpuUtilization: decreasing current demand, stable. */
  private sortByRequestDescending(vms: readonly number[]): number[] {
    return [...vms].sort((a, b) => (this.request[b] ?? 0) - (this.request[a] ?? 0));
  }

  /** MMT: the migratable VM with the least memory, first in list order on ties. */
  private minimumMigrationTimeVm(h: number): number {
    let best = -1;
    let min = Number.MAX_VALUE;
    for (const vm of this.lists[h] ?? []) {
      if (this.migrating[vm] === 1) continue;
      const metric = this.vmMemory[vm] ?? 0;
      if (metric < min) {
        min = metric;
        best = vm;
      }
    }
    return best;
  }

  /** PABFD's findHostForVm: the suitable host whose power grows least and that would not be overloaded. */
  private findHostForVm(vm: number, excluded: Uint8Array): number {
    const request = this.request[vm] ?? 0;
    const perCoreRequest = request / (this.vmVcpus[vm] ?? 1);
    let minPower = Number.MAX_VALUE;
    let chosen = -1;
    for (let h = 0; h < this.hostIds.length; h++) {
      if (excluded[h] === 1) continue;
      if ((this.perCore[h] ?? 0) < perCoreRequest || (this.available[h] ?? 0) < request) continue;
      const planned = this.plannedCpu(h);
      if (planned !== 0 && this.isOverloaded(h, vm)) continue;
      const model = this.models[h];
      if (model === undefined) continue;
      const after = cloudSimPower(model, (planned + request) / (this.capacity[h] ?? 1));
      const diff = after - cloudSimPower(model, this.utilisation(h));
      if (diff < minPower) {
        minPower = diff;
        chosen = h;
      }
    }
    return chosen;
  }

  /** Overload test of host h with its planned VMs, plus `extra` (>= 0) as if just created there. */
  private isOverloaded(h: number, extra: number): boolean {
    const detector = this.detector;
    if (detector.kind === 'thr') return this.requestedRatio(h, extra) > detector.threshold;
    const window = this.window.fill(0);
    let lastNonZero = -1;
    let maxMemory = Number.NEGATIVE_INFINITY;
    const hostCpu = this.capacity[h] ?? 1;
    const add = (vm: number): void => {
      const base = vm * LR_WINDOW;
      for (let i = 0; i < LR_WINDOW; i++) window[i] = (window[i] ?? 0) + (this.recent[base + i] ?? 0) / hostCpu;
      lastNonZero = Math.max(lastNonZero, this.lastNonZero[vm] ?? -1);
      maxMemory = Math.max(maxMemory, this.vmMemory[vm] ?? 0);
    };
    for (const vm of this.lists[h] ?? []) add(vm);
    if (extra >= 0) add(extra);
    // MathUtil.trimZeroTail keeps at least one value: the history is long enough only with a
    // non-zero value at index LR_WINDOW - 1 or later.
    if (lastNonZero + 1 < LR_WINDOW) return this.requestedRatio(h, extra) > detector.fallbackThreshold;
    const oldestFirst = this.oldestFirst;
    for (let i = 0; i < LR_WINDOW; i++) oldestFirst[i] = window[LR_WINDOW - 1 - i] ?? 0;
    const fit = simpleRegression(oldestFirst);
    if (fit === undefined) return this.requestedRatio(h, extra) > detector.fallbackThreshold;
    const migrationIntervals = Math.ceil(maxMemory / detector.migrationMiBps / detector.intervalSeconds);
    const predicted = (fit.intercept + fit.slope * (LR_WINDOW + migrationIntervals)) * detector.safety;
    return predicted >= 1;
  }

  /** Sum of current demand of the planned VMs (in list order, plus `extra` last) over capacity. */
  private requestedRatio(h: number, extra: number): number {
    let total = 0;
    for (const vm of this.lists[h] ?? []) total += this.request[vm] ?? 0;
    if (extra >= 0) total += this.request[extra] ?? 0;
    return total / (this.capacity[h] ?? 1);
  }

  /** getUtilizationOfCpuMips(host) of CloudSim 3.0.3: CPU allocated to the planned VMs, in list order. */
  private plannedCpu(h: number): number {
    let total = 0;
    for (const a of this.allocs[h] ?? []) total += a;
    return total;
  }

  /** Host.vmCreate after isSuitableForVm: the request fits, so it is allocated as asked. */
  private create(h: number, vm: number): void {
    this.lists[h]?.push(vm);
    const request = this.cappedRequest(h, vm);
    this.allocs[h]?.push(request);
    const available = this.available[h] ?? 0;
    this.available[h] = available >= request ? available - request : 0;
  }

  private destroy(h: number, vm: number): void {
    const list = this.lists[h];
    if (list === undefined) return;
    const at = list.indexOf(vm);
    if (at < 0) return;
    list.splice(at, 1);
    this.recomputeAvailable(h);
  }

  /**
   * VmSchedulerTimeSharedOverSubscription re-allocating a host's VMs: requests capped at one core,
   * as asked while they fit; once oversubscribed every VM gets floor(request x capacity / total) and
   * nothing is left available.
   */
  private recomputeAvailable(h: number): void {
    const list = this.lists[h] ?? [];
    const capacity = this.capacity[h] ?? 0;
    let available = capacity;
    let required = 0;
    let oversubscribed = false;
    for (const vm of list) {
      const request = this.cappedRequest(h, vm);
      required += request;
      if (available >= request) available -= request;
      else {
        oversubscribed = true;
        available = 0;
      }
    }
    this.available[h] = available;
    const scale = oversubscribed ? capacity / required : 1;
    this.allocs[h] = list.map((vm) => {
      const vcpus = this.vmVcpus[vm] ?? 1;
      const perCore = (this.request[vm] ?? 0) / vcpus;
      const cap = this.perCore[h] ?? perCore;
      const capped = perCore > cap ? cap : perCore;
      let total = 0;
      for (let core = 0; core < vcpus; core++) total += oversubscribed ? Math.floor(capped * scale) : capped;
      return total;
    });
  }

  private cappedRequest(h: number, vm: number): number {
    const vcpus = this.vmVcpus[vm] ?? 1;
    const perCore = (this.request[vm] ?? 0) / vcpus;
    const cap = this.perCore[h] ?? perCore;
    const capped = perCore > cap ? cap : perCore;
    let total = 0;
    for (let core = 0; core < vcpus; core++) total += capped;
    return total;
  }
}
