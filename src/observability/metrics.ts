import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import { ConsolidatorError, ERROR_CODES, isConsolidatorError } from '../errors.js';
import type { ErrorCode } from '../errors.js';
import { ACTION_RESULTS, ATTENTION_REASONS, SKIP_REASONS, type ActionResult, type AttentionReason, type SkipReason } from '../model/reasons.js';
import { isValidHostName } from '../model/ids.js';
import { KEEP_REASONS } from '../planner/types.js';
import type { KeepReason } from '../planner/types.js';

/**
 * The daemon's Prometheus metrics, all under `consolidator_`, in base units (seconds, watts, joules,
 * ratios). Registered on the one Registry the composition root passes down (never prom-client's
 * global one), so tests and several daemons in one process never share series.
 *
 * Label values come from closed sets (host states, action types, keep reasons, error codes) or are
 * host names checked like everywhere else; anything else is a bug and throws. No label ever carries
 * a secret: there is no label that could (no user, address, path or message).
 *
 * prom-client's default process metrics are deliberately not registered: three of them
 * (`nodejs_active_*_total`, gauges with a `_total` suffix) fail `promtool check metrics`.
 *
 * Values are pushed by the cycle's record step (they change once per cycle); the fields stay public
 * and typed for the rare caller that needs prom-client's API directly (timers, `get()` in tests).
 */

export const HOST_STATES = ['on', 'off', 'unknown', 'maintenance'] as const;
export type HostState = (typeof HOST_STATES)[number];

export const UTILISATION_RESOURCES = ['cpu', 'memory'] as const;
export type UtilisationResource = (typeof UTILISATION_RESOURCES)[number];

export const ACTION_TYPES = ['migrate', 'power-off', 'power-on'] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

export const POWER_ACTIONS = ['on', 'off'] as const;
export type PowerAction = (typeof POWER_ACTIONS)[number];

export const POWER_RESULTS = ['ok', 'failed'] as const;
export type PowerResult = (typeof POWER_RESULTS)[number];

/** How a proof of boot ended; aborted: the daemon stopped during it (not the host's fault, not counted as failed). */
export const PROOF_OF_BOOT_OUTCOMES = ['ok', 'failed', 'aborted', 'skipped', 'dry-run'] as const;
export type ProofOfBootOutcome = (typeof PROOF_OF_BOOT_OUTCOMES)[number];

export const CYCLE_PHASES = ['observe', 'plan', 'check', 'persist', 'act', 'record', 'total'] as const;
export type CyclePhase = (typeof CYCLE_PHASES)[number];

export const CYCLE_RESULTS = ['ok', 'failed', 'skipped'] as const;
export type CycleResult = (typeof CYCLE_RESULTS)[number];

/** The policy's per-resource thresholds (`thresholds.<resource>.<threshold>Ratio`), exported so alerts and dashboards compare use with them. */
export const THRESHOLDS = ['underload', 'target', 'overload'] as const;
export type Threshold = (typeof THRESHOLDS)[number];

/** One migration takes from about a second (an idle small VM) to the policy's timeout (600 s by default, 30 min at most). */
export const MIGRATION_DURATION_BUCKETS_SECONDS = [1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1200, 1800] as const;

/** A phase takes from milliseconds (plan, persist) to many minutes (act, with migrations). */
export const CYCLE_PHASE_BUCKETS_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800] as const;

const MS_PER_SECOND = 1000;
const JOULES_PER_KWH = 3_600_000;
const VERSION = /^[0-9A-Za-z.+-]{1,64}$/;

export interface HostUtilisationRow {
  readonly host: string;
  /** Used over capacity, 0..1 (above 1 when a host is overcommitted). */
  readonly cpu: number;
  readonly memory: number;
}

/** One resource's thresholds as the policy states them (thresholds.cpu, thresholds.memory). */
export interface ResourceThresholds {
  readonly underloadRatio: number;
  readonly targetRatio: number;
  readonly overloadRatio: number;
}

export interface AttentionRow {
  readonly host: string;
  readonly reason: AttentionReason;
}

export interface ConsolidatorMetricsOptions {
  /** The registry every metric is registered on. Never prom-client's global one. */
  readonly registry: Registry;
  /** Exported as `consolidator_info{version}`; `unknown` when not given. */
  readonly version?: string;
}

export class ConsolidatorMetrics {
  readonly registry: Registry;

