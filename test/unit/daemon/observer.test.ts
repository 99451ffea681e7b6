import { describe, expect, it } from 'vitest';
import { resolveHosts } from '../../../src/config/resolve.js';
import { PolicySchema } from '../../../src/config/schema.js';
import { ClusterObserver } from '../../../src/daemon/observer.js';
import type { HostObservation, HypervisorDriver } from '../../../src/drivers/hypervisor/hypervisor-driver.js';
import type { PowerDriver } from '../../../src/drivers/power/power-driver.js';
import { ConsolidatorError } from '../../../src/errors.js';
import type { HostId } from '../../../src/model/ids.js';
import type { PowerState } from '../../../src/model/snapshot.js';
import { silentLogger } from '../../../src/observability/logger.js';

/** Two hosts; h2's power is whatever the test says, and it answers over "SSH" only when on. */
function setup() {
  const power: Record<HostId, PowerState> = { h1: 'on', h2: 'on' };
  const inspected: HostId[] = [];
  const hypervisor: Pick<HypervisorDriver, 'inspect'> = {
    inspect: async (host) => {
      inspected.push(host);
      // A powered-off host makes SSH wait for its connect timeout, then fail.
      if (power[host] !== 'on') throw new ConsolidatorError('SSH_CONNECT', `ssh to ${host}: no answer within 10000 ms`);
      return { host, atMs: 0, capacity: { cpu: 8, memory: 16_384 }, memoryUsedMiB: 1024, domains: [], versions: {} } satisfies HostObservation;
    },
  };
  const statusAsked: HostId[] = [];
  const powerDriver: PowerDriver = {
    status: async (host) => {
      statusAsked.push(host);
      return power[host] ?? 'unknown';
    },
    powerOn: async () => undefined,
    powerOff: async () => undefined,
  };
  const policy = PolicySchema.parse({ version: 1, hosts: [{ name: 'h1' }, { name: 'h2' }] });
  const observer = new ClusterObserver({ hypervisor: hypervisor as HypervisorDriver, power: powerDriver, logger: silentLogger, concurrency: 4 });
  const ctx = { policy, hosts: resolveHosts(policy, '/'), maintenance: new Set<HostId>(), knownCapacity: {} };
  const observe = async (believedOff: HostId[] = []) => {
    inspected.length = 0;
    statusAsked.length = 0;
    const o = await observer.observe({ ...ctx, believedOff }, 0, new AbortController().signal);
    return new Map(o.snapshot.hosts.map((h) => [h.id, `${h.power}/${h.reachable ? 'reachable' : 'unreachable'}`]));
  };
  return { power, inspected, statusAsked, observe };
}

describe('ClusterObserver and hosts that are off', () => {
  it('asks the BMC first about a host it last saw off, and skips SSH while the BMC says off', async () => {
    const t = setup();
    t.power['h2'] = 'off';
    expect(await t.observe()).toEqual(new Map([['h1', 'on/reachable'], ['h2', 'off/unreachable']]));
    expect(t.inspected).toEqual(['h1', 'h2']); // first time: SSH, then the BMC
    expect(await t.observe()).toEqual(new Map([['h1', 'on/reachable'], ['h2', 'off/unreachable']]));
    expect(t.inspected).toEqual(['h1']);
    expect(t.statusAsked).toEqual(['h2']);
    // Powered on again: the BMC says on, so SSH is tried and the host is observed.
    t.power['h2'] = 'on';
    expect(await t.observe()).toEqual(new Map([['h1', 'on/reachable'], ['h2', 'on/reachable']]));
    expect(t.inspected.sort()).toEqual(['h1', 'h2']);
    // ... and is not treated as off any more.
    expect(await t.observe()).toEqual(new Map([['h1', 'on/reachable'], ['h2', 'on/reachable']]));
    expect(t.statusAsked).toEqual([]);
  });

  it('asks the BMC first about hosts the caller believes off (powered off by consolidator)', async () => {
    const t = setup();
    t.power['h2'] = 'off';
    expect(await t.observe(['h2'])).toEqual(new Map([['h1', 'on/reachable'], ['h2', 'off/unreachable']]));
    expect(t.inspected).toEqual(['h1']);
  });

  it('still tries SSH for a host believed off whose BMC does not say off', async () => {
    const t = setup();
    t.power['h2'] = 'unknown';
    expect(await t.observe(['h2'])).toEqual(new Map([['h1', 'on/reachable'], ['h2', 'unknown/unreachable']]));
    expect(t.inspected.sort()).toEqual(['h1', 'h2']);
  });
});
