import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Registry } from 'prom-client';
import type { LoadedPolicy } from '../config/load.js';
import { Daemon, type HaDeps } from '../daemon/daemon.js';
import { EtcdStateStore } from '../ha/etcd-state-store.js';
import { HaMetrics } from '../ha/ha-metrics.js';
import { createHttpEtcdClient } from '../ha/http-etcd-client.js';
import { LeaderElection } from '../ha/leader-election.js';
import type { StateStore } from '../state/state-store.js';
import { readOwnSystemUuid } from '../daemon/self-identity.js';
import { createSystemdNotifier } from '../daemon/systemd-notify.js';
import { replayInChild } from './replay-in-child.js';
import { buildDrivers, buildSimulatedWorld, type SimulatedWorld } from './build-drivers.js';
import type { Logger } from '../observability/logger.js';
import { PowerAttemptMetrics } from '../observability/power-attempt-metrics.js';
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
export async function composeDaemon(loaded: LoadedPolicy, logger: Logger, options: { role: 'service' | 'standalone'; env: NodeJS.ProcessEnv; programEntry?: string }): Promise<ComposedDaemon> {
  const world = loaded.policy.hypervisor.driver === 'simulated' ? await buildSimulatedWorld(loaded) : undefined;
  const stateDirectory = world ? await mkdtemp(join(tmpdir(), 'consolidator-sim-state-')) : loaded.policy.stateDirectory;
  const clock = world?.clock;
  // The demo's simulated hosts hold no VM the daemon could run in.
  const self = world ? undefined : await readOwnSystemUuid(dirname(loaded.policy.control.socket));
  if (self?.uuid === undefined && self !== undefined) {
    logger.warn('cannot tell which VM the daemon runs in: if it runs in a VM on a managed host, list that VM in vmRules.protected', { problem: self.problem });
  }
  const registry = new Registry();
  const powerAttempts = new PowerAttemptMetrics(registry);
  const fileStore = new JsonFileStateStore(stateDirectory, clock ? () => clock.nowMs : Date.now);
  const ha = options.role === 'service' && loaded.policy.ha ? await composeHa(loaded, logger, registry, fileStore, clock ? () => clock.nowMs : Date.now) : undefined;
  const daemon = new Daemon({
    policyFile: loaded.file,
    policy: loaded,
    logger,
    registry,
    buildDrivers: (policy) => buildDrivers(policy, logger, world, { onPowerAttempt: (a) => powerAttempts.count(a) }),
    store: ha?.store ?? fileStore,
    ...(ha ? { ha: ha.deps } : {}),
    notifier: createSystemdNotifier({ env: options.env, logger }),
    version: version(),
    role: options.role,
    lock: new StateLock(stateDirectory),
    recordingDirectory: join(stateDirectory, 'recording'),
    ...(options.programEntry !== undefined ? { replay: replayInChild(options.programEntry) } : {}),
    ...(self?.uuid !== undefined ? { selfUuid: self.uuid } : {}),
    ...(clock ? { nowMs: () => clock.nowMs, bootPollIntervalMs: SIMULATED_BOOT_POLL_MS } : {}),
  });
  const dispose = async (): Promise<void> => {
    if (world) await rm(stateDirectory, { recursive: true, force: true });
  };
  return { daemon, world, stateDirectory, dispose };
}

/**
 * HA (policy `ha`): the etcd client (TLS files relative to the policy file), the election, and the
 * state store on etcd, seeded from the state file the first time. A standalone operator command never
 * takes part: it refuses to act while a daemon runs, and a daemon always runs under HA.
 */
async function composeHa(
  loaded: LoadedPolicy,
  logger: Logger,
  registry: Registry,
  fileStore: StateStore,
  nowMs: () => number,
): Promise<{ deps: HaDeps; store: StateStore }> {
  const ha = loaded.policy.ha as NonNullable<LoadedPolicy['policy']['ha']>;
  const base = dirname(resolve(loaded.file));
  const file = (f: string | undefined) => (f === undefined ? undefined : resolve(base, f));
  const metrics = new HaMetrics(registry);
  const client = await createHttpEtcdClient({
    endpoints: ha.endpoints,
    tls: { caFile: file(ha.tls?.caFile), certFile: file(ha.tls?.certFile), keyFile: file(ha.tls?.keyFile) },
    requestTimeoutMs: ha.requestTimeoutMs,
    onRequest: (e) => metrics.countRequest(e),
  });
  const election = new LeaderElection({ client, prefix: ha.keyPrefix, name: ha.name ?? hostname(), ttlSeconds: ha.leaseTtlSeconds, logger });
  const store = new EtcdStateStore({ client, gate: election, prefix: ha.keyPrefix, logger, nowMs, seed: fileStore });
  return { deps: { election, metrics, prefix: ha.keyPrefix, close: () => client.close() }, store };
}
