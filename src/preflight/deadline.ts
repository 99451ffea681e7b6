import { ConsolidatorError } from '../errors.js';

/**
 * Runs `fn` with a signal that aborts after `timeoutMs` (or with `parent`), and gives up waiting at
 * that moment even when `fn` ignores its signal: a check that hangs (a BMC that never answers) costs
 * its timeout, never the whole run. Throws COMMAND_TIMEOUT naming `what`, or ABORTED.
 */
export async function withDeadline<T>(what: string, timeoutMs: number, parent: AbortSignal | undefined, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onParentAbort: (() => void) | undefined;
  const expired = new Promise<never>((_, reject) => {
    const stop = (error: ConsolidatorError) => {
      controller.abort(error);
      reject(error);
    };
    timer = setTimeout(() => stop(new ConsolidatorError('COMMAND_TIMEOUT', `${what}: no answer within ${timeoutMs} ms`, { details: { timeoutMs } })), timeoutMs);
    onParentAbort = () => stop(new ConsolidatorError('ABORTED', `${what}: aborted`));
    if (parent?.aborted) onParentAbort();
    else parent?.addEventListener('abort', onParentAbort, { once: true });
  });
  // The loser of the race must not become an unhandled rejection.
  expired.catch(() => undefined);
  const work = fn(controller.signal);
  work.catch(() => undefined);
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
    if (onParentAbort) parent?.removeEventListener('abort', onParentAbort);
  }
}
