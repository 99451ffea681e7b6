import { ConsolidatorError } from '../../src/errors.js';

/** The ConsolidatorError a promise rejects with; fails the test if it resolves or throws anything else. */
export async function thrown(p: Promise<unknown>): Promise<ConsolidatorError> {
  try {
    await p;
  } catch (e) {
    return asExpected(e);
  }
  throw new Error('expected a ConsolidatorError');
}

/** The ConsolidatorError `f` throws; fails the test if it returns or throws anything else. */
export function thrownSync(f: () => unknown): ConsolidatorError {
  try {
    f();
  } catch (e) {
    return asExpected(e);
  }
  throw new Error('expected a ConsolidatorError');
}

function asExpected(e: unknown): ConsolidatorError {
  if (e instanceof ConsolidatorError) return e;
  throw e;
}
