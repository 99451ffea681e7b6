import { join } from 'node:path';
import type { LoadedPolicy } from '../config/load.js';
import type { ReportResult } from '../daemon/operator-api.js';
import { ConsolidatorError, errorMessage } from '../errors.js';
import { JsonFileStateStore } from '../state/json-file-state-store.js';
import type { RecordingRange } from '../state/recording.js';
import { buildSavingsReport, type SavingsReport } from '../state/savings-report.js';
import { dateOptionMs, EXIT, type Command, type CommandIo, type ParsedArgs } from './command.js';
import { JSON_OPTION, operatorContext, POLICY_OPTION, SOCKET_OPTION } from './operator-context.js';
import { humanReplay, replayRecording, type ReplaySummary } from './simulate-recording.js';
import { table } from './table.js';

/** A replay of a week takes about a minute; the daemon stops one at 15. */
const REPORT_TIMEOUT_MS = 16 * 60_000;
const DURATION = /^(\d+(?:\.\d+)?)(m|h|d)$/;
const SECONDS_PER = { m: 60, h: 3600, d: 86_400 } as const;

export const reportCommand: Command = {
  name: 'report',
  summary: 'energy saved so far, host-hours off, migrations, power cycles, attention events',
  usage: 'consolidator report [--policy FILE] [--last DURATION | --from DATE] [--to DATE] [--state-dir DIR] [--no-replay] [--json]',
  description:
    'What consolidator saved over a period against every host on (BMC readings where the hosts have them,\n' +
    'the power model otherwise), the host-hours it kept hosts off, its migrations, power cycles per host,\n' +
    'failed actions and hosts that need attention, from the recording in stateDirectory/recording. In\n' +
    'dry-run it changed nothing, so it also replays the recording under the policy: what it would have\n' +
    'saved. From the running daemon when one answers (the state directory is the service\'s own), else\n' +
    'from --state-dir (or the policy\'s stateDirectory) read directly.',
  options: {
    ...POLICY_OPTION,
    ...SOCKET_OPTION,
    ...JSON_OPTION,
    last: { type: 'string', valueName: 'DURATION', help: "the last 30m, 24h, 7d... on the daemon's clock (default: everything recorded)" },
    from: { type: 'string', valueName: 'DATE', help: 'from this date and time (ISO 8601)' },
    to: { type: 'string', valueName: 'DATE', help: 'until this date and time (ISO 8601, exclusive)' },
    'state-dir': { type: 'string', valueName: 'DIR', help: "read this state directory instead of asking the daemon (as the service's user or root)" },
    'no-replay': { type: 'boolean', help: 'in dry-run, do not replay the recording (the replay takes about a minute for a week)' },
  },
  examples: [
    ['consolidator report --last 7d', "the last week's saving"],
    ['consolidator report --from 2026-11-01 --to 2026-12-01 --json', 'November, for a script'],
    ['sudo -u consolidator consolidator report --state-dir /var/lib/consolidator', 'with the daemon stopped'],
  ],
  async run(args, io) {
    const range = rangeOf(args);
    const lastSeconds = durationOption(args.values['last']);
    const replay = args.values['no-replay'] !== true;
    const stateDir = typeof args.values['state-dir'] === 'string' ? args.values['state-dir'] : undefined;
    let result: ReportResult;
    if (stateDir !== undefined) {
      result = await localReport(stateDir, undefined, range, lastSeconds, replay, io);
    } else {
      const ctx = await operatorContext(args, io);
      if (ctx.daemon) {
        const answer = await ctx.daemon.post('/operator/report', { ...range, ...(lastSeconds === undefined ? {} : { lastSeconds }), replay }, REPORT_TIMEOUT_MS);
        if (answer.status !== 200) {
          const body = answer.body as { error?: string };
          throw new ConsolidatorError('INTERNAL', `the daemon did not report: ${body.error ?? `HTTP ${answer.status}`}`);
        }
        result = answer.body as ReportResult;
      } else {
        result = await localReport(ctx.loaded.policy.stateDirectory, ctx.loaded, range, lastSeconds, replay, io);
      }
    }
    for (const w of result.report.warnings) io.stderr.write(`warning: ${w}\n`);
    if (args.values['json'] === true) {
      io.stdout.write(`${JSON.stringify(result)}\n`);
      return EXIT.OK;
    }
    io.stdout.write(humanReport(result));
    return EXIT.OK;
  },
};

async function localReport(stateDir: string, loaded: LoadedPolicy | undefined, asked: RecordingRange, lastSeconds: number | undefined, replay: boolean, io: CommandIo): Promise<ReportResult> {
  const range = lastSeconds === undefined ? asked : { ...asked, fromMs: Date.now() - lastSeconds * 1000 };
  const store = await new JsonFileStateStore(stateDir).load();
  if (store.problem) io.stderr.write(`note: ${store.problem}\n`);
  const recordingDir = join(stateDir, 'recording');
  let report: SavingsReport;
  try {
    report = await buildSavingsReport({ recordingDir, history: store.state.history, attention: store.state.attention, range });
  } catch (e) {
    throw new ConsolidatorError('USAGE', `cannot read the recording in ${recordingDir}: ${errorMessage(e)} (run as the service's user or root, or ask the running daemon)`, { cause: e });
  }
  const mode = loaded?.policy.mode ?? (report.cyclesByMode.enforce > 0 ? 'enforce' : 'dry-run');
  if (!replay || report.cyclesByMode['dry-run'] === 0) return { mode, report };
  if (loaded === undefined) return { mode, report, replay: { error: 'no policy to replay under: pass --policy FILE' } };
  try {
    const { summary } = await replayRecording({ dir: recordingDir, policy: loaded.policy, policyFile: loaded.file, range, json: true, plot: 'none' }, io);
    return { mode, report, replay: { figures: summary as unknown as Record<string, unknown> } };
  } catch (e) {
    return { mode, report, replay: { error: errorMessage(e) } };
  }
}

