import type { HostId, VmId } from '../model/ids.js';
import type { ClusterSnapshot } from '../model/snapshot.js';
import { CpuScheduler } from './cpu-scheduler.js';
import { DatacenterEventQueue, type QueuedEvent } from './datacenter-event-queue.js';
import { DatacenterFaults, type ScriptedFaults } from './datacenter-faults.js';
import { DatacenterRuntime, type RejectReason } from './datacenter-runtime.js';
import { sumTotals, type DatacenterTotals } from './datacenter-totals.js';
import { hostOfVm, recordSamples, snapshotOf, viewHost, type HostView } from './datacenter-views.js';
import { EnergyMeter, type EnergyAccounting } from './energy-meter.js';
import { HostPower } from './host-power.js';
import { placeInitial } from './initial-placement.js';
import { MigrationScheduler } from './migration-scheduler.js';
import type { SimulatedMigration, StartMigrationOptions } from './simulated-migration.js';
import { SlaAccounting } from './sla-accounting.js';
import type { InitialPlacement, SimulationSetup } from './simulation-setup.js';
import { VmLifecycle } from './vm-lifecycle.js';

export interface DatacenterOptions {
  /** Samples kept per host and VM for snapshots (CloudSim keeps 30). */
  readonly historyLength?: number;
  /** 'max-power': every host draws its maximum power all the time (CloudSim's non-power-aware datacenter). */
  readonly energyAccounting?: EnergyAccounting;
  /**
   * The wall-clock date of simulated time 0, ms since the epoch (the day the trace was recorded), so
   * that every timestamp the simulation hands out is a real date. Default 0 (the batch engine).
   */
  readonly epochMs?: number;
  /** Samples (what snapshots hand out) record memory use 0; the memory accounting is not affected. */
  readonly samplesWithoutMemory?: boolean;
}

const DEFAULT_HISTORY_LENGTH = 30;
const MS_PER_SECOND = 1000;

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
 *
 * This class is the facade and the clock: it advances time through the event queue and hands the
 * work to its parts (DatacenterRuntime: the state; CpuScheduler and SlaAccounting: a state update;
 * EnergyMeter; HostPower; MigrationScheduler; DatacenterFaults; datacenter-views).
 */
export class SimulatedDatacenter {
  readonly setup: SimulationSetup;
  /** Scripted faults for tests and the demo. */
  readonly faults: ScriptedFaults;
  private readonly runtime: DatacenterRuntime;
  private readonly queue = new DatacenterEventQueue();
  private readonly sla = new SlaAccounting();
  private readonly cpu: CpuScheduler;
  private readonly energy: EnergyMeter;
  private readonly power: HostPower;
  private readonly migrations: MigrationScheduler;
  private readonly scriptedFaults: DatacenterFaults;
  /** Undefined when every VM lives for the whole run (the shared traces). */
  private readonly lifecycle: VmLifecycle | undefined;
  private readonly historyLength: number;
  private readonly epochMs: number;
  private readonly samplesWithoutMemory: boolean;
  private clockSeconds = 0;
  private hostsPoweredOffPeak = 0;
  private unplacedVms = 0;

  constructor(setup: SimulationSetup, options: DatacenterOptions = {}) {
    this.setup = setup;
    this.historyLength = options.historyLength ?? DEFAULT_HISTORY_LENGTH;
    this.epochMs = options.epochMs ?? 0;
    this.samplesWithoutMemory = options.samplesWithoutMemory ?? false;
    const runtime = new DatacenterRuntime(setup);
    const queue = this.queue;
    this.runtime = runtime;
    this.cpu = new CpuScheduler({ runtime, sla: this.sla });
    this.energy = new EnergyMeter({ runtime, accounting: options.energyAccounting ?? 'measured' });
    this.power = new HostPower({ runtime, queue });
    this.migrations = new MigrationScheduler({ runtime, queue, cpu: this.cpu, power: this.power });
    this.scriptedFaults = new DatacenterFaults({ runtime });
    this.faults = this.scriptedFaults.script;
    const lifecycle = new VmLifecycle({ runtime, power: this.power });
    this.lifecycle = lifecycle.active ? lifecycle : undefined;
  }

