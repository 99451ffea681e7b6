import type { HypervisorDriver, MigrateOptions } from '../drivers/hypervisor/hypervisor-driver.js';
import type { PowerDriver } from '../drivers/power/power-driver.js';
import { asConsolidatorError, ConsolidatorError, isConsolidatorError } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { SkipReason } from '../model/reasons.js';
import { EPSILON, RESOURCES, type ResourceVector } from '../model/resources.js';
import type { Logger } from '../observability/logger.js';
import type { Action, MigrateAction, PowerOffAction, PowerOnAction } from '../planner/types.js';
import type { ActionOutcome, Actuator, ExecutionContext, Skip } from './actuator.js';
import { describe } from './dry-run-actuator.js';
import { waitForHypervisor } from './wait-for-hypervisor.js';

export interface LiveActuatorDeps {
  readonly hypervisor: HypervisorDriver;
  /** The supervised power driver (records actions, marks failed power-ons). */
  readonly power: PowerDriver;
  readonly logger: Logger;
  readonly nowMs: () => number;
  /** How often to ask a woken host's hypervisor whether it answers yet. */
  readonly bootPollIntervalMs: number;
  /** Migration progress, for logs and live views. */
  readonly onMigrationProgress?: (action: MigrateAction, progress: { elapsedMs: number; dataRemainingMiB?: number; phase: string }) => void;
}

const skip = (reason: SkipReason, detail: string): Skip => ({ reason, detail });

/**
 * Carries out a plan for real, in dependency order, within the policy's limits and the execution's
 * budget (enforced again here), re-checking live state just before each step:
 * - a migration runs only if the VM is still on its source and its destination still has room under
 *   target, and the destination passes preflight;
 * - a host is powered off only when every migration off it succeeded and a fresh query shows no
 *   domain running or paused on it, and only within minHostsOn and its power budget;
 * - a host is powered on only if consolidator powered it off, and counts as up only once its
 *   hypervisor answers.
 * A failed or skipped step skips every step that depends on it, and its hosts cool down. A state save
 * that fails stops new steps from starting; the ones already running are still awaited.
 */
export class LiveActuator implements Actuator {
  private readonly log: Logger;

  constructor(private readonly deps: LiveActuatorDeps) {
    this.log = deps.logger.child({ component: 'actuator' });
  }

