/**
 * How the composition root builds the power chain: each path once, by name from the power driver
 * registry (so a registered driver plugs in), each host with its own list; and the attempts metric.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { buildPowerChain, powerPathsFor } from '../../../src/cli/build-drivers.js';
import type { LoadedPolicy } from '../../../src/config/load.js';
import { resolveHosts } from '../../../src/config/resolve.js';
import { PolicySchema } from '../../../src/config/schema.js';
import type { PowerAttempt } from '../../../src/drivers/power/power-chain.js';
import type { PowerDriver } from '../../../src/drivers/power/power-driver.js';
import { PowerDriverRegistry } from '../../../src/drivers/power/registry.js';
import { ConsolidatorError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { PowerAttemptMetrics } from '../../../src/observability/power-attempt-metrics.js';

function loaded(raw: Record<string, unknown>): LoadedPolicy {
  const policy = PolicySchema.parse(raw);
  return { file: 'p.yaml', policy, hosts: resolveHosts(policy, '/'), warnings: [] };
}

describe('buildPowerChain', () => {
  it('builds each named path once through the registry and gives each host its own order', async () => {
    let built = 0;
    const on: string[] = [];
    const fake: PowerDriver = {
      status: async () => 'off',
      powerOn: async (host) => {
        on.push(host);
        throw new ConsolidatorError('POWER_TIMEOUT', `${host} stayed off`);
      },
      powerOff: async () => undefined,
    };
    const registry = new PowerDriverRegistry({
      ipmitool: () => {
        built++;
        return fake;
      },
    });
    const attempts: PowerAttempt[] = [];
    const chain = buildPowerChain(
      loaded({
        version: 1,
        power: { chain: ['ipmitool', 'wol'], resends: 0, verifyTimeoutSeconds: 1 },
        hosts: [{ name: 'h1', wol: { mac: '52:54:00:00:00:01', broadcast: '127.0.0.1', port: 9 } }, { name: 'h2', power: { chain: ['ipmitool'] } }],
      }),
      silentLogger,
      { powerRegistry: registry, onPowerAttempt: (a) => attempts.push(a) },
    );
    expect(built).toBe(1);
    await expect(chain.powerOn('h2', AbortSignal.timeout(5000))).rejects.toThrow('h2 stayed off');
    expect(attempts.map((a) => `${a.host} ${a.path} ${a.outcome}`)).toEqual(['h2 ipmitool timeout']);
    attempts.length = 0;
    // h1 falls back to wol, whose packet goes to the discard port on loopback; the fake reads "off"
    await expect(chain.powerOn('h1', AbortSignal.timeout(5000))).rejects.toThrow(/failed through every power path/);
    expect(attempts.map((a) => `${a.host} ${a.path} ${a.outcome}`)).toEqual(['h1 ipmitool timeout', 'h1 wol timeout']);
    expect(on).toEqual(['h2', 'h1']);
  });
});

describe('powerPathsFor (what consolidator check asks)', () => {
  it("returns the host's chain in order without the paths that only power on", () => {
    const registry = new PowerDriverRegistry({ ipmitool: () => ({ status: async () => 'on', powerOn: async () => undefined, powerOff: async () => undefined }) });
    const policy = loaded({
      version: 1,
      power: { chain: ['wol', 'ipmitool'] },
      hosts: [{ name: 'h1', wol: { mac: '52:54:00:00:00:01' } }, { name: 'h2', power: { chain: ['ipmitool'] } }],
    });
    expect(powerPathsFor(policy, 'h1', { logger: silentLogger, registry }).map((p) => p.path)).toEqual(['ipmitool']);
    expect(powerPathsFor(policy, 'h2', { logger: silentLogger, registry }).map((p) => p.path)).toEqual(['ipmitool']);
  });
});

describe('PowerAttemptMetrics', () => {
  it('counts attempts by path, action and outcome, from zero, and refuses a label outside its lists', async () => {
    const registry = new Registry();
    const metrics = new PowerAttemptMetrics(registry);
    metrics.count({ path: 'wol', action: 'on', outcome: 'unconfirmed' });
    const text = await registry.metrics();
    expect(text).toContain('consolidator_power_attempts_total{path="wol",action="on",outcome="unconfirmed"} 1');
    expect(text).toContain('consolidator_power_attempts_total{path="ipmitool",action="force-on",outcome="ok"} 0');
    expect(text).not.toContain('path="wol",action="off"');
    expect(() => metrics.count({ path: 'etherwake', action: 'on', outcome: 'ok' })).toThrow(/label path/);
    expect(() => metrics.count({ path: 'ipmitool', action: 'on', outcome: 'maybe' })).toThrow(/label outcome/);
  });
});
