import type { HostId, VmId } from '../model/ids.js';
import type { CpuScheduler } from './cpu-scheduler.js';
import type { DatacenterEventQueue, QueuedEvent } from './datacenter-event-queue.js';
import type { DatacenterRuntime, HostRuntime, RejectReason, VmRuntime } from './datacenter-runtime.js';
import type { HostPower } from './host-power.js';
import type { SimulatedMigration, StartMigrationOptions } from './simulated-migration.js';

/**
 * Live migrations: started now (or held until a booting destination is on), completed by a queued
 * 'migration' event after memory / speed seconds, or cancelled. While it runs, the VM is on both
 * hosts' lists (CloudSim's vmList) and the destination holds its memory reservation.
 */
export class MigrationScheduler {
  private readonly runtime: DatacenterRuntime;
  private readonly queue: DatacenterEventQueue;
  private readonly cpu: CpuScheduler;
  private readonly power: HostPower;
  private started = 0;
  private chained = 0;
  private movedMiB = 0;

  constructor(deps: {
    readonly runtime: DatacenterRuntime;
    readonly queue: DatacenterEventQueue;
    readonly cpu: CpuScheduler;
    readonly power: HostPower;
  }) {
    this.runtime = deps.runtime;
    this.queue = deps.queue;
    this.cpu = deps.cpu;
    this.power = deps.power;
  }

  /** Migrations started, every leg counted. */
  get migrations(): number {
    return this.started;
  }

  /** Memory the started migrations copy (each VM's provisioned memory, every leg counted). */
  get migratedMiB(): number {
    return this.movedMiB;
  }

  /** Migrations of a VM that was already migrating. */
  get chainedMigrations(): number {
    return this.chained;
  }

  /** See SimulatedDatacenter.startMigration. */
  start(vmId: VmId, fromId: HostId, toId: HostId, options: StartMigrationOptions = {}): RejectReason | undefined {
    const { runtime } = this;
    const { listener } = options;
    const vmIndex = runtime.vmIndex.get(vmId);
    if (vmIndex === undefined) return runtime.reject('unknown-vm');
    const vm = runtime.vm(vmIndex);
    if (!vm.alive) return runtime.reject('vm-gone');
    const to = runtime.hostIndex.get(toId);
    const from = runtime.hostIndex.get(fromId);
    if (to === undefined || from === undefined) return runtime.reject('unknown-host');
    if (vm.host !== from) return runtime.reject('wrong-source');
    if (to === from) return runtime.reject('same-host');
    const target = runtime.host(to);
    if (target.vanished) return runtime.reject('target-unreachable');
    if (target.incoming.includes(vmIndex)) return runtime.reject('already-migrating-to-target');
    if (!runtime.setup.idleHostsAreOff && target.power !== 'on') {
      if (target.power === 'booting') {
        target.waitingMigrations.push({ vm: vmIndex, to, options });
        return undefined;
      }
      return runtime.reject('target-off');
    }
    const reserve = this.reservation(vm);
    if (!this.memoryFits(target, reserve)) return runtime.reject('no-memory');
    if (vm.migrating > 0) this.chained++;
    target.vms.push(vmIndex);
    target.incoming.push(vmIndex);
    target.memoryReservedMiB += reserve;
    vm.migrating++;
    this.started++;
    this.movedMiB += vm.spec.memoryMiB;
    const now = runtime.lastUpdateSeconds;
    const cap = options.bandwidthMiBps ?? 0;
    const speed = cap > 0 ? Math.min(cap, runtime.setup.migrationMiBps) : runtime.setup.migrationMiBps;
    const duration = vm.spec.memoryMiB / speed;
    this.queue.enqueue({
      timeSeconds: now + duration,
      kind: 'migration',
      vm: vmIndex,
      host: to,
      from,
      startedAtSeconds: now,
      ...(listener === undefined ? {} : { listener }),
    });
    runtime.touched.add(to);
    runtime.touched.add(from);
    return undefined;
  }