export function humanReport(result: ReportResult): string {
  const r = result.report;
  const lines: string[] = [];
  if (r.cycles === 0) {
    lines.push(`No recorded cycle${r.from !== null || r.to !== null ? ` from ${r.from ?? 'the start'} to ${r.to ?? 'now'}` : ''} (is recording.enabled on?).`);
    return `${lines.join('\n')}\n`;
  }
  const modes = [r.cyclesByMode.enforce > 0 ? `${r.cyclesByMode.enforce} enforce` : '', r.cyclesByMode['dry-run'] > 0 ? `${r.cyclesByMode['dry-run']} dry-run` : ''].filter(Boolean).join(', ');
  lines.push(`${r.firstCycleAt ?? ''} to ${r.lastCycleAt ?? ''}: ${r.cycles} cycles (${modes}), ${r.coveredHours.toFixed(1)} h covered, ${r.gapHours.toFixed(1)} h in gaps`);
  lines.push('');
  const e = r.energy;
  const offs = r.powerCycles.reduce((n, h) => n + h.powerOffs, 0);
  const ons = r.powerCycles.reduce((n, h) => n + h.powerOns, 0);
  const failed = Object.entries(r.failures);
  const rows: [string, string][] = [
    ['every host on', `${e.allHostsOnKWh.toFixed(2)} kWh`],
    ['actual', `${e.actualKWh.toFixed(2)} kWh (${e.measuredPct.toFixed(0)} % from BMC readings, the rest from the power model)`],
    ['saved', `${e.savedKWh.toFixed(2)} kWh, ${e.savedPct.toFixed(1)} %, ${e.savedKWhPerDay.toFixed(2)} kWh per day`],
    ['host-hours off', r.hostHoursOff.toFixed(1)],
    ['migrations', `${r.migrations} by consolidator; ${r.vmMoves} VM moves seen, ${r.movedGiB.toFixed(1)} GiB`],
    ['power cycles', `${offs} power-offs, ${ons} power-ons`],
    ['failed actions', failed.length === 0 ? 'none' : `${failed.reduce((n, [, c]) => n + c, 0)} (${failed.map(([code, c]) => `${code} ${c}`).join(', ')})`],
    ['attention events', r.attentionEvents.length === 0 ? 'none' : r.attentionEvents.map((a) => `${a.host} ${a.type} ${a.code} at ${a.at}`).join('; ')],
    ['needs attention now', r.attentionNow.length === 0 ? 'none' : r.attentionNow.map((a) => `${a.host} (${a.reason} since ${a.since})`).join(', ')],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) lines.push(`  ${k.padEnd(width)}  ${v}`);
  if (r.powerCycles.length > 0) {
    lines.push('');
    lines.push(table(['HOST', 'POWER-OFFS', 'POWER-ONS'], r.powerCycles.map((h) => [h.host, String(h.powerOffs), String(h.powerOns)])).trimEnd());
  }
  lines.push('');
  if (e.idleMeasured.length + e.idleModel.length > 0) {
    lines.push(`idle draw of the hosts kept off: ${[e.idleMeasured.length > 0 ? `measured for ${e.idleMeasured.join(', ')}` : '', e.idleModel.length > 0 ? `the power model for ${e.idleModel.join(', ')}` : ''].filter(Boolean).join('; ')}`);
  }
  if (r.historySince !== null) lines.push(`failures and attention events from the history, which goes back to ${r.historySince}`);
  lines.push(`method: ${r.method}`);
  if (result.replay !== undefined) {
    lines.push('');
    if ('error' in result.replay) lines.push(`what it would have saved in dry-run: not known (${result.replay.error})`);
    else {
      lines.push('dry-run cycles changed nothing; what the policy would have saved over the period (a replay of the recording):');
      lines.push(humanReplay(result.replay.figures as unknown as ReplaySummary).trimEnd());
    }
  }
  return `${lines.join('\n')}\n`;
}

function rangeOf(args: ParsedArgs): RecordingRange {
  const usage = (message: string) => new ConsolidatorError('USAGE', message);
  const fromMs = dateOptionMs(args.values['from'], 'from', usage);
  const toMs = dateOptionMs(args.values['to'], 'to', usage);
  if (fromMs !== undefined && args.values['last'] !== undefined) throw new ConsolidatorError('USAGE', '--last and --from both say where the period starts: give one');
  if (fromMs !== undefined && toMs !== undefined && toMs <= fromMs) throw new ConsolidatorError('USAGE', '--to must be after --from');
  return { ...(fromMs === undefined ? {} : { fromMs }), ...(toMs === undefined ? {} : { toMs }) };
}

function durationOption(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const m = DURATION.exec(value);
  if (!m) throw new ConsolidatorError('USAGE', `--last must be a duration such as 30m, 24h or 7d, got ${JSON.stringify(value)}`);
  return Number(m[1]) * SECONDS_PER[m[2] as keyof typeof SECONDS_PER];
}
