import { describe, expect, it } from 'vitest';
import type { DriverBundle } from '../../../src/drivers/driver-bundle.js';
import type { HostId } from '../../../src/model/ids.js';
import type { StateStore } from '../../../src/state/state-store.js';
import { advanceUntil, cycleAt, placed, startTestDaemon, testHosts, testSetup, worldViolations, type TestDaemon, type TestVm } from '../../helpers/sim-daemon.js';

const HOSTS = testHosts(5);
const VMS: TestVm[] = [
  { id: 'a', host: 'h1', load: 0.5 },
  { id: 'b', host: 'h1', load: 0.4 },
  { id: 'c', host: 'h2', load: 0.3 },
  { id: 'd', host: 'h3', load: 0.3 },
  { id: 'e', host: 'h4', load: 0.2 },
  { id: 'f', host: 'h5', load: 0.2 },
];

/**
 * A process killed with SIGKILL: from the moment `kill()` is called, nothing it started returns and
 * nothing new it asks for happens. Work already handed to a host (a migration under way, a BMC
 * command sent) carries on without it, as it would in a datacenter.
 */
class KillSwitch {
  calls = 0;
  dead = false;
  constructor(private readonly killAfterCalls: number) {}

  private gate<T>(fn: () => Promise<T>): Promise<T> {
    if (this.dead) return new Promise<T>(() => undefined);
    if (++this.calls >= this.killAfterCalls) this.dead = true;
    return fn();
  }

  drivers = (b: DriverBundle): DriverBundle => ({
    hypervisor: {
      inspect: (h, s) => this.gate(() => b.hypervisor.inspect(h, s)),
      listDomains: (h, s) => this.gate(() => b.hypervisor.listDomains(h, s)),
      preflight: (vm, f, t, s) => this.gate(() => b.hypervisor.preflight(vm, f, t, s)),
      migrate: (vm, f, t, o, s, p) => this.gate(() => b.hypervisor.migrate(vm, f, t, o, s, p)),
      abortMigration: (vm, f, s) => this.gate(() => b.hypervisor.abortMigration(vm, f, s)),
      residentGuests: (h, s) => this.gate(() => b.hypervisor.residentGuests(h, s)),
    },
    power: {
      status: (h, s) => this.gate(() => b.power.status(h, s)),
      powerOn: (h, s) => this.gate(() => b.power.powerOn(h, s)),
      powerOff: (h, m, s) => this.gate(() => b.power.powerOff(h, m, s)),
    },
    close: async () => undefined,
  });

  store = (s: StateStore): StateStore => ({
    load: () => s.load(),
    save: (state) => this.gate(() => s.save(state)),
  });
}

/** Records power calls across daemons: the safety rules are about what was ever asked. */
function watched(t: () => TestDaemon, record: { offWithVms: string[]; offByUs: Set<HostId>; onNotOurs: string[] }) {
  return (b: DriverBundle): DriverBundle => ({
    ...b,
    power: {
      status: (h, s) => b.power.status(h, s),
      powerOff: (h, m, s) => {
        const vms = t().datacenter.hostView(h)?.vms ?? [];
        if (vms.length > 0) record.offWithVms.push(`${h}: ${vms.map((v) => v.id).join(',')}`);
        record.offByUs.add(h);
        return b.power.powerOff(h, m, s);
      },
      powerOn: (h, s) => {
        if (!record.offByUs.has(h)) record.onNotOurs.push(h);
        return b.power.powerOn(h, s);
      },
    },
  });
}

describe('restart safety: killed at any point of a cycle, then restarted', () => {
  it('reconciles from what the hosts report: every VM once, no host off with a VM, only its own hosts woken', async () => {
    const KILL_POINTS = 36;
    for (let killAfter = 1; killAfter <= KILL_POINTS; killAfter++) {
      const setup = testSetup(HOSTS, VMS);
      const datacenter = placed(setup);
      const record = { offWithVms: [] as string[], offByUs: new Set<HostId>(), onNotOurs: [] as string[] };
      let current: TestDaemon | undefined;
      const first = await startTestDaemon({ setup, datacenter, wrapDrivers: (b) => watched(() => current as TestDaemon, record)(b) });
      current = first;
      for (const at of [300, 600, 900]) await cycleAt(first, at);
      // The draining cycle, with a kill switch: the daemon dies after `killAfter` more calls.
      const kill = new KillSwitch(killAfter);
      const doomed = await startTestDaemon({
        setup,
        datacenter,
        dir: first.dir,
        wrapDrivers: (b) => kill.drivers(watched(() => current as TestDaemon, record)(b)),
        wrapStore: kill.store,
      });
      await first.daemon.stop();
      current = doomed;
      void doomed.daemon.runCycle();
      await advanceUntil(datacenter, () => kill.dead, { pauseMs: 2, maxSteps: 400 });
      datacenter.advanceTo(datacenter.nowSeconds + 120); // what was under way finishes (or not) on its own
      // Restart: a fresh daemon on the same state directory and the same datacenter.
      const restarted = await startTestDaemon({ setup, datacenter, dir: first.dir, wrapDrivers: (b) => watched(() => current as TestDaemon, record)(b) });
      current = restarted;
      // Long enough for cooldowns of interrupted drains (1800 s) to end and consolidation to resume.
      for (const at of [1500, 1800, 2100, 2400, 2700, 3000, 3300, 3600, 3900]) {
        const report = await cycleAt(restarted, at);
        expect(report.result, `kill after ${killAfter}: ${report.error?.message}`).toBe('ok');
      }
      await restarted.daemon.stop();
      const where = `killed after ${killAfter} calls`;
      expect(worldViolations(datacenter, VMS.map((v) => v.id), HOSTS.map((h) => h.id)), where).toEqual([]);
      expect(record.offWithVms, where).toEqual([]);
      expect(record.onNotOurs, where).toEqual([]);
      // Consolidation still happens after the restart.
      expect(HOSTS.filter((h) => datacenter.hostView(h.id)?.power === 'off').length, where).toBeGreaterThanOrEqual(2);
    }
  }, 120_000);
});