  async execute(actions: readonly Action[], ctx: ExecutionContext): Promise<ActionOutcome[]> {
    const { safety } = ctx.policy;
    const outcomes = new Map<string, ActionOutcome>();
    const pending = [...actions];
    const running = new Map<string, Promise<void>>();
    const migrationsPerHost = new Map<HostId, number>();
    let migrationsRunning = 0;
    let migrationsStarted = 0;
    let saveFailure: string | undefined;
    // Power-offs under way count against minHostsOn before they end: two must not both see room for one.
    const powerOffs = { running: 0 };

    const end = async (outcome: ActionOutcome): Promise<void> => {
      outcomes.set(outcome.action.id, outcome);
      try {
        await ctx.stepEnded(outcome);
      } catch (e) {
        saveFailure ??= asConsolidatorError(e, 'STATE_IO', 'cannot save the state').message;
        this.log.error('step outcome not saved: no new step starts', { cycle: ctx.cycle, action: outcome.action.id, result: outcome.result, err: e });
      }
    };
    const bump = (a: MigrateAction, delta: number) => {
      migrationsRunning += delta;
      for (const h of [a.from, a.to]) migrationsPerHost.set(h, (migrationsPerHost.get(h) ?? 0) + delta);
    };
    /** Why no new step may start now, whatever it is; undefined when steps may start. */
    const haltedBy = (): Skip | undefined => {
      if (ctx.drainSignal.aborted || ctx.signal.aborted) return skip('Stopping', 'the daemon is stopping');
      if (saveFailure !== undefined) return skip('StateNotSaved', `the state could not be saved (${saveFailure}): no new step starts`);
      return undefined;
    };

    while (pending.length > 0 || running.size > 0) {
      for (let i = 0; i < pending.length; ) {
        const action = pending[i] as Action;
        const failedDep = action.dependsOn.find((d) => {
          const o = outcomes.get(d);
          return o !== undefined && o.result !== 'ok';
        });
        if (failedDep !== undefined) {
          pending.splice(i, 1);
          await end({ action, result: 'skipped', reason: 'DependencyNotOk', detail: `depends on ${failedDep}, which ${outcomes.get(failedDep)?.result}`, durationMs: 0 });
          continue;
        }
        const halted = haltedBy();
        if (halted) {
          pending.splice(i, 1);
          await end({ action, result: 'skipped', ...halted, durationMs: 0 });
          continue;
        }
        const ready = action.dependsOn.every((d) => outcomes.get(d)?.result === 'ok');
        if (!ready) {
          i++;
          continue;
        }
        if (action.type === 'migrate') {
          const busy =
            migrationsRunning >= safety.maxConcurrentMigrations ||
            (migrationsPerHost.get(action.from) ?? 0) >= safety.maxConcurrentMigrationsPerHost ||
            (migrationsPerHost.get(action.to) ?? 0) >= safety.maxConcurrentMigrationsPerHost;
          if (busy) {
            i++;
            continue;
          }
          if (migrationsStarted >= ctx.budget.maxMigrations) {
            pending.splice(i, 1);
            await end({ action, result: 'skipped', reason: 'MigrationCapReached', detail: `the migration budget (${ctx.budget.maxMigrations}) is used up`, durationMs: 0 });
            continue;
          }
          migrationsStarted++;
          bump(action, 1);
        }
        pending.splice(i, 1);
        const started = this.run(action, ctx, powerOffs).then(async (outcome) => {
          if (action.type === 'migrate') bump(action, -1);
          await end(outcome);
          running.delete(action.id);
        });
        running.set(action.id, started);
      }
      if (running.size === 0) {
        // Nothing can start and nothing runs: what is left waits on steps that will never be ok.
        for (const action of pending.splice(0)) {
          await end({ action, result: 'skipped', reason: 'DependencyNotOk', detail: 'its dependencies did not complete', durationMs: 0 });
        }
        break;
      }
      await Promise.race(running.values());
    }
    return actions.map((a) => outcomes.get(a.id) as ActionOutcome);
  }

  /** Runs one step to its outcome; never throws. */
  private async run(action: Action, ctx: ExecutionContext, powerOffs: { running: number }): Promise<ActionOutcome> {
    const startMs = this.deps.nowMs();
    const log = this.log.child({ cycle: ctx.cycle, action: action.id });
    try {
      // Saved before anything is touched: if this save fails, the step does not start.
      await ctx.stepStarted(action);
      // A migration's duration is the hypervisor's (the one "migration finished" reports), not the
      // step's: the checks before it, and a clock that moves in steps (the demo's), would add to it.
      const migrated: { durationMs?: number } = {};
      const skipped =
        action.type === 'migrate'
          ? await this.migrate(action, ctx, log, migrated)
          : action.type === 'power-off'
            ? await this.powerOff(action, ctx, log, powerOffs)
            : await this.powerOn(action, ctx, log);
      const durationMs = migrated.durationMs ?? this.deps.nowMs() - startMs;
      if (skipped) {
        log.warn(`${action.type} skipped`, { what: describe(action), reason: skipped.reason, detail: skipped.detail });
        return { action, result: 'skipped', ...skipped, durationMs };
      }
      log.info(`${action.type} done`, { what: describe(action), durationMs });
      return { action, result: 'ok', durationMs };
    } catch (e) {
      const durationMs = this.deps.nowMs() - startMs;
      const error = asConsolidatorError(e, 'INTERNAL', `${action.type} failed`);
      for (const host of hostsOf(action)) ctx.coolDown(host);
      log.error(`${action.type} failed`, { what: describe(action), err: e, durationMs });
      return { action, result: 'failed', errorCode: error.code, detail: error.message, durationMs };
    }
  }

