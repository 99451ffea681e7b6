import cron from 'node-cron';
import { Registry } from 'prom-client';
import type { Actuator } from '../actuator/actuator.js';
import { DryRunActuator } from '../actuator/dry-run-actuator.js';
import { LiveActuator } from '../actuator/live-actuator.js';
import { minimumIntervalSeconds, parseCron } from '../config/cron.js';
import { formatIssue, loadPolicyFile, type LoadedPolicy, type LoadResult } from '../config/load.js';
import type { DriverBundle } from '../drivers/driver-bundle.js';
import { PowerAttention } from '../state/power-attention.js';
import { PowerRecorder } from '../state/power-record.js';
import { SupervisedPower } from '../actuator/supervised-power.js';
import type { PowerDriver } from '../drivers/power/power-driver.js';
import { ConsolidatorError, errorMessage } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { PlanInput, PlanResult } from '../planner/types.js';
import { startHttpServer, type HealthReport, type RunningHttpServer } from '../observability/http-server.js';
import { startControlSocket, type RouteHandler, type RunningControlSocket } from './control-socket.js';
import type { Logger } from '../observability/logger.js';
import { ConsolidatorMetrics } from '../observability/metrics.js';
import type { StateLock } from '../state/state-lock.js';
import type { HistoryEntry } from '../state/persisted-state.js';
import type { StateStore } from '../state/state-store.js';
import { CycleRecording } from './cycle-recording.js';
import { recordProofOfBootState } from './cycle-metrics.js';
import { CycleRunner } from './cycle.js';
import type { CycleReport } from './cycle-report.js';
import { ClusterObserver } from './observer.js';
import { StateKeeper } from '../state/state-keeper.js';
import { daemonStatus, healthFromLastCycle } from './daemon-status.js';
import { fencedDrivers } from '../ha/fenced-drivers.js';
import type { HaMetrics } from '../ha/ha-metrics.js';
import type { LeaderElection, LeaderTerm } from '../ha/leader-election.js';
import type { OperatorApi, ReplayRunner, ReportOptions, ReportResult } from './operator-api.js';
import { drainHost, planOnce, undrainHost, wakeHost, type DrainOptions, type DrainResult, type JobProgress, type OperatorDeps, type PlanNowResult, type WakeResult } from './operator-jobs.js';
import { operatorRoutes } from './operator-routes.js';
import type { SystemdNotifier } from './systemd-notify.js';
import { EnergyLedger } from '../state/energy-ledger.js';
import type { RecordingRange } from '../state/recording.js';
import { buildSavingsReport } from '../state/savings-report.js';

/** Starts a recurring job; the default is node-cron. Injectable so tests can tick by hand. */
export type Scheduler = (expression: string, timeZone: string, job: () => Promise<void>) => { stop(): void };

export const nodeCronScheduler: Scheduler = (expression, timeZone, job) => {
  // No noOverlap: the daemon skips a tick that comes while a cycle or an operator command runs, and
  // counts it (cycles_total{result="skipped"}). node-cron's own guard would drop the tick unseen and
  // write a plain-text warning to stderr instead.
  const task = cron.schedule(expression, job, { timezone: timeZone, name: 'consolidator-cycle' });
  return { stop: () => void task.stop() };
};

