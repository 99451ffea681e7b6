import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shellQuote, shellQuoteWord } from '../../../../src/drivers/exec/shell-quote.js';
import { isConsolidatorError } from '../../../../src/errors.js';
import { thrownSync } from '../../../helpers/thrown.js';

/** Runs `printf '%s\0' <quoted argv>` in a real shell and returns the words it received. */
function wordsSeenBy(shell: string, argv: readonly string[]): string[] {
  const line = `printf '%s\\0' ${shellQuote(argv)}`;
  const out = spawnSync(shell, ['-c', line], { encoding: 'buffer' });
  expect(out.status, out.stderr.toString()).toBe(0);
  const text = out.stdout.toString('utf8');
  return text.slice(0, -1).split('\0');
}

/** Any string a command argument can hold: everything but NUL, with shell metacharacters favoured. */
const word = fc.oneof(
  fc.string({ unit: fc.constantFrom(...`'"\\$\`!*?[]{}()<>|&;#~= \t\n-%@:,./_aZ09`.split('')) }),
  fc.string({ unit: 'grapheme' }),
  fc.string({ unit: 'binary' }),
).map((s) => s.replaceAll('\0', ''));

describe('shellQuoteWord', () => {
  it.each([
    ['plain', 'plain'],
    ['/proc/stat', '/proc/stat'],
    ['qemu+ssh://h2.lab/system', 'qemu+ssh://h2.lab/system'],
    ['--bandwidth', '--bandwidth'],
    ['', "''"],
    ["it's", "'it'\\''s'"],
    ['a b', "'a b'"],
    ['A=b', "'A=b'"],
    ['~root', "'~root'"],
    ['$(reboot)', "'$(reboot)'"],
    ['x;y', "'x;y'"],
    ['line\nbreak', "'line\nbreak'"],
  ])('%j -> %s', (input, quoted) => {
    expect(shellQuoteWord(input)).toBe(quoted);
  });

  it('refuses a NUL byte', () => {
    expect(() => shellQuoteWord('a\0b')).toThrow(/NUL/);
    expect(isConsolidatorError(thrownSync(() => shellQuoteWord('\0')), 'INTERNAL')).toBe(true);
  });

  it('refuses an empty argv', () => {
    expect(() => shellQuote([])).toThrow(/empty command/);
  });
});

describe('shellQuote round-trips through real shells', () => {
  for (const shell of ['/bin/sh', '/bin/bash']) {
    it(`${shell} receives exactly the argv`, () => {
      fc.assert(
        fc.property(fc.array(word, { minLength: 1, maxLength: 5 }), (argv) => {
          expect(wordsSeenBy(shell, argv)).toEqual(argv);
        }),
        { numRuns: 150 },
      );
      // 150 real shell processes: seconds on a loaded 2-core machine, not a unit test's usual 5.
    }, 60_000);
  }

  it('a quoted word is never split, expanded or executed', () => {
    fc.assert(
      fc.property(word, (w) => {
        const quoted = shellQuoteWord(w);
        // Either a safe bare word, or one single-quoted run with only escaped quotes in between.
        expect(/^[A-Za-z0-9_./,:@%+-]+$/.test(quoted) || /^'(?:[^']|'\\'')*'$/.test(quoted)).toBe(true);
      }),
    );
  });
});