  readonly hosts: Gauge<'state'>;
  readonly hostUtilisationRatio: Gauge<'host' | 'resource'>;
  readonly hostsKept: Gauge<'reason'>;
  readonly hostsNeedingAttention: Gauge<'host' | 'reason'>;
  readonly hostsPoweredOffByConsolidator: Gauge;
  readonly proofOfBootTotal: Counter<'outcome'>;
  readonly proofOfBootLastSuccessTimestampSeconds: Gauge<'host'>;
  readonly proofOfBootLongestOffSeconds: Gauge;
  readonly proofOfBootDueHosts: Gauge;
  readonly policyThresholdRatio: Gauge<'resource' | 'threshold'>;
  readonly actionsPlannedTotal: Counter<'type'>;
  readonly actionsExecutedTotal: Counter<'type' | 'result'>;
  readonly actionsSkippedTotal: Counter<'type' | 'reason'>;
  readonly actionFailuresTotal: Counter<'type' | 'code'>;
  readonly migrationDurationSeconds: Histogram;
  readonly powerActionsTotal: Counter<'action' | 'result'>;
  readonly cycleDurationSeconds: Histogram<'phase'>;
  readonly lastSuccessfulCycleTimestampSeconds: Gauge;
  readonly cyclesTotal: Counter<'result'>;
  readonly estimatedPowerSavedWatts: Gauge;
  readonly energySavedKWhTotal: Counter;
  readonly errorsTotal: Counter<'code'>;
  readonly recordingErrorsTotal: Counter;
  readonly recordingBytes: Gauge;
  readonly dryRun: Gauge;
  readonly info: Gauge<'version'>;
  readonly leader: Gauge;

