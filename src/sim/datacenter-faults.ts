import type { HostId } from '../model/ids.js';
import type { DatacenterRuntime } from './datacenter-runtime.js';

/** Scripted faults for tests and the demo (SimulatedDatacenter.faults). */
export interface ScriptedFaults {
  /** The next migration started through the simulated hypervisor fails at once; the VM stays. */
  readonly failNextMigration: (message?: string) => void;
  /** The next `times` BMC calls for the host time out. */
  readonly timeOutBmc: (hostId: HostId, times?: number) => void;
  /** The host drops off the network: inspection and BMC calls fail until restoreHost. */
  readonly vanishHost: (hostId: HostId) => void;
  readonly restoreHost: (hostId: HostId) => void;
}

/** The faults armed by a test, consumed by the simulated ports when they reach them. */
export class DatacenterFaults {
  private readonly runtime: DatacenterRuntime;
  private failNextMigrationMessage: string | undefined;
  private readonly bmcTimeouts = new Map<number, number>();

  /** What a test arms. */
  readonly script: ScriptedFaults = {
    failNextMigration: (message = 'simulated migration failure') => {
      this.failNextMigrationMessage = message;
    },
    timeOutBmc: (hostId, times = 1) => {
      this.bmcTimeouts.set(this.runtime.requireHost(hostId), times);
    },
    vanishHost: (hostId) => {
      this.runtime.host(this.runtime.requireHost(hostId)).vanished = true;
    },
    restoreHost: (hostId) => {
      this.runtime.host(this.runtime.requireHost(hostId)).vanished = false;
    },
  };

  constructor(deps: { readonly runtime: DatacenterRuntime }) {
    this.runtime = deps.runtime;
  }

  /** Consumes a scripted migration failure, if one is armed. */
  takeMigrationFailure(): string | undefined {
    const message = this.failNextMigrationMessage;
    this.failNextMigrationMessage = undefined;
    return message;
  }

  /** Consumes a scripted BMC timeout for the host, if one is armed. */
  takeBmcTimeout(hostId: HostId): boolean {
    const index = this.runtime.hostIndex.get(hostId);
    if (index === undefined) return false;
    const left = this.bmcTimeouts.get(index) ?? 0;
    if (left <= 0) return false;
    this.bmcTimeouts.set(index, left - 1);
    return true;
  }
}
