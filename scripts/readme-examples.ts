/**
 * Regenerates the example blocks of the README's "Operator's guide" from real runs: starts the built
 * daemon on (a copy of) config/demo.yaml, waits until it has powered hosts off, runs every command of
 * the guide in order with the built CLI and writes what each printed (stdout) back into its block.
 *
 *   npm run build && npm run readme:examples
 *
 * The convention (see test/helpers/readme-guide.ts): a fenced block in that section whose first line
 * starts with `$ npx consolidator ` is an example; each `$ ` line is a command and the lines after it
 * are its output. Host names in the commands are replaced by hosts this run can drain. Lines outside
 * such blocks are left alone. test/integration/readme-operator-guide.test.ts checks the same blocks
 * against a fresh run, modulo timestamps, numbers and host names.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { parseGuide, renderGuide, runGuide, startDemo } from '../test/helpers/readme-guide.js';

const README = 'README.md';
const START_TIMEOUT_MS = 120_000;

async function main(): Promise<number> {
  const readme = await readFile(README, 'utf8');
  const blocks = parseGuide(readme);
  const demo = await startDemo(START_TIMEOUT_MS);
  try {
    const runs = await runGuide(demo, blocks);
    const failed = runs.flat().filter((r) => r.code !== 0);
    for (const r of failed) process.stderr.write(`consolidator ${r.args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}\n`);
    if (failed.length > 0) {
      process.stderr.write(`${README} left as it was: ${failed.length} command(s) failed\n`);
      return 1;
    }
    await writeFile(README, renderGuide(readme, blocks, runs));
    process.stdout.write(`${README}: ${runs.flat().length} example(s) in ${blocks.length} block(s) regenerated\n`);
    return 0;
  } finally {
    await demo.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
