import { describe, expect, it } from 'vitest';
import type { MigrateOptions } from '../../../src/drivers/hypervisor/hypervisor-driver.js';
import { ConsolidatorError, isConsolidatorError } from '../../../src/errors.js';
import { SimulatedDatacenter } from '../../../src/sim/simulated-datacenter.js';
import { SimulatedHypervisor } from '../../../src/sim/simulated-hypervisor.js';
import { SimulatedPower } from '../../../src/sim/simulated-power.js';
import { thrown } from '../../helpers/thrown.js';
import { host, tinySetup, vm } from './tiny-setup.js';

const OPTIONS: MigrateOptions = {
  bandwidthMiBps: 0,
  timeoutMs: 0,
  nonConvergence: 'auto-converge',
  convergenceDeadlineMs: 0,
  persistent: true,
  undefineSource: true,
};

/** Two powered hosts (a VM on each), one spare host off that boots in 60 s; clock at 300 s. */
function world() {
  const setup = tinySetup(
    [host('h0'), host('h1'), host('h2', { bootSeconds: 60, bootWatts: 120 })],
    [vm('v0', [50], { cpu: 500 }), vm('v1', [20], { cpu: 500 })],
    { idleHostsAreOff: false, zeroDemandEndsVm: false, emptyHostsStartOff: true, horizonSeconds: 86_400 },
  );
  const datacenter = new SimulatedDatacenter(setup);
  datacenter.placeInitial('first-fit'); // v0 and v1 both on h0; h1 and h2 start off
  datacenter.powerOn('h1');
  datacenter.advanceTo(300);
  return { datacenter, hypervisor: new SimulatedHypervisor({ datacenter }), power: new SimulatedPower({ datacenter }) };
}

const signal = new AbortController().signal;