  private async migrate(action: MigrateAction, ctx: ExecutionContext, log: Logger, migrated: { durationMs?: number }): Promise<Skip | undefined> {
    const { hypervisor } = this.deps;
    const { policy } = ctx;
    for (const h of [action.from, action.to]) {
      if (ctx.isMaintenance(h)) return skip('Maintenance', `${h} is now in maintenance`);
      if (ctx.isExcluded(h)) return skip('Excluded', `${h} is excluded by the policy`);
    }
    const onSource = await hypervisor.listDomains(action.from, ctx.signal);
    const domain = onSource.find((d) => d.name === action.vm);
    if (!domain || (domain.state !== 'running' && domain.state !== 'paused')) return skip('VmGone', `${action.vm} is no longer running on ${action.from}`);
    const destination = await hypervisor.inspect(action.to, ctx.signal);
    if (destination.domains.some((d) => d.name === action.vm)) return skip('AlreadyOnDestination', `${action.vm} is already on ${action.to}`);
    const room = this.roomAfter(action, destination.capacity, destination.domains, ctx);
    if (room) return skip('NoRoom', `${action.to} no longer has room for ${action.vm}: ${room}`);
    const preflight = await hypervisor.preflight(action.vm, action.from, action.to, ctx.signal);
    if (!preflight.ok) return skip('PreflightFailed', `preflight: ${preflight.problems.join('; ')}`);
    const options: MigrateOptions = {
      bandwidthMiBps: policy.migration.bandwidthMiBps,
      timeoutMs: policy.migration.timeoutSeconds * 1000,
      nonConvergence: policy.migration.nonConvergence,
      convergenceDeadlineMs: policy.migration.convergenceDeadlineSeconds * 1000,
      persistent: policy.migration.persistent,
      undefineSource: policy.migration.undefineSource,
    };
    log.info('migration started', { vm: action.vm, from: action.from, to: action.to, memoryMiB: action.memoryMiB });
    const result = await hypervisor.migrate(action.vm, action.from, action.to, options, ctx.signal, (p) => {
      log.debug('migration progress', { vm: action.vm, elapsedMs: p.elapsedMs, remainingMiB: p.dataRemainingMiB, phase: p.phase });
      this.deps.onMigrationProgress?.(action, {
        elapsedMs: p.elapsedMs,
        phase: p.phase,
        ...(p.dataRemainingMiB !== undefined ? { dataRemainingMiB: p.dataRemainingMiB } : {}),
      });
    });
    log.info('migration finished', { vm: action.vm, from: action.from, to: action.to, durationMs: result.durationMs, state: result.state, nonConvergence: result.nonConvergenceApplied });
    migrated.durationMs = result.durationMs;
    return undefined;
  }

  /** What stops the VM from fitting on the destination now, from a fresh look at it; undefined if it fits. */
  private roomAfter(
    action: MigrateAction,
    total: ResourceVector,
    domains: readonly { name: string; state: string; vcpus: number; memoryMiB: number }[],
    ctx: ExecutionContext,
  ): string | undefined {
    const capacity = ctx.usableCapacity(action.to, total);
    const overhead = ctx.hostOverhead(action.to);
    const residents = domains.filter((d) => d.state !== 'shutoff');
    const together = ctx.demandTogether?.([...residents.filter((d) => d.name !== action.vm).map((d) => d.name), action.vm]);
    const load = { ...overhead };
    if (together) {
      load.cpu += together.cpu;
      load.memory += together.memory;
    } else {
      for (const d of residents) {
        const known = ctx.vmDemand(d.name) ?? { cpu: d.vcpus, memory: d.memoryMiB };
        load.cpu += known.cpu;
        load.memory += known.memory;
      }
      const vm = ctx.vmDemand(action.vm) ?? { cpu: 0, memory: action.memoryMiB };
      load.cpu += vm.cpu;
      load.memory += vm.memory;
    }
    const { thresholds } = ctx.policy;
    for (const r of RESOURCES) {
      const after = load[r];
      const limit = capacity[r] * thresholds[r].targetRatio;
      if (after > limit + EPSILON) return `${r} would reach ${capacity[r] > 0 ? ((after / capacity[r]) * 100).toFixed(0) : '∞'}% (target ${(thresholds[r].targetRatio * 100).toFixed(0)}%)`;
    }
    return undefined;
  }

