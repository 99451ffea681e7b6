import { ConsolidatorError } from '../errors.js';
import type { HostId, VmId } from '../model/ids.js';
import type { ClusterSnapshot, HostSnapshot, UsageSample, VmSnapshot } from '../model/snapshot.js';
import { powerAt } from '../model/snapshot.js';
import type { InitialPlacement, SimHostSpec, SimVmSpec, SimulationSetup } from './simulation-setup.js';
import { demandFractionAt } from './trace-demand.js';

/**
 * The simulated datacenter: hosts with capacity and a power model, VMs whose demand follows their
 * traces, migrations that take time and cost performance, power states, and the accounting of
 * energy and SLA figures. One instance is shared by the batch engine (runSimulation) and by the
 * simulated ports (SimulatedHypervisor, SimulatedPower); its clock only moves when the caller calls
 * advanceTo().
 *
 * The mechanics follow CloudSim 3.0.3 step for step where the reference setup needs it (see
 * cloudsim-setup.ts): a state update recomputes every host at decision times and at every
 * migration completion; CPU is shared in proportion to demand on an oversubscribed host (floored, as
 * VmSchedulerTimeSharedOverSubscription does); a migrating VM gets 90 % of its demand at its source
 * while its destination reserves 10 %; energy is the trapezoid between consecutive updates; the SLA
 * figures are accumulated from the same per-update history entries CloudSim's Helper reads.
 */

export type HostPowerState = 'on' | 'off' | 'booting';

/** Why the datacenter refused an action of a decision (counted in the report, never thrown). */
export type RejectReason =
  | 'unknown-vm'
  | 'vm-gone'
  | 'wrong-source'
  | 'unknown-host'
  | 'same-host'
  | 'target-off'
  | 'target-unreachable'
  | 'no-memory'
  | 'already-migrating-to-target'
  | 'not-empty';

export interface SimulatedMigration {
  readonly vm: VmId;
  readonly from: HostId;
  readonly to: HostId;
  readonly startedAtSeconds: number;
  readonly endsAtSeconds: number;
}

export interface DatacenterOptions {
  /** Samples kept per host and VM for snapshots (CloudSim keeps 30). */
  readonly historyLength?: number;
  /** 'max-power': every host draws its maximum power all the time (CloudSim's non-power-aware datacenter). */
  readonly energyAccounting?: EnergyAccounting;
}

export type EnergyAccounting = 'measured' | 'max-power';

export const DEFAULT_HISTORY_LENGTH = 30;
const MS_PER_SECOND = 1000;
/** CloudSim clamps a utilisation in (1, 1.01) to 1 (HostDynamicWorkload.getUtilizationOfCpu). */
const UTILISATION_CLAMP_LIMIT = 1.01;
/** Labels every simulated host carries: its type and the CPU one vCPU can get. */
export const HOST_TYPE_LABEL = 'sim/host-type';
export const CPU_PER_CORE_LABEL = 'sim/cpu-per-core';

interface HostRuntime {
  readonly index: number;
  readonly spec: SimHostSpec;
  readonly labels: Readonly<Record<string, string>>;
  /** CloudSim's host vmList: VMs placed here plus VMs migrating in, in arrival order. */
  readonly vms: number[];
  /** VMs migrating in (also in vms). */
  readonly incoming: number[];
  /** Changes only at update times, after the update: during accrual it is the state of the segment. */
  power: HostPowerState;
  utilCpu: number;
  prevUtilCpu: number;
  requestedCpu: number;
  memoryReservedMiB: number;
  memoryUsedMiB: number;
  memoryOverAtLastUpdate: boolean;
  histTime: number;
  histAlloc: number;
  histRequested: number;
  histActive: boolean;
  activeSeconds: number;
  saturatedSeconds: number;
  pendingPowerOff: boolean;
  /** Migrations waiting for this host to finish booting. */
  readonly waitingMigrations: PendingMigration[];
  readonly samples: UsageSample[];
  vanished: boolean;
  powerOns: number;
  powerOffs: number;
}

interface VmRuntime {
  readonly index: number;
  readonly spec: SimVmSpec;
  /** Host the VM runs on (CloudSim's vmTable); -1 once gone. */
  host: number;
  alive: boolean;
  migrating: number;
  /** Memory this VM holds reserved on its host (and on a destination while migrating in). */
  reservedMiB: number;
  demandCpu: number;
  memoryUseMiB: number;
  allocCpu: number;
  histTime: number;
  histAlloc: number;
  histRequested: number;
  histInMigration: boolean;
  requestedCpuSeconds: number;
  allocatedCpuSeconds: number;
  migrationDeficitCpuSeconds: number;
  readonly samples: UsageSample[];
}

