import type { ActionOutcome, Actuator } from '../actuator/actuator.js';
import type { LoadedPolicy } from '../config/load.js';
import type { HypervisorDriver } from '../drivers/hypervisor/hypervisor-driver.js';
import { ConsolidatorError, errorMessage, isConsolidatorError } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { Violation } from '../model/simulate.js';
import type { ClusterSnapshot } from '../model/snapshot.js';
import type { Logger } from '../observability/logger.js';
import type { ConsolidatorMetrics, CyclePhase } from '../observability/metrics.js';
import { checkPlan, CycleDemands, planCycle } from '../planner/index.js';
import type { Action, InFlightAction, PlanInput, PlanResult } from '../planner/types.js';
import type { InFlightStep } from '../state/persisted-state.js';
import type { StateKeeper } from '../state/state-keeper.js';
import type { EnergyLedger } from '../state/energy-ledger.js';
import { recordCycleMetrics } from './cycle-metrics.js';
import type { CycleReport } from './cycle-report.js';
import { buildExecutionContext, cycleBudget } from './execution-context.js';
import type { ClusterObserver } from './observer.js';

/**
 * What the planner is given: the snapshot, everything the daemon remembers, and the migrations that
 * may still be running on the hosts (interrupted by a restart, and not confirmed aborted).
 */
export function planInputFor(snapshot: ClusterSnapshot, loaded: LoadedPolicy, keeper: StateKeeper, nowMs: number, inFlight: readonly InFlightAction[] = []): PlanInput {
  return {
    snapshot,
    policy: loaded.policy,
    memory: keeper.plannerMemory,
    inFlight,
    poweredOffByUs: keeper.poweredOffByUs(),
    powerActionsLast24h: keeper.powerActionsLast24h(),
    needsAttention: keeper.hostsNeedingAttention(),
    wokenForMaintenance: keeper.wokenForMaintenance(),
    proofOfBoot: keeper.proofOfBootInput(),
    nowMs,
  };
}

export interface CycleDeps {
  readonly observer: ClusterObserver;
  readonly hypervisor: HypervisorDriver;
  readonly actuatorFor: (mode: 'enforce' | 'dry-run') => Actuator;
  readonly keeper: StateKeeper;
  readonly logger: Logger;
  readonly metrics: ConsolidatorMetrics;
  /** The daemon's clock (simulated in the demo). */
  readonly nowMs: () => number;
  /** Wall time, for metric timestamps. */
  readonly realNowMs: () => number;
  /** Called when a step ends: progress, for a watchdog that must not fire during a long act phase. */
  readonly onStepDone?: () => void;
  /** The planner; planCycle unless a test needs a plan that breaks an invariant. */
  readonly planner?: (input: PlanInput) => PlanResult;
  /** The recording of what cycles observe (queues in the record phase, writes after it; never throws). */
  readonly recording?: { record(report: CycleReport, loaded: LoadedPolicy): void; latestWatts(): ReadonlyMap<HostId, number> };
  /** Prices the energy saved cycle by cycle; the daemon's, so it outlives a runner rebuilt on reload. */
  readonly ledger: EnergyLedger;
}

type Timed = <T>(phase: CyclePhase, fn: () => Promise<T> | T) => Promise<T>;

/**
 * One cycle: observe -> plan -> check (simulate, invariants) -> persist -> act -> record, all with the
 * one policy snapshot the cycle was started with. A host that does not answer is unknown, never a
 * failed cycle; a plan that breaks an invariant runs nothing. The first cycle after a start reconciles
 * whatever a crash interrupted, from what the hosts report.
 */
export class CycleRunner {
  private sequence = 0;
  private readonly log: Logger;
  private readonly lastVerdicts = new Map<HostId, string>();

  constructor(private readonly deps: CycleDeps) {
    this.log = deps.logger.child({ component: 'cycle' });
  }

  async run(loaded: LoadedPolicy, signal: AbortSignal, drainSignal: AbortSignal): Promise<CycleReport> {
    const startedAtMs = this.deps.nowMs();
    const cycle = `${new Date(startedAtMs).toISOString()}#${++this.sequence}`;
    const log = this.log.child({ cycle });
    const phaseSeconds: Partial<Record<CyclePhase, number>> = {};
    const timed: Timed = async (phase, fn) => {
      const t0 = performance.now();
      try {
        return await fn();
      } finally {
        phaseSeconds[phase] = (performance.now() - t0) / 1000;
      }
    };
    const t0 = performance.now();
    const report = await this.runPhases(loaded, { cycle, startedAtMs, phaseSeconds, dryRun: loaded.policy.mode === 'dry-run' }, timed, log, signal, drainSignal);
    phaseSeconds.total = (performance.now() - t0) / 1000;
    await timed('record', () => {
      this.record(report, loaded, log);
      this.deps.recording?.record(report, loaded);
    });
    this.deps.metrics.observeCyclePhaseSeconds('record', phaseSeconds.record ?? 0);
    return report;
  }

