import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { LoadedPolicy } from '../config/load.js';
import { Daemon } from '../daemon/daemon.js';
import { readOwnSystemUuid } from '../daemon/self-identity.js';
import { createSystemdNotifier } from '../daemon/systemd-notify.js';
import { buildDrivers, buildSimulatedWorld, type SimulatedWorld } from './build-drivers.js';
import type { Logger } from '../observability/logger.js';
import { JsonFileStateStore } from '../state/json-file-state-store.js';
import { StateLock } from '../state/state-lock.js';
import { version } from './version.js';

/** How often a woken simulated host is asked whether it answers (simulated boots are quick in real time). */
const SIMULATED_BOOT_POLL_MS = 200;

export interface ComposedDaemon {
  readonly daemon: Daemon;
  readonly world: SimulatedWorld | undefined;
  readonly stateDirectory: string;
  /**
   * Call once the daemon has stopped: removes the temporary state directory of a simulated world
   * (nothing for a real one, whose state must survive).
   */
  readonly dispose: () => Promise<void>;
}

/**
 * The composition root of a daemon: drivers for the policy (the simulated world for the simulated
 * drivers), the state store and its lock, systemd notification. A simulated world is new every time,
 * so its state lives in a fresh temporary directory, removed by dispose(), and never touches a real one.
 */
export async function composeDaemon(loaded: LoadedPolicy, logger: Logger, options: { role: 'service' | 'standalone'; env: NodeJS.ProcessEnv }): Promise<ComposedDaemon> {
  const world = loaded.policy.hypervisor.driver === 'simulated' ? await buildSimulatedWorld(loaded) : undefined;
  const stateDirectory = world ? await mkdtemp(join(tmpdir(), 'consolidator-sim-state-')) : loaded.policy.stateDirectory;
  const clock = world?.clock;
  // The demo's simulated hosts hold no VM the daemon could run in.
  const self = world ? undefined : await readOwnSystemUuid(dirname(loaded.policy.control.socket));
  if (self?.uuid === undefined && self !== undefined) {
    logger.warn('cannot tell which VM the daemon runs in: if it runs in a VM on a managed host, list that VM in vmRules.protected', { problem: self.problem });
  }
  const daemon = new Daemon({
    policyFile: loaded.file,
    policy: loaded,
    logger,
    buildDrivers: (policy) => buildDrivers(policy, logger, world),
    store: new JsonFileStateStore(stateDirectory, clock ? () => clock.nowMs : Date.now),
    notifier: createSystemdNotifier({ env: options.env, logger }),
    version: version(),
    role: options.role,
    lock: new StateLock(stateDirectory),
    recordingDirectory: join(stateDirectory, 'recording'),
    ...(self?.uuid !== undefined ? { selfUuid: self.uuid } : {}),
    ...(clock ? { nowMs: () => clock.nowMs, bootPollIntervalMs: SIMULATED_BOOT_POLL_MS } : {}),
  });
  const dispose = async (): Promise<void> => {
    if (world) await rm(stateDirectory, { recursive: true, force: true });
  };
  return { daemon, world, stateDirectory, dispose };
}