export interface DaemonDeps {
  readonly policyFile: string;
  readonly policy: LoadedPolicy;
  readonly logger: Logger;
  readonly buildDrivers: (policy: LoadedPolicy) => DriverBundle;
  readonly store: StateStore;
  readonly notifier: SystemdNotifier;
  readonly version: string;
  /** The daemon's clock: wall time, or the simulated datacenter's in the demo. */
  readonly nowMs?: () => number;
  /** Wall time, for health and metric timestamps. */
  readonly realNowMs?: () => number;
  readonly scheduler?: Scheduler;
  /** Overrides policy.metrics.listen (tests use port 0). */
  readonly listen?: string;
  /** How long a stop waits for running steps before aborting them. */
  readonly stopGraceMs?: number;
  readonly bootPollIntervalMs?: number;
  readonly loadPolicy?: (file: string) => Promise<LoadResult>;
  /** Extra operator-socket endpoints. */
  readonly routes?: (daemon: Daemon) => Readonly<Record<string, RouteHandler>>;
  /** Overrides policy.control.socket (tests use a temporary directory). */
  readonly controlSocket?: string;
  /** For systemd socket activation (LISTEN_PID/LISTEN_FDS/LISTEN_FDNAMES); default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * 'service' (default): HTTP endpoint, operator socket, schedule, systemd readiness. 'standalone': an
   * operator command acting without a running daemon: no HTTP, no socket, no schedule.
   */
  readonly role?: 'service' | 'standalone';
  /** Held while the daemon runs: one actor per state directory. */
  readonly lock?: StateLock;
  /** The system UUID of the machine the daemon runs on: its own VM is protected (see readOwnSystemUuid). */
  readonly selfUuid?: string;
  /** The cycle's planner (tests force plans that break invariants); planCycle by default. */
  readonly planner?: (input: PlanInput) => PlanResult;
  /** Where cycles are recorded (stateDirectory/recording); none when absent (standalone commands). */
  readonly recordingDirectory?: string;
  /** Replays the recording for `consolidator report` in dry-run (a child process: it takes a minute for a week). */
  readonly replay?: ReplayRunner;
  /** The registry to serve (default: a new one); HA's metrics are registered on it by the composition root. */
  readonly registry?: Registry;
  /** High availability (policy `ha`): absent, the daemon is the one controller and acts from its start. */
  readonly ha?: HaDeps;
}

/** What the daemon needs to run as one of several controllers: the election (its LeaderGate) on etcd. */
export interface HaDeps {
  readonly election: LeaderElection;
  readonly metrics: HaMetrics;
  /** The etcd key prefix (the step record is written under it by the fenced drivers). */
  readonly prefix: string;
  /** Closes the etcd client, once the election has stopped. */
  close(): Promise<void>;
}

/** Cycles missed before /healthz fails. */
const HEALTHY_INTERVALS = 3;
/** Health interval when the schedule cannot be parsed (it always can: the policy was validated). */
const DEFAULT_INTERVAL_SECONDS = 300;
/** Beyond the longest step, for the abort and its verification. */
const STOP_MARGIN_SECONDS = 30;

/**
 * How long a stop lets running steps finish before aborting them: the longest a step may take (a
 * migration up to its timeout; a power-off up to the soft-off timeout plus the read-back), so a
 * restart does not cut a soft power-off short and leave the host going dark unrecorded. The unit's
 * TimeoutStopSec must be longer.
 */
/** Everything buildDrivers reads from a policy: drivers are rebuilt on a reload when any of it changes. */
function driverInputs(loaded: LoadedPolicy): unknown {
  const { hypervisor, power, vmRules } = loaded.policy;
  return { hosts: loaded.hosts, hypervisor, power, readPinnedMetadata: vmRules.honourLibvirtMetadata };
}

function stopGraceMsFor(loaded: LoadedPolicy): number {
  const { migration, power } = loaded.policy;
  return (Math.max(migration.timeoutSeconds, power.softOffTimeoutSeconds + power.verifyTimeoutSeconds) + STOP_MARGIN_SECONDS) * 1000;
}
const DEFAULT_BOOT_POLL_MS = 5_000;
/** Hosts observed at once. */
const OBSERVE_CONCURRENCY = 16;
/** Cycles further apart than this (the daemon's clock) are a gap in the energy saved, not an interval. */
const LEDGER_MAX_INTERVAL_SECONDS = 6 * 3600;

/**
 * The long-running service: one cycle per schedule tick (never two at once), SIGHUP-style reloads that
 * keep the last good policy, a stop that lets running steps finish or aborts them at a deadline, state
 * saved throughout, /metrics and /healthz, and systemd readiness and watchdog fed by completed cycles.
 */
