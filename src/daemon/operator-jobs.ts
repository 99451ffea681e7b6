import type { ActionOutcome, ExecutionContext } from '../actuator/actuator.js';
import { LiveActuator } from '../actuator/live-actuator.js';
import { waitForHypervisor } from '../actuator/wait-for-hypervisor.js';
import type { LoadedPolicy } from '../config/load.js';
import type { DriverBundle } from '../drivers/driver-bundle.js';
import type { PowerDriver } from '../drivers/power/power-driver.js';
import { ConsolidatorError, errorMessage, isConsolidatorError } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { Logger } from '../observability/logger.js';
import { checkPlan } from '../planner/check-plan.js';
import { CycleDemands } from '../planner/demand.js';
import { planCycle } from '../planner/plan-cycle.js';
import { describeWake, planDrain, type DrainPlan, type DrainRoom, type DrainWake } from '../planner/plan-drain.js';
import type { Action, PlanInput, PlanResult } from '../planner/types.js';
import { planInputFor } from './cycle.js';
import { buildExecutionContext } from './execution-context.js';
import type { ClusterObserver } from './observer.js';
import type { StateKeeper } from '../state/state-keeper.js';

/** Live progress of an operator job, for `consolidator status` and the drain command's display. */
export interface JobProgress {
  readonly kind: 'drain' | 'wake';
  readonly host: HostId;
  readonly startedAtMs: number;
  readonly steps: Record<string, { readonly what: string; status: string; detail?: string }>;
}

export type DrainResult =
  | {
      readonly ok: false;
      readonly refused: true;
      readonly reasons: readonly string[];
      /** For want of room: what the VMs need against what is free, and the hosts that could be woken. */
      readonly room?: DrainRoom;
      /** Hosts whose waking would make room (refused because of noWake). */
      readonly wouldWake?: readonly DrainWake[];
      /** Hosts woken before the refusal (the room was gone by the time they answered): the daemon's again. */
      readonly woken?: readonly HostId[];
    }
  | {
      readonly ok: boolean;
      readonly refused: false;
      readonly dryRun: boolean;
      readonly actions: readonly Action[];
      readonly outcomes: readonly ActionOutcome[];
      /** Hosts powered on to make room (a dry run: that would be); kept on until the host is undrained. */
      readonly woken: readonly DrainWake[];
    };

export interface DrainOptions {
  readonly powerOff: boolean;
  readonly dryRun: boolean;
  /** Refuse rather than wake hosts consolidator powered off when the hosts on lack room. */
  readonly noWake?: boolean;
}

export interface WakeResult {
  readonly ok: boolean;
  readonly message: string;
}

export interface OperatorDeps {
  readonly observer: ClusterObserver;
  readonly drivers: DriverBundle;
  /** The supervised power driver: records actions, marks failures for attention. */
  readonly power: PowerDriver;
  readonly keeper: StateKeeper;
  readonly loaded: LoadedPolicy;
  readonly logger: Logger;
  readonly nowMs: () => number;
  readonly signal: AbortSignal;
  /** Aborted first on a graceful stop: no new step of the job starts. */
  readonly drainSignal: AbortSignal;
  readonly bootPollIntervalMs: number;
  readonly onProgress: (progress: JobProgress) => void;
  readonly onStepDone?: () => void;
}

export interface PlanNowResult {
  readonly input: PlanInput;
  readonly plan: PlanResult;
  readonly violations: readonly string[];
}

/** One observation and the plan a cycle would make from it, executing nothing. */
export async function planOnce(deps: OperatorDeps): Promise<PlanNowResult> {
  const input = await observeForPlanning(deps);
  const demands = CycleDemands.of(input);
  const plan = planCycle(input, demands);
  const violations = checkPlan(input, plan.actions, { demands }).violations.map((v) => `${v.invariant}: ${v.message}`);
  return { input, plan, violations };
}

/**
 * Evacuates a host for maintenance with the planner's placement and safety rules, then marks it in
 * maintenance (never touched, never woken, until undrained); with powerOff, powers it off once a
 * fresh query shows it empty. It is the operator's host then: never powered on automatically.
 *
 * When the hosts on lack room, it first wakes the fewest hosts consolidator powered off that make
 * room (the planner says which, most efficient first) through the supervised power driver, waits for
 * their hypervisors, observes again and plans the drain from there. Those hosts are marked woken for
 * this maintenance: no cycle empties them until the host is undrained. With noWake it refuses instead.
 */
