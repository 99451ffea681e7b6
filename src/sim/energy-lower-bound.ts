import { powerAt } from '../model/snapshot.js';
import type { SimulationSetup } from './simulation-setup.js';
import { demandFractionAt } from './trace-demand.js';
import type { HostType } from './trace-setup.js';

export interface EnergyLowerBound {
  readonly kWh: number;
  /** The same fleet run at 100 % CPU (for comparison: not a tighter bound). */
  readonly atFullLoadKWh: number;
  /** The CPU load at which the host type does the most work per watt. */
  readonly bestLoad: number;
  /** Watts per host's worth of busy CPUs at that load. */
  readonly wattsPerBusyHost: number;
}

const JOULES_PER_KWH = 3.6e6;
/** Integration step: demand is linear between samples, the bound is not (memory can bind). */
const STEP_SECONDS = 30;
const TENTHS = 10;

/**
 * A lower bound on the energy any policy needs for a setup on one host type. At each time t (every
 * 30 s, at the middle of the step, demand interpolated between samples as the simulator does):
 * D = total CPU demand (cores; each vCPU capped at one core as the hosts cap it), M = total memory in
 * use of the VMs alive then. A fractional fleet of n hosts (n >= M / memory per host) running D spread
 * evenly draws n x P(D / (n x cores)). With P piecewise linear, P(u)/u is smallest at one of the
 * curve's points (for a Dell R720: 70 %), so the best is u = min(that load, D x memory / (M x cores), 1):
 * at most as many hosts as memory needs. Integrated over the horizon. It ignores boot energy,
 * migrations, headroom for the next peak and that VMs are indivisible, so no policy can reach it.
 */
export function energyLowerBound(setup: Pick<SimulationSetup, 'vms' | 'horizonSeconds' | 'sampleSeconds'>, hostType: HostType): EnergyLowerBound {
  const model = hostType.powerModel;
  let bestLoad = 1;
  let bestRatio = powerAt(model, 1);
  for (let i = 1; i <= TENTHS; i++) {
    const u = i / TENTHS;
    const r = powerAt(model, u) / u;
    if (r < bestRatio - 1e-12) {
      bestRatio = r;
      bestLoad = u;
    }
  }
  let joules = 0;
  let fullLoadJoules = 0;
  const vms = setup.vms;
  for (let t = 0; t < setup.horizonSeconds; t += STEP_SECONDS) {
    const mid = t + STEP_SECONDS / 2;
    let cpu = 0;
    let memory = 0;
    for (const vm of vms) {
      const start = vm.startSeconds ?? 0;
      if (mid < start || (vm.endSeconds !== undefined && mid >= vm.endSeconds)) continue;
      const at = mid - start;
      const vcpus = Math.max(1, vm.vcpus);
      const perCore = Math.min(1, demandFractionAt(vm.cpuTrace, at, setup.sampleSeconds) * (vm.cpu / vcpus));
      cpu += perCore * vcpus;
      memory += (vm.memoryTrace === undefined ? 1 : demandFractionAt(vm.memoryTrace, at, setup.sampleSeconds)) * vm.memoryMiB;
    }
    if (cpu <= 0 && memory <= 0) continue;
    const memoryHosts = memory / hostType.memoryMiB;
    const cpuHostsFull = cpu / hostType.cores;
    const maxLoad = memoryHosts > 0 ? Math.min(1, cpu / (memoryHosts * hostType.cores)) : 1;
    const load = Math.min(bestLoad, maxLoad);
    const hosts = load > 0 ? Math.max(cpu / (load * hostType.cores), memoryHosts) : memoryHosts;
    joules += hosts * powerAt(model, load) * STEP_SECONDS;
    const fullHosts = Math.max(cpuHostsFull, memoryHosts);
    fullLoadJoules += fullHosts * powerAt(model, fullHosts > 0 ? cpu / (fullHosts * hostType.cores) : 0) * STEP_SECONDS;
  }
  return { kWh: joules / JOULES_PER_KWH, atFullLoadKWh: fullLoadJoules / JOULES_PER_KWH, bestLoad, wattsPerBusyHost: bestRatio };
}
