import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { matchesBlock, normaliseLine, parseGuide, renderGuide } from '../../helpers/readme-guide.js';

const README = [
  '# x',
  "## Operator's guide",
  'text',
  '```',
  '$ npx consolidator status',
  'hosts on: demo-01, demo-02',
  'health: ok',
  '',
  '$ npx consolidator history --limit 2',
  'WHEN                      ACTION     SUBJECT',
  '1970-01-01T00:35:31.000Z  power-off  demo-12',
  '```',
  '```',
  'not an example',
  '```',
  '## Next',
  '```',
  '$ npx consolidator status',
  '```',
].join('\n');

describe("the README operator guide's example blocks", () => {
  it("are the fenced blocks of the section that start with '$ npx consolidator', one command per '$' line", () => {
    const blocks = parseGuide(README);
    expect(blocks).toHaveLength(1);
    expect(blocks[0]?.commands.map((c) => c.args)).toEqual([['status'], ['history', '--limit', '2']]);
    expect(blocks[0]?.commands[0]?.expected).toEqual(['hosts on: demo-01, demo-02', 'health: ok']);
  });

  it('the real README has an example of each operator command', async () => {
    const commands = parseGuide(await readFile('README.md', 'utf8')).flatMap((b) => b.commands.map((c) => c.args[0]));
    expect(new Set(commands)).toEqual(new Set(['status', 'plan', 'drain', 'undrain', 'wake', 'history']));
  });

  it('are rewritten with what the commands printed, the rest of the README untouched', () => {
    const blocks = parseGuide(README);
    const out = renderGuide(README, blocks, [[
      { args: ['status'], code: 0, stdout: 'hosts on: demo-03\n', stderr: '' },
      { args: ['history', '--limit', '2'], code: 0, stdout: 'WHEN  ACTION  SUBJECT\nx  y  z\n', stderr: '' },
    ]]);
    expect(out).toBe(README.replace('hosts on: demo-01, demo-02\nhealth: ok', 'hosts on: demo-03').replace(/WHEN {22}ACTION {5}SUBJECT\n.*power-off {2}demo-12/, 'WHEN  ACTION  SUBJECT\nx  y  z'));
  });

  it('match a run modulo timestamps, numbers, name lists and padding; a table needs its header and a row', () => {
    expect(normaliseLine('1970-01-01T00:35:31.000Z  migrate  vm-37   demo-02  ok')).toBe('<time> migrate vm-N demo-N ok');
    // A table's rows run up to the next blank line.
    const expected = ['hosts on: demo-01, demo-02', '#  STEP           TO', '1  migrate vm-26  demo-08', '', 'Hosts on: 6 -> 6'];
    expect(matchesBlock(expected, 'hosts on: demo-05\n#   STEP  TO\n1   migrate vm-2  demo-1\n2   migrate vm-3  demo-1\n\nHosts on: 7 -> 5\n')).toEqual({ ok: true });
    expect(matchesBlock(expected, 'hosts on: demo-05\n#   STEP  TO\n\nHosts on: 7 -> 5\n')).toMatchObject({ ok: false });
    expect(matchesBlock(expected, 'hosts on: demo-05\n#   STEP  WHERE\n1   migrate vm-2  demo-1\n\nHosts on: 7 -> 5\n')).toMatchObject({ ok: false });
    expect(matchesBlock(expected, 'hosts on: demo-05\n#   STEP  TO\n1   migrate vm-2  demo-1\n')).toMatchObject({ ok: false });
  });
});
