import { describe, expect, it } from 'vitest';
import type { DriverBundle } from '../../../src/drivers/driver-bundle.js';
import type { HypervisorDriver } from '../../../src/drivers/hypervisor/hypervisor-driver.js';
import type { PowerDriver } from '../../../src/drivers/power/power-driver.js';
import { ConsolidatorError } from '../../../src/errors.js';
import { fencedDrivers } from '../../../src/ha/fenced-drivers.js';
import type { LeaderGate } from '../../../src/ha/leader-election.js';
import type { Operation } from '../../../src/ha/etcd-client.js';
import { thrown } from '../../helpers/thrown.js';

/** Drivers that only note what they were asked, and a gate that passes or refuses. */
function setup(leading: () => boolean) {
  const calls: string[] = [];
  const fenced: Operation[][] = [];
  const hypervisor = {
    inspect: () => Promise.reject(new Error('unused')),
    listDomains: (host: string) => (calls.push(`list ${host}`), Promise.resolve([])),
    residentGuests: () => Promise.resolve([]),
    preflight: () => Promise.resolve({ ok: true, problems: [] }),
    migrate: (vm: string) => (calls.push(`migrate ${vm}`), Promise.resolve({ durationMs: 1, state: 'running' as const })),
    abortMigration: (vm: string) => (calls.push(`abort ${vm}`), Promise.resolve()),
  } as unknown as HypervisorDriver;
  const power: PowerDriver = {
    status: () => Promise.resolve('on'),
    powerOn: (host) => (calls.push(`on ${host}`), Promise.resolve()),
    powerOff: async (host, mode, signal, options) => {
      calls.push(`off ${host} ${mode}`);
      await options?.beforeHardOff?.(signal);
      calls.push(`hard off ${host}`);
    },
  };
  const gate: LeaderGate = {
    name: 'a',
    isLeader: leading,
    leaderName: () => (leading() ? 'a' : 'b'),
    etcdHealth: () => ({ ok: true }),
    fence: (ops) => {
      if (!leading()) return Promise.reject(new ConsolidatorError('NOT_LEADER', 'not the leader: b leads'));
      fenced.push([...ops]);
      return Promise.resolve();
    },
  };
  const bundle: DriverBundle = { hypervisor, power, close: () => Promise.resolve() };
  return { calls, fenced, drivers: fencedDrivers(bundle, gate, '/p/', () => 99) };
}

const signal = new AbortController().signal;
const options = { bandwidthMiBps: 1, timeoutMs: 1, nonConvergence: 'abort', convergenceDeadlineMs: 1, persistent: true, undefineSource: true } as const;

describe('fencedDrivers', () => {
  it('records every step that changes a host under PREFIX/step, in the fence, before the driver acts', async () => {
    const { calls, fenced, drivers } = setup(() => true);
    await drivers.hypervisor.listDomains('h1', signal);
    await drivers.hypervisor.migrate('vm1', 'h1', 'h2', options, signal);
    await drivers.power.powerOn('h3', signal);
    await drivers.power.powerOff('h1', 'soft', signal);
    expect(calls).toEqual(['list h1', 'migrate vm1', 'on h3', 'off h1 soft', 'hard off h1']);
    const records = fenced.map((ops) => JSON.parse((ops[0] as { put: { key: string; value: string } }).put.value) as Record<string, unknown>);
    expect(fenced.every((ops) => (ops[0] as { put: { key: string } }).put.key === '/p/step')).toBe(true);
    expect(records).toEqual([
      { controller: 'a', op: 'migrate', subject: 'vm1', from: 'h1', to: 'h2', atMs: 99 },
      { controller: 'a', op: 'power-on', subject: 'h3', atMs: 99 },
      { controller: 'a', op: 'power-off-soft', subject: 'h1', atMs: 99 },
      // The hard power-off a soft one turned into is fenced again.
      { controller: 'a', op: 'power-off-hard', subject: 'h1', atMs: 99 },
    ]);
  });

  it('a refused fence starts nothing: the driver is never called', async () => {
    const { calls, drivers } = setup(() => false);
    expect((await thrown(drivers.hypervisor.migrate('vm1', 'h1', 'h2', options, signal))).code).toBe('NOT_LEADER');
    expect((await thrown(drivers.hypervisor.abortMigration('vm1', 'h1', signal))).code).toBe('NOT_LEADER');
    expect((await thrown(drivers.power.powerOn('h3', signal))).code).toBe('NOT_LEADER');
    expect((await thrown(drivers.power.powerOff('h3', 'hard', signal))).code).toBe('NOT_LEADER');
    expect(calls).toEqual([]);
  });

  it('leadership lost during a soft power-off: the hard one is not sent', async () => {
    let leading = true;
    const { calls, drivers } = setup(() => leading);
    const slow: PowerDriver = drivers.power;
    leading = true;
    const p = slow.powerOff('h1', 'soft', signal, {
      beforeHardOff: () => {
        leading = false;
        return Promise.resolve();
      },
    });
    expect((await thrown(p)).code).toBe('NOT_LEADER');
    expect(calls).toEqual(['off h1 soft']);
  });
});
