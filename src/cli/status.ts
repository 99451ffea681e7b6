import { EXIT, type Command } from './command.js';
import { DaemonClient } from './daemon-client.js';
import { JSON_OPTION, operatorContext, POLICY_OPTION } from './operator-context.js';

export const statusCommand: Command = {
  name: 'status',
  summary: "the running daemon's state: mode, last cycle, hosts, work in flight, attention",
  usage: 'consolidator status [--policy FILE | --url URL] [--json]',
  description:
    "Asks the running daemon (its HTTP endpoint, metrics.listen in the policy) for its mode, its last\n" +
    'cycle and how it ended, hosts by state, actions in flight, hosts consolidator powered off, hosts in\n' +
    'maintenance and hosts that need an operator. Exits 3 when no daemon answers.',
  options: { ...POLICY_OPTION, ...JSON_OPTION, url: { type: 'string', valueName: 'URL', help: 'the daemon endpoint, e.g. http://127.0.0.1:9464' } },
  examples: [
    ['consolidator status', 'the daemon of the installed policy'],
    ['consolidator status --url http://127.0.0.1:9464 --json', 'for a script'],
  ],
  async run(args, io) {
    const url = args.values['url'];
    const client = typeof url === 'string' ? new DaemonClient(url) : (await operatorContext(args, io)).daemon;
    const status = client ? await client.status() : undefined;
    if (!client || !status) {
      io.stderr.write('consolidator: no daemon answers (is it running? systemctl status consolidator)\n');
      return EXIT_NOT_RUNNING;
    }
    if (args.values['json'] === true) {
      io.stdout.write(`${JSON.stringify(status)}\n`);
      return EXIT.OK;
    }
    io.stdout.write(formatStatus(status));
    return EXIT.OK;
  },
};

/** LSB's "program is not running" status code. */
export const EXIT_NOT_RUNNING = 3;

function formatStatus(s: Record<string, unknown>): string {
  const health = s['health'] as { healthy?: boolean; reason?: string } | undefined;
  const last = s['lastCycle'] as { cycle?: string; result?: string; error?: { code: string; message: string }; summary?: Record<string, number> } | undefined;
  const hosts = (s['hostsByState'] ?? {}) as Record<string, string[]>;
  const list = (v: unknown) => (Array.isArray(v) && v.length > 0 ? v.join(', ') : '-');
  const attention = Object.entries((s['needsAttention'] ?? {}) as Record<string, { reason: string; message: string }>);
  const job = s['operatorJob'] as { kind: string; host: string } | undefined;
  const lines = [
    `consolidator ${String(s['version'])}, mode ${String(s['mode'])}, policy ${String(s['policyFile'])}`,
    `health: ${health?.healthy ? 'ok' : 'FAILING'}${health?.reason ? ` (${health.reason})` : ''}`,
    last
      ? `last cycle: ${last.cycle} ${last.result}${last.error ? ` [${last.error.code}] ${last.error.message}` : ''}` +
        (last.summary ? `: ${last.summary['migrations'] ?? 0} migration(s), ${last.summary['powerOffs'] ?? 0} power-off(s), ${last.summary['powerOns'] ?? 0} power-on(s) planned` : '')
      : 'last cycle: none yet',
    `hosts on: ${list(hosts['on'])}`,
    `hosts off: ${list(hosts['off'])}`,
    `hosts unknown: ${list(hosts['unknown'])}`,
    `in maintenance: ${list(s['maintenance'])}`,
    `powered off by consolidator: ${list(s['poweredOffByUs'])}`,
    `cycle running: ${s['cycleRunning'] ? 'yes' : 'no'}${job ? `; operator ${job.kind} of ${job.host} running` : ''}`,
    `actions in flight: ${list((s['actionsInFlight'] as { id: string }[] | undefined)?.map((a) => a.id))}`,
    attention.length === 0 ? 'needs attention: none' : `needs attention: ${attention.map(([h, e]) => `${h} (${e.reason}: ${e.message})`).join('; ')}`,
  ];
  return `${lines.join('\n')}\n`;
}
