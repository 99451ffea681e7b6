import type { HostId } from '../model/ids.js';
import type { DatacenterEventQueue } from './datacenter-event-queue.js';
import type { DatacenterRuntime, HostRuntime, RejectReason } from './datacenter-runtime.js';

/**
 * The hosts' power state machine: on -> off (an empty host at once; one whose VMs are all leaving
 * when the last has left), off -> booting (for the host's boot time, a queued 'boot' event) -> on.
 * Under idleHostsAreOff (CloudSim's setup) power follows occupancy and none of this applies.
 */
export class HostPower {
  private readonly runtime: DatacenterRuntime;
  private readonly queue: DatacenterEventQueue;

  constructor(deps: { readonly runtime: DatacenterRuntime; readonly queue: DatacenterEventQueue }) {
    this.runtime = deps.runtime;
    this.queue = deps.queue;
  }

  /** Powers a host off now. Only an empty host: otherwise 'not-empty' (deferred if all its VMs are leaving). */
  powerOff(hostId: HostId): RejectReason | undefined {
    const index = this.runtime.hostIndex.get(hostId);
    if (index === undefined) return this.runtime.reject('unknown-host');
    const host = this.runtime.host(index);
    if (host.vms.length > 0) {
      const allLeaving = host.incoming.length === 0 && host.vms.every((v) => this.runtime.vm(v).migrating > 0);
      if (allLeaving) {
        host.pendingPowerOff = true;
        return undefined;
      }
      return this.runtime.reject('not-empty');
    }
    this.switchOff(host);
    return undefined;
  }

  /** Powers a host on: it boots for its boot time, then takes VMs. */
  powerOn(hostId: HostId): RejectReason | undefined {
    const index = this.runtime.hostIndex.get(hostId);
    if (index === undefined) return this.runtime.reject('unknown-host');
    const host = this.runtime.host(index);
    host.pendingPowerOff = false;
    if (this.runtime.setup.idleHostsAreOff || host.power !== 'off') return undefined;
    host.powerOns++;
    if (host.spec.bootSeconds <= 0) {
      host.power = 'on';
      return undefined;
    }
    host.power = 'booting';
    const now = this.runtime.lastUpdateSeconds;
    this.queue.enqueue({ timeSeconds: now + host.spec.bootSeconds, kind: 'boot', vm: -1, host: index, from: index, startedAtSeconds: now });
    return undefined;
  }

  /** The 'boot' event: a booting host is on. False if it no longer boots (nothing to do then). */
  finishBoot(host: HostRuntime): boolean {
    if (host.power !== 'booting') return false;
    host.power = 'on';
    this.runtime.touched.add(host.index);
    return true;
  }

  /** A host whose power-off was deferred until its VMs had left goes off once it is empty. */
  switchOffIfEmptied(host: HostRuntime): void {
    if (host.pendingPowerOff && host.vms.length === 0) this.switchOff(host);
  }

  /** Off as the snapshot reports it: under idleHostsAreOff an empty host is off. */
  isOff(host: HostRuntime): boolean {
    return this.runtime.setup.idleHostsAreOff ? host.vms.length === 0 : host.power === 'off';
  }

  private switchOff(host: HostRuntime): void {
    host.pendingPowerOff = false;
    if (this.runtime.setup.idleHostsAreOff || host.power === 'off') return;
    host.power = 'off';
    host.powerOffs++;
    this.runtime.touched.add(host.index);
  }
}