  private async runPhases(
    loaded: LoadedPolicy,
    base: Pick<CycleReport, 'cycle' | 'startedAtMs' | 'phaseSeconds' | 'dryRun'>,
    timed: Timed,
    log: Logger,
    signal: AbortSignal,
    drainSignal: AbortSignal,
  ): Promise<CycleReport> {
    const { keeper, nowMs } = this.deps;
    const { policy } = loaded;
    let snapshot: ClusterSnapshot | undefined;
    let unreachable: ReadonlyMap<HostId, string> = new Map();
    let plan: PlanResult | undefined;
    let violations: readonly Violation[] = [];
    let outcomes: readonly ActionOutcome[] = [];
    try {
      const interrupted = keeper.interrupted;
      const stillMigrating = interrupted ? await this.abortInterruptedMigrations(interrupted.steps, signal, log) : [];

      const observation = await timed('observe', () =>
        this.deps.observer.observe(
          { policy, hosts: loaded.hosts, maintenance: keeper.inMaintenance(), knownCapacity: keeper.knownCapacity(), believedOff: keeper.poweredOffByUs() },
          nowMs(),
          signal,
        ),
      );
      snapshot = observation.snapshot;
      unreachable = observation.failures;
      keeper.rememberHosts(observation);
      for (const host of snapshot.hosts) if (host.power === 'on' && host.reachable) keeper.forgetPoweredOff(host.id);
      if (interrupted) this.reconcilePower(interrupted, snapshot, log);

      const input = planInputFor(snapshot, loaded, keeper, nowMs(), stillMigrating);
      // One memo of the window statistics for planning and checking this cycle, dropped with it.
      const demands = CycleDemands.of(input);
      const planned = await timed('plan', () => (this.deps.planner ?? ((i: PlanInput) => planCycle(i, demands)))(input));
      plan = planned;
      violations = await timed('check', () => checkPlan(input, planned.actions, { demands }).violations);
      const actions: readonly Action[] = violations.length === 0 ? planned.actions : [];
      for (const v of violations) log.error('plan breaks an invariant: nothing runs this cycle', { invariant: v.invariant, detail: v.message, action: v.actionId });

      await timed('persist', async () => {
        // A rejected plan keeps what the planner learnt about hosts, not the cooldowns of moves it never made.
        keeper.setPlannerMemory(violations.length === 0 ? planned.memory : { ...input.memory, underloadedSinceMs: planned.memory.underloadedSinceMs });
        // A dry run touches nothing: there is no plan under way for a restart to reconcile.
        if (actions.length > 0 && policy.mode === 'enforce') keeper.beginPlan(base.cycle, actions);
        await keeper.save();
      });
      this.logDecisions(planned, log);

      outcomes = await timed('act', () => this.act(actions, input, loaded, base.cycle, signal, drainSignal));
      keeper.endPlan();
      await keeper.save();
      if (violations.length > 0) {
        return {
          ...base,
          result: 'failed',
          error: new ConsolidatorError('INVARIANT_VIOLATED', `the plan broke ${violations.length} invariant(s): ${violations.map((v) => v.invariant).join(', ')}`),
          snapshot,
          plan,
          violations,
          outcomes,
          unreachable,
        };
      }
      return { ...base, result: 'ok', snapshot, plan, violations, outcomes, unreachable };
    } catch (e) {
      const error = isConsolidatorError(e) ? e : new ConsolidatorError('INTERNAL', errorMessage(e), { cause: e });
      log.error('cycle failed', { err: error });
      return { ...base, result: 'failed', error, ...(snapshot ? { snapshot } : {}), ...(plan ? { plan } : {}), violations, outcomes, unreachable };
    }
  }

  private act(actions: readonly Action[], input: PlanInput, loaded: LoadedPolicy, cycle: string, signal: AbortSignal, drainSignal: AbortSignal): Promise<ActionOutcome[]> {
    if (actions.length === 0) return Promise.resolve([]);
    const ctx = buildExecutionContext({
      keeper: this.deps.keeper,
      loaded,
      budget: cycleBudget(loaded),
      input,
      cycle,
      signal,
      drainSignal,
      ...(this.deps.onStepDone ? { onStepDone: this.deps.onStepDone } : {}),
    });
    return this.deps.actuatorFor(loaded.policy.mode).execute(actions, ctx);
  }