export class Daemon implements OperatorApi {
  readonly metrics: ConsolidatorMetrics;
  readonly registry: Registry;
  private loaded: LoadedPolicy;
  private drivers: DriverBundle;
  private keeper!: StateKeeper;
  private attention!: PowerAttention;
  private recorder!: PowerRecorder;
  private runner!: CycleRunner;
  private recording: CycleRecording | undefined;
  /** Prices the energy saved; new with each state load (a start, an HA take-over), so no interval spans a time this controller did not lead. */
  private replaying = false;
  private ledger = new EnergyLedger({ maxIntervalSeconds: LEDGER_MAX_INTERVAL_SECONDS });
  private observer!: ClusterObserver;
  private http: RunningHttpServer | undefined;
  private control: RunningControlSocket | undefined;
  private task: { stop(): void } | undefined;
  private current: Promise<CycleReport> | undefined;
  private stopController = new AbortController();
  private drainController = new AbortController();
  private lastReport: CycleReport | undefined;
  private lastSuccessMs: number | undefined;
  /** When that cycle started on the daemon's clock (simulated in the demo): what /healthz shows. */
  private lastSuccessShownMs: number | undefined;
  private readonly startedRealMs: number;
  private stopping = false;
  private job: Promise<unknown> | undefined;
  private jobProgress: JobProgress | undefined;
  private supervisedPower!: PowerDriver;
  private readonly log: Logger;
  private readonly nowMs: () => number;
  private readonly realNowMs: () => number;
  /** HA: true from the moment this controller took over (state loaded) until it steps down. */
  private leading = false;
  /** HA: when it took over (wall time): the health rule's grace starts there. */
  private leadingSinceMs: number | undefined;
  private takingOver: Promise<void> | undefined;
  private steppingDown: Promise<void> | undefined;

  constructor(private readonly deps: DaemonDeps) {
    this.loaded = deps.policy;
    this.log = deps.logger.child({ component: 'daemon' });
    this.nowMs = deps.nowMs ?? Date.now;
    this.realNowMs = deps.realNowMs ?? Date.now;
    this.startedRealMs = this.realNowMs();
    this.registry = deps.registry ?? new Registry();
    this.metrics = new ConsolidatorMetrics({ registry: this.registry, version: deps.version });
    this.drivers = this.buildDriverBundle(this.loaded);
  }

  /** The policy's drivers; with HA, every call that changes a host is fenced first. */
  private buildDriverBundle(loaded: LoadedPolicy): DriverBundle {
    const drivers = this.deps.buildDrivers(loaded);
    return this.deps.ha ? fencedDrivers(drivers, this.deps.ha.election, this.deps.ha.prefix, this.realNowMs) : drivers;
  }

  get policy(): LoadedPolicy {
    return this.loaded;
  }

  get state(): StateKeeper {
    return this.keeper;
  }

  get lastCycle(): CycleReport | undefined {
    return this.lastReport;
  }

  /** Loads state, reconciles on the first cycle, serves HTTP, schedules cycles, tells systemd it is ready. */
  async start(): Promise<void> {
    if (this.deps.ha && this.deps.role !== 'standalone') return this.startHa(this.deps.ha);
    await this.deps.lock?.acquire();
    await this.loadState();
    if (this.deps.role === 'standalone') return;
    await this.serve();
    // The one controller leads from its start (under HA the election sets it: startHa).
    this.metrics.setLeader(true);
    this.schedule();
    this.metrics.setDryRun(this.loaded.policy.mode === 'dry-run');
    this.log.info('started', { mode: this.loaded.policy.mode, schedule: this.loaded.policy.schedule, hosts: this.loaded.hosts.length, listen: this.listenText(), controlSocket: this.control?.path });
    await this.deps.notifier.ready(`${this.loaded.policy.mode}, ${this.loaded.hosts.length} hosts`);
  }

  private listenText(): string {
    return this.http ? `${this.http.address.host}:${this.http.address.port}` : '';
  }