describe('SimulatedHypervisor', () => {
  it('inspects a host: capacity, use and domains', async () => {
    const { hypervisor } = world();
    const observation = await hypervisor.inspect('h0', signal);
    expect(observation.capacity).toEqual({ cpu: 1000, memory: 4096 });
    expect(observation.cpuCores).toBe(350);
    expect(observation.memoryUsedMiB).toBe(1250);
    expect(observation.domains.map((d) => [d.name, d.state, d.cpuCores])).toEqual([
      ['v0', 'running', 250],
      ['v1', 'running', 100],
    ]);
  });

  it('a migration really moves the VM, once the clock has passed its duration', async () => {
    const { datacenter, hypervisor } = world();
    let settled = false;
    const migration = hypervisor.migrate('v1', 'h0', 'h1', OPTIONS, signal).then((r) => {
      settled = true;
      return r;
    });
    await Promise.resolve();
    expect((await hypervisor.listDomains('h1', signal)).map((d) => [d.name, d.state])).toEqual([['v1', 'paused']]);
    datacenter.advanceTo(305);
    await Promise.resolve();
    expect(settled).toBe(false);
    datacenter.advanceTo(311);
    expect(await migration).toEqual({ durationMs: 10_000, state: 'running' });
    expect((await hypervisor.listDomains('h0', signal)).map((d) => d.name)).toEqual(['v0']);
    expect((await hypervisor.listDomains('h1', signal)).map((d) => [d.name, d.state])).toEqual([['v1', 'running']]);
  });

  it('residentGuests: every VM on the host, one migrating in included; a host that is off refuses', async () => {
    const { datacenter, hypervisor } = world();
    expect(await hypervisor.residentGuests('h0', signal)).toEqual(['v0', 'v1']);
    expect(await hypervisor.residentGuests('h1', signal)).toEqual([]);
    const migration = hypervisor.migrate('v1', 'h0', 'h1', OPTIONS, signal);
    await Promise.resolve();
    expect(await hypervisor.residentGuests('h0', signal)).toEqual(['v0', 'v1']);
    expect(await hypervisor.residentGuests('h1', signal)).toEqual(['v1']);
    datacenter.advanceTo(311);
    await migration;
    expect(await hypervisor.residentGuests('h0', signal)).toEqual(['v0']);
    expect(isConsolidatorError(await thrown(hypervisor.residentGuests('h2', signal)), 'SSH_CONNECT')).toBe(true);
  });

  it('a scripted failure fails the next migration and leaves the VM where it runs', async () => {
    const { datacenter, hypervisor } = world();
    datacenter.faults.failNextMigration('link down');
    const error = await thrown(hypervisor.migrate('v1', 'h0', 'h1', OPTIONS, signal));
    expect(isConsolidatorError(error, 'MIGRATION_FAILED')).toBe(true);
    expect((error as Error).message).toMatch(/link down/);
    expect(datacenter.vmHost('v1')).toBe('h0');
    expect(await hypervisor.listDomains('h1', signal)).toEqual([]);
    // Only the next one.
    const next = hypervisor.migrate('v1', 'h0', 'h1', OPTIONS, signal);
    datacenter.advanceTo(320);
    await expect(next).resolves.toMatchObject({ state: 'running' });
  });

  it('aborting a migration leaves the VM at its source and releases the destination', async () => {
    const { datacenter, hypervisor } = world();
    const controller = new AbortController();
    const migration = thrown(hypervisor.migrate('v1', 'h0', 'h1', OPTIONS, controller.signal));
    controller.abort();
    expect(isConsolidatorError(await migration, 'ABORTED')).toBe(true);
    datacenter.advanceTo(320);
    expect(datacenter.vmHost('v1')).toBe('h0');
    expect(await hypervisor.listDomains('h1', signal)).toEqual([]);
  });

  it('abortMigration cancels an in-flight migration', async () => {
    const { datacenter, hypervisor } = world();
    const migration = thrown(hypervisor.migrate('v1', 'h0', 'h1', OPTIONS, signal));
    await hypervisor.abortMigration('v1', 'h0', signal);
    expect(isConsolidatorError(await migration, 'ABORTED')).toBe(true);
    datacenter.advanceTo(320);
    expect(datacenter.vmHost('v1')).toBe('h0');
  });

  it('a migration onto a booting host starts after the boot, and can be aborted while it waits', async () => {
    const { datacenter, hypervisor, power } = world();
    await power.powerOn('h2', signal);
    const controller = new AbortController();
    const waiting = thrown(hypervisor.migrate('v0', 'h0', 'h2', OPTIONS, controller.signal));
    controller.abort();
    expect(isConsolidatorError(await waiting, 'ABORTED')).toBe(true);
    const migration = hypervisor.migrate('v1', 'h0', 'h2', OPTIONS, signal);
    datacenter.advanceTo(365);
    expect(datacenter.vmHost('v1')).toBe('h0'); // booted at 360, migrating until 370
    datacenter.advanceTo(371);
    await expect(migration).resolves.toEqual({ durationMs: 10_000, state: 'running' });
    expect(datacenter.vmHost('v1')).toBe('h2');
    expect(datacenter.vmHost('v0')).toBe('h0');
  });

  it('a migration longer than its timeout fails with MIGRATION_TIMEOUT', async () => {
    const { datacenter, hypervisor } = world();
    const migration = thrown(hypervisor.migrate('v1', 'h0', 'h1', { ...OPTIONS, timeoutMs: 5_000 }, signal));
    datacenter.advanceTo(320);
    expect(isConsolidatorError(await migration, 'MIGRATION_TIMEOUT')).toBe(true);
    expect(datacenter.vmHost('v1')).toBe('h0');
  });

  it('refuses a migration onto a powered-off host', async () => {
    const { hypervisor } = world();
    const error = await thrown(hypervisor.migrate('v1', 'h0', 'h2', OPTIONS, signal));
    expect(isConsolidatorError(error, 'MIGRATION_FAILED')).toBe(true);
    expect((error as Error).message).toMatch(/target-off/);
    expect(await hypervisor.preflight('v1', 'h0', 'h2', signal)).toEqual({ ok: false, problems: ['h2 is powered off'] });
    expect(await hypervisor.preflight('v1', 'h0', 'h1', signal)).toEqual({ ok: true, problems: [] });
  });

  it('a vanished host cannot be inspected', async () => {
    const { datacenter, hypervisor, power } = world();
    datacenter.faults.vanishHost('h0');
    expect(isConsolidatorError(await thrown(hypervisor.inspect('h0', signal)), 'SSH_CONNECT')).toBe(true);
    expect(isConsolidatorError(await thrown(power.status('h0', signal)), 'BMC_UNREACHABLE')).toBe(true);
    datacenter.faults.restoreHost('h0');
    await expect(hypervisor.inspect('h0', signal)).resolves.toMatchObject({ host: 'h0' });
  });

  it('an aborted signal aborts the call', async () => {
    const { hypervisor } = world();
    const controller = new AbortController();
    controller.abort();
    expect(isConsolidatorError(await thrown(hypervisor.inspect('h0', controller.signal)), 'ABORTED')).toBe(true);
  });
});