  private async powerOff(action: PowerOffAction, ctx: ExecutionContext, log: Logger, powerOffs: { running: number }): Promise<Skip | undefined> {
    const { hypervisor, power } = this.deps;
    const { safety } = ctx.policy;
    if (ctx.isMaintenance(action.host)) return skip('Maintenance', `${action.host} is now in maintenance`);
    if (ctx.isExcluded(action.host)) return skip('Excluded', `${action.host} is excluded by the policy`);
    const staying = ctx.hostsOn() - powerOffs.running;
    if (staying - 1 < safety.minHostsOn) return skip('MinHostsOn', `only ${staying} hosts on or staying on; minHostsOn is ${safety.minHostsOn}`);
    if (ctx.powerActionsLast24h(action.host) + 1 > safety.maxPowerActionsPerHostPerDay) {
      return skip('PowerBudgetExhausted', `${action.host} reached ${safety.maxPowerActionsPerHostPerDay} power actions in 24 h`);
    }
    // Safety rule 1: a fresh query, just before the power-off, shows no guest on it: only shut-off
    // definitions may remain (a crashed or pmsuspended guest counts as a guest). Counted from two
    // sources on the host (libvirt and the QEMU processes); a failed or disagreeing count throws.
    const residents = [...(await hypervisor.residentGuests(action.host, ctx.signal))];
    if (residents.length > 0) return skip('GuestsPresent', `${action.host} still runs ${residents.sort().join(', ')}`);
    log.info('powering off', { host: action.host, estimatedSavingWatts: action.estimatedSavingWatts });
    powerOffs.running++;
    try {
      await power.powerOff(action.host, 'soft', ctx.signal, { beforeHardOff: (signal) => this.recheckBeforeHardOff(action.host, ctx, signal, log) });
    } finally {
      powerOffs.running--;
    }
    ctx.onPoweredOff(action.host);
    return undefined;
  }

  /**
   * The host ignored the soft power-off until its timeout: minutes have passed since the last look, and
   * a guest may have arrived (migrated in by hand, autostart). Look again; anything found, or a look
   * that fails while the host is still on, sends no hard power-off and marks the host for an operator.
   */
  private async recheckBeforeHardOff(host: HostId, ctx: ExecutionContext, signal: AbortSignal, log: Logger): Promise<void> {
    let residents: string[];
    try {
      residents = [...(await this.deps.hypervisor.residentGuests(host, signal))];
    } catch (e) {
      // A host that finished shutting down no longer answers: that is what the hard power-off was for.
      if ((await this.deps.power.status(host, signal)) === 'off') return;
      log.error('hard power-off cancelled: the guests on the host cannot be counted', { host, err: e });
      ctx.markAttention(host, 'GuestsAtHardOff', e);
      throw e;
    }
    if (residents.length === 0) return;
    const error = new ConsolidatorError('GUESTS_PRESENT', `not powering ${host} off hard: ${residents.sort().join(', ')} appeared on it while it shut down`, { details: { host, guests: residents.join(',') } });
    log.error('hard power-off cancelled: guests on the host', { host, guests: residents });
    ctx.markAttention(host, 'GuestsAtHardOff', error);
    throw error;
  }

  private async powerOn(action: PowerOnAction, ctx: ExecutionContext, log: Logger): Promise<Skip | undefined> {
    const { hypervisor, power } = this.deps;
    const { policy } = ctx;
    if (!ctx.wasPoweredOffByUs(action.host)) return skip('NotPoweredOffByUs', `${action.host} was not powered off by consolidator`);
    if (ctx.isMaintenance(action.host)) return skip('Maintenance', `${action.host} is in maintenance`);
    if (ctx.powerActionsLast24h(action.host) + 1 > policy.safety.maxPowerActionsPerHostPerDay) {
      return skip('PowerBudgetExhausted', `${action.host} reached ${policy.safety.maxPowerActionsPerHostPerDay} power actions in 24 h`);
    }
    log.info('powering on', { host: action.host, reason: action.reason });
    await power.powerOn(action.host, ctx.signal);
    try {
      await waitForHypervisor({
        hypervisor,
        host: action.host,
        timeoutMs: policy.power.bootTimeoutSeconds * 1000,
        intervalMs: this.deps.bootPollIntervalMs,
        signal: ctx.signal,
        nowMs: this.deps.nowMs,
      });
    } catch (e) {
      if (!isConsolidatorError(e, 'ABORTED')) ctx.markAttention(action.host, 'BootTimeout', e);
      throw e;
    }
    ctx.onPoweredOn(action.host);
    return undefined;
  }
}

function hostsOf(action: Action): HostId[] {
  return action.type === 'migrate' ? [action.from, action.to] : [action.host];
}
