import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DriverBundle } from '../../../src/drivers/driver-bundle.js';
import type { HypervisorDriver } from '../../../src/drivers/hypervisor/hypervisor-driver.js';
import { ConsolidatorError } from '../../../src/errors.js';
import type { HostId } from '../../../src/model/ids.js';
import type { SimulatedPower } from '../../../src/sim/simulated-power.js';
import { planCycle } from '../../../src/planner/plan-cycle.js';
import { parse, stringify } from 'yaml';
import { advanceUntil, cycleAt, daemonsStoppedAfterEach, withClock, logLines, testSetup, THIN_HOSTS, THIN_VMS, worldViolations, writePolicy, type TestDaemon } from '../../helpers/sim-daemon.js';

const VM_IDS = THIN_VMS.map((v) => v.id);
const HOST_IDS = THIN_HOSTS.map((h) => h.id);

/** Records every power call and checks, at the moment of each power-off, that the host is empty. */
function recordingPower(t: () => TestDaemon, log: { off: HostId[]; on: HostId[]; offWithVms: string[] }) {
  return (bundle: DriverBundle): DriverBundle => ({
    ...bundle,
    power: {
      status: (h, s) => bundle.power.status(h, s),
      powerOn: (h, s) => {
        log.on.push(h);
        return bundle.power.powerOn(h, s);
      },
      powerOff: (h, mode, s, options) => {
        const vms = t().datacenter.hostView(h)?.vms ?? [];
        if (vms.length > 0) log.offWithVms.push(`${h}: ${vms.map((v) => v.id).join(',')}`);
        log.off.push(h);
        return bundle.power.powerOff(h, mode, s, options);
      },
    },
  });
}

/**
 * The bundle's hypervisor with some calls replaced and every other one passed on. Not `{ ...base }`:
 * the simulated hypervisor is a class instance, and a spread drops its methods (a power-off would then
 * fail on the missing residentGuests with INTERNAL instead of running).
 */
function hypervisorWith(base: HypervisorDriver, overrides: Partial<HypervisorDriver>): HypervisorDriver {
  return {
    inspect: (h, s) => base.inspect(h, s),
    listDomains: (h, s) => base.listDomains(h, s),
    residentGuests: (h, s) => base.residentGuests(h, s),
    preflight: (vm, from, to, s) => base.preflight(vm, from, to, s),
    migrate: (vm, from, to, options, s, onProgress) => base.migrate(vm, from, to, options, s, onProgress),
    abortMigration: (vm, from, s) => base.abortMigration(vm, from, s),
    ...overrides,
  };
}

const startDaemon = daemonsStoppedAfterEach();

/** Cycles until hosts are underloaded long enough to be drained (600 s), then one more. */
async function warmUp(t: TestDaemon): Promise<void> {
  for (const at of [300, 600, 900]) await cycleAt(t, at);
}

