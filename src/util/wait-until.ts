import { ConsolidatorError, type ErrorCode, errorMessage } from '../errors.js';

/**
 * What a probe saw: `done` ends the wait with its value; otherwise `seen` describes the state for the
 * timeout message ("power is on"), and `error` (a transient failure) is kept as the cause.
 */
export type ProbeResult<T> = { readonly done: true; readonly value: T } | { readonly done: false; readonly seen: string; readonly error?: unknown };

export interface WaitUntilOptions<T> {
  /** What is awaited, for the error: "h1 to report power off". */
  readonly what: string;
  readonly timeoutMs: number;
  /** Pause between two probes (after a probe returns, not from its start). */
  readonly intervalMs: number;
  readonly signal: AbortSignal;
  /** Code of the error thrown at the deadline. */
  readonly timeoutCode: ErrorCode;
  readonly details?: Readonly<Record<string, string | number | boolean | undefined>>;
  /** Called once immediately, then after every interval until done. A throw ends the wait (not transient). */
  readonly probe: (signal: AbortSignal) => Promise<ProbeResult<T>>;
  readonly nowMs?: () => number;
}

/**
 * Waits until `probe` reports done or the deadline passes, and throws a ConsolidatorError that names
 * what was awaited and what was last seen. Aborting the signal throws ABORTED at once, mid-probe too
 * (the probe gets the signal). Never returns a boolean: the caller either has the value or an error.
 */
export async function waitUntil<T>(options: WaitUntilOptions<T>): Promise<T> {
  const now = options.nowMs ?? Date.now;
  const startMs = now();
  const deadlineMs = startMs + options.timeoutMs;
  let probes = 0;
  let last: ProbeResult<T> | undefined;
  for (;;) {
    throwIfAborted(options.signal, options.what);
    last = await options.probe(options.signal);
    probes += 1;
    if (last.done) return last.value;
    const remainingMs = deadlineMs - now();
    if (remainingMs <= 0) break;
    await sleep(Math.min(options.intervalMs, remainingMs), options.signal, options.what);
  }
  const seen = last.done ? '' : last.seen;
  throw new ConsolidatorError(
    options.timeoutCode,
    `timed out after ${formatSeconds(now() - startMs)} waiting for ${options.what} (last seen: ${seen}; ${probes} checks)`,
    {
      details: { ...options.details, awaited: options.what, lastSeen: seen, timeoutMs: options.timeoutMs, probes },
      ...(!last.done && last.error !== undefined ? { cause: last.error } : {}),
    },
  );
}

/** Resolves after `ms`, or rejects with ABORTED as soon as the signal aborts. */
export function sleep(ms: number, signal: AbortSignal, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortedError(signal, what));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError(signal, what));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function throwIfAborted(signal: AbortSignal, what: string): void {
  if (signal.aborted) throw abortedError(signal, what);
}

export function abortedError(signal: AbortSignal, what: string): ConsolidatorError {
  const reason: unknown = signal.reason;
  return new ConsolidatorError('ABORTED', `aborted while waiting for ${what}${reason === undefined ? '' : `: ${errorMessage(reason)}`}`, {
    details: { awaited: what },
    ...(reason === undefined ? {} : { cause: reason }),
  });
}

const MS_PER_SECOND = 1000;

function formatSeconds(ms: number): string {
  return `${(ms / MS_PER_SECOND).toFixed(1)} s`;
}
