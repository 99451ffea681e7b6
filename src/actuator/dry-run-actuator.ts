import type { Logger } from '../observability/logger.js';
import type { Action } from '../planner/types.js';
import type { ActionOutcome, Actuator, ExecutionContext } from './actuator.js';

/** mode: dry-run. Logs what it would do, in plan order, and touches nothing. */
export class DryRunActuator implements Actuator {
  private readonly log: Logger;

  constructor(logger: Logger) {
    this.log = logger.child({ component: 'actuator', dryRun: true });
  }

  async execute(actions: readonly Action[], ctx: ExecutionContext): Promise<ActionOutcome[]> {
    const outcomes: ActionOutcome[] = [];
    for (const action of actions) {
      this.log.info(`would ${describe(action)}`, { cycle: ctx.cycle, action: action.id, dependsOn: action.dependsOn });
      outcomes.push({ action, result: 'dry-run', durationMs: 0 });
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