  constructor(options: ConsolidatorMetricsOptions) {
    const registers = [options.registry];
    this.registry = options.registry;

    this.hosts = new Gauge({ name: 'consolidator_hosts', help: 'Managed hosts by power state.', labelNames: ['state'], registers });
    this.hostUtilisationRatio = new Gauge({
      name: 'consolidator_host_utilisation_ratio',
      help: "Used over capacity per host and resource in the last cycle's latest sample (the planner decides on the policy's window statistic; alerts use this with a for: duration).",
      labelNames: ['host', 'resource'],
      registers,
    });
    this.hostsKept = new Gauge({
      name: 'consolidator_hosts_kept',
      help: 'Hosts the last plan kept as they are, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.hostsNeedingAttention = new Gauge({
      name: 'consolidator_hosts_needing_attention',
      help: 'Hosts that need an operator before consolidator touches them again (1 per host), by reason.',
      labelNames: ['host', 'reason'],
      registers,
    });
    this.hostsPoweredOffByConsolidator = new Gauge({
      name: 'consolidator_hosts_powered_off_by_consolidator',
      help: 'Hosts consolidator powered off and remembers: only it powers them back on when demand needs them.',
      registers,
    });
    this.proofOfBootTotal = new Counter({
      name: 'consolidator_proof_of_boot_total',
      help: 'Proofs of boot (power.proofOfBoot), by outcome: ok, failed (the host did not boot: marked for attention), aborted, skipped, dry-run.',
      labelNames: ['outcome'],
      registers,
    });
    this.proofOfBootLastSuccessTimestampSeconds = new Gauge({
      name: 'consolidator_proof_of_boot_last_success_timestamp_seconds',
      help: "When each host's last proof of boot that passed started (the daemon's clock), for hosts that had one.",
      labelNames: ['host'],
      registers,
    });
    this.proofOfBootLongestOffSeconds = new Gauge({
      name: 'consolidator_proof_of_boot_longest_off_seconds',
      help: 'How long the host consolidator has kept off the longest has been off, without a boot since (0: none off); past power.proofOfBoot.afterDays its proof is overdue.',
      registers,
    });
    this.proofOfBootDueHosts = new Gauge({
      name: 'consolidator_proof_of_boot_due_hosts',
      help: 'Hosts consolidator has kept off for power.proofOfBoot.afterDays or more, managed and not marked for attention: due a proof of boot (0 when it is disabled).',
      registers,
    });
    this.policyThresholdRatio = new Gauge({
      name: 'consolidator_policy_threshold_ratio',
      help: "The policy's thresholds per resource, as ratios of capacity (thresholds.<resource>.underloadRatio, targetRatio, overloadRatio).",
      labelNames: ['resource', 'threshold'],
      registers,
    });
    this.actionsPlannedTotal = new Counter({
      name: 'consolidator_actions_planned_total',
      help: 'Actions planned, by type.',
      labelNames: ['type'],
      registers,
    });
    this.actionsExecutedTotal = new Counter({
      name: 'consolidator_actions_executed_total',
      help: 'Actions the actuator finished, by type and result.',
      labelNames: ['type', 'result'],
      registers,
    });
    this.actionsSkippedTotal = new Counter({
      name: 'consolidator_actions_skipped_total',
      help: 'Planned actions the actuator did not run after its live re-check, by type and reason (a closed list).',
      labelNames: ['type', 'reason'],
      registers,
    });
    this.actionFailuresTotal = new Counter({
      name: 'consolidator_action_failures_total',
      help: 'Actions that failed, by type and error code.',
      labelNames: ['type', 'code'],
      registers,
    });
    this.migrationDurationSeconds = new Histogram({
      name: 'consolidator_migration_duration_seconds',
      help: 'Duration of live migrations that completed, seconds.',
      buckets: [...MIGRATION_DURATION_BUCKETS_SECONDS],
      registers,
    });
    this.powerActionsTotal = new Counter({
      name: 'consolidator_power_actions_total',
      help: 'Power actions sent to BMCs, by action and result.',
      labelNames: ['action', 'result'],
      registers,
    });
    this.cycleDurationSeconds = new Histogram({
      name: 'consolidator_cycle_duration_seconds',
      help: 'Duration of each phase of a cycle, and of the whole cycle (phase="total"), seconds.',
      labelNames: ['phase'],
      buckets: [...CYCLE_PHASE_BUCKETS_SECONDS],
      registers,
    });
    this.lastSuccessfulCycleTimestampSeconds = new Gauge({
      name: 'consolidator_last_successful_cycle_timestamp_seconds',
      help: 'Unix time at which the last successful cycle ended, seconds.',
      registers,
    });
    this.cyclesTotal = new Counter({ name: 'consolidator_cycles_total', help: 'Cycles run, by result.', labelNames: ['result'], registers });
    this.estimatedPowerSavedWatts = new Gauge({
      name: 'consolidator_estimated_power_saved_watts',
      help: 'Power not drawn now thanks to the hosts consolidator powered off, watts (measured as consolidator_energy_saved_kwh_total says).',
      registers,
    });
    this.energySavedKWhTotal = new Counter({
      name: 'consolidator_energy_saved_kwh_total',
      help:
        'Energy saved against every host on, kWh, since the daemon started (the daemon\'s clock). Per host consolidator powered off, over the time it stays off: its idle draw ' +
        '(from its own BMC readings while on, less the power model\'s dynamic part, once it has 5; else the policy\'s power model at 0 % CPU) minus its BMC\'s standby reading (0 without one). ' +
        'Hosts off by an operator or in an unknown state count for nothing. "consolidator report" gives the same figure over any period from the recording.',
      registers,
    });
    this.errorsTotal = new Counter({ name: 'consolidator_errors_total', help: 'Failures, by error code.', labelNames: ['code'], registers });
    this.recordingErrorsTotal = new Counter({
      name: 'consolidator_recording_errors_total',
      help: 'Recording writes that failed or records dropped at the size cap (each also a warning); the cycle is never failed for them.',
      registers,
    });
    this.recordingBytes = new Gauge({ name: 'consolidator_recording_bytes', help: 'Bytes the recording folder holds (capped by recording.maxBytes).', registers });
    this.dryRun = new Gauge({ name: 'consolidator_dry_run', help: '1 when the daemon only logs what it would do (mode: dry-run), else 0.', registers });
    this.info = new Gauge({ name: 'consolidator_info', help: 'Build information; always 1.', labelNames: ['version'], registers });
    // Under HA the composition root registers it first (HaMetrics, src/ha): one gauge, both set it.
    this.leader = (options.registry.getSingleMetric('consolidator_leader') as Gauge | undefined) ?? new Gauge({
      name: 'consolidator_leader',
      help: '1 on the controller that leads (the one that runs cycles and acts), 0 on one that does not. Without HA (policy section ha absent: a single controller) a running daemon leads: always 1.',
      registers,
    });

    const version = options.version ?? 'unknown';
    if (!VERSION.test(version)) throw labelBug('version', version);
    this.info.set({ version }, 1);
    // Series that exist from the first scrape, so rate() and absent() behave before the first cycle.
    this.setHostStates({ on: 0, off: 0, unknown: 0, maintenance: 0 });
    this.setKeptHosts({});
    for (const result of CYCLE_RESULTS) this.cyclesTotal.inc({ result }, 0);
    for (const type of ACTION_TYPES) this.actionsPlannedTotal.inc({ type }, 0);
    // The outcome counters too, so that increase() sees the first failure (a series born at 1 reads as no increase).
    for (const type of ACTION_TYPES) for (const result of ACTION_RESULTS) this.actionsExecutedTotal.inc({ type, result }, 0);
    for (const action of POWER_ACTIONS) for (const result of POWER_RESULTS) this.powerActionsTotal.inc({ action, result }, 0);
    this.estimatedPowerSavedWatts.set(0);
    this.hostsPoweredOffByConsolidator.set(0);
    for (const outcome of PROOF_OF_BOOT_OUTCOMES) this.proofOfBootTotal.inc({ outcome }, 0);
    this.proofOfBootLongestOffSeconds.set(0);
    this.proofOfBootDueHosts.set(0);
    this.dryRun.set(0);
    // Not leading until the daemon says it does (setLeader), so a process that never started serving reads 0.
    this.leader.set(0);
  }

