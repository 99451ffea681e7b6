import { describe, expect, it } from 'vitest';
import { IpmitoolPower } from '../../../../src/drivers/power/ipmitool-power.js';
import type { PowerDriver } from '../../../../src/drivers/power/power-driver.js';
import { PowerDriverRegistry, createPowerDriverRegistry } from '../../../../src/drivers/power/registry.js';
import { silentLogger } from '../../../../src/observability/logger.js';
import { thrownSync } from '../../../helpers/thrown.js';
import { testPolicy } from './policy.js';

const { policy, hosts } = testPolicy(1);
const deps = { policy, hosts, logger: silentLogger };

describe('the power driver registry', () => {
  it('creates the ipmitool driver by name', () => {
    const registry = createPowerDriverRegistry();
    expect(registry.names()).toEqual(['ipmitool']);
    expect(registry.create(policy.power.driver, deps)).toBeInstanceOf(IpmitoolPower);
  });

  it('lists the valid names for an unknown one', () => {
    const e = thrownSync(() => createPowerDriverRegistry().create('redfish', deps));
    expect(e.code).toBe('UNKNOWN_DRIVER');
    expect(e.message).toBe('power driver "redfish" is not a power driver; valid: ipmitool');
    expect(e.details).toMatchObject({ kind: 'power', name: 'redfish', valid: 'ipmitool' });
  });

  it('says so when a known name has no registered factory', () => {
    const e = thrownSync(() => createPowerDriverRegistry().create('simulated', deps));
    expect(e.message).toBe('power driver "simulated" is not available in this program; valid: ipmitool');
  });

  it('takes more factories, such as the simulated datacenter', () => {
    const fake: PowerDriver = { status: async () => 'on', powerOn: async () => undefined, powerOff: async () => undefined };
    const registry = createPowerDriverRegistry().register('simulated', () => fake);
    expect(registry.names()).toEqual(['ipmitool', 'simulated']);
    expect(registry.create('simulated', deps)).toBe(fake);
    expect(new PowerDriverRegistry({ simulated: () => fake }).names()).toEqual(['simulated']);
  });
});