  /**
   * The record phase: metrics from the report and one line that sums the cycle up (and, apart from
   * this, the cycle's observation queued for the recording). The energy saved is priced between
   * observations on the daemon's clock (the simulated one in the demo, so the counter counts simulated
   * kWh there).
   */
  private record(report: CycleReport, loaded: LoadedPolicy, log: Logger): void {
    recordCycleMetrics(this.deps.metrics, report, {
      keeper: this.deps.keeper,
      hosts: loaded.hosts,
      proofOfBoot: loaded.policy.power.proofOfBoot,
      realNowMs: this.deps.realNowMs(),
      ledger: this.deps.ledger,
      watts: this.deps.recording?.latestWatts() ?? new Map(),
    });
    if (report.result !== 'ok') return;
    const { outcomes } = report;
    const count = (type: Action['type']) => outcomes.filter((o) => o.action.type === type && o.result === 'ok').length;
    log.info('cycle finished', {
      migrations: count('migrate'),
      powerOffs: count('power-off'),
      powerOns: count('power-on'),
      failed: outcomes.filter((o) => o.result === 'failed').length,
      skipped: outcomes.filter((o) => o.result === 'skipped').length,
      unreachable: report.unreachable.size,
      seconds: Math.round((report.phaseSeconds.total ?? 0) * 1000) / 1000,
    });
  }

  /**
   * Migrations that were running when the daemon died may still run as libvirt jobs: abort them and let
   * the observation say where each VM is. The old plan is never resumed. Returns the migrations whose
   * abort could not be confirmed: the planner treats them as still in flight this cycle.
   */
  private async abortInterruptedMigrations(steps: readonly InFlightStep[], signal: AbortSignal, log: Logger): Promise<InFlightAction[]> {
    const unconfirmed: InFlightAction[] = [];
    for (const step of steps) {
      if (step.type !== 'migrate' || step.status !== 'running' || !step.vm || !step.from || !step.to) continue;
      try {
        await this.deps.hypervisor.abortMigration(step.vm, step.from, signal);
        log.warn('aborted a migration interrupted by a restart', { vm: step.vm, from: step.from });
      } catch (e) {
        log.warn('could not abort an interrupted migration (it may have finished): left alone this cycle', { vm: step.vm, from: step.from, err: e });
        unconfirmed.push({ type: 'migrate', vm: step.vm, from: step.from, to: step.to });
      }
    }
    return unconfirmed;
  }

  private reconcilePower(interrupted: NonNullable<StateKeeper['interrupted']>, snapshot: ClusterSnapshot, log: Logger): void {
    const { keeper } = this.deps;
    const power = new Map(snapshot.hosts.map((h) => [h.id, h.power]));
    const reachable = new Set(snapshot.hosts.filter((h) => h.reachable).map((h) => h.id));
    const where = new Map(snapshot.vms.map((vm) => [vm.id, vm.host]));
    for (const step of interrupted.steps) {
      if (step.status !== 'running' && step.status !== 'pending') continue;
      // We asked the BMC for this power-off before the crash: the host is ours to wake, whether it is
      // off already or still going down (on, no longer answering); only one that answers is not.
      if (step.type === 'power-off' && step.status === 'running' && step.host && (power.get(step.host) === 'off' || !reachable.has(step.host))) keeper.markPoweredOff(step.host);
      const landed = step.type === 'migrate' && step.vm !== undefined && where.get(step.vm) === step.to;
      keeper.recordOutcome(interrupted.cycle, step, {
        result: 'interrupted',
        detail: landed ? `the daemon stopped; ${step.vm} was found on ${step.to}` : `the daemon stopped during the step (${step.status}); re-planned from what the hosts report`,
      });
    }
    log.warn('reconciled a plan interrupted by a restart', { cycle: interrupted.cycle, steps: interrupted.steps.length });
    keeper.endPlan();
  }

  /**
   * One line per decision: every host acted on, and every host whose reason for staying as it is
   * changed since the last cycle (at info); the rest at debug, so a quiet cluster logs quietly.
   */
  private logDecisions(plan: PlanResult, log: Logger): void {
    const counts: Record<string, number> = {};
    for (const v of plan.verdicts) {
      const key = v.reason ?? v.outcome;
      counts[key] = (counts[key] ?? 0) + 1;
      const verdict = `${v.outcome}/${v.reason ?? ''}`;
      const changed = this.lastVerdicts.get(v.host) !== verdict;
      this.lastVerdicts.set(v.host, verdict);
      const acted = v.outcome === 'draining' || v.outcome === 'relieving' || v.outcome === 'powering-on';
      (acted || changed ? log.info : log.debug).call(log, `host ${v.outcome}`, { host: v.host, reason: v.reason, detail: v.detail });
    }
    for (const a of plan.actions) log.info('planned', { action: a.id, type: a.type, ...(a.type === 'migrate' ? { vm: a.vm, from: a.from, to: a.to } : { host: a.host }), dependsOn: a.dependsOn });
    log.info('plan', { ...plan.summary, verdicts: counts });
  }
}
