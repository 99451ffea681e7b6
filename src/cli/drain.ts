import type { DrainOptions, DrainResult } from '../daemon/operator-jobs.js';
import { describeWake } from '../planner/plan-drain.js';
import { ConsolidatorError } from '../errors.js';
import { EXIT, requirePositional, type Command, type CommandIo } from './command.js';
import type { DaemonClient } from './daemon-client.js';
import { JSON_OPTION, operatorContext, POLICY_OPTION, SOCKET_OPTION, withStandaloneDaemon } from './operator-context.js';
import { table } from './table.js';

/** A drain waits for every migration; the longest is bounded by migration.timeoutSeconds each. */
const DRAIN_TIMEOUT_MS = 24 * 3600 * 1000;
const PROGRESS_POLL_MS = 1000;
/** The drain was refused (a pinned VM, no room, an unknown host): nothing was done. */
export const EXIT_REFUSED = 2;

export const drainCommand: Command = {
  name: 'drain',
  summary: 'evacuate a host for hardware maintenance (live-migrate all its VMs), then leave it alone',
  usage: 'consolidator drain HOST [--power-off] [--dry-run] [--no-wake] [--policy FILE] [--json]',
  description:
    "Moves every VM off HOST with the planner's placement and safety rules: all of them placed under\n" +
    "the policy's targets on other hosts (anti-affinity respected), or nothing at all and the reasons\n" +
    'why (what the VMs need against what the hosts on have free). When the hosts on lack room, it\n' +
    'first wakes the fewest hosts consolidator powered off that make room (most power-efficient\n' +
    'first) and waits for their hypervisors; they stay on until `consolidator undrain HOST`. With\n' +
    '--no-wake it refuses instead, saying which hosts waking would take. Then HOST is in maintenance: the daemon never moves VMs onto it, never powers it off or on,\n' +
    'until `consolidator undrain HOST`. With --power-off, HOST is powered off through its BMC once a\n' +
    'fresh query shows it empty. Goes through the running daemon when one answers, else acts itself.\n' +
    'Exit codes: 0 drained, 1 a step failed (the host stays in maintenance), 2 refused, 78 bad policy.',
  options: {
    ...POLICY_OPTION,
    ...SOCKET_OPTION,
    ...JSON_OPTION,
    'power-off': { type: 'boolean', help: 'power the host off once it is empty' },
    'dry-run': { type: 'boolean', help: 'show the moves (and the hosts it would wake), do nothing' },
    'no-wake': { type: 'boolean', help: 'refuse rather than wake hosts consolidator powered off to make room' },
  },
  examples: [
    ['consolidator drain kvm07 --dry-run', 'where would its VMs go?'],
    ['consolidator drain kvm07 --power-off', 'empty it and power it off for a DIMM swap'],
    ['consolidator drain kvm07 --no-wake', 'only if the hosts on have room'],
    ['consolidator undrain kvm07', 'back in service afterwards'],
  ],
  async run(args, io) {
    const host = requirePositional(this, args, 0, 'HOST (the host to drain)');
    const ctx = await operatorContext(args, io);
    const options = { powerOff: args.values['power-off'] === true, dryRun: args.values['dry-run'] === true, noWake: args.values['no-wake'] === true };
    const json = args.values['json'] === true;
    const result = ctx.daemon
      ? await drainThroughDaemon(ctx.daemon, host, options, json ? undefined : io)
      : await withStandaloneDaemon(ctx, (daemon) => daemon.drain(host, options));
    if (json) io.stdout.write(`${JSON.stringify(result)}\n`);
    else io.stdout.write(formatDrain(host, result));
    if (result.refused) return EXIT_REFUSED;
    return result.ok ? EXIT.OK : EXIT.FAILURE;
  },
};

