import type { PowerDriver, PowerOffMode, PowerOffOptions } from '../drivers/power/power-driver.js';
import { ConsolidatorError } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { PowerState } from '../model/snapshot.js';
import type { HostView } from './datacenter-views.js';
import type { SimulatedDatacenter } from './simulated-datacenter.js';
import { settle, throwIfAborted } from './simulated-hypervisor.js';

/**
 * The power port over a SimulatedDatacenter. powerOn turns the chassis on at once (status reads 'on')
 * and the host boots for its boot time before its hypervisor answers; powerOff takes an empty host
 * dark at once. As a guard a real BMC does not have, powering off a host that still holds domains is
 * refused (POWER_FAILED). Scripted faults: SimulatedDatacenter.faults.timeOutBmc (POWER_TIMEOUT) and
 * vanishHost (BMC_UNREACHABLE); and ignoringSoftOff below.
 */
export class SimulatedPower implements PowerDriver {
  /** Hosts that ignore a soft power-off: powerOff('soft') awaits options.beforeHardOff, then powers off hard. */
  readonly ignoringSoftOff = new Set<HostId>();
  private readonly datacenter: SimulatedDatacenter;

  constructor(deps: { readonly datacenter: SimulatedDatacenter }) {
    this.datacenter = deps.datacenter;
  }

  status(host: HostId, signal: AbortSignal): Promise<PowerState> {
    return settle(() => (this.bmc(host, signal).power === 'off' ? 'off' : 'on'));
  }

  powerOn(host: HostId, signal: AbortSignal): Promise<void> {
    return settle(() => {
      this.bmc(host, signal);
      const reason = this.datacenter.powerOn(host);
      this.datacenter.settle();
      if (reason !== undefined) throw new ConsolidatorError('POWER_FAILED', `power-on of ${host} refused: ${reason}`, { details: { host, reason } });
    });
  }

  async powerOff(host: HostId, mode: PowerOffMode, signal: AbortSignal, options: PowerOffOptions = {}): Promise<void> {
    if (mode === 'soft' && this.ignoringSoftOff.has(host)) {
      this.bmc(host, signal);
      await options.beforeHardOff?.(signal);
    }
    return settle(() => {
      const view = this.bmc(host, signal);
      if (view.vms.length > 0) {
        throw new ConsolidatorError(
          'POWER_FAILED',
          `refusing to power off ${host}: it still holds ${view.vms.length} domain(s) (${view.vms.map((v) => v.id).join(', ')})`,
          { details: { host, mode, domains: view.vms.length } },
        );
      }
      const reason = this.datacenter.powerOff(host);
      this.datacenter.settle();
      if (reason !== undefined) throw new ConsolidatorError('POWER_FAILED', `power-off of ${host} refused: ${reason}`, { details: { host, reason } });
    });
  }

  powerReadingWatts(host: HostId, signal: AbortSignal): Promise<number | undefined> {
    return settle(() => this.bmc(host, signal).powerWatts);
  }

  private bmc(host: HostId, signal: AbortSignal): HostView {
    throwIfAborted(signal);
    const view = this.datacenter.hostView(host);
    if (view === undefined || view.vanished) {
      throw new ConsolidatorError('BMC_UNREACHABLE', `BMC of ${host} does not answer`, { details: { host } });
    }
    if (this.datacenter.takeBmcTimeout(host)) {
      throw new ConsolidatorError('POWER_TIMEOUT', `BMC of ${host} timed out (scripted fault)`, { details: { host } });
    }
    return view;
  }
}
