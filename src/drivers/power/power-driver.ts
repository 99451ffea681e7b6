import type { HostId } from '../../model/ids.js';
import type { PowerState } from '../../model/snapshot.js';

export type PowerOffMode = 'soft' | 'hard';

export interface PowerOffOptions {
  /**
   * Awaited whenever a soft power-off turns into a hard one (the host ignored the soft request until the
   * soft-off timeout, or the BMC refused it), just before the hard power-off is sent. If it throws, no
   * hard power-off is sent and its error propagates unchanged. The caller re-checks here what it checked
   * before asking (no domains on the host): the soft-off timeout is long enough for that to change.
   * Not called for powerOff(host, 'hard'), nor when the soft power-off succeeds.
   */
  readonly beforeHardOff?: (signal: AbortSignal) => Promise<void>;
}

/**
 * Powers hosts on and off through their BMC. powerOn/powerOff resolve only once a read-back of the
 * state matches (or throw POWER_TIMEOUT / POWER_FAILED / BMC_AUTH / BMC_UNREACHABLE). powerOff('soft')
 * falls back to a hard power-off after the policy's soft-off timeout, guarded by options.beforeHardOff.
 */
export interface PowerDriver {
  status(host: HostId, signal: AbortSignal): Promise<PowerState>;
  powerOn(host: HostId, signal: AbortSignal): Promise<void>;
  powerOff(host: HostId, mode: PowerOffMode, signal: AbortSignal, options?: PowerOffOptions): Promise<void>;
  /**
   * ForceOn / PowerCycle for a host that accepted On and stayed off. Optional: only drivers whose BMC
   * offers a stronger power-on than the one powerOn sends define it. Resolves, like powerOn, once the
   * state reads on (or throws the same errors).
   */
  forcePowerOn?(host: HostId, signal: AbortSignal): Promise<void>;
  /** Watts drawn now, where the BMC supports DCMI; undefined otherwise. */
  powerReadingWatts?(host: HostId, signal: AbortSignal): Promise<number | undefined>;
  /**
   * The system UUID the BMC reports, in the form Linux shows in /sys/class/dmi/id/product_uuid (and
   * dmidecode, in lower case): 8-4-4-4-12 lower-case hex, first three fields decoded little-endian as in
   * SMBIOS 2.6+. undefined when the BMC has none (does not support the command, or reports all zeros or
   * all 0xFF, which SMBIOS uses for "not set" and "not present"). For checking that a BMC belongs to the
   * machine the policy says it does before acting on it.
   */
  systemUuid?(host: HostId, signal: AbortSignal): Promise<string | undefined>;
}

/** One way to reach a host's power: a name for messages and the driver behind it. */
export interface PowerPath {
  /** The power driver's name (`ipmitool`), as messages, the check's table and its JSON show it. */
  readonly path: string;
  readonly driver: PowerDriver;
}
