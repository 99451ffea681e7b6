import { ConsolidatorError } from '../../src/errors.js';

/** The ConsolidatorError a promise rejects with; fails the test if it resolves or throws anything else. */
export async function thrown(p: Promise<unknown>): Promise<ConsolidatorError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ConsolidatorError) return e;
    throw e;
  }
  throw new Error('expected a ConsolidatorError');
}
