import { ConsolidatorError } from '../../errors.js';

/**
 * Words made only of these characters mean the same to a POSIX shell quoted or not. `=` and `~` are
 * left out on purpose: `A=b cmd` is an assignment and `~x` a tilde expansion.
 */
const SAFE_WORD = /^[A-Za-z0-9_./,:@%+-]+$/;

/**
 * Quotes one word for a POSIX shell (sh, dash, bash), so that the shell hands the program exactly
 * this string as one argument. The only place in the project that builds shell text.
 */
export function shellQuoteWord(word: string): string {
  if (word.includes('\0')) {
    throw new ConsolidatorError('INTERNAL', 'a command argument contains a NUL byte, which no shell can pass on');
  }
  if (SAFE_WORD.test(word)) return word;
  // Inside single quotes nothing is special except the closing quote: end the quoted run, add an
  // escaped quote, start a new run.
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Quotes an argv into one shell command line: `['echo', "it's"]` -> `echo 'it'\''s'`. */
export function shellQuote(argv: readonly string[]): string {
  if (argv.length === 0) throw new ConsolidatorError('INTERNAL', 'cannot run an empty command');
  return argv.map(shellQuoteWord).join(' ');
}