interface PendingMigration {
  readonly vm: number;
  readonly to: number;
  readonly options: StartMigrationOptions;
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

interface QueuedEvent {
  readonly timeSeconds: number;
  readonly seq: number;
  readonly kind: 'migration' | 'boot' | 'timer';
  readonly vm: number;
  readonly host: number;
  readonly startedAtSeconds: number;
  readonly from: number;
  readonly listener?: MigrationListener;
  readonly timer?: () => void;
}

export interface DatacenterTotals {
  readonly energyJoules: number;
  readonly migrations: number;
  readonly chainedMigrations: number;
  readonly activeHostSeconds: number;
  readonly saturatedHostSeconds: number;
  readonly requestedCpuSeconds: number;
  readonly allocatedCpuSeconds: number;
  readonly migrationDeficitCpuSeconds: number;
  /** Mean over hosts of saturated/active time (paper-style SLATAH), hosts that were ever active. */
  readonly slatahPerHostMean: number;
  /** Mean over VMs of migration deficit/requested (paper-style PDM). */
  readonly pdmPerVmMean: number;
  /** Mean relative shortfall over intervals where a VM got less than it asked ("Average SLA violation"). */
  readonly averageShortfall: number;
  readonly memoryOverloadHostSeconds: number;
  readonly hostsPoweredOffPeak: number;
  readonly powerOns: number;
  readonly powerOffs: number;
  readonly rejected: Readonly<Partial<Record<RejectReason, number>>>;
  readonly vmsAlive: number;
  readonly unplacedVms: number;
}

export class SimulatedDatacenter {
  readonly setup: SimulationSetup;
  private readonly hosts: HostRuntime[];
  private readonly vms: VmRuntime[];
  private readonly hostIndex = new Map<HostId, number>();
  private readonly vmIndex = new Map<VmId, number>();
  private readonly historyLength: number;
  private readonly energyAccounting: EnergyAccounting;
  private readonly events: QueuedEvent[] = [];
  private seq = 0;
  private clockSeconds = 0;
  private lastUpdateSeconds = 0;
  private readonly touched = new Set<number>();

  private energyJoules = 0;
  private migrations = 0;
  private chainedMigrations = 0;
  private violationIntervals = 0;
  private violationShortfallSum = 0;
  private memoryOverloadHostSeconds = 0;
  private hostsPoweredOffPeak = 0;
  private unplacedVms = 0;
  private readonly rejected: Partial<Record<RejectReason, number>> = {};
  private failNextMigrationMessage: string | undefined;
  private readonly bmcTimeouts = new Map<number, number>();

  constructor(setup: SimulationSetup, options: DatacenterOptions = {}) {
    this.setup = setup;
    this.historyLength = options.historyLength ?? DEFAULT_HISTORY_LENGTH;
    this.energyAccounting = options.energyAccounting ?? 'measured';
    this.hosts = setup.hosts.map((spec, index) => {
      if (this.hostIndex.has(spec.id)) throw new ConsolidatorError('INTERNAL', `duplicate host id ${spec.id}`);
      this.hostIndex.set(spec.id, index);
      return {
        index,
        spec,
        labels: { [HOST_TYPE_LABEL]: spec.typeName, [CPU_PER_CORE_LABEL]: String(spec.cpuPerCore) },
        vms: [],
        incoming: [],
        power: 'on',
        utilCpu: 0,
        prevUtilCpu: 0,
        requestedCpu: 0,
        memoryReservedMiB: 0,
        memoryUsedMiB: 0,
        memoryOverAtLastUpdate: false,
        histTime: -1,
        histAlloc: 0,
        histRequested: 0,
        histActive: true,
        activeSeconds: 0,
        saturatedSeconds: 0,
        pendingPowerOff: false,
        waitingMigrations: [],
        samples: [],
        vanished: false,
        powerOns: 0,
        powerOffs: 0,
      };
    });
    this.vms = setup.vms.map((spec, index) => {
      if (this.vmIndex.has(spec.id)) throw new ConsolidatorError('INTERNAL', `duplicate VM id ${spec.id}`);
      this.vmIndex.set(spec.id, index);
      return {
        index,
        spec,
        host: -1,
        alive: false,
        migrating: 0,
        reservedMiB: 0,
        demandCpu: 0,
        memoryUseMiB: 0,
        allocCpu: 0,
        histTime: -1,
        histAlloc: 0,
        histRequested: 0,
        histInMigration: false,
        requestedCpuSeconds: 0,
        allocatedCpuSeconds: 0,
        migrationDeficitCpuSeconds: 0,
        samples: [],
      };
    });
  }

  // ---------------------------------------------------------------- clock

  get nowSeconds(): number {
    return this.clockSeconds;
  }

  get nowMs(): number {
    return this.clockSeconds * MS_PER_SECOND;
  }

  /**
   * Moves the clock to `timeSeconds`: processes every queued event before it (migration and boot
   * completions, each with a state update before and after), then updates the state at
   * `timeSeconds` (energy and SLA accounting up to it, demands at it).
   */
  advanceTo(timeSeconds: number): void {
    this.processEventsBefore(timeSeconds, true);
    this.clockSeconds = Math.max(this.clockSeconds, timeSeconds);
    if (timeSeconds > this.lastUpdateSeconds) this.update(timeSeconds, true);
  }

