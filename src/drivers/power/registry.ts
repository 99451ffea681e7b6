import type { ResolvedHost } from '../../config/resolve.js';
import { POWER_DRIVERS, type Policy, type PowerDriverName } from '../../config/schema.js';
import { ConsolidatorError } from '../../errors.js';
import type { Logger } from '../../observability/logger.js';
import { ipmitoolPowerFromPolicy } from './ipmitool-power.js';
import type { PowerDriver } from './power-driver.js';
import { redfishPowerFromPolicy } from './redfish-power.js';

export type { PowerDriverName };

/** What every power driver factory gets; a factory needing more (the simulated datacenter) closes over it. */
export interface PowerDriverDeps {
  readonly policy: Policy;
  readonly hosts: readonly ResolvedHost[];
  readonly logger: Logger;
}

export type PowerDriverFactory = (deps: PowerDriverDeps) => PowerDriver;

/**
 * power.driver name -> factory. Built in the composition root (no module-level registry): the
 * ipmitool entry is there from the start, the simulated one is registered by whoever owns the
 * simulated datacenter. An unknown or unregistered name is UNKNOWN_DRIVER, listing the valid ones.
 */
export class PowerDriverRegistry {
  private readonly factories = new Map<PowerDriverName, PowerDriverFactory>();

  constructor(factories: Partial<Record<PowerDriverName, PowerDriverFactory>> = {}) {
    for (const [name, factory] of Object.entries(factories) as [PowerDriverName, PowerDriverFactory | undefined][]) {
      if (factory !== undefined) this.register(name, factory);
    }
  }

  register(name: PowerDriverName, factory: PowerDriverFactory): this {
    this.factories.set(name, factory);
    return this;
  }

  /** Registered names, sorted. */
  names(): PowerDriverName[] {
    return [...this.factories.keys()].sort();
  }

  has(name: string): name is PowerDriverName {
    return this.factories.has(name as PowerDriverName);
  }

  create(name: string, deps: PowerDriverDeps): PowerDriver {
    const factory = this.factories.get(name as PowerDriverName);
    if (factory === undefined) {
      const valid = this.names();
      const known = (POWER_DRIVERS as readonly string[]).includes(name);
      const why = known ? 'is not available in this program' : 'is not a power driver';
      throw new ConsolidatorError('UNKNOWN_DRIVER', `power driver ${JSON.stringify(name)} ${why}; valid: ${valid.join(', ')}`, {
        details: { kind: 'power', name, valid: valid.join(', ') },
      });
    }
    return factory(deps);
  }
}

/** The ipmitool driver with the policy's settings. */
export const ipmitoolPowerFactory: PowerDriverFactory = (deps) =>
  ipmitoolPowerFromPolicy({ power: deps.policy.power, hosts: deps.hosts, logger: deps.logger });

/** The Redfish driver with the policy's settings. */
export const redfishPowerFactory: PowerDriverFactory = (deps) => redfishPowerFromPolicy({ power: deps.policy.power, hosts: deps.hosts, logger: deps.logger });

/** A registry with the drivers this module provides (ipmitool, redfish); add 'simulated' with register(). */
export function createPowerDriverRegistry(): PowerDriverRegistry {
  return new PowerDriverRegistry({ ipmitool: ipmitoolPowerFactory, redfish: redfishPowerFactory });
}
