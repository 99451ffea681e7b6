import { describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/config/schema.js';
import type { DriverBundle } from '../../../src/drivers/driver-bundle.js';
import { ConsolidatorError } from '../../../src/errors.js';
import type { HostId } from '../../../src/model/ids.js';
import type { CycleReport } from '../../../src/daemon/cycle-report.js';
import { cycleAt, daemonsStoppedAfterEach, logLines, placed, testSetup, THIN_HOSTS, THIN_VMS, worldViolations, type TestDaemon } from '../../helpers/sim-daemon.js';

const startDaemon = daemonsStoppedAfterEach();

const HOUR = 3600;
/** Due one hour after the power-off (afterDays is a number of days; fractions are allowed). */
const AFTER_DAYS = 1 / 24;

function proofPolicy(proofOfBoot: Record<string, unknown> = {}, extra: Partial<PolicyInput> = {}): Partial<PolicyInput> {
  return { power: { driver: 'simulated', bootTimeoutSeconds: 300, proofOfBoot: { afterDays: AFTER_DAYS, ...proofOfBoot } }, ...extra } as Partial<PolicyInput>;
}

/**
 * The THIN cluster's first drains: cycles until hosts are underloaded long enough, then the draining
 * one (cycleAt runs a cycle now, then moves the clock on: the last one ran at 1200 s, the clock is at 1500 s).
 */
async function drain(t: TestDaemon): Promise<HostId[]> {
  for (const at of [300, 600, 900, 1200]) await cycleAt(t, at);
  await cycleAt(t, 1500);
  const off = t.daemon.state.poweredOffByUs();
  expect(off.length).toBeGreaterThanOrEqual(2);
  return off;
}

function proofsIn(report: CycleReport): { host: HostId; result: string; code?: string }[] {
  return report.outcomes.flatMap((o) =>
    o.action.type === 'power-on' && o.action.reason === 'ProofOfBoot' ? [{ host: o.action.host, result: o.result, ...(o.result === 'failed' ? { code: o.errorCode } : {}) }] : [],
  );
}

/** The bundle with the hypervisor of `broken()` never answering: a host that powers on but does not boot. */
function neverBoots(broken: () => HostId | undefined) {
  return (bundle: DriverBundle): DriverBundle => {
    const base = bundle.hypervisor;
    return {
      ...bundle,
      hypervisor: {
        inspect: (h, s) => (h === broken() ? Promise.reject(new ConsolidatorError('SSH_CONNECT', `${h}: connection refused`)) : base.inspect(h, s)),
        listDomains: (h, s) => base.listDomains(h, s),
        residentGuests: (h, s) => base.residentGuests(h, s),
        preflight: (vm, from, to, s) => base.preflight(vm, from, to, s),
        migrate: (vm, from, to, options, s, onProgress) => base.migrate(vm, from, to, options, s, onProgress),
        abortMigration: (vm, from, s) => base.abortMigration(vm, from, s),
      },
    };
  };
}

describe('proof of boot (daemon, simulated datacenter)', () => {
  it('wakes the host kept off longest once afterDays have passed, waits for its hypervisor, leaves it on, and remembers the proof across a restart', async () => {
    const setup = testSetup(THIN_HOSTS, THIN_VMS);
    const datacenter = placed(setup);
    const policy = proofPolicy();
    const t = await startDaemon({ setup, datacenter, policy });
    const off = await drain(t);
    const offAt = t.daemon.state.poweredOffAtMs();
    const longestOff = [...off].sort((a, b) => (offAt[a] as number) - (offAt[b] as number) || a.localeCompare(b))[0] as HostId;

    // Not yet due: nothing woken.
    datacenter.advanceTo(1500 + HOUR / 2);
    const early = await cycleAt(t);
    expect(proofsIn(early)).toEqual([]);
    expect(early.plan?.verdicts.find((v) => v.host === longestOff)).toMatchObject({ outcome: 'stays-off', reason: 'PoweredOff' });

    datacenter.advanceTo(1500 + HOUR + 600);
    const report = await cycleAt(t);
    expect(report.result).toBe('ok');
    // One host at a time (maxHostsPerCycle 1), the one off longest.
    expect(proofsIn(report)).toEqual([{ host: longestOff, result: 'ok' }]);
    expect(datacenter.hostView(longestOff)?.power).toBe('on');
    expect(t.daemon.state.poweredOffByUs()).not.toContain(longestOff);
    const proof = t.daemon.state.proofsOfBoot()[longestOff];
    expect(proof).toMatchObject({ result: 'ok' });
    // Waited for the hypervisor: the simulated host boots in 60 s.
    expect(proof?.durationMs).toBeGreaterThanOrEqual(60_000);
    expect(t.daemon.history(100).find((h) => h.type === 'power-on' && h.subject === longestOff)).toMatchObject({ result: 'ok' });
    expect(logLines(t).some((l) => l['message'] === 'powering on' && l['reason'] === 'ProofOfBoot' && l['host'] === longestOff)).toBe(true);
    expect(logLines(t).some((l) => l['message'] === 'proof of boot passed' && l['host'] === longestOff)).toBe(true);
    const metrics = await t.daemon.registry.metrics();
    expect(metrics).toMatch(/consolidator_proof_of_boot_total\{outcome="ok"\} 1/);
    expect(metrics).toContain(`consolidator_proof_of_boot_last_success_timestamp_seconds{host="${longestOff}"} ${(proof?.atMs ?? 0) / 1000}`);
    // The others are due too, and wait for another day (maxHostsPerDay 1).
    expect(metrics).toContain(`consolidator_proof_of_boot_due_hosts ${off.length - 1}`);
    expect(Number(/^consolidator_proof_of_boot_longest_off_seconds (\S+)$/m.exec(metrics)?.[1])).toBeGreaterThan(HOUR);

    // Left available: the next cycles neither power it off again (minOnSeconds) nor prove another host
    // (maxHostsPerDay 1), though another is due.
    for (const at of [2 * HOUR + 1200, 2 * HOUR + 1500, 2 * HOUR + 1800]) {
      const next = await cycleAt(t, at);
      expect(next.outcomes.filter((o) => o.action.type === 'power-off' && o.action.host === longestOff)).toEqual([]);
      expect(proofsIn(next)).toEqual([]);
    }
    expect(datacenter.hostView(longestOff)?.power).toBe('on');
    expect(worldViolations(datacenter, THIN_VMS.map((v) => v.id), THIN_HOSTS.map((h) => h.id))).toEqual([]);

    // A restart on the same state directory knows the proof (the per-day limit too), and exports it at start.
    await t.daemon.stop();
    const restarted = await startDaemon({ setup, datacenter, policy, dir: t.dir });
    expect(restarted.daemon.state.proofsOfBoot()[longestOff]).toEqual(proof);
    expect(await restarted.daemon.registry.metrics()).toContain(`consolidator_proof_of_boot_last_success_timestamp_seconds{host="${longestOff}"}`);
    expect(proofsIn(await cycleAt(restarted))).toEqual([]);
  }, 60_000);

  it('never in a quiet window, nor outside the active window; then at the first minute allowed', async () => {
    const setup = testSetup(THIN_HOSTS, THIN_VMS);
    // The simulated clock starts at 1970-01-01T00:00Z: quiet from 01:00 to 01:59, proofs of boot only from 03:00.
    const t = await startDaemon({ setup, policy: proofPolicy({ windows: ['* 3-23 * * *'] }, { windows: { active: [], quiet: ['* 1 * * *'] } }) });
    await drain(t);
    t.datacenter.advanceTo(1.5 * HOUR);
    const quiet = await cycleAt(t);
    expect(proofsIn(quiet)).toEqual([]);
    const off = t.daemon.state.poweredOffByUs();
    expect(quiet.plan?.verdicts.filter((v) => off.includes(v.host)).map((v) => v.detail)).toEqual(off.map(() => expect.stringContaining('a proof of boot is due, not in a quiet window')));
    t.datacenter.advanceTo(2.5 * HOUR);
    const outside = await cycleAt(t);
    expect(proofsIn(outside)).toEqual([]);
    expect(outside.plan?.verdicts.find((v) => off.includes(v.host))?.detail).toContain('outside every power.proofOfBoot.windows window');
    t.datacenter.advanceTo(3 * HOUR);
    expect(proofsIn(await cycleAt(t))).toHaveLength(1);
  }, 60_000);

  it('never wakes a host an operator powered off, however long it stays off', async () => {
    // h4 holds no VM and starts off: consolidator did not power it off.
    const setup = { ...testSetup(THIN_HOSTS, THIN_VMS.filter((v) => v.host !== 'h4')), emptyHostsStartOff: true };
    const t = await startDaemon({ setup, policy: proofPolicy({ maxHostsPerCycle: 4, maxHostsPerDay: 10 }) });
    expect(t.datacenter.hostView('h4')?.power).toBe('off');
    const woken: string[] = [];
    for (let at = 300; at <= 6 * HOUR; at += 900) {
      const report = await cycleAt(t, at);
      woken.push(...proofsIn(report).map((p) => p.host));
      expect(report.outcomes.filter((o) => o.action.type === 'power-on' && o.action.host === 'h4')).toEqual([]);
    }
    expect(t.datacenter.hostView('h4')?.power).toBe('off');
    // The hosts it powered off itself were proven meanwhile: the feature was on.
    expect(woken.length).toBeGreaterThan(0);
    expect(woken).not.toContain('h4');
  }, 60_000);

  it('in dry-run only says what it would do: the host stays off and no proof is recorded', async () => {
    const setup = testSetup(THIN_HOSTS, THIN_VMS);
    const datacenter = placed(setup);
    const first = await startDaemon({ setup, datacenter, policy: proofPolicy() });
    const off = await drain(first);
    await first.daemon.stop();
    const dry = await startDaemon({ setup, datacenter, dir: first.dir, policy: { ...proofPolicy(), mode: 'dry-run' } });
    datacenter.advanceTo(1500 + 2 * HOUR);
    const report = await cycleAt(dry);
    const proofs = proofsIn(report);
    expect(proofs).toHaveLength(1);
    expect(proofs[0]?.result).toBe('dry-run');
    for (const h of off) expect(datacenter.hostView(h)?.power).toBe('off');
    expect(dry.daemon.state.proofsOfBoot()).toEqual({});
    expect(logLines(dry).some((l) => typeof l['message'] === 'string' && l['message'].startsWith(`would power on ${proofs[0]?.host} (ProofOfBoot)`))).toBe(true);
    expect(await dry.daemon.registry.metrics()).toMatch(/consolidator_proof_of_boot_total\{outcome="dry-run"\} 1/);
  }, 60_000);

  it('a host that does not boot is marked for attention, its proof recorded as failed, logged and counted', async () => {
    const setup = testSetup(THIN_HOSTS, THIN_VMS);
    const target: { host?: HostId } = {};
    const t = await startDaemon({ setup, policy: proofPolicy(), wrapDrivers: neverBoots(() => target.host) });
    const off = await drain(t);
    const offAt = t.daemon.state.poweredOffAtMs();
    const broken = [...off].sort((a, b) => (offAt[a] as number) - (offAt[b] as number) || a.localeCompare(b))[0] as HostId;
    target.host = broken;
    t.datacenter.advanceTo(1500 + 2 * HOUR);
    const report = await cycleAt(t, undefined, 5);
    expect(proofsIn(report)).toEqual([{ host: broken, result: 'failed', code: 'POWER_TIMEOUT' }]);
    expect(t.daemon.state.hostsNeedingAttention()).toEqual([broken]);
    expect(t.daemon.state.state.attention.hosts[broken]?.reason).toBe('BootTimeout');
    expect(t.daemon.state.proofsOfBoot()[broken]).toMatchObject({ result: 'failed', code: 'POWER_TIMEOUT' });
    const failed = logLines(t).find((l) => l['message'] === 'proof of boot failed: the host did not boot');
    expect(failed).toMatchObject({ level: 'error', host: broken, errorCode: 'POWER_TIMEOUT', attention: 'BootTimeout' });
    const metrics = await t.daemon.registry.metrics();
    expect(metrics).toMatch(/consolidator_proof_of_boot_total\{outcome="failed"\} 1/);
    expect(metrics).toContain(`consolidator_hosts_needing_attention{host="${broken}",reason="BootTimeout"} 1`);
    // The host that needs an operator is no longer counted as due (it has its own alert); the others are.
    expect(metrics).toContain(`consolidator_proof_of_boot_due_hosts ${off.length - 1}`);
    // It is not tried again, and the day's proof is used: no other host is woken in its place.
    t.datacenter.advanceTo(t.datacenter.nowSeconds + 600);
    expect(proofsIn(await cycleAt(t))).toEqual([]);
  }, 60_000);
});
