import type { DriverBundle } from '../drivers/driver-bundle.js';
import type { SimulatedDatacenter } from './simulated-datacenter.js';
import { SimulatedHypervisor } from './simulated-hypervisor.js';
import { SimulatedPower } from './simulated-power.js';

/** The daemon's drivers over a simulated datacenter (the demo, daemon tests). */
export function simulatedDrivers(datacenter: SimulatedDatacenter): DriverBundle {
  return {
    hypervisor: new SimulatedHypervisor({ datacenter }),
    power: new SimulatedPower({ datacenter }),
    close: async () => undefined,
  };
}

export interface SimulationClockOptions {
  readonly datacenter: SimulatedDatacenter;
  /** Simulated seconds per real second. */
  readonly speedup: number;
  /** Real milliseconds between two advances of the simulated clock. */
  readonly tickMs: number;
  /** The simulation ends here (the trace's horizon); the clock stops. */
  readonly horizonSeconds: number;
}

/**
 * Moves a simulated datacenter's clock in step with real time, `speedup` times faster. Its timer keeps
 * the process alive while it runs (a simulated migration only ends when the clock moves): stop() it.
 */
export class SimulationClock {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: SimulationClockOptions) {}

  get nowMs(): number {
    return this.options.datacenter.nowMs;
  }

  start(): void {
    if (this.timer) return;
    const step = (this.options.speedup * this.options.tickMs) / 1000;
    this.timer = setInterval(() => {
      const next = Math.min(this.options.horizonSeconds, this.options.datacenter.nowSeconds + step);
      this.options.datacenter.advanceTo(next);
      if (next >= this.options.horizonSeconds) this.stop();
    }, this.options.tickMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
