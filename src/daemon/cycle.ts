import type { ActionOutcome, Actuator } from '../actuator/actuator.js';
import type { LoadedPolicy } from '../config/load.js';
import type { HypervisorDriver } from '../drivers/hypervisor/hypervisor-driver.js';
import { ConsolidatorError, errorMessage, isConsolidatorError } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { Violation } from '../model/simulate.js';
import type { ClusterSnapshot } from '../model/snapshot.js';
import type { Logger } from '../observability/logger.js';
import { checkPlan, planCycle } from '../planner/index.js';
import type { Action, PlanInput, PlanResult } from '../planner/types.js';
import { buildExecutionContext } from './execution-context.js';
import type { ClusterObserver } from './observer.js';
import type { StateKeeper } from '../state/state-keeper.js';

export const CYCLE_PHASES = ['observe', 'plan', 'check', 'persist', 'act', 'total'] as const;
export type CyclePhase = (typeof CYCLE_PHASES)[number];

export interface CycleReport {
  readonly cycle: string;
  readonly startedAtMs: number;
  readonly result: 'ok' | 'failed';
  readonly error?: ConsolidatorError;
  readonly phaseSeconds: Partial<Record<CyclePhase, number>>;
  readonly snapshot?: ClusterSnapshot;
  readonly plan?: PlanResult;
  readonly violations: readonly Violation[];
  readonly outcomes: readonly ActionOutcome[];
  readonly unreachable: ReadonlyMap<HostId, string>;
  readonly dryRun: boolean;
}

/** What the planner is given: the snapshot and everything the daemon remembers. */
export function planInputFor(snapshot: ClusterSnapshot, loaded: LoadedPolicy, keeper: StateKeeper, nowMs: number): PlanInput {
  return {
    snapshot,
    policy: loaded.policy,
    memory: keeper.plannerMemory,
    inFlight: [],
    poweredOffByUs: keeper.poweredOffByUs(),
    powerActionsLast24h: keeper.powerActionsLast24h(),
    needsAttention: Object.keys(keeper.state.attention.hosts),
    nowMs,
  };
}

export interface CycleDeps {
  readonly observer: ClusterObserver;
  readonly hypervisor: HypervisorDriver;
  readonly actuatorFor: (mode: 'enforce' | 'dry-run') => Actuator;
  readonly keeper: StateKeeper;
  readonly logger: Logger;
  readonly nowMs: () => number;
  readonly policy: () => LoadedPolicy;
  /** Called when a step ends: progress, for a watchdog that must not fire during a long act phase. */
  readonly onStepDone?: () => void;
}

/**
 * One cycle: observe -> plan -> check (simulate, invariants) -> persist -> act -> record. A host that
 * does not answer is unknown, never a failed cycle; a plan that breaks an invariant runs nothing.
 * The first cycle after a start reconciles whatever a crash interrupted, from what the hosts report.
 */
export class CycleRunner {
  private sequence = 0;
  private readonly log: Logger;
  private readonly lastVerdicts = new Map<HostId, string>();

  constructor(private readonly deps: CycleDeps) {
    this.log = deps.logger.child({ component: 'cycle' });
  }

  async run(signal: AbortSignal, drainSignal: AbortSignal): Promise<CycleReport> {
    const { keeper, nowMs } = this.deps;
    const loaded = this.deps.policy();
    const { policy } = loaded;
    const startedAtMs = nowMs();
    const cycle = `${new Date(startedAtMs).toISOString()}#${++this.sequence}`;
    const log = this.log.child({ cycle });
    const phaseSeconds: Partial<Record<CyclePhase, number>> = {};
    const timed = async <T>(phase: CyclePhase, fn: () => Promise<T> | T): Promise<T> => {
      const t0 = performance.now();
      try {
        return await fn();
      } finally {
        phaseSeconds[phase] = (performance.now() - t0) / 1000;
      }
    };
    const base = { cycle, startedAtMs, phaseSeconds, dryRun: policy.mode === 'dry-run' };
    let snapshot: ClusterSnapshot | undefined;
    let unreachable: ReadonlyMap<HostId, string> = new Map();
    let plan: PlanResult | undefined;
    let violations: readonly Violation[] = [];
    const t0 = performance.now();
    try {
      const interrupted = keeper.interrupted;
      if (interrupted) await this.abortInterruptedMigrations(interrupted.steps, signal, log);

      const observation = await timed('observe', () =>
        this.deps.observer.observe(
          { policy, hosts: loaded.hosts, maintenance: keeper.inMaintenance(), knownCapacity: keeper.knownCapacity(), believedOff: keeper.poweredOffByUs() },
          nowMs(),
          signal,
        ),
      );
      snapshot = observation.snapshot;
      unreachable = observation.failures;
      keeper.rememberCapacities(observation.capacities);
      for (const host of snapshot.hosts) if (host.power === 'on' && host.reachable) keeper.forgetPoweredOff(host.id);
      if (interrupted) this.reconcilePower(interrupted, snapshot, log);

      const input = planInputFor(snapshot, loaded, keeper, nowMs());
      plan = await timed('plan', () => planCycle(input));
      violations = await timed('check', () => checkPlan(input, (plan as PlanResult).actions).violations);
      const actions: readonly Action[] = violations.length === 0 ? plan.actions : [];
      if (violations.length > 0) {
        for (const v of violations) log.error('plan breaks an invariant: nothing runs this cycle', { invariant: v.invariant, message: v.message, action: v.actionId });
      }

      await timed('persist', async () => {
        // A rejected plan keeps what the planner learnt about hosts, not the cooldowns of moves it never made.
        keeper.setPlannerMemory(violations.length === 0 ? (plan as PlanResult).memory : { ...input.memory, underloadedSinceMs: (plan as PlanResult).memory.underloadedSinceMs });
        if (actions.length > 0) keeper.beginPlan(cycle, actions);
        await keeper.save();
      });
      this.logDecisions(plan, log);

      const outcomes = await timed('act', () => this.act(actions, input, cycle, policy.mode, signal, drainSignal));
      keeper.endPlan();
      await keeper.save();
      phaseSeconds.total = (performance.now() - t0) / 1000;
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
      log.info('cycle finished', {
        migrations: outcomes.filter((o) => o.action.type === 'migrate' && o.result === 'ok').length,
        powerOffs: outcomes.filter((o) => o.action.type === 'power-off' && o.result === 'ok').length,
        powerOns: outcomes.filter((o) => o.action.type === 'power-on' && o.result === 'ok').length,
        failed: outcomes.filter((o) => o.result === 'failed').length,
        skipped: outcomes.filter((o) => o.result === 'skipped').length,
        unreachable: unreachable.size,
        seconds: Math.round(phaseSeconds.total * 1000) / 1000,
      });
      return { ...base, result: 'ok', snapshot, plan, violations, outcomes, unreachable };
    } catch (e) {
      phaseSeconds.total = (performance.now() - t0) / 1000;
      const error = isConsolidatorError(e) ? e : new ConsolidatorError('INTERNAL', errorMessage(e), { cause: e });
      log.error('cycle failed', { err: error });
      return { ...base, result: 'failed', error, ...(snapshot ? { snapshot } : {}), ...(plan ? { plan } : {}), violations, outcomes: [], unreachable };
    }
  }