describe('SimulatedPower', () => {
  it('refuses to power off a host that still holds domains', async () => {
    const { datacenter, power } = world();
    const error = await thrown(power.powerOff('h0', 'soft', signal));
    expect(isConsolidatorError(error, 'POWER_FAILED')).toBe(true);
    expect((error as Error).message).toMatch(/still holds 2 domain/);
    expect(datacenter.hostView('h0')?.power).toBe('on');
  });

  it('a powered-off host really goes dark and refuses inspection', async () => {
    const { hypervisor, power } = world();
    expect(await power.status('h1', signal)).toBe('on');
    await power.powerOff('h1', 'soft', signal);
    expect(await power.status('h1', signal)).toBe('off');
    expect(await power.powerReadingWatts('h1', signal)).toBe(0);
    const error = await thrown(hypervisor.inspect('h1', signal));
    expect(isConsolidatorError(error, 'SSH_CONNECT')).toBe(true);
    expect((error as Error).message).toMatch(/powered off/);
  });

  it('a powered-on host answers once it has booted', async () => {
    const { datacenter, hypervisor, power } = world();
    await power.powerOn('h2', signal);
    expect(await power.status('h2', signal)).toBe('on');
    expect(await power.powerReadingWatts('h2', signal)).toBe(120);
    expect((await thrown(hypervisor.inspect('h2', signal))).message).toMatch(/booting/);
    datacenter.advanceTo(360);
    await expect(hypervisor.inspect('h2', signal)).resolves.toMatchObject({ host: 'h2', domains: [] });
  });

  it('a host that ignores soft-off is re-checked before it is powered off hard', async () => {
    const { datacenter, power } = world();
    power.ignoringSoftOff.add('h1');
    const refusal = new ConsolidatorError('GUESTS_PRESENT', 'a domain arrived');
    expect(await thrown(power.powerOff('h1', 'soft', signal, { beforeHardOff: () => Promise.reject(refusal) }))).toBe(refusal);
    expect(datacenter.hostView('h1')?.power).toBe('on');
    let checked = 0;
    await power.powerOff('h1', 'soft', signal, { beforeHardOff: async () => void (checked += 1) });
    expect(checked).toBe(1);
    expect(await power.status('h1', signal)).toBe('off');
  });

  it('a scripted BMC timeout fails the next calls to that BMC only', async () => {
    const { datacenter, power } = world();
    datacenter.faults.timeOutBmc('h1', 2);
    expect(isConsolidatorError(await thrown(power.status('h1', signal)), 'POWER_TIMEOUT')).toBe(true);
    expect(isConsolidatorError(await thrown(power.powerOff('h1', 'hard', signal)), 'POWER_TIMEOUT')).toBe(true);
    expect(await power.status('h0', signal)).toBe('on');
    expect(await power.status('h1', signal)).toBe('on');
  });
});
