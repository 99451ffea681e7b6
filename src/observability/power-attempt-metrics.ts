import { Counter, type Registry } from 'prom-client';
import { POWER_ON_ONLY_PATHS, POWER_PATHS } from '../config/schema.js';
import { ConsolidatorError } from '../errors.js';
import { POWER_ATTEMPT_ACTIONS, POWER_ATTEMPT_OUTCOMES } from '../model/reasons.js';

export const POWER_ATTEMPTS_METRIC = 'consolidator_power_attempts_total';

/** What a power chain reports per attempt (PowerAttempt in src/drivers/power/power-chain.ts). */
export interface PowerAttemptSample {
  readonly path: string;
  readonly action: string;
  readonly outcome: string;
}

/**
 * `consolidator_power_attempts_total{path,action,outcome}`: every request a power chain sent through
 * one of its paths (status reads, power-ons and their re-sends, escalations, power-offs), on the
 * daemon's one registry. Labels come from closed lists; anything else is a bug and throws.
 */
export class PowerAttemptMetrics {
  readonly attemptsTotal: Counter<'path' | 'action' | 'outcome'>;

  constructor(registry: Registry) {
    this.attemptsTotal = new Counter({
      name: POWER_ATTEMPTS_METRIC,
      help: 'Requests the power chain sent through each power path, by action (status, on, force-on, off) and outcome (ok, unconfirmed, timeout, unreachable, auth, failed, aborted).',
      labelNames: ['path', 'action', 'outcome'],
      registers: [registry],
    });
    // Born at 0, so that increase() sees the first fallback; a path without state only powers on.
    for (const path of POWER_PATHS) {
      const actions = POWER_ON_ONLY_PATHS.includes(path) ? (['on'] as const) : POWER_ATTEMPT_ACTIONS;
      for (const action of actions) for (const outcome of POWER_ATTEMPT_OUTCOMES) this.attemptsTotal.inc({ path, action, outcome }, 0);
    }
  }

  count(sample: PowerAttemptSample): void {
    assertOneOf('path', sample.path, POWER_PATHS);
    assertOneOf('action', sample.action, POWER_ATTEMPT_ACTIONS);
    assertOneOf('outcome', sample.outcome, POWER_ATTEMPT_OUTCOMES);
    this.attemptsTotal.inc({ path: sample.path, action: sample.action, outcome: sample.outcome });
  }
}

function assertOneOf(label: string, value: string, allowed: readonly string[]): void {
  if (!allowed.includes(value)) {
    throw new ConsolidatorError('INTERNAL', `metric label ${label} has an unexpected value: ${JSON.stringify(value)}`, { details: { label } });
  }
}
