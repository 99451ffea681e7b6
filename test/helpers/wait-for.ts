import { type ErrorCode, errorMessage } from '../../src/errors.js';
import { type ProbeResult, sleep, waitUntil } from '../../src/util/wait-until.js';

/** Between two probes, unless the caller says otherwise. */
export const DEFAULT_POLL_INTERVAL_MS = 500;

export interface WaitForOptions {
  readonly timeoutMs: number;
  /** Pause after a probe before the next one (default DEFAULT_POLL_INTERVAL_MS). */
  readonly intervalMs?: number;
  /**
   * A probe that throws: 'retry' (default) counts it as "not yet" and keeps the error as the cause of
   * the timeout; 'throw' ends the wait at once with that error (a process that died will not recover).
   */
  readonly onProbeError?: 'retry' | 'throw';
  /** What the state was at the last probe, for the timeout message (default: "not yet", or the probe's error). */
  readonly seen?: () => string;
  readonly signal?: AbortSignal;
  /** Code of the error thrown at the deadline (default INTERNAL: a test's wait is no product failure). */
  readonly timeoutCode?: ErrorCode;
}

/**
 * The tests' one poll-until: calls `probe` until it returns a value other than `undefined` or `false`
 * and returns that value; at the deadline throws the ConsolidatorError of the product's `waitUntil`,
 * which names what was awaited and what was last seen. Never returns a boolean "it timed out".
 */
export function waitFor<T>(
  what: string,
  options: WaitForOptions,
  probe: (signal: AbortSignal) => Promise<T | undefined | false> | T | undefined | false,
): Promise<T> {
  const onProbeError = options.onProbeError ?? 'retry';
  return waitUntil<T>({
    what,
    timeoutMs: options.timeoutMs,
    intervalMs: options.intervalMs ?? DEFAULT_POLL_INTERVAL_MS,
    signal: options.signal ?? new AbortController().signal,
    timeoutCode: options.timeoutCode ?? 'INTERNAL',
    probe: async (signal): Promise<ProbeResult<T>> => {
      let value: T | undefined | false;
      try {
        value = await probe(signal);
      } catch (e) {
        if (onProbeError === 'throw') throw e;
        return { done: false, seen: options.seen?.() ?? `the check threw: ${errorMessage(e)}`, error: e };
      }
      if (value === undefined || value === false) return { done: false, seen: options.seen?.() ?? 'not yet' };
      return { done: true, value };
    },
  });
}

/** Lets `ms` of real time pass (a test that lets something run for a while, not a wait for a state: use waitFor). */
export function pause(ms: number): Promise<void> {
  return sleep(ms, new AbortController().signal, `a pause of ${ms} ms`);
}
