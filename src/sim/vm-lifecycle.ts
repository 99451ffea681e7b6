import type { DatacenterRuntime, HostRuntime, VmRuntime } from './datacenter-runtime.js';
import type { HostPower } from './host-power.js';

/**
 * VMs that appear and disappear during a run (a general trace, a recording): at each state update a
 * VM whose time has come is placed (on its recorded host when that host is on, else the first
 * powered-on host with room for its provisioned CPU and memory, else the powered-on host with the
 * most free CPU), and a VM past its end leaves its host for good (one still migrating leaves when the
 * migration ends). Setups whose VMs all live for the whole run skip all of this.
 */
export class VmLifecycle {
  private readonly runtime: DatacenterRuntime;
  private readonly power: HostPower;
  /** VMs still to appear, latest first (popped from the end). */
  private readonly arrivals: number[];
  /** VMs that will leave, earliest first; `nextDeparture` walks it. */
  private readonly departures: number[];
  private nextDeparture = 0;
  private readonly late: number[] = [];
  private unplacedCount = 0;

  constructor(deps: { readonly runtime: DatacenterRuntime; readonly power: HostPower }) {
    this.runtime = deps.runtime;
    this.power = deps.power;
    const vms = this.runtime.vms;
    this.arrivals = vms
      .filter((vm) => (vm.spec.startSeconds ?? 0) > 0)
      .sort((a, b) => (b.spec.startSeconds ?? 0) - (a.spec.startSeconds ?? 0) || b.index - a.index)
      .map((vm) => vm.index);
    this.departures = vms
      .filter((vm) => vm.spec.endSeconds !== undefined)
      .sort((a, b) => (a.spec.endSeconds ?? 0) - (b.spec.endSeconds ?? 0) || a.index - b.index)
      .map((vm) => vm.index);
  }

  /** True when some VM appears or disappears during the run. */
  get active(): boolean {
    return this.arrivals.length > 0 || this.departures.length > 0;
  }

  /** VMs that appeared when no host was on to take them. */
  get unplaced(): number {
    return this.unplacedCount;
  }

  /** Departures and arrivals due at or before `t`. */
  apply(t: number): void {
    const { runtime } = this;
    for (let i = 0; i < this.late.length; i++) {
      const vm = runtime.vm(this.late[i] ?? -1);
      if (this.leave(vm)) this.late.splice(i--, 1);
    }
    while (this.nextDeparture < this.departures.length) {
      const vm = runtime.vm(this.departures[this.nextDeparture] ?? -1);
      if ((vm.spec.endSeconds ?? Infinity) > t) break;
      this.nextDeparture++;
      if (!this.leave(vm)) this.late.push(vm.index);
    }
    for (;;) {
      const index = this.arrivals[this.arrivals.length - 1];
      if (index === undefined) break;
      const vm = runtime.vm(index);
      if ((vm.spec.startSeconds ?? 0) > t) break;
      this.arrivals.pop();
      if ((vm.spec.endSeconds ?? Infinity) > t) this.arrive(vm);
    }
  }

  /** False while the VM is migrating (it leaves once the migration is over). */
  private leave(vm: VmRuntime): boolean {
    if (!vm.alive) return true;
    if (vm.migrating > 0) return false;
    const host = this.runtime.host(vm.host);
    const at = host.vms.indexOf(vm.index);
    if (at >= 0) host.vms.splice(at, 1);
    host.memoryReservedMiB -= vm.reservedMiB;
    vm.reservedMiB = 0;
    vm.alive = false;
    vm.host = -1;
    vm.demandCpu = 0;
    vm.allocCpu = 0;
    this.runtime.touched.add(host.index);
    this.power.switchOffIfEmptied(host);
    return true;
  }

  private arrive(vm: VmRuntime): void {
    const host = this.hostFor(vm);
    if (host === undefined) {
      this.unplacedCount++;
      return;
    }
    host.vms.push(vm.index);
    vm.reservedMiB = this.runtime.setup.memoryAdmission === 'overcommit' ? 0 : vm.spec.memoryMiB;
    host.memoryReservedMiB += vm.reservedMiB;
    vm.host = host.index;
    vm.alive = true;
    // Until the update recomputes the host, so that VMs appearing together spread out.
    host.requestedCpu += vm.spec.cpu;
    host.memoryUsedMiB += vm.spec.memoryMiB;
    this.runtime.touched.add(host.index);
  }

  private hostFor(vm: VmRuntime): HostRuntime | undefined {
    const { runtime } = this;
    const usable = (h: HostRuntime): boolean => !h.vanished && (runtime.setup.idleHostsAreOff || h.power === 'on');
    const recorded = vm.spec.initialHost === undefined ? undefined : runtime.hostIndex.get(vm.spec.initialHost);
    if (recorded !== undefined && usable(runtime.host(recorded))) return runtime.host(recorded);
    let roomiest: HostRuntime | undefined;
    for (const host of runtime.hosts) {
      if (!usable(host)) continue;
      const memory = runtime.setup.memoryAdmission === 'overcommit' ? host.memoryUsedMiB : host.memoryReservedMiB;
      if (host.requestedCpu + vm.spec.cpu <= host.spec.cpu && memory + vm.spec.memoryMiB <= host.spec.memoryMiB) return host;
      if (roomiest === undefined || host.spec.cpu - host.requestedCpu > roomiest.spec.cpu - roomiest.requestedCpu) roomiest = host;
    }
    return roomiest;
  }
}
