#!/usr/bin/env node
import { runCli } from './cli/cli.js';

/** The composition root's entry: the only place that exits the process. */
const code = await runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, isTty: process.stdout.isTTY === true });
process.exitCode = code;
