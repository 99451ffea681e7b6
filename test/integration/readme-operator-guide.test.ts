import { readFile } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { matchesBlock, parseGuide, runGuide, startDemo, type DemoDaemon } from '../helpers/readme-guide.js';

/**
 * The README's operator guide, command by command, against the built demo daemon (config/demo.yaml,
 * its socket and metrics port moved to the test's own): each command exits 0 and prints what the
 * README shows, modulo timestamps, numbers and host names (test/helpers/readme-guide.ts says how a
 * block is read and compared). `npm run readme:examples` rewrites the blocks from such a run.
 */

const START_TIMEOUT_MS = 120_000;
let demo: DemoDaemon | undefined;
afterAll(async () => {
  await demo?.stop();
});

describe("the README's operator guide, against the running demo", () => {
  it('every example runs as written and prints what the README shows', async () => {
    const blocks = parseGuide(await readFile('README.md', 'utf8'));
    const commands = blocks.flatMap((b) => b.commands.map((c) => c.args[0]));
    for (const name of ['status', 'plan', 'drain', 'undrain', 'wake', 'history']) expect(commands).toContain(name);
    demo = await startDemo(START_TIMEOUT_MS);
    // The demo says how to reach it (its socket is the test's own, so with the variable).
    expect(demo.output()).toContain(`operator commands: CONSOLIDATOR_SOCKET=${demo.socket} npx consolidator status (socket ${demo.socket})`);
    const runs = await runGuide(demo, blocks);
    blocks.forEach((block, b) => {
      block.commands.forEach((command, c) => {
        const run = runs[b]?.[c];
        const label = `consolidator ${command.args.join(' ')} (ran as: ${run?.args.join(' ')})`;
        expect({ label, code: run?.code, stderr: run?.code === 0 ? '' : run?.stderr }).toEqual({ label, code: 0, stderr: '' });
        expect({ label, match: matchesBlock(command.expected, run?.stdout ?? '') }).toEqual({ label, match: { ok: true } });
      });
    });
  }, 300_000);
});
