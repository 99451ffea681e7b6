import type { HypervisorDriver } from '../drivers/hypervisor/hypervisor-driver.js';
import { waitUntil } from '../util/wait-until.js';
import { ConsolidatorError, errorMessage } from '../errors.js';
import type { HostId } from '../model/ids.js';

export interface WaitForHypervisorOptions {
  readonly hypervisor: HypervisorDriver;
  readonly host: HostId;
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly signal: AbortSignal;
  readonly nowMs: () => number;
}

/**
 * After a power-on: asks the host's hypervisor until it answers, or throws POWER_TIMEOUT naming what
 * it last saw (ABORTED when the signal aborts). A host counts as up only once this returns.
 */
export async function waitForHypervisor(o: WaitForHypervisorOptions): Promise<void> {
  try {
    await waitUntil({
      what: `${o.host}'s hypervisor to answer after power-on`,
      timeoutMs: o.timeoutMs,
      intervalMs: o.intervalMs,
      signal: o.signal,
      timeoutCode: 'POWER_TIMEOUT',
      nowMs: o.nowMs,
      details: { host: o.host },
      probe: async (signal) => {
        try {
          return { done: true, value: await o.hypervisor.inspect(o.host, signal) };
        } catch (e) {
          if (signal.aborted) throw e;
          return { done: false, seen: errorMessage(e), error: e };
        }
      },
    });
  } catch (e) {
    throw e instanceof ConsolidatorError ? e : new ConsolidatorError('POWER_TIMEOUT', errorMessage(e), { cause: e });
  }
}
