import { ConsolidatorError } from '../../errors.js';

/** One non-negative decimal number per line, as both shared traces write them. */
const SAMPLE = /^\d+(?:\.\d+)?$/;

/**
 * Parses a trace file: one non-negative number per line, at least one line, any number of them (a
 * final newline is allowed, as are CRLF line ends). With `expectedSamples`, exactly that many.
 * Errors name the file and the 1-based line.
 */
export function parseTrace(text: string, file: string, expectedSamples?: number): Float64Array {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length === 0) {
    throw new ConsolidatorError('WORKLOAD_INVALID', `${file}:1: empty trace, expected one number per line`, { details: { file, line: 1 } });
  }
  const values = new Float64Array(lines.length);
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').replace(/\r$/, '').trim();
    if (!SAMPLE.test(raw)) {
      const line = i + 1;
      throw new ConsolidatorError(
        'WORKLOAD_INVALID',
        `${file}:${line}: expected a non-negative number, found ${JSON.stringify(raw)}`,
        { details: { file, line } },
      );
    }
    values[i] = Number(raw);
  }
  if (expectedSamples !== undefined && lines.length !== expectedSamples) {
    throw new ConsolidatorError(
      'WORKLOAD_INVALID',
      `${file}:${lines.length}: expected ${expectedSamples} samples (one per line), found ${lines.length}`,
      { details: { file, line: lines.length, expectedSamples, foundSamples: lines.length } },
    );
  }
  return values;
}