  // ---------------------------------------------------------------- clock

  get nowSeconds(): number {
    return this.clockSeconds;
  }

  /** The simulated time as a date: the epoch (see DatacenterOptions.epochMs) plus nowSeconds. */
  get nowMs(): number {
    return this.epochMs + this.clockSeconds * MS_PER_SECOND;
  }

  /**
   * Moves the clock to `timeSeconds`: processes every queued event before it (migration and boot
   * completions, each with a state update before and after), then updates the state at
   * `timeSeconds` (energy and SLA accounting up to it, demands at it).
   */
  advanceTo(timeSeconds: number): void {
    this.processEventsBefore(timeSeconds, true);
    this.clockSeconds = Math.max(this.clockSeconds, timeSeconds);
    if (timeSeconds > this.runtime.lastUpdateSeconds) this.update(timeSeconds);
    this.countHostsOff();
  }

  /** Processes the events strictly before `timeSeconds` (or at it, when inclusive), without a final update. */
  processEventsBefore(timeSeconds: number, inclusive = false): void {
    for (;;) {
      const at = this.queue.nextTimeSeconds();
      if (at === undefined) break;
      if (at > timeSeconds || (!inclusive && at === timeSeconds)) break;
      this.clockSeconds = at;
      if (at > this.runtime.lastUpdateSeconds) this.update(at);
      for (let event = this.queue.takeDueAt(at); event !== undefined; event = this.queue.takeDueAt(at)) this.handleEvent(event);
      this.cpu.recomputeTouched();
    }
  }

  /** The state update at `t`: demands at t, every host recomputed, energy accrued since the last one. */
  private update(t: number): void {
    const dt = t - this.runtime.lastUpdateSeconds;
    this.lifecycle?.apply(t);
    this.cpu.updateDemands(t);
    this.cpu.computeAll(t);
    if (dt > 0) this.energy.accrue(dt);
    this.runtime.lastUpdateSeconds = t;
    if (this.setup.zeroDemandEndsVm) this.runtime.removeFinishedVms();
  }

  private handleEvent(event: QueuedEvent): void {
    if (event.kind === 'timer') {
      event.timer?.();
      return;
    }
    if (event.kind === 'boot') {
      const host = this.runtime.host(event.host);
      if (this.power.finishBoot(host)) this.migrations.startWaiting(host, event.timeSeconds);
      return;
    }
    this.migrations.complete(event);
  }

  // ---------------------------------------------------------------- placement

  /** Places every VM at time 0 (see placeInitial for the modes); VMs that fit nowhere are counted. */
  placeInitial(mode: InitialPlacement): void {
    this.unplacedVms += placeInitial(this.runtime, mode);
  }

  // ---------------------------------------------------------------- actions

  /**
   * Starts a migration now. Returns a reject reason instead when the migration cannot start; a
   * migration onto a booting host waits for the boot to finish. A VM already migrating may be sent
   * on (CloudSim does this when a host that just received a VM is then emptied in the same decision):
   * it ends on the last destination and every leg counts as a migration.
   */
  startMigration(vmId: VmId, fromId: HostId, toId: HostId, options: StartMigrationOptions = {}): RejectReason | undefined {
    return this.migrations.start(vmId, fromId, toId, options);
  }

  /** Applies queued recomputations after a batch of actions (the engine calls it after each decision). */
  settle(): void {
    this.cpu.recomputeTouched();
  }

  /** Cancels an in-flight migration: the VM stays where it runs, the destination's reservation is released. */
  cancelMigration(vmId: VmId, reason: string): boolean {
    return this.migrations.cancel(vmId, reason);
  }

  /** Powers a host off now. Only an empty host: otherwise 'not-empty' (deferred if all its VMs are leaving). */
  powerOff(hostId: HostId): RejectReason | undefined {
    return this.power.powerOff(hostId);
  }

  /** Powers a host on: it boots for its boot time, then takes VMs. */
  powerOn(hostId: HostId): RejectReason | undefined {
    return this.power.powerOn(hostId);
  }