  private async loadState(): Promise<void> {
    const loaded = await this.deps.store.load();
    if (loaded.problem) this.log.warn('state not loaded', { problem: loaded.problem });
    if (loaded.fresh) this.log.info('no state yet: first start');
    this.recorder = new PowerRecorder(loaded.state.powerRecord);
    this.attention = new PowerAttention({ logger: this.deps.logger, initial: loaded.state.attention });
    this.keeper = new StateKeeper(this.deps.store, loaded.state, { recorder: this.recorder, attention: this.attention, logger: this.deps.logger, nowMs: this.nowMs });
    this.ledger = new EnergyLedger({ maxIntervalSeconds: LEDGER_MAX_INTERVAL_SECONDS });
    if (this.deps.recordingDirectory !== undefined && this.deps.role !== 'standalone') {
      this.recording = new CycleRecording(
        {
          dir: this.deps.recordingDirectory,
          logger: this.deps.logger,
          metrics: this.metrics,
          // The current drivers' (they are rebuilt on a reload).
          readWatts: (host, signal) => this.drivers.power.powerReadingWatts?.(host, signal) ?? Promise.resolve(undefined),
          poweredOffByUs: () => this.keeper.poweredOffByUs(),
        },
        this.loaded,
      );
    }
    this.buildRunner();
    this.metrics.setThresholds(this.loaded.policy.thresholds);
    this.recordStateMetrics();
  }

  /** The operator socket and the HTTP endpoint. */
  private async serve(): Promise<void> {
    this.control = await startControlSocket({
      path: this.deps.controlSocket ?? this.loaded.policy.control.socket,
      group: this.loaded.policy.control.group,
      routes: { ...operatorRoutes(this), ...(this.deps.routes ? this.deps.routes(this) : {}) },
      status: () => this.status(),
      logger: this.deps.logger,
      ...(this.deps.env ? { env: this.deps.env } : {}),
    });
    this.http = await startHttpServer({
      listen: this.deps.listen ?? this.loaded.policy.metrics.listen,
      registry: this.registry,
      health: () => this.health(),
      status: () => this.status(),
      logger: this.deps.logger,
      ...(this.loaded.webConfig ? { webConfig: this.loaded.webConfig } : {}),
    }).catch(async (e: unknown) => {
      await this.control?.close();
      throw e;
    });
  }

  /**
   * HA: serve (metrics, health, status; operator commands are refused while another leads) and
   * campaign. Nothing is loaded or observed until this controller is elected; then it loads the
   * state from etcd, reconciles from the hosts as after a restart, and runs a cycle at once.
   */
  private async startHa(ha: HaDeps): Promise<void> {
    await this.deps.lock?.acquire();
    await this.serve();
    this.schedule();
    this.metrics.setDryRun(this.loaded.policy.mode === 'dry-run');
    ha.metrics.setLeader(false);
    ha.election.listen({
      onElected: (term) => {
        this.takingOver = this.takeOver(term).finally(() => {
          this.takingOver = undefined;
        });
      },
      onDeposed: (reason) => {
        this.steppingDown = this.stepDown(reason).finally(() => {
          this.steppingDown = undefined;
        });
      },
      onLeaderSeen: (name) => {
        ha.metrics.leaderChangesTotal.inc();
        this.log.info('leader seen', { leader: name ?? null, controller: ha.election.name });
      },
      onEtcdHealth: (ok) => {
        ha.metrics.etcdOk.set(ok ? 1 : 0);
        // A standby that hears from etcd is doing its job: it feeds the watchdog as cycles do on the leader.
        if (ok && !this.leading) void this.deps.notifier.watchdog();
      },
    });
    ha.election.start();
    this.log.info('started', { ha: 'standby: campaigning for leadership', controller: ha.election.name, mode: this.loaded.policy.mode, hosts: this.loaded.hosts.length, listen: this.listenText(), controlSocket: this.control?.path });
    await this.deps.notifier.ready(`standby (${ha.election.name}), ${this.loaded.policy.mode}, ${this.loaded.hosts.length} hosts`);
  }

