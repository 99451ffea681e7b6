import type { Writable } from 'node:stream';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConsolidatorError } from '../errors.js';

/** Exit codes, after sysexits(3): systemd's RestartPreventExitStatus=78 keys on CONFIG. */
export const EXIT = { OK: 0, FAILURE: 1, USAGE: 64, DATA: 65, NOPERM: 77, CONFIG: 78 } as const;

export interface CommandIo {
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly isTty: boolean;
}

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  readonly help: string;
  /** Shown after a string option in help: `--policy FILE`. */
  readonly valueName?: string;
}
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;
export type OptionValues = Record<string, string | boolean | string[] | boolean[] | undefined>;

export interface ParsedArgs {
  readonly values: OptionValues;
  readonly positionals: readonly string[];
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** `consolidator validate FILE` */
  readonly usage: string;
  readonly description: string;
  readonly options: OptionSpecs;
  /** One line each: what to type, then what it does. */
  readonly examples: readonly (readonly [string, string])[];
  run(args: ParsedArgs, io: CommandIo): Promise<number>;
}

export const GLOBAL_OPTIONS: OptionSpecs = {
  help: { type: 'boolean', short: 'h', help: 'show this help' },
  'log-format': { type: 'string', valueName: 'json|pretty', help: 'log lines as json (default, for journald) or pretty (for a terminal)' },
  'log-level': { type: 'string', valueName: 'LEVEL', help: 'error, warn, info or debug (overrides the policy)' },
};

function toParseArgsOptions(specs: OptionSpecs): NonNullable<ParseArgsConfig['options']> {
  const out: NonNullable<ParseArgsConfig['options']> = {};
  for (const [name, spec] of Object.entries(specs)) out[name] = spec.short ? { type: spec.type, short: spec.short } : { type: spec.type };
  return out;
}

export function parseCommandArgs(command: Command, argv: readonly string[]): ParsedArgs {
  try {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: toParseArgsOptions({ ...GLOBAL_OPTIONS, ...command.options }),
      allowPositionals: true,
      strict: true,
    });
    return { values: values as OptionValues, positionals };
  } catch (e) {
    throw new ConsolidatorError('USAGE', `${command.name}: ${(e as Error).message}\nsee: consolidator ${command.name} --help`);
  }
}

export function commandHelp(command: Command): string {
  const lines = [`Usage: ${command.usage}`, '', command.description, ''];
  const options = Object.entries({ ...command.options, ...GLOBAL_OPTIONS });
  lines.push('Options:');
  for (const [name, spec] of options) {
    const short = spec.short ? `-${spec.short}, ` : '    ';
    const arg = spec.type === 'string' ? ` ${spec.valueName ?? 'VALUE'}` : '';
    lines.push(`  ${short}--${name}${arg}`.padEnd(34) + ` ${spec.help}`);
  }
  if (command.examples.length > 0) {
    lines.push('', 'Examples:');
    for (const [example, what] of command.examples) lines.push(`  ${example}`, `      ${what}`);
  }
  return `${lines.join('\n')}\n`;
}

export function requirePositional(command: Command, args: ParsedArgs, index: number, what: string): string {
  const value = args.positionals[index];
  if (value === undefined) throw new ConsolidatorError('USAGE', `${command.name}: missing ${what}\nusage: ${command.usage}`);
  return value;
}

/** An ISO 8601 date option (--from, --to) as ms since the epoch; undefined when absent; `fail` makes the error. */
export function dateOptionMs(value: unknown, name: string, fail: (message: string) => Error): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw fail(`--${name} must be a date (ISO 8601, e.g. 2026-12-01 or 2026-12-01T08:00:00Z), got ${JSON.stringify(value)}`);
  return ms;
}
