import { describe, expect, it } from 'vitest';
import { buildPowerChain } from '../../../../src/cli/build-drivers.js';
import type { LoadedPolicy } from '../../../../src/config/load.js';
import { IpmitoolPower } from '../../../../src/drivers/power/ipmitool-power.js';
import { RedfishPower } from '../../../../src/drivers/power/redfish-power.js';
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
    expect(registry.names()).toEqual(['ipmitool', 'redfish']);
    expect(registry.create(policy.power.driver, deps)).toBeInstanceOf(IpmitoolPower);
    expect(registry.create('redfish', deps)).toBeInstanceOf(RedfishPower);
  });

  it('lists the valid names for an unknown one', () => {
    const e = thrownSync(() => createPowerDriverRegistry().create('wol', deps));
    expect(e.code).toBe('UNKNOWN_DRIVER');
    expect(e.message).toBe('power driver "wol" is not a power driver; valid: ipmitool, redfish');
    expect(e.details).toMatchObject({ kind: 'power', name: 'wol', valid: 'ipmitool, redfish' });
  });

  it('says so when a known name has no registered factory', () => {
    const e = thrownSync(() => createPowerDriverRegistry().create('simulated', deps));
    expect(e.message).toBe('power driver "simulated" is not available in this program; valid: ipmitool, redfish');
  });

  it('takes more factories, such as the simulated datacenter', () => {
    const fake: PowerDriver = { status: async () => 'on', powerOn: async () => undefined, powerOff: async () => undefined };
    const registry = createPowerDriverRegistry().register('simulated', () => fake);
    expect(registry.names()).toEqual(['ipmitool', 'redfish', 'simulated']);
    expect(registry.create('simulated', deps)).toBe(fake);
    expect(new PowerDriverRegistry({ simulated: () => fake }).names()).toEqual(['simulated']);
  });

  it('gives each host the driver its bmc.driver names (power.driver by default) when it has no chain, each driver built once with its hosts', async () => {
    const made: { name: string; hosts: string[] }[] = [];
    const closed: string[] = [];
    const fake = (name: string): PowerDriver => ({
      status: async (host) => (name === 'redfish' ? 'on' : host === 'h1' ? 'off' : 'unknown'),
      powerOn: async () => undefined,
      powerOff: async () => undefined,
      ...(name === 'redfish' ? { forcePowerOn: async () => undefined } : {}),
      close: async () => {
        closed.push(name);
      },
    });
    const registry = new PowerDriverRegistry({
      ipmitool: (d) => (made.push({ name: 'ipmitool', hosts: d.hosts.map((h) => h.name) }), fake('ipmitool')),
      redfish: (d) => (made.push({ name: 'redfish', hosts: d.hosts.map((h) => h.name) }), fake('redfish')),
    });
    const mixed = testPolicy(3, {});
    const withRedfish = testPolicy(3, {
      hosts: mixed.policy.hosts.map((h, i) => (i === 1 ? { ...h, bmc: { ...h.bmc, driver: 'redfish' as const, redfish: { insecureSkipVerify: true } } } : h)),
    });
    expect(withRedfish.hosts.map((h) => [h.bmc.driver, h.bmc.port])).toEqual([
      ['ipmitool', 623],
      ['redfish', 443],
      ['ipmitool', 623],
    ]);
    expect(withRedfish.hosts.map((h) => h.powerChain)).toEqual([['ipmitool'], ['redfish'], ['ipmitool']]);
    // Only policy and hosts are read.
    const loaded = { file: 'policy.yaml', warnings: [], policy: { ...withRedfish.policy, power: { ...withRedfish.policy.power, resends: 0 } }, hosts: withRedfish.hosts } as LoadedPolicy;
    const power = buildPowerChain(loaded, silentLogger, { powerRegistry: registry });
    expect(made).toEqual([
      { name: 'ipmitool', hosts: ['h1', 'h3'] },
      { name: 'redfish', hosts: ['h2'] },
    ]);
    expect(await power.status('h1', AbortSignal.timeout(1000))).toBe('off');
    expect(await power.status('h2', AbortSignal.timeout(1000))).toBe('on');
    await power.close();
    expect(closed.sort()).toEqual(['ipmitool', 'redfish']);
  });
});