async function drainThroughDaemon(client: DaemonClient, host: string, options: DrainOptions, io: CommandIo | undefined): Promise<DrainResult> {
  const shown = new Map<string, string>();
  const poll = setInterval(() => {
    void client.status().then((status) => {
      const job = status?.['operatorJob'] as { host: string; steps: Record<string, { what: string; status: string; detail?: string }> } | undefined;
      if (!io || !job || job.host !== host) return;
      for (const [id, step] of Object.entries(job.steps)) {
        const line = `${step.what}: ${step.status}${step.detail ? ` (${step.detail})` : ''}`;
        if (shown.get(id) !== line) {
          shown.set(id, line);
          io.stderr.write(`  ${line}\n`);
        }
      }
    });
  }, PROGRESS_POLL_MS);
  try {
    const response = await client.post('/operator/drain', { host, ...options }, DRAIN_TIMEOUT_MS);
    if (response.status !== 200 && response.status !== 409) {
      throw new ConsolidatorError('COMMAND_FAILED', `the daemon could not drain ${host}: ${JSON.stringify(response.body)}`);
    }
    return response.body as DrainResult;
  } finally {
    clearInterval(poll);
  }
}

function formatDrain(host: string, result: DrainResult): string {
  if (result.refused) {
    const woken = result.woken ?? [];
    const head = woken.length === 0 ? 'nothing was done' : `no VM was moved (${woken.join(', ')} woken for it, now the daemon's to power off again)`;
    const lines = [`Drain of ${host} refused, ${head}:`, ...result.reasons.map((r) => `  - ${r}`)];
    return `${lines.join('\n')}\n`;
  }
  const rows = result.actions.map((a, i) => {
    const outcome = result.outcomes.find((o) => o.action.id === a.id);
    const what = a.type === 'migrate' ? [`migrate ${a.vm}`, a.to, `${a.memoryMiB} MiB`, `~${Math.round(a.estimatedSeconds)} s`] : [`power off ${a.host}`, '', '', ''];
    const why = outcome?.result === 'skipped' || outcome?.result === 'failed' ? outcome.detail : '';
    return [String(i + 1), ...what, result.dryRun ? 'planned' : (outcome?.result ?? 'not run'), why];
  });
  const head = result.dryRun ? `Drain of ${host} (dry run: nothing done):` : result.ok ? `Drained ${host}; it is in maintenance until "consolidator undrain ${host}".` : `Drain of ${host} incomplete; it stays in maintenance:`;
  // Absent from a daemon that predates waking.
  const woken = result.woken ?? [];
  const wake =
    woken.length === 0
      ? ''
      : result.dryRun
        ? `The hosts on lack room: it would first wake ${woken.map(describeWake).join(', ')}.\n`
        : `Woken to make room (kept on until "consolidator undrain ${host}"): ${woken.map(describeWake).join(', ')}.\n`;
  return `${head}\n${wake}${table(['#', 'STEP', 'TO', 'MEMORY', 'EST.', 'RESULT', 'WHY'], rows)}`;
}

export const undrainCommand: Command = {
  name: 'undrain',
  summary: 'take a host out of maintenance: the daemon may use it again',
  usage: 'consolidator undrain HOST [--policy FILE]',
  description: 'Ends the maintenance a drain started. A host that is off stays off; wake it with `consolidator wake HOST`.',
  options: { ...POLICY_OPTION, ...SOCKET_OPTION },
  examples: [['consolidator undrain kvm07', 'kvm07 is back in service']],
  async run(args, io) {
    const host = requirePositional(this, args, 0, 'HOST');
    const ctx = await operatorContext(args, io);
    const result = ctx.daemon
      ? ((await ctx.daemon.post('/operator/undrain', { host }, 30_000)).body as { ok: boolean; message: string })
      : await withStandaloneDaemon(ctx, (daemon) => daemon.undrain(host));
    (result.ok ? io.stdout : io.stderr).write(`${result.message}\n`);
    return result.ok ? EXIT.OK : EXIT_REFUSED;
  },
};
