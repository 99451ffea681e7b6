import type { HostId } from '../../model/ids.js';
import type { PowerState } from '../../model/snapshot.js';

export type PowerOffMode = 'soft' | 'hard';

/**
 * Powers hosts on and off through their BMC. powerOn/powerOff resolve only once a read-back of the
 * state matches (or throw POWER_TIMEOUT / POWER_FAILED / BMC_AUTH / BMC_UNREACHABLE). powerOff('soft')
 * falls back to a hard power-off after the policy's soft-off timeout.
 */
export interface PowerDriver {
  status(host: HostId, signal: AbortSignal): Promise<PowerState>;
  powerOn(host: HostId, signal: AbortSignal): Promise<void>;
  powerOff(host: HostId, mode: PowerOffMode, signal: AbortSignal): Promise<void>;
  /** Watts drawn now, where the BMC supports DCMI; undefined otherwise. */
  powerReadingWatts?(host: HostId, signal: AbortSignal): Promise<number | undefined>;
}