export async function drainHost(deps: OperatorDeps, host: HostId, options: DrainOptions): Promise<DrainResult> {
  const { keeper, loaded, logger } = deps;
  const log = logger.child({ component: 'drain', host });
  if (keeper.interrupted) {
    // Its migrations may still run as libvirt jobs: the next cycle aborts them and reconciles.
    const reasons = [`a plan interrupted by a restart (${keeper.interrupted.cycle}) is not reconciled yet: the daemon's next cycle does it; retry after it`];
    log.warn('drain refused', { reasons });
    return { ok: false, refused: true, reasons };
  }
  const progress: JobProgress = { kind: 'drain', host, startedAtMs: deps.nowMs(), steps: {} };
  let input = await observeForPlanning(deps);
  let plan: DrainPlan = planDrain(input, host, { powerOff: options.powerOff });
  let woken: DrainWake[] = [];
  if (!plan.ok && plan.wake) {
    const wake = plan.wake;
    const names = wake.hosts.map(describeWake).join(', ');
    if (options.noWake) {
      const reasons = [...plan.reasons, `waking ${names} would make room: drain without --no-wake to have consolidator do it`];
      log.warn('drain refused', { reasons });
      return { ok: false, refused: true, reasons, ...(plan.room ? { room: plan.room } : {}), wouldWake: wake.hosts };
    }
    if (options.dryRun) return { ok: true, refused: false, dryRun: true, actions: wake.actions, outcomes: [], woken: wake.hosts };
    log.info('no room on the hosts on: waking hosts consolidator powered off', { hosts: wake.hosts.map((w) => w.host) });
    // A host that does not come up is a failure (thrown, as for `consolidator wake`): no VM was moved.
    await wakeForDrain(deps, `drain-${host}-wake-${new Date(deps.nowMs()).toISOString()}`, wake.hosts, progress);
    woken = [...wake.hosts];
    input = await observeForPlanning(deps);
    plan = planDrain(input, host, { powerOff: options.powerOff });
  }
  if (!plan.ok) {
    log.warn('drain refused', { reasons: plan.reasons, woken: woken.map((w) => w.host) });
    return {
      ok: false,
      refused: true,
      reasons: plan.reasons,
      ...(plan.room ? { room: plan.room } : {}),
      ...(woken.length > 0 ? { woken: woken.map((w) => w.host) } : {}),
    };
  }
  // Checked as the operator means it: this host may be emptied and powered off even if it is already
  // in maintenance (a second drain), with a budget of its own instead of the per-cycle cap.
  const budget = { maxMigrations: plan.actions.filter((a) => a.type === 'migrate').length };
  const asDrained = { ...input, snapshot: { ...input.snapshot, hosts: input.snapshot.hosts.map((h) => (h.id === host ? { ...h, maintenance: false } : h)) } };
  const violations = checkPlan(asDrained, plan.actions, budget).violations;
  if (violations.length > 0) {
    return { ok: false, refused: true, reasons: violations.map((v) => `the plan would break ${v.invariant}: ${v.message}`) };
  }
  if (options.dryRun) return { ok: true, refused: false, dryRun: true, actions: plan.actions, outcomes: [], woken: [] };

  keeper.setMaintenance(host, true);
  for (const w of woken) keeper.markWokenForMaintenance(w.host, host);
  const job = `drain-${host}-${new Date(deps.nowMs()).toISOString()}`;
  keeper.beginPlan(job, plan.actions);
  await keeper.save();
  log.info('drain started', { migrations: budget.maxMigrations, memoryMiB: plan.memoryToMoveMiB, powerOff: options.powerOff, woken: woken.map((w) => w.host) });

  for (const a of plan.actions) progress.steps[a.id] = { what: a.type === 'migrate' ? `${a.vm} -> ${a.to}` : `power off ${a.host}`, status: 'pending' };
  deps.onProgress(progress);
  const showStep = (action: Action, status: string, detail?: string) => {
    const step = progress.steps[action.id];
    if (!step) return;
    step.status = status;
    if (detail !== undefined) step.detail = detail;
    deps.onProgress(progress);
  };
  const actuator = new LiveActuator({
    hypervisor: deps.drivers.hypervisor,
    power: deps.power,
    logger,
    nowMs: deps.nowMs,
    bootPollIntervalMs: deps.bootPollIntervalMs,
    onMigrationProgress: (action, p) => showStep(action, 'running', p.dataRemainingMiB !== undefined ? `${Math.round(p.dataRemainingMiB)} MiB left, ${p.phase}` : p.phase),
  });
  const ctx = buildExecutionContext({
    keeper,
    loaded,
    budget,
    input,
    cycle: job,
    signal: deps.signal,
    drainSignal: deps.drainSignal,
    drainingHost: host,
    onStepDone: () => deps.onStepDone?.(),
  });
  const wrapped: ExecutionContext = {
    ...ctx,
    stepStarted: async (action) => {
      showStep(action, 'running');
      await ctx.stepStarted(action);
    },
    stepEnded: async (outcome) => {
      showStep(outcome.action, outcome.result, outcome.result === 'skipped' || outcome.result === 'failed' ? outcome.detail : undefined);
      await ctx.stepEnded(outcome);
    },
  };
  const outcomes = await actuator.execute(plan.actions, wrapped);
  keeper.endPlan();
  await keeper.save();
  const ok = outcomes.every((o) => o.result === 'ok');
  log.info(ok ? 'drain finished' : 'drain incomplete: the host stays in maintenance; see the failed steps', {
    ok,
    failed: outcomes.flatMap((o) => (o.result === 'skipped' || o.result === 'failed' ? [`${o.action.id}: ${o.detail}`] : [])),
  });
  return { ok, refused: false, dryRun: false, actions: plan.actions, outcomes, woken };
}