  /** Processes the events strictly before `timeSeconds` (or at it, when inclusive), without a final update. */
  processEventsBefore(timeSeconds: number, inclusive = false): void {
    for (;;) {
      const first = this.events[0];
      if (first === undefined) break;
      if (first.timeSeconds > timeSeconds || (!inclusive && first.timeSeconds === timeSeconds)) break;
      const at = first.timeSeconds;
      this.clockSeconds = at;
      if (at > this.lastUpdateSeconds) this.update(at, true);
      while (this.events[0] !== undefined && this.events[0].timeSeconds === at) {
        const event = this.events.shift();
        if (event !== undefined) this.handleEvent(event);
      }
      this.flushRecompute();
    }
  }

  // ---------------------------------------------------------------- placement

  /**
   * Places every VM at time 0 on its provisioned CPU (CloudSim creates VMs with their full MIPS).
   * 'first-fit': the first host with room (CloudSim's PowerVmAllocationPolicySimple);
   * 'power-aware-best-fit': CloudSim 3.0.3's PABFD at creation time: the power after allocation counts
   * the CPU already allocated to VMs created on the host, the power before is the measured one (0 at
   * time 0), so an empty host always looks cheapest and VMs spread out one per host, best type first.
   * (Its overload check cannot reject anything at creation: VMs already created request nothing yet.)
   * 'as-specified': each VM on its spec's initialHost (tests and demos that need a given spread).
   * All reserve the VM's provisioned memory, whatever the setup's admission rule afterwards.
   * VMs that fit nowhere are left out and counted.
   */
  placeInitial(mode: InitialPlacement): void {
    const available = this.hosts.map((h) => h.spec.cpu);
    const memoryFree = this.hosts.map((h) => h.spec.memoryMiB);
    for (const vm of this.vms) {
      const cpu = vm.spec.cpu;
      const perCore = vm.spec.vcpus > 0 ? cpu / vm.spec.vcpus : 0;
      let chosen = -1;
      let minPowerDiff = Number.MAX_VALUE;
      if (mode === 'as-specified') chosen = vm.spec.initialHost === undefined ? -1 : (this.hostIndex.get(vm.spec.initialHost) ?? -1);
      for (const host of mode === 'as-specified' ? [] : this.hosts) {
        const free = available[host.index] ?? 0;
        const memory = Math.min(vm.spec.memoryMiB, host.spec.memoryMiB);
        if (host.spec.cpuPerCore < perCore || free < cpu || (memoryFree[host.index] ?? 0) < memory) continue;
        if (mode === 'first-fit') {
          chosen = host.index;
          break;
        }
        const model = host.spec.powerModel;
        const allocated = host.spec.cpu - free;
        const diff = powerAt(model, (allocated + cpu) / host.spec.cpu) - powerAt(model, 0);
        if (diff < minPowerDiff) {
          minPowerDiff = diff;
          chosen = host.index;
        }
      }
      const host = this.hosts[chosen];
      if (host === undefined) {
        this.unplacedVms++;
        continue;
      }
      available[host.index] = (available[host.index] ?? 0) - cpu;
      memoryFree[host.index] = (memoryFree[host.index] ?? 0) - vm.spec.memoryMiB;
      host.vms.push(vm.index);
      vm.reservedMiB = this.setup.memoryAdmission === 'overcommit' ? 0 : vm.spec.memoryMiB;
      host.memoryReservedMiB += vm.reservedMiB;
      vm.host = host.index;
      vm.alive = true;
    }
    if (!this.setup.idleHostsAreOff && this.setup.emptyHostsStartOff) {
      for (const host of this.hosts) {
        if (host.vms.length === 0) {
          host.power = 'off';
        }
      }
    }
  }

  // ---------------------------------------------------------------- state update

  private update(t: number, accrue: boolean): void {
    const dt = t - this.lastUpdateSeconds;
    for (const vm of this.vms) {
      if (!vm.alive) continue;
      vm.demandCpu = demandFractionAt(vm.spec.cpuTrace, t, this.setup.sampleSeconds) * vm.spec.cpu;
      const memoryTrace = vm.spec.memoryTrace;
      vm.memoryUseMiB =
        memoryTrace === undefined
          ? vm.spec.memoryMiB
          : demandFractionAt(memoryTrace, t, this.setup.sampleSeconds) * vm.spec.memoryMiB;
    }
    for (const host of this.hosts) this.computeHost(host, t);
    if (accrue && dt > 0) this.accrueEnergy(dt);
    this.lastUpdateSeconds = t;
    if (this.setup.zeroDemandEndsVm) this.removeFinishedVms();
  }

  /** Recomputes the hosts touched by actions at the current time, without accruing energy. */
  private flushRecompute(): void {
    if (this.touched.size === 0) return;
    const t = this.lastUpdateSeconds;
    for (const index of [...this.touched].sort((a, b) => a - b)) {
      const host = this.hosts[index];
      if (host !== undefined) this.computeHost(host, t);
    }
    this.touched.clear();
  }