describe('the daemon under faults (simulated datacenter)', () => {
  it('a failed migration skips the power-off that depended on it and cools the hosts down', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS) });
    await warmUp(t);
    t.datacenter.faults.failNextMigration('simulated link failure');
    const report = await cycleAt(t, 1200);
    const failed = report.outcomes.filter((o) => o.result === 'failed');
    expect(failed).toHaveLength(1);
    const migration = failed[0]?.action;
    expect(migration?.type).toBe('migrate');
    if (migration?.type !== 'migrate') return;
    const powerOff = report.outcomes.find((o) => o.action.type === 'power-off' && o.action.host === migration.from);
    expect(powerOff?.result).toBe('skipped');
    if (powerOff?.result !== 'skipped') return;
    expect(powerOff.reason).toBe('DependencyNotOk');
    expect(powerOff.detail).toContain('which failed');
    expect(t.datacenter.hostView(migration.from)?.power).toBe('on');
    expect(t.daemon.state.plannerMemory.hostCooldowns[migration.from]?.reason).toBe('failed');
    expect(worldViolations(t.datacenter, VM_IDS, HOST_IDS)).toEqual([]);
    const metrics = await t.daemon.registry.metrics();
    expect(metrics).toMatch(/consolidator_actions_executed_total\{type="migrate",result="failed"\} 1/);
    expect(metrics).toMatch(/consolidator_actions_skipped_total\{type="power-off",reason="DependencyNotOk"\} 1/);
    expect(metrics).toMatch(/consolidator_action_failures_total\{type="migrate",code="MIGRATION_FAILED"\} 1/);
    const history = t.daemon.history(100);
    expect(history.find((h) => h.actionId === powerOff.action.id)).toMatchObject({ result: 'skipped', code: 'DependencyNotOk' });
  });

  it('a BMC that times out leaves the host on, recorded, and the cycle goes on', async () => {
    const calls = { off: [] as HostId[], on: [] as HostId[], offWithVms: [] as string[] };
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS), wrapDrivers: recordingPower(() => t, calls) });
    await warmUp(t);
    for (const h of HOST_IDS) t.datacenter.faults.timeOutBmc(h, 1);
    const report = await cycleAt(t, 1200);
    const offs = report.outcomes.filter((o) => o.action.type === 'power-off');
    expect(offs.length).toBeGreaterThan(0);
    for (const o of offs) {
      expect(o.result).toBe('failed');
      expect(o.result === 'failed' ? o.errorCode : undefined).toBe('POWER_TIMEOUT');
    }
    expect(HOST_IDS.every((h) => t.datacenter.hostView(h)?.power === 'on')).toBe(true);
    expect(t.daemon.state.poweredOffByUs()).toEqual([]);
    expect(calls.offWithVms).toEqual([]);
    expect(worldViolations(t.datacenter, VM_IDS, HOST_IDS)).toEqual([]);
    // The next cycles go on; failed hosts cool down, nothing is powered off by mistake.
    const next = await cycleAt(t, 1500);
    expect(next.result).toBe('ok');
    expect(calls.offWithVms).toEqual([]);
  });

  it('a host that vanishes mid-drain is not powered off, and no VM is lost', async () => {
    const calls = { off: [] as HostId[], on: [] as HostId[], offWithVms: [] as string[] };
    let vanished: HostId | undefined;
    const t = await startDaemon({
      setup: testSetup(THIN_HOSTS, THIN_VMS),
      wrapDrivers: (bundle) => {
        const recorded = recordingPower(() => t, calls)(bundle);
        return {
          ...recorded,
          hypervisor: hypervisorWith(bundle.hypervisor, {
            migrate: async (vm, from, to, options, s, onProgress) => {
              const result = await bundle.hypervisor.migrate(vm, from, to, options, s, onProgress);
              if (vanished === undefined) {
                vanished = from;
                t.datacenter.faults.vanishHost(from);
              }
              return result;
            },
          }),
        };
      },
    });
    await warmUp(t);
    await cycleAt(t, 1200);
    expect(vanished).toBeDefined();
    expect(calls.off).not.toContain(vanished);
    expect(calls.offWithVms).toEqual([]);
    t.datacenter.faults.restoreHost(vanished as HostId);
    const report = await cycleAt(t, 1500);
    expect(report.result).toBe('ok');
    expect(worldViolations(t.datacenter, VM_IDS, HOST_IDS)).toEqual([]);
  });

  it('a state save that fails mid-act (disk full) leaves no step unsupervised: running ones are awaited, none starts after', async () => {
    const calls = { off: [] as HostId[], on: [] as HostId[], offWithVms: [] as string[] };
    let failSaves = false;
    let saves = 0;
    const t = await startDaemon({
      setup: testSetup(THIN_HOSTS, THIN_VMS),
      policy: { safety: { minHostsOn: 1, hostCooldownSeconds: 1800, vmCooldownSeconds: 1800, maxMigrationsPerCycle: 20, maxConcurrentMigrations: 1, maxConcurrentMigrationsPerHost: 1 } },
      wrapDrivers: recordingPower(() => t, calls),
      wrapStore: (store) => ({
        load: () => store.load(),
        save: async (state) => {
          // The cycle's saves: the plan (persist) and the first step's start go through, then the disk is full.
          if (failSaves && ++saves > 2) throw new ConsolidatorError('STATE_IO', 'cannot save the state: ENOSPC: no space left on device, write');
          return store.save(state);
        },
      }),
    });
    await warmUp(t);
    failSaves = true;
    const report = await cycleAt(t, 1200);
    failSaves = false;
    const started = report.outcomes.filter((o) => o.result === 'ok' || o.result === 'failed');
    const skipped = report.outcomes.filter((o) => o.result === 'skipped');
    expect(report.outcomes.length).toBeGreaterThan(1);
    // The one step that started ran to its end under supervision; every later one was held back.
    expect(started).toHaveLength(1);
    expect(report.result).toBe('failed');
    expect(report.error?.code).toBe('STATE_IO');
    expect(skipped.length).toBe(report.outcomes.length - 1);
    expect(skipped.every((o) => o.result === 'skipped' && (o.reason === 'StateNotSaved' || o.reason === 'DependencyNotOk'))).toBe(true);
    expect(calls.off).toEqual([]);
    expect(worldViolations(t.datacenter, VM_IDS, HOST_IDS)).toEqual([]);
    expect(logLines(t).some((l) => l['message'] === 'step outcome not saved: no new step starts')).toBe(true);
    expect(await t.daemon.registry.metrics()).toMatch(/consolidator_actions_skipped_total\{type="[a-z-]+",reason="StateNotSaved"\} [1-9]/);
    // Once the disk has room again, the next cycle goes on.
    const next = await cycleAt(t, 1500);
    expect(next.result).toBe('ok');
    expect(worldViolations(t.datacenter, VM_IDS, HOST_IDS)).toEqual([]);
  });

  it('never empties or powers off the host of the VM the daemon runs in (its system UUID)', async () => {
    const SELF = '4c4c4544-0042-3510-8048-b4c04f4e3232';
    const calls = { off: [] as HostId[], on: [] as HostId[], offWithVms: [] as string[] };
    // Every host is underloaded: without the check, h4 (the controller's host) would be emptied too.
    const t = await startDaemon({
      setup: testSetup(THIN_HOSTS, THIN_VMS),
      selfUuid: SELF.toUpperCase(),
      wrapDrivers: (bundle) => {
        const recorded = recordingPower(() => t, calls)(bundle);
        const withUuid = <T extends { name: string }>(d: T): T => (d.name === 'e' ? { ...d, uuid: SELF } : d);
        return {
          ...recorded,
          hypervisor: hypervisorWith(bundle.hypervisor, {
            inspect: async (h, s) => {
              const o = await bundle.hypervisor.inspect(h, s);
              return { ...o, domains: o.domains.map(withUuid) };
            },
            listDomains: async (h, s) => (await bundle.hypervisor.listDomains(h, s)).map(withUuid),
          }),
        };
      },
    });
    await warmUp(t);
    for (const at of [1200, 1500, 1800]) {
      const report = await cycleAt(t, at);
      expect(report.plan?.verdicts.find((v) => v.host === 'h4')?.reason).toBe('ProtectedVm');
      expect(report.outcomes.some((o) => o.action.type === 'migrate' && o.action.vm === 'e')).toBe(false);
    }
    expect(calls.off.length).toBeGreaterThan(0);
    expect(calls.off).not.toContain('h4');
    expect(t.datacenter.hostView('h4')?.vms.map((v) => v.id)).toContain('e');
    expect(logLines(t).some((l) => String(l['message']).startsWith('the daemon runs in this VM') && l['vm'] === 'e')).toBe(true);
  });

  it('a BMC that reports another machine’s system UUID: that power-off fails IDENTITY_MISMATCH, the host stays on, marked', async () => {
    const MISWIRED: HostId = 'h3';
    /** What each host itself reports (its DMI product_uuid), and what its BMC reports: h3's BMC is another machine's. */
    const hostUuid = (h: HostId) => `d31d0000-0000-4000-8000-0000000000${h.slice(1).padStart(2, '0')}`;
    const bmcUuid = (h: HostId) => (h === MISWIRED ? '4c4c4544-0051-3410-8051-b5c04f375931' : hostUuid(h));
    const calls = { off: [] as HostId[], on: [] as HostId[], offWithVms: [] as string[] };
    const asked: HostId[] = [];
    const t = await startDaemon({
      setup: testSetup(THIN_HOSTS, THIN_VMS),
      wrapDrivers: (bundle) => {
        const recorded = recordingPower(() => t, calls)(bundle);
        return {
          ...recorded,
          power: {
            ...recorded.power,
            systemUuid: async (h) => {
              asked.push(h);
              return bmcUuid(h);
            },
          },
          hypervisor: hypervisorWith(bundle.hypervisor, {
            inspect: async (h, s) => ({ ...(await bundle.hypervisor.inspect(h, s)), systemUuid: hostUuid(h).toUpperCase() }),
          }),
        };
      },
    });
    await warmUp(t);
    const report = await cycleAt(t, 1200);
    const offs = report.outcomes.filter((o) => o.action.type === 'power-off');
    const refused = offs.find((o) => o.action.type === 'power-off' && o.action.host === MISWIRED);
    expect(refused?.result).toBe('failed');
    if (refused?.result !== 'failed') return;
    expect(refused.errorCode).toBe('IDENTITY_MISMATCH');
    // The other hosts' BMCs are theirs: their power-offs went through, after the same check.
    expect(offs.filter((o) => o !== refused).map((o) => o.result)).toEqual(offs.filter((o) => o !== refused).map(() => 'ok'));
    expect(offs.length).toBeGreaterThan(1);
    expect(asked).toContain(MISWIRED);
    // No power-off of h3 reached the datacenter: it stays on (empty by now: its VM was moved first).
    expect(calls.off).not.toContain(MISWIRED);
    expect(t.datacenter.hostView(MISWIRED)?.power).toBe('on');
    expect(t.daemon.state.poweredOffByUs()).not.toContain(MISWIRED);
    expect(t.daemon.state.hostsNeedingAttention()).toEqual([MISWIRED]);
    expect(t.daemon.state.state.attention.hosts[MISWIRED]).toMatchObject({ reason: 'IdentityMismatch', errorCode: 'IDENTITY_MISMATCH' });
    expect(t.daemon.state.state.attention.hosts[MISWIRED]?.message).toContain(`its BMC reports system UUID ${bmcUuid(MISWIRED)}, but ${MISWIRED} itself reports ${hostUuid(MISWIRED)}`);
    const metrics = await t.daemon.registry.metrics();
    expect(metrics).toMatch(/consolidator_action_failures_total\{type="power-off",code="IDENTITY_MISMATCH"\} 1/);
    expect(metrics).toMatch(/consolidator_hosts_needing_attention\{host="h3",reason="IdentityMismatch"\} 1/);
    expect(worldViolations(t.datacenter, VM_IDS, HOST_IDS)).toEqual([]);
    // Later cycles leave it alone until an operator looks.
    await cycleAt(t, 1500);
    expect(calls.off).not.toContain(MISWIRED);
    expect(t.datacenter.hostView(MISWIRED)?.power).toBe('on');
  });

  it('a plan that breaks an invariant runs nothing: no migration, no power action', async () => {
    const calls = { off: [] as HostId[], on: [] as HostId[], offWithVms: [] as string[] };
    let breakPlans = false;
    const t = await startDaemon({
      setup: testSetup(THIN_HOSTS, THIN_VMS),
      wrapDrivers: recordingPower(() => t, calls),
      // The real plan, plus a power-off of h1 while it still runs a and b (power-off-not-empty).
      planner: (input) => {
        const plan = planCycle(input);
        if (!breakPlans) return plan;
        return { ...plan, actions: [...plan.actions, { id: '99-power-off-h1', type: 'power-off', host: 'h1', estimatedSavingWatts: 100, dependsOn: [] }] };
      },
    });
    await warmUp(t);
    breakPlans = true;
    const before = HOST_IDS.map((h) => t.datacenter.hostView(h)?.vms.map((v) => v.id).sort().join(','));
    const report = await cycleAt(t, 1200);
    expect(report.result).toBe('failed');
    expect(report.error?.code).toBe('INVARIANT_VIOLATED');
    expect(report.violations.map((v) => v.invariant)).toContain('power-off-not-empty');
    expect(report.outcomes).toEqual([]);
    expect(calls.off).toEqual([]);
    expect(HOST_IDS.map((h) => t.datacenter.hostView(h)?.vms.map((v) => v.id).sort().join(','))).toEqual(before);
    expect(t.daemon.state.interrupted).toBeUndefined();
    expect(logLines(t).some((l) => l['message'] === 'plan breaks an invariant: nothing runs this cycle' && l['invariant'] === 'power-off-not-empty')).toBe(true);
    expect(await t.daemon.registry.metrics()).toMatch(/consolidator_errors_total\{code="INVARIANT_VIOLATED"\} 1/);
  });

  it('a host that ignores the soft power-off is re-checked before the hard one: a guest that arrived meanwhile stops it', async () => {
    const arrived: string[] = [];
    const t = await startDaemon({
      setup: testSetup(THIN_HOSTS, THIN_VMS),
      wrapDrivers: (bundle) => {
        for (const h of HOST_IDS) (bundle.power as SimulatedPower).ignoringSoftOff.add(h);
        return {
          ...bundle,
          power: {
            ...bundle.power,
            status: (h, s) => bundle.power.status(h, s),
            powerOn: (h, s) => bundle.power.powerOn(h, s),
            powerOff: (h, mode, s, options) =>
              bundle.power.powerOff(h, mode, s, {
                beforeHardOff: async (signal) => {
                  // While the host ignored the ACPI request, someone migrated a guest onto it by hand.
                  const guest = VM_IDS.find((vm) => t.datacenter.vmHost(vm) !== h && t.datacenter.hostView(t.datacenter.vmHost(vm) ?? '')?.power === 'on');
                  if (guest !== undefined && arrived.length === 0 && t.datacenter.startMigration(guest, t.datacenter.vmHost(guest) ?? '', h) === undefined) arrived.push(`${guest}->${h}`);
                  await options?.beforeHardOff?.(signal);
                },
              }),
          },
        };
      },
    });
    await warmUp(t);
    const report = await cycleAt(t, 1200);
    const offs = report.outcomes.filter((o) => o.action.type === 'power-off');
    expect(arrived).toHaveLength(1);
    const target = (arrived[0] as string).split('->')[1] as HostId;
    const refused = offs.find((o) => o.action.type === 'power-off' && o.action.host === target);
    expect(refused?.result).toBe('failed');
    expect(refused?.result === 'failed' ? refused.errorCode : undefined).toBe('GUESTS_PRESENT');
    expect(t.datacenter.hostView(target)?.power).toBe('on');
    expect(t.daemon.state.state.attention.hosts[target]?.reason).toBe('GuestsAtHardOff');
    expect(t.daemon.state.poweredOffByUs()).not.toContain(target);
    t.datacenter.advanceTo(t.datacenter.nowSeconds + 600);
    expect(worldViolations(t.datacenter, VM_IDS, HOST_IDS)).toEqual([]);
  });

  it('a reload that changes the hosts waits for a running drain: its drivers are never closed under it', async () => {
    let migrating = 0;
    const closes: { migrating: number }[] = [];
    const t = await startDaemon({
      setup: testSetup(THIN_HOSTS, THIN_VMS),
      wrapDrivers: (bundle) => ({
        ...bundle,
        hypervisor: hypervisorWith(bundle.hypervisor, {
          migrate: async (vm, from, to, options, s, onProgress) => {
            migrating++;
            try {
              return await bundle.hypervisor.migrate(vm, from, to, options, s, onProgress);
            } finally {
              migrating--;
            }
          },
        }),
        close: async () => {
          closes.push({ migrating });
          await bundle.close();
        },
      }),
    });
    await warmUp(t);
    const drain = t.daemon.drain('h1', { powerOff: false, dryRun: false });
    let drained = false;
    void drain.finally(() => {
      drained = true;
    });
    // Once a migration of the drain runs, the operator edits the hosts and reloads.
    await advanceUntil(t.datacenter, () => migrating > 0);
    const policy = parse(readFileSync(t.policyFile, 'utf8')) as { hosts: { labels?: Record<string, string> }[] };
    (policy.hosts[0] as { labels?: Record<string, string> }).labels = { rack: 'r1' };
    writePolicy(t, stringify(policy));
    let reloaded = false;
    const reload = t.daemon.reload().then((ok) => {
      reloaded = true;
      expect(drained).toBe(true);
      return ok;
    });
    const result = await withClock(t.datacenter, drain);
    expect(result.ok).toBe(true);
    expect(await reload).toBe(true);
    expect(reloaded).toBe(true);
    expect(closes).toEqual([{ migrating: 0 }]);
    expect(t.daemon.policy.hosts[0]?.labels).toEqual({ rack: 'r1' });
    expect(worldViolations(t.datacenter, VM_IDS, HOST_IDS)).toEqual([]);
  });

  it('on bare metal: the host whose system UUID is the daemon\'s own is observed only, never emptied or powered off', async () => {
    const SELF = 'd31d0000-0000-4000-8000-000000000004';
    const calls = { off: [] as HostId[], on: [] as HostId[], offWithVms: [] as string[] };
    const t = await startDaemon({
      setup: testSetup(THIN_HOSTS, THIN_VMS),
      selfUuid: SELF,
      wrapDrivers: (bundle) => {
        const recorded = recordingPower(() => t, calls)(bundle);
        return {
          ...recorded,
          hypervisor: hypervisorWith(bundle.hypervisor, {
            inspect: async (h, s) => ({ ...(await bundle.hypervisor.inspect(h, s)), systemUuid: `d31d0000-0000-4000-8000-00000000000${h.slice(1)}` }),
          }),
        };
      },
    });
    await warmUp(t);
    for (const at of [1200, 1500]) {
      const report = await cycleAt(t, at);
      expect(report.plan?.verdicts.find((v) => v.host === 'h4')?.reason).toBe('Excluded');
    }
    expect(calls.off.length).toBeGreaterThan(0);
    expect(calls.off).not.toContain('h4');
    expect(logLines(t).some((l) => l['message'] === 'the daemon runs on this host: observed only, never emptied or powered off' && l['host'] === 'h4')).toBe(true);
  });

  it('an operator command queued behind a cycle does not start once a stop has begun', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS) });
    await warmUp(t);
    const cycle = t.daemon.runCycle();
    // Settled at once, so its rejection is handled whenever it comes.
    const drain = t.daemon.drain('h1', { powerOff: true, dryRun: false }).then(
      () => 'it ran',
      (e: unknown) => e,
    );
    const stopped = t.daemon.stop();
    await withClock(t.datacenter, Promise.allSettled([cycle, stopped]));
    expect(await drain).toMatchObject({ code: 'ABORTED' });
    expect(t.daemon.state.isInMaintenance('h1')).toBe(false);
    expect(worldViolations(t.datacenter, VM_IDS, HOST_IDS)).toEqual([]);
  });

  it('a truncated state file is reported and rebuilt; the daemon runs on', async () => {
    const first = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS) });
    await warmUp(first);
    await cycleAt(first, 1200);
    await first.daemon.stop();
    const file = join(first.dir, 'state.json');
    writeFileSync(file, readFileSync(file, 'utf8').slice(0, 40));
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS), dir: first.dir, datacenter: first.datacenter });
    const warning = logLines(t).find((l) => l['message'] === 'state not loaded');
    expect(String(warning?.['problem'])).toMatch(/state\.json is corrupt .*moved to .*state\.json\.corrupt-/);
    const report = await cycleAt(t, 1500);
    expect(report.result).toBe('ok');
    // Forgotten: which hosts it powered off. They stay off (never woken by a daemon that does not know them).
    expect(t.daemon.state.poweredOffByUs()).toEqual([]);
    expect(worldViolations(t.datacenter, VM_IDS, HOST_IDS)).toEqual([]);
  });

  it('a broken policy on reload is rejected with its errors and the last good policy stays', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS) });
    writePolicy(t, 'version: 1\nmode: enforced\nhosts: []\n');
    expect(await t.daemon.reload()).toBe(false);
    expect(t.daemon.policy.policy.mode).toBe('enforce');
    const rejected = logLines(t).filter((l) => l['message'] === 'policy rejected on reload; keeping the last good policy');
    expect(rejected.map((l) => l['issue'])).toEqual([
      expect.stringMatching(/policy\.yaml:2:7 mode: must be one of "enforce", "dry-run", got "enforced"/),
      expect.stringMatching(/policy\.yaml:3:8 hosts: list at least one host/),
    ]);
    const report = await cycleAt(t, 300);
    expect(report.result).toBe('ok');
    expect(await t.daemon.registry.metrics()).toMatch(/consolidator_errors_total\{code="POLICY_INVALID"\} 1/);
  });

  it('a valid policy on reload takes effect at the next cycle', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS) });
    writePolicy(t, readFileSync(t.policyFile, 'utf8').replace('mode: enforce', 'mode: dry-run'));
    expect(await t.daemon.reload()).toBe(true);
    expect(t.daemon.policy.policy.mode).toBe('dry-run');
    await warmUp(t);
    await cycleAt(t, 1200);
    expect(t.datacenter.totals().migrations).toBe(0);
  });
});
