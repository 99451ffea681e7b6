import type { DriverBundle } from '../drivers/driver-bundle.js';
import type { HypervisorDriver } from '../drivers/hypervisor/hypervisor-driver.js';
import type { PowerDriver } from '../drivers/power/power-driver.js';
import type { HostId } from '../model/ids.js';
import type { LeaderGate } from './leader-election.js';

/** What a fenced step records in etcd, in the transaction that checks the leader key. */
export interface StepRecord {
  readonly controller: string;
  readonly op: 'migrate' | 'abort-migration' | 'power-on' | 'power-off-soft' | 'power-off-hard';
  readonly subject: string;
  readonly from?: HostId;
  readonly to?: HostId;
  readonly atMs: number;
}

export const STEP_KEY = 'step';

/**
 * The drivers as a leader may use them: every call that changes a host (a migration, its abort, a
 * power-on, a power-off and the hard power-off a soft one may turn into) first passes the fence, an
 * etcd transaction that checks this controller still leads and records the step under PREFIX/step.
 * The fence is the last thing before the driver's own first request; observation calls pass through.
 */
export function fencedDrivers(drivers: DriverBundle, gate: LeaderGate, prefix: string, wallMs: () => number = Date.now): DriverBundle {
  const fence = (record: Omit<StepRecord, 'controller' | 'atMs'>, signal: AbortSignal) =>
    gate.fence([{ put: { key: `${prefix}${STEP_KEY}`, value: JSON.stringify({ controller: gate.name, ...record, atMs: wallMs() } satisfies StepRecord) } }], signal);
  const h = drivers.hypervisor;
  const hypervisor: HypervisorDriver = {
    inspect: (host, signal) => h.inspect(host, signal),
    listDomains: (host, signal) => h.listDomains(host, signal),
    residentGuests: (host, signal) => h.residentGuests(host, signal),
    preflight: (vm, from, to, signal) => h.preflight(vm, from, to, signal),
    migrate: async (vm, from, to, options, signal, onProgress) => {
      await fence({ op: 'migrate', subject: vm, from, to }, signal);
      return h.migrate(vm, from, to, options, signal, onProgress);
    },
    abortMigration: async (vm, from, signal) => {
      await fence({ op: 'abort-migration', subject: vm, from }, signal);
      return h.abortMigration(vm, from, signal);
    },
  };
  const p = drivers.power;
  const power: PowerDriver = {
    status: (host, signal) => p.status(host, signal),
    powerOn: async (host, signal) => {
      await fence({ op: 'power-on', subject: host }, signal);
      return p.powerOn(host, signal);
    },
    powerOff: async (host, mode, signal, options) => {
      await fence({ op: mode === 'soft' ? 'power-off-soft' : 'power-off-hard', subject: host }, signal);
      const before = options?.beforeHardOff;
      return p.powerOff(host, mode, signal, {
        ...options,
        // The soft power-off may have waited minutes: the hard one is fenced again.
        beforeHardOff: async (s) => {
          await before?.(s);
          await fence({ op: 'power-off-hard', subject: host }, s);
        },
      });
    },
    ...(p.powerReadingWatts ? { powerReadingWatts: (host: HostId, signal: AbortSignal) => (p.powerReadingWatts as NonNullable<PowerDriver['powerReadingWatts']>)(host, signal) } : {}),
    ...(p.systemUuid ? { systemUuid: (host: HostId, signal: AbortSignal) => (p.systemUuid as NonNullable<PowerDriver['systemUuid']>)(host, signal) } : {}),
  };
  return { hypervisor, power, close: () => drivers.close() };
}