  /** HostDynamicWorkload.updateVmsProcessing + VmSchedulerTimeSharedOverSubscription, for one host. */
  private computeHost(host: HostRuntime, t: number): void {
    const capacity = host.spec.cpu;
    const perCoreCap = host.spec.cpuPerCore;
    const sourceShare = this.setup.migrationSourceShare;
    const destinationShare = this.setup.migrationDestinationShare;
    const floorShares = this.setup.floorOversubscribedShares ?? true;
    let available = capacity;
    let oversubscribed = false;
    let required = 0;
    const list = host.vms;
    for (const index of list) {
      const vm = this.vm(index);
      const capped = cappedRequest(vm, perCoreCap);
      const request = host.incoming.includes(index) ? capped * destinationShare : capped;
      required += request;
      if (available >= request) available -= request;
      else {
        oversubscribed = true;
        available = 0;
      }
    }
    const scale = oversubscribed ? capacity / required : 1;
    let util = 0;
    let requested = 0;
    let memoryUsed = 0;
    for (const index of list) {
      const vm = this.vm(index);
      const incoming = host.incoming.includes(index);
      const outgoing = vm.migrating > 0 && !incoming;
      const vcpus = Math.max(1, vm.spec.vcpus);
      const perCore = vm.demandCpu / vcpus;
      const cappedPerCore = perCore > perCoreCap ? perCoreCap : perCore;
      let alloc = 0;
      for (let core = 0; core < vcpus; core++) {
        let mips = cappedPerCore;
        if (oversubscribed) {
          if (outgoing) mips = mips * scale * sourceShare;
          else if (incoming) mips = mips * destinationShare * scale;
          else mips = mips * scale;
          if (floorShares) mips = Math.floor(mips);
        } else if (outgoing) mips *= sourceShare;
        else if (incoming) mips *= destinationShare;
        alloc += mips;
      }
      memoryUsed += vm.memoryUseMiB;
      if (incoming) {
        util += alloc;
      } else {
        vm.allocCpu = alloc;
        this.vmHistoryEntry(vm, t, alloc, vm.demandCpu, outgoing);
        util += vm.migrating > 0 ? alloc / sourceShare : alloc;
      }
      requested += vm.demandCpu;
    }
    host.prevUtilCpu = host.utilCpu;
    host.utilCpu = util;
    host.requestedCpu = requested;
    host.memoryUsedMiB = memoryUsed;
    this.hostHistoryEntry(host, t, util, requested, util > 0);
  }

  private vmHistoryEntry(vm: VmRuntime, t: number, alloc: number, requested: number, inMigration: boolean): void {
    if (vm.histTime !== t && vm.histTime >= 0) {
      const dt = t - vm.histTime;
      vm.allocatedCpuSeconds += vm.histAlloc * dt;
      vm.requestedCpuSeconds += vm.histRequested * dt;
      if (vm.histAlloc < vm.histRequested) {
        this.violationIntervals++;
        this.violationShortfallSum += (vm.histRequested - vm.histAlloc) / vm.histRequested;
        if (vm.histInMigration) vm.migrationDeficitCpuSeconds += (vm.histRequested - vm.histAlloc) * dt;
      }
    }
    vm.histTime = t;
    vm.histAlloc = alloc;
    vm.histRequested = requested;
    vm.histInMigration = inMigration;
  }

  private hostHistoryEntry(host: HostRuntime, t: number, alloc: number, requested: number, active: boolean): void {
    if (host.histTime !== t && host.histTime >= 0 && host.histActive) {
      const dt = t - host.histTime;
      host.activeSeconds += dt;
      if (host.histAlloc < host.histRequested) host.saturatedSeconds += dt;
    }
    host.histTime = t;
    host.histAlloc = alloc;
    host.histRequested = requested;
    host.histActive = active;
  }

  private accrueEnergy(dt: number): void {
    let joules = 0;
    for (const host of this.hosts) {
      const model = host.spec.powerModel;
      if (host.memoryOverAtLastUpdate) this.memoryOverloadHostSeconds += dt;
      if (this.energyAccounting === 'max-power') {
        joules += powerAt(model, 1) * dt;
        continue;
      }
      if (this.setup.idleHostsAreOff || host.power === 'on') {
        const from = this.utilisation(host.prevUtilCpu, host.spec.cpu);
        const to = this.utilisation(host.utilCpu, host.spec.cpu);
        if (this.setup.idleHostsAreOff && from === 0) continue;
        const fromWatts = powerAt(model, from);
        joules += (fromWatts + (powerAt(model, to) - fromWatts) / 2) * dt;
      } else if (host.power === 'booting') {
        joules += host.spec.bootWatts * dt;
      } else {
        joules += host.spec.offWatts * dt;
      }
    }
    for (const host of this.hosts) host.memoryOverAtLastUpdate = host.memoryUsedMiB > host.spec.memoryMiB;
    this.energyJoules += joules;
  }

  private utilisation(cpu: number, capacity: number): number {
    const u = capacity > 0 ? cpu / capacity : 0;
    return u > 1 && u < UTILISATION_CLAMP_LIMIT ? 1 : u;
  }

  /** CloudSim's getCompletedVms: a VM not migrating whose demand is 0 at an update is deallocated for good. */
  private removeFinishedVms(): void {
    for (const host of this.hosts) {
      for (let i = 0; i < host.vms.length; i++) {
        const index = host.vms[i] ?? -1;
        const vm = this.vm(index);
        if (vm.migrating > 0 || vm.host !== host.index || vm.demandCpu !== 0) continue;
        host.vms.splice(i, 1);
        i--;
        host.memoryReservedMiB -= vm.reservedMiB;
        vm.reservedMiB = 0;
        vm.alive = false;
        vm.host = -1;
      }
    }
  }

