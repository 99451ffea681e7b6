import type { HistoryEntry } from '../state/persisted-state.js';
import { JsonFileStateStore } from '../state/json-file-state-store.js';
import { EXIT, type Command } from './command.js';
import { JSON_OPTION, operatorContext, POLICY_OPTION, SOCKET_OPTION } from './operator-context.js';
import { table } from './table.js';

const DEFAULT_LIMIT = 50;

export const historyCommand: Command = {
  name: 'history',
  summary: 'recent actions with their outcome and reason',
  usage: 'consolidator history [--policy FILE] [--limit N] [--json]',
  description:
    "The most recent actions (migrations, power-offs, power-ons) with when, the cycle or operator job\n" +
    'they belonged to, how they ended and why. From the running daemon when one answers, else from the\n' +
    'state file in stateDirectory.',
  options: { ...POLICY_OPTION, ...SOCKET_OPTION, ...JSON_OPTION, limit: { type: 'string', valueName: 'N', help: `how many (default ${DEFAULT_LIMIT})` } },
  examples: [
    ['consolidator history', 'the last 50 actions'],
    ['consolidator history --limit 500 --json', 'for a script'],
  ],
  async run(args, io) {
    const ctx = await operatorContext(args, io);
    const limit = Math.max(1, Number(args.values['limit'] ?? DEFAULT_LIMIT) || DEFAULT_LIMIT);
    let history: readonly HistoryEntry[];
    if (ctx.daemon) {
      history = ((await ctx.daemon.post('/operator/history', { limit }, 30_000)).body as { history: HistoryEntry[] }).history;
    } else {
      const loaded = await new JsonFileStateStore(ctx.loaded.policy.stateDirectory).load();
      if (loaded.problem) io.stderr.write(`note: ${loaded.problem}\n`);
      history = loaded.state.history.slice(-limit);
    }
    if (args.values['json'] === true) {
      io.stdout.write(`${JSON.stringify(history)}\n`);
      return EXIT.OK;
    }
    if (history.length === 0) {
      io.stdout.write('No action recorded yet.\n');
      return EXIT.OK;
    }
    io.stdout.write(
      table(
        ['WHEN', 'ACTION', 'SUBJECT', 'FROM', 'TO', 'RESULT', 'WHY'],
        history.map((h) => [new Date(h.atMs).toISOString(), h.type, h.subject, h.from ?? '', h.to ?? '', h.result, h.reason ?? '']),
      ),
    );
    return EXIT.OK;
  },
};
