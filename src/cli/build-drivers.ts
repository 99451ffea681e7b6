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
import { type ChainPath, PowerChain, type PowerAttempt } from '../drivers/power/power-chain.js';
import { DEFAULT_VERIFY_INTERVAL_MS } from '../drivers/power/ipmitool-power.js';
import type { PowerPath } from '../drivers/power/power-driver.js';
import { createPowerDriverRegistry, type PowerDriverRegistry } from '../drivers/power/registry.js';
import { WakeOnLan } from '../drivers/power/wake-on-lan.js';
import { DEFAULTS } from '../config/defaults.js';
import { POWER_ON_ONLY_PATHS, type PowerPathName } from '../config/schema.js';
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

export interface BuildDriversOptions {
  /** Every attempt of the power chain (the metric consolidator_power_attempts_total). */
  readonly onPowerAttempt?: (attempt: PowerAttempt) => void;
  /** Power drivers by name; createPowerDriverRegistry() by default. */
  readonly powerRegistry?: PowerDriverRegistry;
}

/**
 * The drivers a policy names: virsh over pooled SSH and, for power, a PowerChain over each host's
 * power paths (ipmitool, wol, ...), or the simulated datacenter's (built once by buildSimulatedWorld
 * and passed in).
 */
export function buildDrivers(loaded: LoadedPolicy, logger: Logger, world?: SimulatedWorld, options: BuildDriversOptions = {}): DriverBundle {
  const { policy } = loaded;
  if (policy.hypervisor.driver === 'simulated' || policy.power.driver === 'simulated') {
    if (!world) throw new ConsolidatorError('INTERNAL', 'simulated drivers without a simulated world');
    return simulatedDrivers(world.datacenter);
  }
  const runner = new Ssh2CommandRunner({ targets: new Map(loaded.hosts.map((h) => [h.name, h.ssh])), logger });
  const hypervisor = new VirshHypervisor({ runner, logger, settings: { readPinnedMetadata: policy.vmRules.honourLibvirtMetadata } });
  const power = buildPowerChain(loaded, logger, options);
  return { hypervisor, power, close: () => runner.close() };
}

const MS_PER_SECOND = 1000;

/**
 * One PowerChain for the policy's hosts: every path some host's power.chain names is built once
 * (wol here, any other name through the power driver registry, so a driver registered there plugs
 * in by its name), and each host tries its own list in order. A host with one path behaves as that
 * driver alone, but for power.resends.
 */
export function buildPowerChain(loaded: LoadedPolicy, logger: Logger, options: BuildDriversOptions = {}): PowerChain {
  const { policy, hosts } = loaded;
  const registry = options.powerRegistry ?? createPowerDriverRegistry();
  const names = new Set<PowerPathName>(hosts.flatMap((h) => h.powerChain));
  const paths: ChainPath[] = [...names].map((name): ChainPath =>
    name === 'wol'
      ? { name, kind: 'power-on-only', sender: new WakeOnLan({ hosts, logger, packetsPerSend: DEFAULTS.power.wolPacketsPerSend }) }
      : { name, kind: 'driver', driver: registry.create(name, { policy, hosts, logger }) },
  );
  const chains = new Map(hosts.map((h) => [h.name, h.powerChain]));
  return new PowerChain({
    paths,
    chainOf: (host) => chains.get(host) ?? [],
    resends: policy.power.resends,
    confirmTimeoutMs: policy.power.verifyTimeoutSeconds * MS_PER_SECOND,
    confirmIntervalMs: DEFAULT_VERIFY_INTERVAL_MS,
    logger,
    ...(options.onPowerAttempt ? { onAttempt: options.onPowerAttempt } : {}),
  });
}

/**
 * Every power path of `host` that can be asked something (status, reading, identity), in the order of
 * its power chain, each built for that host alone. Paths that only power on (wol) have nothing to ask
 * and are left out. With the simulated drivers (no chain), the one power.driver.
 */
export function powerPathsFor(
  loaded: LoadedPolicy,
  host: HostId,
  deps: { readonly logger: Logger; readonly registry?: PowerDriverRegistry },
): readonly PowerPath[] {
  const resolved = loaded.hosts.find((h) => h.name === host);
  if (resolved === undefined) throw new ConsolidatorError('USAGE', `${host} is not a host of ${loaded.file}`, { details: { host } });
  const registry = deps.registry ?? createPowerDriverRegistry();
  const names = resolved.powerChain.length > 0 ? resolved.powerChain.filter((p) => !POWER_ON_ONLY_PATHS.includes(p)) : [loaded.policy.power.driver];
  return names.map((name) => ({ path: name, driver: registry.create(name, { policy: loaded.policy, hosts: [resolved], logger: deps.logger }) }));
}