  // ---------------------------------------------------------------- actions

  /**
   * Starts a migration now. Returns a reject reason instead when the migration cannot start; a
   * migration onto a booting host waits for the boot to finish. A VM already migrating may be sent
   * on (CloudSim does this when a host that just received a VM is then emptied in the same decision):
   * it ends on the last destination and every leg counts as a migration.
   */
  startMigration(vmId: VmId, fromId: HostId, toId: HostId, options: StartMigrationOptions = {}): RejectReason | undefined {
    const { listener } = options;
    const vmIndex = this.vmIndex.get(vmId);
    if (vmIndex === undefined) return this.reject('unknown-vm');
    const vm = this.vm(vmIndex);
    if (!vm.alive) return this.reject('vm-gone');
    const to = this.hostIndex.get(toId);
    const from = this.hostIndex.get(fromId);
    if (to === undefined || from === undefined) return this.reject('unknown-host');
    if (vm.host !== from) return this.reject('wrong-source');
    if (to === from) return this.reject('same-host');
    const target = this.host(to);
    if (target.vanished) return this.reject('target-unreachable');
    if (target.incoming.includes(vmIndex)) return this.reject('already-migrating-to-target');
    if (!this.setup.idleHostsAreOff && target.power !== 'on') {
      if (target.power === 'booting') {
        target.waitingMigrations.push({ vm: vmIndex, to, options });
        return undefined;
      }
      return this.reject('target-off');
    }
    const reserve = this.migrationReservation(vm);
    if (!this.memoryFits(target, reserve)) return this.reject('no-memory');
    if (vm.migrating > 0) this.chainedMigrations++;
    target.vms.push(vmIndex);
    target.incoming.push(vmIndex);
    target.memoryReservedMiB += reserve;
    vm.migrating++;
    this.migrations++;
    const now = this.lastUpdateSeconds;
    const cap = options.bandwidthMiBps ?? 0;
    const speed = cap > 0 ? Math.min(cap, this.setup.migrationMiBps) : this.setup.migrationMiBps;
    const duration = vm.spec.memoryMiB / speed;
    this.enqueue({
      timeSeconds: now + duration,
      seq: this.seq++,
      kind: 'migration',
      vm: vmIndex,
      host: to,
      from,
      startedAtSeconds: now,
      ...(listener === undefined ? {} : { listener }),
    });
    this.touched.add(to);
    this.touched.add(from);
    return undefined;
  }

  /** Applies queued recomputations after a batch of actions (the engine calls it after each decision). */
  settle(): void {
    this.flushRecompute();
  }

  /** Cancels an in-flight migration: the VM stays where it runs, the destination's reservation is released. */
  cancelMigration(vmId: VmId, reason: string): boolean {
    const vmIndex = this.vmIndex.get(vmId);
    if (vmIndex === undefined) return false;
    const at = this.events.findIndex((e) => e.kind === 'migration' && e.vm === vmIndex);
    const event = this.events[at];
    if (event === undefined) return this.cancelWaitingMigration(vmIndex, reason);
    this.events.splice(at, 1);
    const target = this.host(event.host);
    const vm = this.vm(vmIndex);
    removeFirst(target.vms, vmIndex);
    removeFirst(target.incoming, vmIndex);
    target.memoryReservedMiB -= this.migrationReservation(vm);
    vm.migrating--;
    this.touched.add(event.host);
    this.touched.add(vm.host);
    this.flushRecompute();
    event.listener?.cancelled(this.describe(event), reason);
    return true;
  }

  /** Drops a migration still waiting for its destination to boot. */
  private cancelWaitingMigration(vmIndex: number, reason: string): boolean {
    for (const host of this.hosts) {
      const at = host.waitingMigrations.findIndex((p) => p.vm === vmIndex);
      const pending = host.waitingMigrations[at];
      if (pending === undefined) continue;
      host.waitingMigrations.splice(at, 1);
      const vm = this.vm(vmIndex);
      const now = this.lastUpdateSeconds;
      pending.options.listener?.cancelled(
        { vm: vm.spec.id, from: this.hosts[vm.host]?.spec.id ?? '', to: host.spec.id, startedAtSeconds: now, endsAtSeconds: now },
        reason,
      );
      return true;
    }
    return false;
  }

  /** Powers a host off now. Only an empty host: otherwise 'not-empty' (deferred if all its VMs are leaving). */
  powerOff(hostId: HostId): RejectReason | undefined {
    const index = this.hostIndex.get(hostId);
    if (index === undefined) return this.reject('unknown-host');
    const host = this.host(index);
    if (host.vms.length > 0) {
      const allLeaving = host.incoming.length === 0 && host.vms.every((v) => this.vm(v).migrating > 0);
      if (allLeaving) {
        host.pendingPowerOff = true;
        return undefined;
      }
      return this.reject('not-empty');
    }
    this.switchOff(host);
    return undefined;
  }