  /** Sets all four host states (a state missing from the last cycle reads 0, not its old value). */
  setHostStates(counts: Readonly<Record<HostState, number>>): void {
    const values = HOST_STATES.map((state) => [state, assertCount(`hosts{state=${state}}`, counts[state])] as const);
    for (const [state, value] of values) this.hosts.set({ state }, value);
  }

  /** Replaces every utilisation series: a host that is gone from `rows` disappears. */
  setHostUtilisation(rows: readonly HostUtilisationRow[]): void {
    for (const row of rows) {
      assertHost(row.host);
      assertRatio(row.host, 'cpu', row.cpu);
      assertRatio(row.host, 'memory', row.memory);
    }
    this.hostUtilisationRatio.reset();
    for (const row of rows) {
      this.hostUtilisationRatio.set({ host: row.host, resource: 'cpu' }, row.cpu);
      this.hostUtilisationRatio.set({ host: row.host, resource: 'memory' }, row.memory);
    }
  }

  /** Replaces the kept-hosts counts: every known reason is exported, 0 when not given. */
  setKeptHosts(counts: Readonly<Partial<Record<KeepReason, number>>>): void {
    for (const reason of Object.keys(counts)) assertOneOf('reason', reason, KEEP_REASONS);
    const values = KEEP_REASONS.map((reason) => [reason, assertCount(`hosts_kept{reason=${reason}}`, counts[reason] ?? 0)] as const);
    this.hostsKept.reset();
    for (const [reason, value] of values) this.hostsKept.set({ reason }, value);
  }

  /** Replaces the attention series: one per host that needs an operator, value 1. */
  setHostsNeedingAttention(rows: readonly AttentionRow[]): void {
    for (const row of rows) {
      assertHost(row.host);
      assertOneOf('reason', row.reason, ATTENTION_REASONS);
    }
    this.hostsNeedingAttention.reset();
    for (const row of rows) this.hostsNeedingAttention.set({ host: row.host, reason: row.reason }, 1);
  }

  setHostsPoweredOffByConsolidator(count: number): void {
    this.hostsPoweredOffByConsolidator.set(assertCount('hosts powered off by consolidator', count));
  }

  countProofOfBoot(outcome: ProofOfBootOutcome): void {
    assertOneOf('outcome', outcome, PROOF_OF_BOOT_OUTCOMES);
    this.proofOfBootTotal.inc({ outcome });
  }

  /**
   * The proof-of-boot gauges from the saved state: the last proof that passed per host (a host gone
   * from `lastSuccessMs` disappears), how long the longest-off host has been off, how many are due.
   */
  setProofOfBootState(s: { readonly lastSuccessMs: Readonly<Record<string, number>>; readonly longestOffMs: number; readonly dueHosts: number }): void {
    for (const [host, atMs] of Object.entries(s.lastSuccessMs)) {
      assertHost(host);
      assertNonNegative(`proof of boot of ${host}`, atMs);
    }
    assertNonNegative('longest off', s.longestOffMs);
    assertCount('hosts due a proof of boot', s.dueHosts);
    this.proofOfBootLastSuccessTimestampSeconds.reset();
    for (const [host, atMs] of Object.entries(s.lastSuccessMs)) this.proofOfBootLastSuccessTimestampSeconds.set({ host }, atMs / MS_PER_SECOND);
    this.proofOfBootLongestOffSeconds.set(s.longestOffMs / MS_PER_SECOND);
    this.proofOfBootDueHosts.set(s.dueHosts);
  }

