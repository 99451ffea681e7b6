import { ConsolidatorError } from '../../errors.js';

/** One non-negative decimal number per line, as both shared traces write them. */
const SAMPLE = /^\d+(?:\.\d+)?$/;

/**
 * Parses a trace file: exactly `expectedSamples` lines (a final newline is allowed, as are CRLF line
 * ends), each a non-negative number. Errors name the file and the 1-based line.
 */
export function parseTrace(text: string, file: string, expectedSamples: number): Float64Array {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  const values = new Float64Array(expectedSamples);
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').replace(/\r$/, '').trim();
    const line = i + 1;
    if (!SAMPLE.test(raw)) {
      throw new ConsolidatorError(
        'WORKLOAD_INVALID',
        `${file}:${line}: expected a non-negative number, found ${JSON.stringify(raw)}`,
        { details: { file, line } },
      );
    }
    if (i >= expectedSamples) break;
    values[i] = Number(raw);
  }
  if (lines.length !== expectedSamples) {
    throw new ConsolidatorError(
      'WORKLOAD_INVALID',
      `${file}:${lines.length}: expected ${expectedSamples} samples (one per line), found ${lines.length}`,
      { details: { file, line: lines.length, expectedSamples, foundSamples: lines.length } },
    );
  }
  return values;
}