  /** Powers a host on: it boots for its boot time, then takes VMs. */
  powerOn(hostId: HostId): RejectReason | undefined {
    const index = this.hostIndex.get(hostId);
    if (index === undefined) return this.reject('unknown-host');
    const host = this.host(index);
    host.pendingPowerOff = false;
    if (this.setup.idleHostsAreOff || host.power !== 'off') return undefined;
    host.powerOns++;
    if (host.spec.bootSeconds <= 0) {
      host.power = 'on';
      return undefined;
    }
    host.power = 'booting';
    this.enqueue({
      timeSeconds: this.lastUpdateSeconds + host.spec.bootSeconds,
      seq: this.seq++,
      kind: 'boot',
      vm: -1,
      host: index,
      from: index,
      startedAtSeconds: this.lastUpdateSeconds,
    });
    return undefined;
  }

  /** Runs `callback` when the clock reaches `atSeconds` (used by the ports for timeouts). */
  scheduleTimer(atSeconds: number, callback: () => void): void {
    this.enqueue({ timeSeconds: atSeconds, seq: this.seq++, kind: 'timer', vm: -1, host: -1, from: -1, startedAtSeconds: atSeconds, timer: callback });
  }

  private switchOff(host: HostRuntime): void {
    host.pendingPowerOff = false;
    if (this.setup.idleHostsAreOff || host.power === 'off') return;
    host.power = 'off';
    host.powerOffs++;
    this.touched.add(host.index);
  }

  private handleEvent(event: QueuedEvent): void {
    if (event.kind === 'timer') {
      event.timer?.();
      return;
    }
    if (event.kind === 'boot') {
      const host = this.host(event.host);
      if (host.power !== 'booting') return;
      host.power = 'on';
      this.touched.add(host.index);
      const waiting = host.waitingMigrations.splice(0);
      for (const pending of waiting) {
        const vm = this.vm(pending.vm);
        const from = this.hosts[vm.host]?.spec.id;
        const reason =
          from === undefined ? this.reject('vm-gone') : this.startMigration(vm.spec.id, from, host.spec.id, pending.options);
        if (reason !== undefined && pending.options.listener !== undefined) {
          pending.options.listener.cancelled(
            { vm: vm.spec.id, from: '', to: host.spec.id, startedAtSeconds: event.timeSeconds, endsAtSeconds: event.timeSeconds },
            reason,
          );
        }
      }
      return;
    }
    // Datacenter.processVmMigrate: deallocate from the host it runs on, drop the reservation, create on the target.
    const vm = this.vm(event.vm);
    const target = this.host(event.host);
    const source = this.hosts[vm.host];
    if (source !== undefined) {
      removeFirst(source.vms, vm.index);
      source.memoryReservedMiB -= vm.reservedMiB;
      this.touched.add(source.index);
    }
    removeFirst(target.vms, vm.index);
    removeFirst(target.incoming, vm.index);
    target.vms.push(vm.index);
    vm.reservedMiB = this.migrationReservation(vm);
    vm.host = target.index;
    vm.migrating--;
    this.touched.add(target.index);
    if (source !== undefined && source.pendingPowerOff && source.vms.length === 0) this.switchOff(source);
    event.listener?.done(this.describe(event));
  }

  private describe(event: QueuedEvent): SimulatedMigration {
    return {
      vm: this.vm(event.vm).spec.id,
      from: this.host(event.from).spec.id,
      to: this.host(event.host).spec.id,
      startedAtSeconds: event.startedAtSeconds,
      endsAtSeconds: event.timeSeconds,
    };
  }

  /** Memory a VM reserves on a destination (RamProvisionerSimple caps a request at the host's RAM). */
  private migrationReservation(vm: VmRuntime): number {
    return this.setup.memoryAdmission === 'reserve' ? vm.spec.memoryMiB : 0;
  }

  private memoryFits(host: HostRuntime, memoryMiB: number): boolean {
    if (this.setup.memoryAdmission === 'overcommit') return true;
    return host.spec.memoryMiB - host.memoryReservedMiB >= Math.min(memoryMiB, host.spec.memoryMiB);
  }

  private enqueue(event: QueuedEvent): void {
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const other = this.events[mid];
      if (other !== undefined && (other.timeSeconds < event.timeSeconds || (other.timeSeconds === event.timeSeconds && other.seq < event.seq))) lo = mid + 1;
      else hi = mid;
    }
    this.events.splice(lo, 0, event);
  }

  private reject(reason: RejectReason): RejectReason {
    this.rejected[reason] = (this.rejected[reason] ?? 0) + 1;
    return reason;
  }

  // ---------------------------------------------------------------- observation

  /** Appends one sample per host and VM at the current time (the engine calls it before each decision). */
  recordSamples(): void {
    const atMs = this.nowMs;
    let off = 0;
    for (const host of this.hosts) {
      pushBounded(host.samples, { atMs, use: { cpu: host.utilCpu, memory: host.memoryUsedMiB } }, this.historyLength);
      if (this.isOff(host)) off++;
    }
    this.hostsPoweredOffPeak = Math.max(this.hostsPoweredOffPeak, off);
    for (const vm of this.vms) {
      if (!vm.alive) continue;
      pushBounded(vm.samples, { atMs, use: { cpu: vm.demandCpu, memory: vm.memoryUseMiB } }, this.historyLength);
    }
  }

