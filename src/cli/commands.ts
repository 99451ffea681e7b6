import type { Command } from './command.js';
import { runCommand } from './run.js';
import { schemaCommand } from './schema.js';
import { validateCommand } from './validate.js';

/** Every subcommand, in the order `consolidator --help` lists them. */
export const COMMANDS: readonly Command[] = [runCommand, validateCommand, schemaCommand];
