import { ConsolidatorError } from '../../errors.js';
import type { HostId } from '../../model/ids.js';
import type { PowerState } from '../../model/snapshot.js';
import type { PowerDriver, PowerOffMode, PowerOffOptions } from './power-driver.js';

/**
 * One PowerDriver over several: each host is powered by the driver its policy names (bmc.driver, else
 * power.driver), so a fleet can mix Redfish and IPMI BMCs. An optional method the host's driver lacks
 * answers as the port says for a driver without it (no reading, no UUID); forcePowerOn is POWER_FAILED.
 */
export class HostRoutedPower implements PowerDriver {
  private readonly byHost: ReadonlyMap<HostId, PowerDriver>;
  private readonly drivers: readonly PowerDriver[];

  /** `byHost`: every host's driver; `drivers`: each driver once (closed once). */
  constructor(byHost: ReadonlyMap<HostId, PowerDriver>) {
    this.byHost = byHost;
    this.drivers = [...new Set(byHost.values())];
  }

  status(host: HostId, signal: AbortSignal): Promise<PowerState> {
    return this.of(host).status(host, signal);
  }

  powerOn(host: HostId, signal: AbortSignal): Promise<void> {
    return this.of(host).powerOn(host, signal);
  }

  powerOff(host: HostId, mode: PowerOffMode, signal: AbortSignal, options?: PowerOffOptions): Promise<void> {
    return this.of(host).powerOff(host, mode, signal, options);
  }

  async powerReadingWatts(host: HostId, signal: AbortSignal): Promise<number | undefined> {
    const driver = this.of(host);
    return driver.powerReadingWatts === undefined ? undefined : driver.powerReadingWatts(host, signal);
  }

  async systemUuid(host: HostId, signal: AbortSignal): Promise<string | undefined> {
    const driver = this.of(host);
    return driver.systemUuid === undefined ? undefined : driver.systemUuid(host, signal);
  }

  async forcePowerOn(host: HostId, signal: AbortSignal): Promise<void> {
    const driver = this.of(host);
    if (driver.forcePowerOn === undefined) {
      throw new ConsolidatorError('POWER_FAILED', `the power driver of ${host} has no stronger power-on than power on`, { details: { host, failure: 'not-offered' } });
    }
    await driver.forcePowerOn(host, signal);
  }

  async close(): Promise<void> {
    await Promise.all(this.drivers.map((d) => d.close?.()));
  }

  private of(host: HostId): PowerDriver {
    const driver = this.byHost.get(host);
    if (driver === undefined) throw new ConsolidatorError('POWER_FAILED', `${host} is not a host of the policy`, { details: { host } });
    return driver;
  }
}
