import type { PlanResult } from '../planner/types.js';
import { EXIT, type Command } from './command.js';
import { JSON_OPTION, operatorContext, POLICY_OPTION, SOCKET_OPTION, withStandaloneDaemon } from './operator-context.js';
import { percent, table } from './table.js';

/** Pause between the two observations of a stand-alone plan: CPU use comes from deltas. */
const DEFAULT_SAMPLE_SECONDS = 5;
const PLAN_TIMEOUT_MS = 120_000;

export const planCommand: Command = {
  name: 'plan',
  summary: 'show what the next cycle would do and why, executing nothing',
  usage: 'consolidator plan [--policy FILE] [--json]',
  description:
    'Observes every host once and plans, exactly as a cycle would, and executes nothing. Prints each\n' +
    'host with its observed use (the window statistic the thresholds use, e.g. CPU (p95)), verdict\n' +
    '(marked overloaded above an overload ratio) and reason; each action in order with VM, source,\n' +
    'destination, memory to move and estimated time; and the estimated power saved. Asks the running daemon when one\n' +
    'answers (it has the observation window and the state); otherwise observes twice, a few seconds\n' +
    'apart (CPU use is a delta), with the state in stateDirectory if it can be read.',
  options: {
    ...POLICY_OPTION,
    ...SOCKET_OPTION,
    ...JSON_OPTION,
    'sample-seconds': { type: 'string', valueName: 'N', help: `stand-alone: seconds between the two observations (default ${DEFAULT_SAMPLE_SECONDS})` },
  },
  examples: [
    ['consolidator plan', 'what would happen now, with the installed policy'],
    ['consolidator plan --json | jq .plan.summary', 'the summary, for a script'],
  ],
  async run(args, io) {
    const ctx = await operatorContext(args, io);
    let result: { plan: PlanResult; violations: readonly string[] };
    if (ctx.daemon) {
      const response = await ctx.daemon.post('/operator/plan', {}, PLAN_TIMEOUT_MS);
      if (response.status !== 200) throw new Error(`the daemon refused to plan: ${JSON.stringify(response.body)}`);
      result = response.body as { plan: PlanResult; violations: string[] };
    } else {
      const seconds = Number(args.values['sample-seconds'] ?? DEFAULT_SAMPLE_SECONDS);
      result = await withStandaloneDaemon(ctx, async (daemon) => {
        await daemon.planNow();
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, seconds) * 1000));
        const { plan, violations } = await daemon.planNow();
        return { plan, violations };
      });
    }
    if (args.values['json'] === true) {
      io.stdout.write(`${JSON.stringify(result)}\n`);
      return EXIT.OK;
    }
    io.stdout.write(formatPlan(result.plan, result.violations, ctx.daemon ? `the running daemon (${ctx.daemon.where})` : 'a stand-alone observation'));
    return EXIT.OK;
  },
};

export function formatPlan(plan: PlanResult, violations: readonly string[], source: string): string {
  // One figure per resource: the observed use the verdict is about, named by its window statistic.
  const hosts = table(
    ['HOST', `CPU (${plan.statistics.cpu})`, `MEMORY (${plan.statistics.memory})`, 'VERDICT', 'REASON', 'DETAIL'],
    plan.verdicts.map((v) => [
      v.host,
      percent(v.observed.cpu),
      percent(v.observed.memory),
      v.overloaded ? `${v.outcome}, overloaded` : v.outcome,
      v.reason ?? '',
      v.detail,
    ]),
  );
  const actions =
    plan.actions.length === 0
      ? 'No action.\n'
      : table(
          ['#', 'ACTION', 'VM / HOST', 'FROM', 'TO', 'MEMORY', 'EST.', 'AFTER'],
          plan.actions.map((a, i) =>
            a.type === 'migrate'
              ? [String(i + 1), 'migrate', a.vm, a.from, a.to, `${a.memoryMiB} MiB`, `${Math.round(a.estimatedSeconds)} s`, a.dependsOn.join(',')]
              : [String(i + 1), a.type, a.host, '', '', '', '', a.dependsOn.join(',')],
          ),
        );
  const s = plan.summary;
  const lines = [
    `Plan from ${source}:`,
    '',
    hosts,
    actions,
    `Hosts on: ${s.activeHostsBefore} -> ${s.activeHostsAfter}; ${s.migrations} migration(s) moving ${s.memoryToMoveMiB} MiB; estimated saving ${s.estimatedSavingWatts} W` +
      (s.budgetLimited ? ' (a per-cycle limit stopped it from doing more)' : ''),
  ];
  if (violations.length > 0) lines.push('', 'THIS PLAN BREAKS AN INVARIANT AND WOULD NOT RUN:', ...violations.map((v) => `  ${v}`));
  return `${lines.join('\n')}\n`;
}