  private async takeOver(term: LeaderTerm): Promise<void> {
    const ha = this.deps.ha as HaDeps;
    await this.steppingDown;
    if (this.stopping) return;
    try {
      this.stopController = new AbortController();
      this.drainController = new AbortController();
      await this.loadState();
    } catch (e) {
      this.log.error('elected, but the state could not be loaded from etcd: giving up leadership', { err: e });
      ha.election.resign('the state could not be loaded');
      return;
    }
    if (!ha.election.isLeader()) return;
    this.leading = true;
    this.leadingSinceMs = this.realNowMs();
    ha.metrics.setLeader(true);
    this.log.info('leading: state loaded from etcd; reconciling from the hosts', { controller: ha.election.name, term: term.createRevision, interrupted: this.keeper.interrupted?.steps.length ?? 0 });
    await this.deps.notifier.status(`leader (${ha.election.name})`);
    // Not awaited: a step-down waits for the take-over, and must be able to abort this cycle's steps.
    void this.runCycle().catch((e: unknown) => this.log.error('cycle could not run', { err: e }));
  }

  /**
   * HA: this controller no longer leads (its lease ran out, etcd said another leads, or it stops).
   * Nothing new starts (the fence refuses it anyway); steps under way are aborted as a stop past its
   * deadline aborts them, because the next leader reconciles them as interrupted.
   */
  private async stepDown(reason: string): Promise<void> {
    const ha = this.deps.ha as HaDeps;
    await this.takingOver;
    const was = this.leading;
    this.leading = false;
    ha.metrics.setLeader(false);
    this.drainController.abort();
    this.stopController.abort();
    await (this.current ?? this.job)?.catch(() => undefined);
    if (was) this.log.warn('stepped down: standing by', { controller: ha.election.name, reason });
    await this.deps.notifier.status(`standby (${ha.election.name}): ${reason}`);
  }

  /** HA: refuses what only the leader may do, naming the leader. */
  private assertLeading(): void {
    const ha = this.deps.ha;
    if (!ha || this.deps.role === 'standalone' || this.leading) return;
    const leader = ha.election.leaderName();
    throw new ConsolidatorError(
      'NOT_LEADER',
      `this controller (${ha.election.name}) does not lead: ${leader === undefined ? 'no leader is elected right now (is etcd reachable?)' : `${leader} leads; send operator commands to it`}`,
      { details: { controller: ha.election.name, ...(leader !== undefined ? { leader } : {}) } },
    );
  }

  get httpAddress(): { host: string; port: number } | undefined {
    return this.http?.address;
  }

  get controlSocketPath(): string | undefined {
    return this.control?.path;
  }

  /** Runs one cycle now, or waits for the one already running (cycles never overlap). */
  runCycle(): Promise<CycleReport> {
    if (this.current) return this.current;
    try {
      this.assertLeading();
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.stopping) return Promise.reject(new ConsolidatorError('ABORTED', 'the daemon is stopping'));
    if (this.job) return Promise.reject(new ConsolidatorError('ABORTED', 'an operator command is running; the cycle is skipped'));
    const run = this.runner
      .run(this.loaded, this.stopController.signal, this.drainController.signal)
      .then(async (report) => {
        this.lastReport = report;
        if (report.result === 'ok') {
          this.lastSuccessMs = this.realNowMs();
          this.lastSuccessShownMs = report.startedAtMs;
        }
        await this.deps.notifier.watchdog();
        await this.deps.notifier.status(`last cycle ${report.result}: ${report.plan?.summary.migrations ?? 0} migrations planned, ${this.keeper.poweredOffByUs().length} hosts off`);
        return report;
      })
      .finally(() => {
        this.current = undefined;
      });
    this.current = run;
    return run;
  }