/**
 * Powers the hosts on (supervised: identity checked, action recorded) and waits for each hypervisor;
 * they are on and no longer "powered off by consolidator" afterwards. Throws, saying no VM was moved,
 * when one cannot be powered on or does not come up (it is then marked for attention, as after a
 * cycle's power-on).
 */
async function wakeForDrain(deps: OperatorDeps, job: string, hosts: readonly DrainWake[], progress: JobProgress): Promise<void> {
  const { keeper, loaded } = deps;
  const step = (id: string, what: string, status: string, detail?: string) => {
    progress.steps[id] = { what, status, ...(detail !== undefined ? { detail } : {}) };
    deps.onProgress(progress);
  };
  for (const w of hosts) step(`wake-${w.host}`, `wake ${w.host} for room`, 'pending');
  for (const w of hosts) {
    const id = `wake-${w.host}`;
    const what = `wake ${w.host} for room`;
    const ref = { id, type: 'power-on' as const, host: w.host };
    const startMs = deps.nowMs();
    const ended = (result: 'ok' | 'failed', e?: unknown) =>
      keeper.recordOutcome(job, ref, { result, durationMs: deps.nowMs() - startMs, ...(e !== undefined ? { detail: errorMessage(e) } : {}) });
    if (deps.drainSignal.aborted) throw new ConsolidatorError('ABORTED', `the daemon is stopping: ${w.host} was not woken and no VM was moved`);
    try {
      step(id, what, 'running', 'powering on');
      await deps.power.powerOn(w.host, deps.signal);
      await keeper.save();
    } catch (e) {
      step(id, what, 'failed', errorMessage(e));
      ended('failed', e);
      await keeper.save();
      throw failedWake(`${w.host} could not be powered on to make room: ${errorMessage(e)}; no VM was moved`, w.host, e);
    }
    try {
      step(id, what, 'running', 'waiting for its hypervisor');
      await waitForHypervisor({
        hypervisor: deps.drivers.hypervisor,
        host: w.host,
        timeoutMs: loaded.policy.power.bootTimeoutSeconds * 1000,
        intervalMs: deps.bootPollIntervalMs,
        signal: deps.signal,
        nowMs: deps.nowMs,
      });
    } catch (e) {
      // As after a cycle's power-on: a host that does not come up needs an operator.
      if (!isConsolidatorError(e, 'ABORTED')) keeper.markAttention(w.host, 'BootTimeout', e);
      step(id, what, 'failed', errorMessage(e));
      ended('failed', e);
      await keeper.save();
      throw failedWake(`${w.host} was powered on to make room but did not come up: ${errorMessage(e)}; no VM was moved`, w.host, e);
    }
    keeper.forgetPoweredOff(w.host);
    ended('ok');
    await keeper.save();
    step(id, what, 'ok', 'its hypervisor answers');
  }
}

