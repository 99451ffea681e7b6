import { checkCommand } from './check.js';
import type { Command } from './command.js';
import { convertTraceCommand } from './convert-trace.js';
import { drainCommand, undrainCommand } from './drain.js';
import { historyCommand } from './history.js';
import { planCommand } from './plan.js';
import { reportCommand } from './report.js';
import { runCommand } from './run.js';
import { statusCommand } from './status.js';
import { wakeCommand } from './wake.js';
import { schemaCommand } from './schema.js';
import { simulateCommand } from './simulate.js';
import { validateCommand } from './validate.js';

/** Every subcommand, in the order `consolidator --help` lists them. */
export const COMMANDS: readonly Command[] = [
  runCommand,
  planCommand,
  statusCommand,
  drainCommand,
  undrainCommand,
  wakeCommand,
  historyCommand,
  reportCommand,
  validateCommand,
  checkCommand,
  simulateCommand,
  convertTraceCommand,
  schemaCommand,
];