  private isOff(host: HostRuntime): boolean {
    return this.setup.idleHostsAreOff ? host.vms.length === 0 : host.power === 'off';
  }

  /** Hosts on (or, for setups where idle hosts are off, hosts with VMs) and the power they draw now. */
  activity(): { readonly activeHosts: number; readonly powerWatts: number } {
    let activeHosts = 0;
    let powerWatts = 0;
    for (const host of this.hosts) {
      if (this.energyAccounting === 'max-power') {
        activeHosts++;
        powerWatts += powerAt(host.spec.powerModel, 1);
        continue;
      }
      if (this.setup.idleHostsAreOff ? host.utilCpu > 0 : host.power === 'on') {
        activeHosts++;
        powerWatts += powerAt(host.spec.powerModel, this.utilisation(host.utilCpu, host.spec.cpu));
      } else if (!this.setup.idleHostsAreOff) {
        powerWatts += host.power === 'booting' ? host.spec.bootWatts : host.spec.offWatts;
      }
    }
    return { activeHosts, powerWatts };
  }

  /**
   * A read-only ClusterSnapshot of now. Hosts in id order; VMs grouped by host in the host's own
   * order (CloudSim's vmList order, which its algorithms depend on for ties). Host samples are the
   * CPU the host delivers (CloudSim's utilizationMips) and the memory its VMs use (VMs migrating in
   * included); VM samples are CPU demand and memory in use. Under idleHostsAreOff an empty host
   * reads 'off' with a zero boot time.
   */
  snapshot(): ClusterSnapshot {
    const hosts: HostSnapshot[] = [];
    const vms: VmSnapshot[] = [];
    for (const host of this.hosts) {
      const idleOff = this.setup.idleHostsAreOff;
      hosts.push({
        id: host.spec.id,
        power: idleOff ? (host.vms.length === 0 ? 'off' : 'on') : host.power === 'off' ? 'off' : 'on',
        reachable: !host.vanished && (idleOff || host.power === 'on'),
        capacity: { cpu: host.spec.cpu, memory: host.spec.memoryMiB },
        samples: host.samples.slice(),
        excluded: false,
        maintenance: false,
        labels: host.labels,
        powerModel: host.spec.powerModel,
        bootSeconds: idleOff ? 0 : host.spec.bootSeconds,
      });
      for (const index of host.vms) {
        const vm = this.vm(index);
        if (vm.host !== host.index) continue;
        vms.push({
          id: vm.spec.id,
          host: host.spec.id,
          state: 'running',
          vcpus: vm.spec.vcpus,
          memoryMiB: vm.spec.memoryMiB,
          samples: vm.samples.slice(),
          pinned: false,
          antiAffinityGroups: [],
        });
      }
    }
    return { takenAtMs: this.nowMs, hosts, vms };
  }

  /** Migrations in flight now. */
  inFlight(): SimulatedMigration[] {
    return this.events.filter((e) => e.kind === 'migration').map((e) => this.describe(e));
  }

  totals(): DatacenterTotals {
    let activeHostSeconds = 0;
    let saturatedHostSeconds = 0;
    let ratioSum = 0;
    let hostsEverActive = 0;
    let powerOns = 0;
    let powerOffs = 0;
    for (const host of this.hosts) {
      activeHostSeconds += host.activeSeconds;
      saturatedHostSeconds += host.saturatedSeconds;
      if (host.activeSeconds > 0) {
        hostsEverActive++;
        ratioSum += host.saturatedSeconds / host.activeSeconds;
      }
      powerOns += host.powerOns;
      powerOffs += host.powerOffs;
    }
    let requested = 0;
    let allocated = 0;
    let deficit = 0;
    let pdmSum = 0;
    let vmsWithDemand = 0;
    let vmsAlive = 0;
    for (const vm of this.vms) {
      requested += vm.requestedCpuSeconds;
      allocated += vm.allocatedCpuSeconds;
      deficit += vm.migrationDeficitCpuSeconds;
      if (vm.requestedCpuSeconds > 0) {
        vmsWithDemand++;
        pdmSum += vm.migrationDeficitCpuSeconds / vm.requestedCpuSeconds;
      }
      if (vm.alive) vmsAlive++;
    }
    return {
      energyJoules: this.energyJoules,
      migrations: this.migrations,
      chainedMigrations: this.chainedMigrations,
      activeHostSeconds,
      saturatedHostSeconds,
      requestedCpuSeconds: requested,
      allocatedCpuSeconds: allocated,
      migrationDeficitCpuSeconds: deficit,
      slatahPerHostMean: hostsEverActive > 0 ? ratioSum / hostsEverActive : 0,
      pdmPerVmMean: vmsWithDemand > 0 ? pdmSum / vmsWithDemand : 0,
      averageShortfall: this.violationIntervals > 0 ? this.violationShortfallSum / this.violationIntervals : 0,
      memoryOverloadHostSeconds: this.memoryOverloadHostSeconds,
      hostsPoweredOffPeak: this.hostsPoweredOffPeak,
      powerOns,
      powerOffs,
      rejected: { ...this.rejected },
      vmsAlive,
      unplacedVms: this.unplacedVms,
    };
  }

