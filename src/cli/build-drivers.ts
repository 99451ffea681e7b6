import { basename, dirname, resolve } from 'node:path';
import type { LoadedPolicy } from '../config/load.js';
import { ConsolidatorError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { SimulatedDatacenter } from '../sim/simulated-datacenter.js';
import { SimulationClock, simulatedDrivers } from '../sim/simulated-world.js';
import { buildTraceSetup } from '../sim/trace-setup.js';
import { loadWorkload } from '../sim/workload/load-workload.js';
import type { DriverBundle } from '../drivers/driver-bundle.js';
import { Ssh2CommandRunner } from '../drivers/exec/ssh2-command-runner.js';
import { VirshHypervisor } from '../drivers/hypervisor/virsh-hypervisor.js';
import type { PowerPath } from '../drivers/power/power-driver.js';
import { createPowerDriverRegistry, type PowerDriverRegistry } from '../drivers/power/registry.js';
import type { HostId } from '../model/ids.js';

/** Real milliseconds between two advances of a simulated clock. */
const SIMULATION_TICK_MS = 100;

/** The simulated datacenter behind the simulated drivers, and the clock that moves it. */
export interface SimulatedWorld {
  readonly datacenter: SimulatedDatacenter;
  readonly clock: SimulationClock;
  readonly horizonSeconds: number;
}

/**
 * When the trace starts, as a date: the policy's `traceStartsAt`, else the workload folder's name when
 * it is a date (PlanetLab folders are named 20110303), else midnight UTC of `nowMs`'s day.
 */
export function traceEpochMs(traceStartsAt: string | undefined, workload: string, nowMs: number): number {
  if (traceStartsAt !== undefined) return Date.parse(traceStartsAt);
  const named = /^(\d{4})(\d{2})(\d{2})$/.exec(basename(workload));
  if (named) {
    const ms = Date.UTC(Number(named[1]), Number(named[2]) - 1, Number(named[3]));
    if (!Number.isNaN(ms)) return ms;
  }
  const day = new Date(nowMs);
  return Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate());
}

/**
 * Builds the simulated world a policy's `simulation` section describes: its workload (relative to
 * the policy file), the policy's hosts with the section's cores and memory and the hosts' own power
 * models and boot times, VMs placed as the section says.
 */
export async function buildSimulatedWorld(loaded: LoadedPolicy): Promise<SimulatedWorld> {
  const sim = loaded.policy.simulation;
  if (!sim) {
    throw new ConsolidatorError('POLICY_INVALID', `${loaded.file}: the simulated drivers need a simulation section (workload, cores, memoryMiB)`);
  }
  const workload = await loadWorkload(resolve(dirname(resolve(loaded.file)), sim.workload));
  const sliced = sim.vms === undefined ? workload : { ...workload, vms: workload.vms.slice(0, sim.vms) };
  const first = loaded.hosts[0];
  if (!first) throw new ConsolidatorError('POLICY_INVALID', `${loaded.file}: no hosts`);
  const base = buildTraceSetup(sliced, {
    hostType: { name: 'simulated', cores: sim.cores, memoryMiB: sim.memoryMiB, powerModel: first.powerModel, bootSeconds: first.bootSeconds },
    hostCount: loaded.hosts.length,
    migrationMiBps: sim.migrationMiBps,
    planetLabVmMemoryMiB: sim.planetLabVmMemoryMiB,
    initialPlacement: sim.initialPlacement,
    name: 'demo',
  });
  const setup = {
    ...base,
    hosts: base.hosts.map((h, i) => {
      const host = loaded.hosts[i] ?? first;
      return { ...h, id: host.name, powerModel: host.powerModel, bootSeconds: host.bootSeconds };
    }),
  };
  const datacenter = new SimulatedDatacenter(setup, { epochMs: traceEpochMs(sim.traceStartsAt, sim.workload, Date.now()) });
  datacenter.placeInitial(setup.initialPlacement);
  datacenter.advanceTo(Math.max(sim.startAtSeconds, 1));
  const clock = new SimulationClock({ datacenter, speedup: sim.speedup, tickMs: SIMULATION_TICK_MS, horizonSeconds: setup.horizonSeconds });
  return { datacenter, clock, horizonSeconds: setup.horizonSeconds };
}

/**
 * The drivers a policy names: virsh over pooled SSH and ipmitool for real hosts, or the simulated
 * datacenter's (built once by buildSimulatedWorld and passed in).
 */
export function buildDrivers(loaded: LoadedPolicy, logger: Logger, world?: SimulatedWorld): DriverBundle {
  const { policy } = loaded;
  if (policy.hypervisor.driver === 'simulated' || policy.power.driver === 'simulated') {
    if (!world) throw new ConsolidatorError('INTERNAL', 'simulated drivers without a simulated world');
    return simulatedDrivers(world.datacenter);
  }
  const runner = new Ssh2CommandRunner({ targets: new Map(loaded.hosts.map((h) => [h.name, h.ssh])), logger });
  const hypervisor = new VirshHypervisor({ runner, logger, settings: { readPinnedMetadata: policy.vmRules.honourLibvirtMetadata } });
  const power = createPowerDriverRegistry().createForHosts({ policy, hosts: loaded.hosts, logger });
  return {
    hypervisor,
    power,
    // The Redfish sessions are logged out when the daemon stops or a reload replaces the drivers.
    close: async () => {
      await Promise.all([runner.close(), power.close?.()]);
    },
  };
}

/**
 * Every power path of `host`, in the order power actions try them. Today that is the one driver the
 * host's bmc.driver (else power.driver) names, built for that host alone; a per-host chain returns
 * each of its paths. A path's driver may hold a session (Redfish): close it (driver.close) when done.
 */
export function powerPathsFor(
  loaded: LoadedPolicy,
  host: HostId,
  deps: { readonly logger: Logger; readonly registry?: PowerDriverRegistry },
): readonly PowerPath[] {
  const resolved = loaded.hosts.find((h) => h.name === host);
  if (resolved === undefined) throw new ConsolidatorError('USAGE', `${host} is not a host of ${loaded.file}`, { details: { host } });
  const registry = deps.registry ?? createPowerDriverRegistry();
  const name = resolved.bmc.driver;
  return [{ path: name, driver: registry.create(name, { policy: loaded.policy, hosts: [resolved], logger: deps.logger }) }];
}