  /** Starts the migrations that waited for `host` to boot; those that can no longer start are cancelled. */
  startWaiting(host: HostRuntime, atSeconds: number): void {
    const waiting = host.waitingMigrations.splice(0);
    for (const pending of waiting) {
      const vm = this.runtime.vm(pending.vm);
      const from = this.runtime.hosts[vm.host]?.spec.id;
      const reason = from === undefined ? this.runtime.reject('vm-gone') : this.start(vm.spec.id, from, host.spec.id, pending.options);
      if (reason !== undefined && pending.options.listener !== undefined) {
        pending.options.listener.cancelled(
          { vm: vm.spec.id, from: '', to: host.spec.id, startedAtSeconds: atSeconds, endsAtSeconds: atSeconds },
          reason,
        );
      }
    }
  }

  /** Datacenter.processVmMigrate: deallocate from the host it runs on, drop the reservation, create on the target. */
  complete(event: QueuedEvent): void {
    const { runtime } = this;
    const vm = runtime.vm(event.vm);
    const target = runtime.host(event.host);
    const source = runtime.hosts[vm.host];
    if (source !== undefined) {
      removeFirst(source.vms, vm.index);
      source.memoryReservedMiB -= vm.reservedMiB;
      runtime.touched.add(source.index);
    }
    removeFirst(target.vms, vm.index);
    removeFirst(target.incoming, vm.index);
    target.vms.push(vm.index);
    vm.reservedMiB = this.reservation(vm);
    vm.host = target.index;
    vm.migrating--;
    runtime.touched.add(target.index);
    if (source !== undefined) this.power.switchOffIfEmptied(source);
    event.listener?.done(this.describe(event));
  }

  /** See SimulatedDatacenter.cancelMigration. */
  cancel(vmId: VmId, reason: string): boolean {
    const { runtime } = this;
    const vmIndex = runtime.vmIndex.get(vmId);
    if (vmIndex === undefined) return false;
    const event = this.queue.takeMigrationOf(vmIndex);
    if (event === undefined) return this.cancelWaiting(vmIndex, reason);
    const target = runtime.host(event.host);
    const vm = runtime.vm(vmIndex);
    removeFirst(target.vms, vmIndex);
    removeFirst(target.incoming, vmIndex);
    target.memoryReservedMiB -= this.reservation(vm);
    vm.migrating--;
    runtime.touched.add(event.host);
    runtime.touched.add(vm.host);
    this.cpu.recomputeTouched();
    event.listener?.cancelled(this.describe(event), reason);
    return true;
  }

  /** Migrations in flight now. */
  inFlight(): SimulatedMigration[] {
    return this.queue.migrations().map((e) => this.describe(e));
  }

  /** Drops a migration still waiting for its destination to boot. */
  private cancelWaiting(vmIndex: number, reason: string): boolean {
    for (const host of this.runtime.hosts) {
      const at = host.waitingMigrations.findIndex((p) => p.vm === vmIndex);
      const pending = host.waitingMigrations[at];
      if (pending === undefined) continue;
      host.waitingMigrations.splice(at, 1);
      const vm = this.runtime.vm(vmIndex);
      const now = this.runtime.lastUpdateSeconds;
      pending.options.listener?.cancelled(
        { vm: vm.spec.id, from: this.runtime.hosts[vm.host]?.spec.id ?? '', to: host.spec.id, startedAtSeconds: now, endsAtSeconds: now },
        reason,
      );
      return true;
    }
    return false;
  }

  private describe(event: QueuedEvent): SimulatedMigration {
    return {
      vm: this.runtime.vm(event.vm).spec.id,
      from: this.runtime.host(event.from).spec.id,
      to: this.runtime.host(event.host).spec.id,
      startedAtSeconds: event.startedAtSeconds,
      endsAtSeconds: event.timeSeconds,
    };
  }

  /** Memory a VM reserves on a destination (RamProvisionerSimple caps a request at the host's RAM). */
  private reservation(vm: VmRuntime): number {
    return this.runtime.setup.memoryAdmission === 'reserve' ? vm.spec.memoryMiB : 0;
  }

  private memoryFits(host: HostRuntime, memoryMiB: number): boolean {
    if (this.runtime.setup.memoryAdmission === 'overcommit') return true;
    return host.spec.memoryMiB - host.memoryReservedMiB >= Math.min(memoryMiB, host.spec.memoryMiB);
  }
}

function removeFirst(list: number[], value: number): void {
  const at = list.indexOf(value);
  if (at >= 0) list.splice(at, 1);
}