  // ---------------------------------------------------------------- port-facing views and faults

  hostView(hostId: HostId): HostView | undefined {
    const index = this.hostIndex.get(hostId);
    if (index === undefined) return undefined;
    const host = this.host(index);
    return {
      id: host.spec.id,
      spec: host.spec,
      power: host.power,
      vanished: host.vanished,
      cpuUsed: host.utilCpu,
      memoryUsedMiB: host.memoryUsedMiB,
      powerWatts: this.hostWatts(host),
      vms: host.vms.map((v) => {
        const vm = this.vm(v);
        const incoming = host.incoming.includes(v);
        return {
          id: vm.spec.id,
          spec: vm.spec,
          incoming,
          migrating: vm.migrating > 0,
          // A VM migrating in runs at its source; here it only holds a reservation.
          cpuUsed: incoming ? 0 : vm.allocCpu,
          memoryUsedMiB: vm.memoryUseMiB,
        };
      }),
    };
  }

  vmHost(vmId: VmId): HostId | undefined {
    const index = this.vmIndex.get(vmId);
    if (index === undefined) return undefined;
    const vm = this.vm(index);
    return vm.alive ? this.hosts[vm.host]?.spec.id : undefined;
  }

  private hostWatts(host: HostRuntime): number {
    if (host.power === 'off') return host.spec.offWatts;
    if (host.power === 'booting') return host.spec.bootWatts;
    if (this.setup.idleHostsAreOff && host.utilCpu === 0) return 0;
    return powerAt(host.spec.powerModel, this.utilisation(host.utilCpu, host.spec.cpu));
  }

  /** Scripted faults for tests and the demo. */
  readonly faults = {
    /** The next migration started through the simulated hypervisor fails at once; the VM stays. */
    failNextMigration: (message = 'simulated migration failure'): void => {
      this.failNextMigrationMessage = message;
    },
    /** The next `times` BMC calls for the host time out. */
    timeOutBmc: (hostId: HostId, times = 1): void => {
      this.bmcTimeouts.set(this.requireHost(hostId), times);
    },
    /** The host drops off the network: inspection and BMC calls fail until restoreHost. */
    vanishHost: (hostId: HostId): void => {
      this.host(this.requireHost(hostId)).vanished = true;
    },
    restoreHost: (hostId: HostId): void => {
      this.host(this.requireHost(hostId)).vanished = false;
    },
  };

  /** Consumes a scripted migration failure, if one is armed. */
  takeMigrationFailure(): string | undefined {
    const message = this.failNextMigrationMessage;
    this.failNextMigrationMessage = undefined;
    return message;
  }

  /** Consumes a scripted BMC timeout for the host, if one is armed. */
  takeBmcTimeout(hostId: HostId): boolean {
    const index = this.hostIndex.get(hostId);
    if (index === undefined) return false;
    const left = this.bmcTimeouts.get(index) ?? 0;
    if (left <= 0) return false;
    this.bmcTimeouts.set(index, left - 1);
    return true;
  }

  private requireHost(hostId: HostId): number {
    const index = this.hostIndex.get(hostId);
    if (index === undefined) throw new ConsolidatorError('INTERNAL', `no simulated host ${hostId}`);
    return index;
  }

  private host(index: number): HostRuntime {
    const host = this.hosts[index];
    if (host === undefined) throw new ConsolidatorError('INTERNAL', `no simulated host #${index}`);
    return host;
  }

  private vm(index: number): VmRuntime {
    const vm = this.vms[index];
    if (vm === undefined) throw new ConsolidatorError('INTERNAL', `no simulated VM #${index}`);
    return vm;
  }
}

export interface HostView {
  readonly id: HostId;
  readonly spec: SimHostSpec;
  readonly power: HostPowerState;
  readonly vanished: boolean;
  readonly cpuUsed: number;
  readonly memoryUsedMiB: number;
  readonly powerWatts: number;
  readonly vms: readonly {
    readonly id: VmId;
    readonly spec: SimVmSpec;
    readonly incoming: boolean;
    readonly migrating: boolean;
    readonly cpuUsed: number;
    readonly memoryUsedMiB: number;
  }[];
}

/** A vCPU's request is capped at one physical core (VmSchedulerTimeSharedOverSubscription). */
function cappedRequest(vm: VmRuntime, perCoreCap: number): number {
  const vcpus = Math.max(1, vm.spec.vcpus);
  const perCore = vm.demandCpu / vcpus;
  const capped = perCore > perCoreCap ? perCoreCap : perCore;
  let total = 0;
  for (let core = 0; core < vcpus; core++) total += capped;
  return total;
}

function removeFirst(list: number[], value: number): void {
  const at = list.indexOf(value);
  if (at >= 0) list.splice(at, 1);
}

function pushBounded<T>(list: T[], value: T, limit: number): void {
  list.push(value);
  while (list.length > limit) list.shift();
}
