import type { HypervisorDriver } from './hypervisor/hypervisor-driver.js';
import type { PowerDriver } from './power/power-driver.js';

/** The drivers a policy asks for, built by the composition root (and rebuilt when a reload changes hosts). */
export interface DriverBundle {
  readonly hypervisor: HypervisorDriver;
  readonly power: PowerDriver;
  close(): Promise<void>;
}
