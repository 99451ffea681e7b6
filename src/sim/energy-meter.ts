import { powerAt } from '../model/snapshot.js';
import type { DatacenterRuntime, HostRuntime } from './datacenter-runtime.js';

/** 'max-power': every host draws its maximum power all the time (CloudSim's non-power-aware datacenter). */
export type EnergyAccounting = 'measured' | 'max-power';

/** CloudSim clamps a utilisation in (1, 1.01) to 1 (HostDynamicWorkload.getUtilizationOfCpu). */
const UTILISATION_CLAMP_LIMIT = 1.01;

/**
 * Energy and power of the hosts: the trapezoid between consecutive updates of a host that is on (the
 * boot or off power otherwise), the power drawn now, and the host-seconds with more memory in use
 * than installed (counted over the same segments).
 */
export class EnergyMeter {
  private readonly runtime: DatacenterRuntime;
  private readonly accounting: EnergyAccounting;
  private joules = 0;
  private allOnJoules = 0;
  private offSeconds = 0;
  private memoryOverloadSeconds = 0;

  constructor(deps: { readonly runtime: DatacenterRuntime; readonly accounting: EnergyAccounting }) {
    this.runtime = deps.runtime;
    this.accounting = deps.accounting;
  }

  get energyJoules(): number {
    return this.joules;
  }

  /**
   * The energy had every host stayed on: the same, except that a host off or booting draws its idle
   * power instead (it would have been on with nothing to do). Exact for linear power models, where
   * where the load runs does not change the total.
   */
  get allHostsOnEnergyJoules(): number {
    return this.allOnJoules;
  }

  /** Host-seconds spent off (not booting). */
  get hostOffSeconds(): number {
    return this.offSeconds;
  }

  get memoryOverloadHostSeconds(): number {
    return this.memoryOverloadSeconds;
  }

  /** Accounts the segment of `dt` seconds that ends at the update just computed. */
  accrue(dt: number): void {
    const { setup, hosts } = this.runtime;
    let joules = 0;
    let idleInstead = 0;
    let darkJoules = 0;
    for (const host of hosts) {
      const model = host.spec.powerModel;
      if (host.memoryOverAtLastUpdate) this.memoryOverloadSeconds += dt;
      if (this.accounting === 'max-power') {
        joules += powerAt(model, 1) * dt;
        continue;
      }
      if (setup.idleHostsAreOff || host.power === 'on') {
        const from = utilisation(host.prevUtilCpu, host.spec.cpu);
        const to = utilisation(host.utilCpu, host.spec.cpu);
        if (setup.idleHostsAreOff && from === 0) continue;
        const fromWatts = powerAt(model, from);
        joules += (fromWatts + (powerAt(model, to) - fromWatts) / 2) * dt;
        continue;
      }
      idleInstead += powerAt(model, 0) * dt;
      if (host.power === 'booting') {
        darkJoules += host.spec.bootWatts * dt;
      } else {
        darkJoules += host.spec.offWatts * dt;
        this.offSeconds += dt;
      }
    }
    for (const host of hosts) host.memoryOverAtLastUpdate = host.memoryUsedMiB > host.spec.memoryMiB;
    this.joules += joules + darkJoules;
    this.allOnJoules += joules + idleInstead;
  }

  /** Hosts on (or, for setups where idle hosts are off, hosts with VMs) and the power they draw now. */
  activity(): { readonly activeHosts: number; readonly powerWatts: number } {
    const { setup } = this.runtime;
    let activeHosts = 0;
    let powerWatts = 0;
    for (const host of this.runtime.hosts) {
      if (this.accounting === 'max-power') {
        activeHosts++;
        powerWatts += powerAt(host.spec.powerModel, 1);
        continue;
      }
      if (setup.idleHostsAreOff ? host.utilCpu > 0 : host.power === 'on') {
        activeHosts++;
        powerWatts += powerAt(host.spec.powerModel, utilisation(host.utilCpu, host.spec.cpu));
      } else if (!setup.idleHostsAreOff) {
        powerWatts += host.power === 'booting' ? host.spec.bootWatts : host.spec.offWatts;
      }
    }
    return { activeHosts, powerWatts };
  }

  /** What one host draws now, as its BMC would read it. */
  hostWatts(host: HostRuntime): number {
    if (host.power === 'off') return host.spec.offWatts;
    if (host.power === 'booting') return host.spec.bootWatts;
    if (this.runtime.setup.idleHostsAreOff && host.utilCpu === 0) return 0;
    return powerAt(host.spec.powerModel, utilisation(host.utilCpu, host.spec.cpu));
  }
}

function utilisation(cpu: number, capacity: number): number {
  const u = capacity > 0 ? cpu / capacity : 0;
  return u > 1 && u < UTILISATION_CLAMP_LIMIT ? 1 : u;
}