  /** SIGHUP: reload the policy file; an invalid one is rejected with its errors and the old one stays. */
  async reload(): Promise<boolean> {
    await this.deps.notifier.reloading();
    const result = await (this.deps.loadPolicy ?? loadPolicyFile)(this.deps.policyFile);
    if (!result.ok) {
      for (const issue of result.issues) this.log.error('policy rejected on reload; keeping the last good policy', { issue: formatIssue(issue) });
      this.metrics.countError(new ConsolidatorError('POLICY_INVALID', 'policy rejected on reload'));
      await this.deps.notifier.ready('reload rejected: keeping the last good policy');
      return false;
    }
    // A running cycle or operator job ends with the policy and the drivers it started with: the new
    // policy applies once neither runs, and no cycle or job starts while it is applied. systemd hears
    // at once that the policy is valid, rather than after a drain that may take hours.
    if (this.current || this.job) {
      this.log.info('policy valid: it applies once the running cycle or operator command ends');
      await this.deps.notifier.ready('reload accepted: applies after the running cycle or operator command');
    }
    try {
      await this.exclusive(() => this.apply(result.value));
    } catch (e) {
      this.log.warn('policy not applied: the daemon is stopping', { err: e });
      return false;
    }
    await this.deps.notifier.ready(`reloaded: ${this.loaded.policy.mode}, ${this.loaded.hosts.length} hosts`);
    return true;
  }

  private async apply(next: LoadedPolicy): Promise<void> {
    const before = this.loaded;
    this.loaded = next;
    if (JSON.stringify(driverInputs(before)) !== JSON.stringify(driverInputs(next))) {
      const old = this.drivers;
      this.drivers = this.buildDriverBundle(this.loaded);
      await old.close();
      if (this.keeper) this.buildRunner();
    }
    if (before.policy.schedule !== next.policy.schedule || before.policy.timeZone !== next.policy.timeZone) {
      this.task?.stop();
      this.schedule();
    }
    this.metrics.setDryRun(this.loaded.policy.mode === 'dry-run');
    this.metrics.setThresholds(this.loaded.policy.thresholds);
    this.log.info('policy reloaded', { mode: this.loaded.policy.mode, hosts: this.loaded.hosts.length });
  }

  /**
   * SIGTERM: stop scheduling, let a running cycle finish its running steps (no new ones start), abort
   * them at the deadline (migrations are aborted and verified by the driver), save state, close.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.deps.notifier.stopping();
    this.task?.stop();
    this.drainController.abort();
    const running = this.current ?? this.job;
    if (running) {
      const grace = this.deps.stopGraceMs ?? stopGraceMsFor(this.loaded);
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<'deadline'>((resolve) => {
        timer = setTimeout(() => resolve('deadline'), grace);
      });
      const outcome = await Promise.race([running.then(() => 'done' as const, () => 'done' as const), deadline]);
      if (outcome === 'deadline') {
        this.log.warn('running steps did not finish in time: aborting them', { graceMs: grace });
        this.stopController.abort();
        await running.catch(() => undefined);
      }
      clearTimeout(timer);
    }
    if (!this.deps.ha || this.leading) await this.keeper?.save().catch((e: unknown) => this.log.error('state not saved at stop', { err: e }));
    await this.recording?.flush();
    // A leader that stops revokes its lease: a standby takes over at once rather than after the TTL.
    await this.deps.ha?.election.stop();
    await this.takingOver;
    await this.steppingDown;
    await this.http?.close();
    await this.control?.close();
    await this.drivers.close();
    await this.deps.ha?.close();
    await this.deps.lock?.release();
    this.log.info('stopped');
  }

  /** Resolves once every cycle recorded so far is written to the recording (tests; stop does it too). */
  async flushRecording(): Promise<void> {
    await this.recording?.flush();
  }

  /** One observation and plan, executing nothing (consolidator plan). */
  planNow(): Promise<PlanNowResult> {
    return this.exclusive(() => planOnce(this.operatorDeps()));
  }

  /** Evacuates a host for maintenance (consolidator drain); never at the same time as a cycle. */
  drain(host: HostId, options: DrainOptions): Promise<DrainResult> {
    return this.exclusive(() => drainHost(this.operatorDeps(), host, options));
  }