function failedWake(message: string, host: HostId, cause: unknown): ConsolidatorError {
  return new ConsolidatorError(isConsolidatorError(cause) ? cause.code : 'POWER_FAILED', message, { cause, details: { host } });
}

/** Takes a host out of maintenance: the daemon may use it (and empty it) again. */
export async function undrainHost(deps: Pick<OperatorDeps, 'keeper' | 'loaded' | 'logger'>, host: HostId): Promise<{ ok: boolean; message: string }> {
  if (!deps.loaded.hosts.some((h) => h.name === host)) return { ok: false, message: `no host named ${host} in the policy` };
  if (!deps.keeper.isInMaintenance(host)) return { ok: true, message: `${host} was not in maintenance` };
  deps.keeper.setMaintenance(host, false);
  const released = deps.keeper.forgetWokenFor(host);
  await deps.keeper.save();
  deps.logger.child({ component: 'drain' }).info('host back in service', { host, released });
  // On a line of its own: the first line says the same whether or not the drain woke hosts.
  const also = released.length > 0 ? `\n${released.join(', ')}, woken for its maintenance, may be emptied and powered off again` : '';
  return { ok: true, message: `${host} is back in service${also}` };
}

/**
 * Powers a host on through its BMC and waits until its hypervisor answers. An operator's wake: it
 * takes every host of the policy, and it clears the host's attention mark once it answers.
 */
export async function wakeHost(deps: OperatorDeps, host: HostId): Promise<WakeResult> {
  const { loaded, keeper } = deps;
  const log = deps.logger.child({ component: 'wake', host });
  if (!loaded.hosts.some((h) => h.name === host)) return { ok: false, message: `no host named ${host} in the policy` };
  const progress: JobProgress = { kind: 'wake', host, startedAtMs: deps.nowMs(), steps: { power: { what: `power on ${host}`, status: 'running' } } };
  deps.onProgress(progress);
  const status = await deps.power.status(host, deps.signal);
  if (status !== 'on') {
    log.info('powering on', { was: status });
    await deps.power.powerOn(host, deps.signal);
  }
  progress.steps['power'] = { what: `power on ${host}`, status: 'ok', detail: status === 'on' ? 'was already on' : 'on' };
  progress.steps['boot'] = { what: `${host}'s hypervisor answers`, status: 'running' };
  deps.onProgress(progress);
  try {
    await waitForHypervisor({
      hypervisor: deps.drivers.hypervisor,
      host,
      timeoutMs: loaded.policy.power.bootTimeoutSeconds * 1000,
      intervalMs: deps.bootPollIntervalMs,
      signal: deps.signal,
      nowMs: deps.nowMs,
    });
  } catch (e) {
    progress.steps['boot'] = { what: `${host}'s hypervisor answers`, status: 'failed', detail: errorMessage(e) };
    deps.onProgress(progress);
    throw e;
  }
  keeper.forgetPoweredOff(host);
  keeper.clearAttention(host);
  await keeper.save();
  progress.steps['boot'] = { what: `${host}'s hypervisor answers`, status: 'ok' };
  deps.onProgress(progress);
  log.info('host awake', { inMaintenance: keeper.isInMaintenance(host) });
  return { ok: true, message: `${host} is on and its hypervisor answers${keeper.isInMaintenance(host) ? ' (still in maintenance: consolidator undrain to use it)' : ''}` };
}

async function observeForPlanning(deps: OperatorDeps): Promise<PlanInput> {
  const { keeper, loaded } = deps;
  const observation = await deps.observer.observe(
    { policy: loaded.policy, hosts: loaded.hosts, maintenance: keeper.inMaintenance(), knownCapacity: keeper.knownCapacity() },
    deps.nowMs(),
    deps.signal,
  );
  keeper.rememberHosts(observation);
  return planInputFor(observation.snapshot, loaded, keeper, deps.nowMs());
}
