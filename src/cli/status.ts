import { DEFAULTS } from '../config/defaults.js';
import { EXIT, type Command } from './command.js';
import { DaemonClient } from './daemon-client.js';
import { JSON_OPTION, POLICY_OPTION, searchDaemon, SOCKET_ENV, SOCKET_OPTION } from './operator-context.js';

export const statusCommand: Command = {
  name: 'status',
  summary: "the running daemon's state: mode, last cycle, hosts, work in flight, attention",
  usage: 'consolidator status [--socket PATH | --policy FILE | --url URL] [--json]',
  description:
    "Asks the running daemon (its operator socket: --socket, $" + SOCKET_ENV + ", control.socket in\n" +
    `--policy; else the installed policy's, ${DEFAULTS.control.socket}, then the demo's) for its mode,\n` +
    'last cycle and how it ended, hosts by state, actions in flight, hosts\n' +
    'consolidator powered off, hosts in maintenance and hosts that need an operator. Works for any\n' +
    `member of the socket's group (${DEFAULTS.control.group}); --url asks the read-only HTTP endpoint\n` +
    'instead. Exits 3 when no daemon answers, 77 when the socket may not be used.',
  options: { ...SOCKET_OPTION, ...POLICY_OPTION, ...JSON_OPTION, url: { type: 'string', valueName: 'URL', help: 'the read-only HTTP endpoint instead, e.g. http://127.0.0.1:9464' } },
  examples: [
    ['consolidator status', 'the daemon of the installed policy'],
    ['CONSOLIDATOR_SOCKET=/run/consolidator/control.sock consolidator status --json', 'for a script'],
  ],
  async run(args, io) {
    const url = args.values['url'];
    let status: Record<string, unknown> | undefined;
    let tried: readonly string[];
    if (typeof url === 'string') {
      status = await DaemonClient.forUrl(url).status();
      tried = [url];
    } else {
      const search = await searchDaemon(args, process.env);
      status = search.found?.status;
      tried = search.tried;
    }
    if (!status) {
      io.stderr.write(`consolidator: no daemon answers on ${tried.join(', ')} (is it running? systemctl status consolidator)\n`);
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
  const proofs = Object.entries((s['proofOfBoot'] ?? {}) as Record<string, { atMs: number; result: string; code?: string }>).sort(([a], [b]) => a.localeCompare(b));
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
    `last proof of boot: ${proofs.length === 0 ? '-' : proofs.map(([h, p]) => `${h} ${p.result === 'ok' ? 'ok' : `FAILED${p.code ? ` [${p.code}]` : ''}`} ${new Date(p.atMs).toISOString()}`).join(', ')}`,
  ];
  return `${lines.join('\n')}\n`;
}
