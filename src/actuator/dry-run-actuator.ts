import type { Logger } from '../observability/logger.js';
import type { Action } from '../planner/types.js';
import type { ActionOutcome, Actuator, ExecutionContext } from './actuator.js';

/** mode: dry-run. Logs what it would do, in plan order, touches nothing, and reports like the live one. */
export class DryRunActuator implements Actuator {
  private readonly log: Logger;

  constructor(logger: Logger) {
    this.log = logger.child({ component: 'actuator', dryRun: true });
  }

  async execute(actions: readonly Action[], ctx: ExecutionContext): Promise<ActionOutcome[]> {
    const outcomes: ActionOutcome[] = [];
    for (const action of actions) {
      this.log.info(`would ${describe(action)}`, { cycle: ctx.cycle, action: action.id, dependsOn: action.dependsOn });
      const outcome: ActionOutcome = { action, result: 'dry-run', durationMs: 0 };
      await ctx.stepEnded(outcome);
      outcomes.push(outcome);
    }
    return outcomes;
  }
}

export function describe(action: Action): string {
  switch (action.type) {
    case 'migrate':
      return `migrate ${action.vm} from ${action.from} to ${action.to} (${action.memoryMiB} MiB, ~${Math.round(action.estimatedSeconds)} s, ${action.purpose})`;
    case 'power-off':
      return `power off ${action.host} (saves ~${Math.round(action.estimatedSavingWatts)} W)`;
    case 'power-on':
      return `power on ${action.host} (${action.reason})`;
  }
}