  /** Sets the policy's thresholds (at start and on every accepted reload). */
  setThresholds(thresholds: Readonly<Record<UtilisationResource, ResourceThresholds>>): void {
    const values = UTILISATION_RESOURCES.flatMap((resource) => {
      const t = thresholds[resource];
      return [
        [resource, 'underload', t.underloadRatio],
        [resource, 'target', t.targetRatio],
        [resource, 'overload', t.overloadRatio],
      ] as const;
    });
    for (const [resource, threshold, value] of values) assertNonNegative(`thresholds.${resource}.${threshold}Ratio`, value);
    for (const [resource, threshold, value] of values) this.policyThresholdRatio.set({ resource, threshold }, value);
  }

  /** 1 while this controller leads. A single controller (no HA) leads as soon as it serves. */
  setLeader(leading: boolean): void {
    this.leader.set(leading ? 1 : 0);
  }

  countPlannedActions(type: ActionType, count = 1): void {
    assertOneOf('type', type, ACTION_TYPES);
    this.actionsPlannedTotal.inc({ type }, assertCount('actions planned', count));
  }

  countExecutedAction(type: ActionType, result: ActionResult): void {
    assertOneOf('type', type, ACTION_TYPES);
    assertOneOf('result', result, ACTION_RESULTS);
    this.actionsExecutedTotal.inc({ type, result });
  }

  countSkippedAction(type: ActionType, reason: SkipReason): void {
    assertOneOf('type', type, ACTION_TYPES);
    assertOneOf('reason', reason, SKIP_REASONS);
    this.actionsSkippedTotal.inc({ type, reason });
  }

  countFailedAction(type: ActionType, code: ErrorCode): void {
    assertOneOf('type', type, ACTION_TYPES);
    assertOneOf('code', code, ERROR_CODES);
    this.actionFailuresTotal.inc({ type, code });
  }

  observeMigrationSeconds(seconds: number): void {
    this.migrationDurationSeconds.observe(assertNonNegative('migration duration', seconds));
  }

  countPowerAction(action: PowerAction, result: PowerResult): void {
    assertOneOf('action', action, POWER_ACTIONS);
    assertOneOf('result', result, POWER_RESULTS);
    this.powerActionsTotal.inc({ action, result });
  }

  observeCyclePhaseSeconds(phase: CyclePhase, seconds: number): void {
    assertOneOf('phase', phase, CYCLE_PHASES);
    this.cycleDurationSeconds.observe({ phase }, assertNonNegative(`cycle phase ${phase}`, seconds));
  }

  /** Counts a cycle; an `ok` one also moves the last-successful timestamp to `nowMs`. */
  recordCycle(result: CycleResult, nowMs: number): void {
    assertOneOf('result', result, CYCLE_RESULTS);
    this.cyclesTotal.inc({ result });
    if (result === 'ok') this.lastSuccessfulCycleTimestampSeconds.set(assertNonNegative('cycle end', nowMs) / MS_PER_SECOND);
  }

  setPowerSavedWatts(watts: number): void {
    this.estimatedPowerSavedWatts.set(assertNonNegative('power saved', watts));
  }

  /** Adds energy saved, joules (an EnergyLedger's interval). */
  addEnergySavedJoules(joules: number): void {
    this.energySavedKWhTotal.inc(assertNonNegative('energy saved', joules) / JOULES_PER_KWH);
  }

  /** Counts a failure under its code: a ConsolidatorError's own, INTERNAL for anything else. */
  countError(e: unknown): ErrorCode {
    const code: ErrorCode = isConsolidatorError(e) && (ERROR_CODES as readonly string[]).includes(e.code) ? e.code : 'INTERNAL';
    this.errorsTotal.inc({ code });
    return code;
  }

  setDryRun(dryRun: boolean): void {
    this.dryRun.set(dryRun ? 1 : 0);
  }
}

function labelBug(label: string, value: unknown): ConsolidatorError {
  return new ConsolidatorError('INTERNAL', `metric label ${label} has an unexpected value: ${JSON.stringify(value)}`, {
    details: { label },
  });
}

function assertOneOf<T extends string>(label: string, value: string, allowed: readonly T[]): asserts value is T {
  if (!(allowed as readonly string[]).includes(value)) throw labelBug(label, value);
}

function assertHost(host: string): void {
  if (typeof host !== 'string' || !isValidHostName(host)) throw labelBug('host', host);
}

function assertNonNegative(what: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new ConsolidatorError('INTERNAL', `${what} must be a finite number >= 0, got ${String(value)}`);
  }
  return value;
}

function assertCount(what: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new ConsolidatorError('INTERNAL', `${what} must be an integer >= 0, got ${String(value)}`);
  }
  return value;
}

function assertRatio(host: string, resource: UtilisationResource, value: number): void {
  assertNonNegative(`utilisation of ${resource} on ${host}`, value);
}