  async report(asked: RecordingRange, options: ReportOptions): Promise<ReportResult> {
    this.assertLeading();
    const range = options.lastSeconds === undefined ? asked : { ...asked, fromMs: this.nowMs() - options.lastSeconds * 1000 };
    const dir = this.deps.recordingDirectory;
    if (dir === undefined) throw new ConsolidatorError('USAGE', 'this daemon keeps no recording');
    await this.recording?.flush();
    const state = this.keeper.state;
    const report = await buildSavingsReport({ recordingDir: dir, history: state.history, attention: state.attention, range });
    const mode = this.loaded.policy.mode;
    if (!options.replay || report.cyclesByMode['dry-run'] === 0) return { mode, report };
    if (this.deps.replay === undefined) return { mode, report, replay: { error: 'this daemon cannot run a replay' } };
    if (this.replaying) return { mode, report, replay: { error: 'a replay is already running; try again when it has finished' } };
    this.replaying = true;
    try {
      const figures = await this.deps.replay({ recordingDir: dir, policyFile: this.deps.policyFile, range });
      return { mode, report, replay: { figures } };
    } catch (e) {
      return { mode, report, replay: { error: errorMessage(e) } };
    } finally {
      this.replaying = false;
    }
  }

  history(limit: number): readonly HistoryEntry[] {
    this.assertLeading();
    return this.keeper.recentHistory(limit);
  }

  undrain(host: HostId): Promise<{ ok: boolean; message: string }> {
    return this.exclusive(() => undrainHost({ keeper: this.keeper, loaded: this.loaded, logger: this.deps.logger }, host));
  }

  wake(host: HostId): Promise<WakeResult> {
    return this.exclusive(() => wakeHost(this.operatorDeps(), host));
  }