  private async act(actions: readonly Action[], input: PlanInput, cycle: string, mode: 'enforce' | 'dry-run', signal: AbortSignal, drainSignal: AbortSignal): Promise<ActionOutcome[]> {
    const { keeper, nowMs } = this.deps;
    const loaded = this.deps.policy();
    if (actions.length === 0) return [];
    const ctx = buildExecutionContext({
      keeper,
      loaded,
      input,
      cycle,
      signal,
      drainSignal,
      nowMs,
      ...(this.deps.onStepDone ? { onStepDone: this.deps.onStepDone } : {}),
    });
    const outcomes = await this.deps.actuatorFor(mode).execute(actions, ctx);
    if (mode === 'dry-run') {
      for (const o of outcomes) {
        keeper.addHistory({
          atMs: nowMs(),
          cycle,
          actionId: o.action.id,
          type: o.action.type,
          subject: o.action.type === 'migrate' ? o.action.vm : o.action.host,
          ...(o.action.type === 'migrate' ? { from: o.action.from, to: o.action.to } : {}),
          result: 'dry-run',
        });
      }
    }
    return outcomes;
  }

  /**
   * Migrations that were running when the daemon died may still run as libvirt jobs: abort them and let
   * the observation say where each VM is. The old plan is never resumed.
   */
  private async abortInterruptedMigrations(steps: readonly { id: string; type: string; vm?: string; from?: string; status: string }[], signal: AbortSignal, log: Logger): Promise<void> {
    for (const step of steps) {
      if (step.type !== 'migrate' || step.status !== 'running' || !step.vm || !step.from) continue;
      try {
        await this.deps.hypervisor.abortMigration(step.vm, step.from, signal);
        log.warn('aborted a migration interrupted by a restart', { vm: step.vm, from: step.from });
      } catch (e) {
        log.warn('could not abort an interrupted migration (it may have finished)', { vm: step.vm, from: step.from, err: e });
      }
    }
  }

  private reconcilePower(interrupted: NonNullable<StateKeeper['interrupted']>, snapshot: ClusterSnapshot, log: Logger): void {
    const { keeper, nowMs } = this.deps;
    const power = new Map(snapshot.hosts.map((h) => [h.id, h.power]));
    const where = new Map(snapshot.vms.map((vm) => [vm.id, vm.host]));
    for (const step of interrupted.steps) {
      if (step.status !== 'running' && step.status !== 'pending') continue;
      // We asked the BMC for this power-off before the crash: if the host is off, it is ours to wake.
      if (step.type === 'power-off' && step.status === 'running' && step.host && power.get(step.host) === 'off') keeper.markPoweredOff(step.host);
      const landed = step.type === 'migrate' && step.vm !== undefined && where.get(step.vm) === step.to;
      keeper.addHistory({
        atMs: nowMs(),
        cycle: interrupted.cycle,
        actionId: step.id,
        type: step.type,
        subject: step.vm ?? step.host ?? '?',
        ...(step.from !== undefined ? { from: step.from } : {}),
        ...(step.to !== undefined ? { to: step.to } : {}),
        result: 'interrupted',
        reason: landed ? `the daemon stopped; ${step.vm} was found on ${step.to}` : `the daemon stopped during the step (${step.status}); re-planned from what the hosts report`,
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
