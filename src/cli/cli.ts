import { ConsolidatorError, isConsolidatorError } from '../errors.js';
import { commandHelp, EXIT, parseCommandArgs, type CommandIo } from './command.js';
import { COMMANDS } from './commands.js';
import { version } from './version.js';

export { version };

/** What consolidator is, in the words of `--help` and of the man page. */
export const DESCRIPTION_LINES = [
  'Energy-saving VM consolidation for KVM/libvirt: empties underloaded hosts by live migration,',
  'powers them off through their BMC, and powers them back on when demand returns.',
] as const;

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  const lines = [
    'Usage: consolidator <command> [options]',
    '',
    ...DESCRIPTION_LINES,
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Options:',
    '  -h, --help     show help (also: consolidator <command> --help)',
    '  -V, --version  print the version',
  ];
  return `${lines.join('\n')}\n`;
}

/** Runs the CLI and returns the exit code; never exits the process itself (main.ts does). */
export async function runCli(argv: readonly string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    io.stdout.write(topic ? commandHelp(topic) : mainHelp());
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === '--version' || name === '-V') {
    io.stdout.write(`consolidator ${version()}\n`);
    return EXIT.OK;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    io.stderr.write(`consolidator: unknown command "${name}"\n\n${mainHelp()}`);
    return EXIT.USAGE;
  }
  try {
    const args = parseCommandArgs(command, rest);
    if (args.values['help'] === true) {
      io.stdout.write(commandHelp(command));
      return EXIT.OK;
    }
    return await command.run(args, io);
  } catch (e) {
    return reportFailure(e, io);
  }
}

function reportFailure(e: unknown, io: CommandIo): number {
  if (isConsolidatorError(e)) {
    io.stderr.write(`consolidator: ${e.message}\n`);
    if (e.code === 'USAGE') return EXIT.USAGE;
    if (e.code === 'PERMISSION_DENIED') return EXIT.NOPERM;
    if (e.code === 'POLICY_INVALID' || e.code === 'POLICY_UNREADABLE') return EXIT.CONFIG;
    return EXIT.FAILURE;
  }
  const wrapped = new ConsolidatorError('INTERNAL', e instanceof Error ? e.message : String(e), { cause: e });
  io.stderr.write(`consolidator: internal error: ${wrapped.message}\n`);
  if (process.env['CONSOLIDATOR_DEBUG'] && e instanceof Error && e.stack) io.stderr.write(`${e.stack}\n`);
  return EXIT.FAILURE;
}