  /** Runs `callback` when the clock reaches `atSeconds` (used by the ports for timeouts). */
  scheduleTimer(atSeconds: number, callback: () => void): void {
    this.queue.enqueue({ timeSeconds: atSeconds, kind: 'timer', vm: -1, host: -1, from: -1, startedAtSeconds: atSeconds, timer: callback });
  }

  // ---------------------------------------------------------------- observation

  /** Appends one sample per host and VM at the current time (the engine calls it before each decision). */
  recordSamples(): void {
    const off = recordSamples(this.runtime, this.power, this.nowMs, this.historyLength, this.samplesWithoutMemory);
    this.hostsPoweredOffPeak = Math.max(this.hostsPoweredOffPeak, off);
  }

  /** The peak of hosts off, measured whenever the clock moves (the daemon's ports never record samples). */
  private countHostsOff(): void {
    let off = 0;
    for (const host of this.runtime.hosts) if (this.power.isOff(host)) off++;
    this.hostsPoweredOffPeak = Math.max(this.hostsPoweredOffPeak, off);
  }

  /** Hosts on (or, for setups where idle hosts are off, hosts with VMs) and the power they draw now. */
  activity(): { readonly activeHosts: number; readonly powerWatts: number } {
    return this.energy.activity();
  }

  /**
   * A read-only ClusterSnapshot of now. Hosts in id order; VMs grouped by host in the host's own
   * order (CloudSim's vmList order, which its algorithms depend on for ties). Host samples are the
   * CPU the host delivers (CloudSim's utilizationMips) and the memory its VMs use (VMs migrating in
   * included); VM samples are CPU demand and memory in use. Under idleHostsAreOff an empty host
   * reads 'off' with a zero boot time.
   */
  snapshot(): ClusterSnapshot {
    return snapshotOf(this.runtime, this.nowMs);
  }

  /** Each host's CPU and memory in use over its capacity now, whether it is on, and its power actions so far (host order). */
  hostLoads(): { readonly id: string; readonly cpu: number; readonly memory: number; readonly on: boolean; readonly powerOffs: number; readonly powerOns: number }[] {
    return this.runtime.hosts.map((h) => ({
      id: h.spec.id,
      cpu: h.spec.cpu > 0 ? h.utilCpu / h.spec.cpu : 0,
      memory: h.spec.memoryMiB > 0 ? h.memoryUsedMiB / h.spec.memoryMiB : 0,
      on: h.power === 'on',
      powerOffs: h.powerOffs,
      powerOns: h.powerOns,
    }));
  }

  /** Migrations in flight now. */
  inFlight(): SimulatedMigration[] {
    return this.migrations.inFlight();
  }

  totals(): DatacenterTotals {
    return sumTotals(this.runtime, {
      energyJoules: this.energy.energyJoules,
      allHostsOnEnergyJoules: this.energy.allHostsOnEnergyJoules,
      hostOffSeconds: this.energy.hostOffSeconds,
      migrations: this.migrations.migrations,
      chainedMigrations: this.migrations.chainedMigrations,
      averageShortfall: this.sla.averageShortfall(),
      memoryOverloadHostSeconds: this.energy.memoryOverloadHostSeconds,
      hostsPoweredOffPeak: this.hostsPoweredOffPeak,
      unplacedVms: this.unplacedVms + (this.lifecycle?.unplaced ?? 0),
      migratedMiB: this.migrations.migratedMiB,
    });
  }

  // ---------------------------------------------------------------- port-facing views and faults

  hostView(hostId: HostId): HostView | undefined {
    return viewHost(this.runtime, this.energy, hostId);
  }

  vmHost(vmId: VmId): HostId | undefined {
    return hostOfVm(this.runtime, vmId);
  }

  /** Consumes a scripted migration failure, if one is armed. */
  takeMigrationFailure(): string | undefined {
    return this.scriptedFaults.takeMigrationFailure();
  }

  /** Consumes a scripted BMC timeout for the host, if one is armed. */
  takeBmcTimeout(hostId: HostId): boolean {
    return this.scriptedFaults.takeBmcTimeout(hostId);
  }
}