  /** Runs an operator job once no cycle runs; cycles wait (are skipped) while it runs. */
  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.stopping) throw new ConsolidatorError('ABORTED', 'the daemon is stopping');
    this.assertLeading();
    while (this.current || this.job) await (this.current ?? this.job)?.catch(() => undefined);
    // A job that waited behind a cycle must not start once a stop has begun: the drivers are closing.
    if (this.stopping) throw new ConsolidatorError('ABORTED', 'the daemon is stopping');
    const run = fn();
    this.job = run;
    try {
      return await run;
    } finally {
      this.job = undefined;
      this.jobProgress = undefined;
      this.recordStateMetrics();
    }
  }

  /**
   * Metrics read from the saved state, beyond the ones each cycle records: at start (so that a daemon
   * that dies before its first cycle still said how many hosts it had powered off) and after an
   * operator job (a wake or a drain changes them).
   */
  private recordStateMetrics(): void {
    this.metrics.setHostsPoweredOffByConsolidator(this.keeper.poweredOffByUs().length);
    recordProofOfBootState(this.metrics, this.keeper, this.loaded.policy.power.proofOfBoot, this.loaded.hosts);
  }

  private operatorDeps(): OperatorDeps {
    return {
      observer: this.observer,
      drivers: this.drivers,
      power: this.supervisedPower,
      keeper: this.keeper,
      loaded: this.loaded,
      logger: this.deps.logger,
      nowMs: this.nowMs,
      signal: this.stopController.signal,
      drainSignal: this.drainController.signal,
      bootPollIntervalMs: this.deps.bootPollIntervalMs ?? DEFAULT_BOOT_POLL_MS,
      onProgress: (progress) => {
        this.jobProgress = progress;
      },
      onStepDone: () => void this.deps.notifier.watchdog(),
    };
  }

  health(): HealthReport {
    const ha = this.deps.ha;
    if (ha) {
      const etcd = ha.election.etcdHealth();
      if (!etcd.ok) return { healthy: false, reason: `etcd does not answer (${etcd.reason ?? 'no answer'}): this controller does not act${this.leading ? ' once its lease runs out' : ''}` };
      if (!this.leading) {
        const leader = ha.election.leaderName();
        return { healthy: true, reason: `standby: ${leader === undefined ? 'no leader elected yet' : `${leader} leads`}` };
      }
    }
    const expr = parseCron(this.loaded.policy.schedule);
    return healthFromLastCycle({
      nowMs: this.realNowMs(),
      startedAtMs: this.leadingSinceMs ?? this.startedRealMs,
      lastSuccessfulCycleMs: this.lastSuccessMs,
      lastSuccessfulCycleShownMs: this.lastSuccessShownMs,
      scheduleIntervalMs: (expr.ok ? minimumIntervalSeconds(expr.value) : DEFAULT_INTERVAL_SECONDS) * 1000,
      maxMissedIntervals: HEALTHY_INTERVALS,
    });
  }

  status(): Record<string, unknown> {
    const ha = this.deps.ha;
    if (!ha) return this.statusDocument();
    const etcd = ha.election.etcdHealth();
    const ours = this.leading ? {} : { keeper: undefined, lastReport: undefined };
    return {
      ...this.statusDocument(ours),
      ha: {
        controller: ha.election.name,
        role: this.leading ? 'leader' : 'standby',
        leader: ha.election.leaderName() ?? null,
        ...(this.leading && ha.election.currentTerm ? { term: ha.election.currentTerm.createRevision } : {}),
        etcd: { ok: etcd.ok, ...(etcd.reason !== undefined ? { reason: etcd.reason } : {}) },
      },
    };
  }

  private statusDocument(overrides: { keeper?: undefined; lastReport?: undefined } = {}): Record<string, unknown> {
    return daemonStatus({
      version: this.deps.version,
      policyFile: this.deps.policyFile,
      loaded: this.loaded,
      health: this.health(),
      lastReport: this.lastReport,
      cycleRunning: this.current !== undefined,
      jobProgress: this.jobProgress,
      keeper: this.keeper,
      ...overrides,
    });
  }

  private buildRunner(): void {
    const power = new SupervisedPower({
      driver: this.drivers.power,
      attention: this.attention,
      recorder: this.recorder,
      logger: this.deps.logger,
      nowMs: this.nowMs,
      hostSystemUuid: (host) => this.keeper.systemUuidOf(host),
    });
    this.supervisedPower = power;
    this.observer = new ClusterObserver({
      hypervisor: this.drivers.hypervisor,
      power: this.drivers.power,
      logger: this.deps.logger,
      concurrency: OBSERVE_CONCURRENCY,
      ...(this.deps.selfUuid !== undefined ? { selfUuid: this.deps.selfUuid.toLowerCase() } : {}),
    });
    const live = new LiveActuator({
      hypervisor: this.drivers.hypervisor,
      power,
      logger: this.deps.logger,
      nowMs: this.nowMs,
      bootPollIntervalMs: this.deps.bootPollIntervalMs ?? DEFAULT_BOOT_POLL_MS,
    });
    const dryRun = new DryRunActuator(this.deps.logger);
    const actuatorFor = (mode: 'enforce' | 'dry-run'): Actuator => (mode === 'enforce' ? live : dryRun);
    this.runner = new CycleRunner({
      observer: this.observer,
      hypervisor: this.drivers.hypervisor,
      actuatorFor,
      keeper: this.keeper,
      logger: this.deps.logger,
      metrics: this.metrics,
      nowMs: this.nowMs,
      realNowMs: this.realNowMs,
      ...(this.deps.planner ? { planner: this.deps.planner } : {}),
      ...(this.recording ? { recording: this.recording } : {}),
      ledger: this.ledger,
      onStepDone: () => void this.deps.notifier.watchdog(),
    });
  }

  private schedule(): void {
    const scheduler = this.deps.scheduler ?? nodeCronScheduler;
    this.task = scheduler(this.loaded.policy.schedule, this.loaded.policy.timeZone, async () => {
      if (this.stopping) return;
      // A standby runs no cycle and observes nothing.
      if (this.deps.ha && !this.leading) return;
      if (this.current || this.job) {
        this.metrics.recordCycle('skipped', this.realNowMs());
        this.log.info('cycle skipped', { reason: this.current ? 'the previous cycle is still running' : 'an operator command is running' });
        return;
      }
      await this.runCycle().catch((e: unknown) => this.log.error('cycle could not run', { err: e }));
    });
  }
}
