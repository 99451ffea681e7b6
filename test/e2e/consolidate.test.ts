/**
 * End to end (issue 9): the real daemon (`consolidator run`, a child process) on the real lab: five
 * hosts with sshd + libvirtd/QEMU + an ipmi_sim BMC each, ten tiny guests spread two per host.
 * 1. It empties the three underloaded hosts by live migration and powers them off through IPMI.
 * 2. Load rises on the two hosts left: it powers one back on, waits for its hypervisor, moves load onto it.
 * 3. Faults, each followed by the invariants: SIGKILL mid-drain then a restart on the same state; a
 *    broken policy on SIGHUP; a BMC that stops answering; SSH to a host that hangs.
 * Invariants are checked against the hosts (their own libvirt, the BMCs' power hooks), never the daemon.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pause, waitFor } from '../helpers/wait-for.js';
import type { DaemonLogLine, DaemonProcess } from './daemon-process.js';
import { E2eWorld, interestingMetrics, isEvent, metricValue } from './e2e-world.js';

const HOSTS = 5;
const CPUS = 8;
const MEMORY_MIB = 16_384;
const GUEST_MIB = 1024;
/** h1 and h2 carry real work; h3-h5 idle along (below both underload ratios). */
const BUSY = { cpuCores: 3, memoryMiB: 4096 };
const IDLE = { cpuCores: 0.4, memoryMiB: 1024 };
/** h1 (8 guests, 8 GiB) then uses 15.5 GiB of 16: above the memory overload ratio (0.92). */
const OVERLOADED_H1 = { memoryMiB: 7680 };
/** h2 (2 guests) then uses 13.5 GiB of 16: above target (0.8), below overload. */
const FULL_H2 = { memoryMiB: 11_776 };
const DAEMON_STEP_MS = 90_000;
/** After the driver starts `virsh migrate`: well inside the migration. */
const MID_MIGRATION_MS = 300;

let world: E2eWorld;
let daemon: DaemonProcess;
const perf: Record<string, number> = {};

const h = (n: number) => world.host(n);
const poweredOff = (n: number) => world.lab.host(n).initPid === undefined;

async function snapshotMetrics(heading: string): Promise<string> {
  const text = await world.metricsText();
  world.timeline.block('metrics', heading, interestingMetrics(text));
  return text;
}

beforeAll(async () => {
  world = await E2eWorld.start({ name: 'consolidate', hosts: HOSTS, cpus: CPUS, memoryMiB: MEMORY_MIB, load: (n) => (n <= 2 ? { ...BUSY } : { ...IDLE }) });
  // Two guests per host; one per host runs (TCG, ~8 % of a core each), the others are paused (~0).
  await Promise.all(
    Array.from({ length: HOSTS }, async (_, i) => {
      const n = i + 1;
      await world.startGuest(n, { name: `g${2 * n - 1}`, memoryMiB: GUEST_MIB, paused: n % 2 === 0 });
      await world.startGuest(n, { name: `g${2 * n}`, memoryMiB: GUEST_MIB, paused: true });
    }),
  );
  await world.checkInvariants('setup');
  await world.writePolicy(world.policy());
}, 180_000);

afterEach((ctx) => world?.timeline.printIfFailed(ctx));

afterAll(async () => {
  await world?.down(perf);
}, 120_000);

describe('consolidator run on a real lab', () => {
  it('1. empties the underloaded hosts by live migration and powers them off through IPMI', async () => {
    daemon = await world.startDaemon('daemon#1');
    await snapshotMetrics('metrics before');
    await waitFor('h3, h4 and h5 powered off', { timeoutMs: DAEMON_STEP_MS }, () => [3, 4, 5].every(poweredOff));
    const firstOff = world.powerEvents.find((e) => e.to === 'off' && e.by === 'daemon');
    perf['msFromStartToFirstPowerOff'] = (firstOff?.atMs ?? Number.NaN) - daemon.startedAtMs;
    expect(await world.bmc(3).power()).toBe('off');
    const placement = await world.checkInvariants('consolidation');
    for (const [, at] of placement) expect([h(1), h(2)]).toContain(at[0]?.[0]);
    // Every power-off was of an empty host, and the daemon asked for it.
    const offs = world.powerEvents.filter((e) => e.to === 'off');
    expect(offs.map((e) => [e.host, e.by, e.held.length])).toEqual(expect.arrayContaining([[h(3), 'daemon', 0], [h(4), 'daemon', 0], [h(5), 'daemon', 0]]));
    // /metrics, once a cycle has recorded it.
    await waitFor('/metrics to show three hosts off', { timeoutMs: 30_000 }, async () => metricValue(await world.metricsText(), 'consolidator_hosts', { state: 'off' }) === 3);
    const metrics = await snapshotMetrics('metrics after consolidation');
    expect(metricValue(metrics, 'consolidator_actions_executed_total', { type: 'migrate', result: 'ok' })).toBeGreaterThanOrEqual(6);
    expect(metricValue(metrics, 'consolidator_actions_executed_total', { type: 'power-off', result: 'ok' })).toBe(3);
    expect(metricValue(metrics, 'consolidator_estimated_power_saved_watts')).toBe(300);
    // The drain cycle outlasted the 3 s schedule: the ticks that came meanwhile were skipped, and counted.
    expect(metricValue(metrics, 'consolidator_cycles_total', { result: 'skipped' })).toBeGreaterThan(0);
  }, 150_000);

  it('2. when load rises, powers a host back on through IPMI, waits for its hypervisor and moves load onto it', async () => {
    const since = daemon.lines.length;
    // h1's own memory use climbs above the overload ratio (0.92); h2 fills up to above target (0.8),
    // so no host that is on has room: a host consolidator powered off must be woken.
    world.setLoad(1, OVERLOADED_H1);
    world.setLoad(2, FULL_H2);
    const on = await daemon.waitForLog(isEvent('power-on done'), DAEMON_STEP_MS, 'a power-on', since);
    const woken = world.powerEvents.filter((e) => e.to === 'on');
    expect(woken.map((e) => e.by)).toEqual(['daemon']);
    const wokenHost = woken[0]?.host as string;
    expect(String(on['what'])).toContain(wokenHost);
    expect(poweredOff(world.lab.byName(wokenHost).n)).toBe(false);
    // Load moves onto it, enough to bring h1 back under its target (three 1 GiB guests).
    await waitFor(`three guests on ${wokenHost}`, { timeoutMs: DAEMON_STEP_MS }, async () => ((await world.guestsByHost()).get(wokenHost)?.length ?? 0) >= 3);
    await world.checkInvariants('wake-up');
    // The guests show on the host as the migration ends, a moment before the daemon logs it.
    const migrated = () => daemon.lines.slice(since).filter((l) => l.message === 'migrate done').length;
    await waitFor('three "migrate done" lines', { timeoutMs: 30_000 }, () => migrated() >= 3);
    expect(migrated()).toBe(3);
    await snapshotMetrics('metrics after the wake-up');
  }, 150_000);

  it('3a. killed with SIGKILL mid-drain, then restarted on the same state: the drain is reconciled, every guest runs once', async () => {
    world.setLoad(1, BUSY);
    world.setLoad(2, BUSY);
    const woken = world.powerEvents.find((e) => e.to === 'on')?.host as string;
    const n = world.lab.byName(woken).n;
    const since = daemon.lines.length;
    // The driver's line: `virsh migrate` runs on the source now (a 1 GiB guest takes about 1.5 s).
    const started = await daemon.waitForLog((l) => l.message === 'migration started' && l['from'] === woken && l['component'] === 'virsh', DAEMON_STEP_MS, `a migration off ${woken}`, since);
    await pause(MID_MIGRATION_MS);
    await daemon.kill();
    world.timeline.add('test', `FAULT: daemon killed with SIGKILL while ${String(started['vm'])} migrated off ${woken}`);
    await world.checkInvariants('SIGKILL mid-drain');
    daemon = await world.startDaemon('daemon#2');
    await daemon.waitForLog(isEvent('reconciled a plan interrupted by a restart'), DAEMON_STEP_MS, 'a reconciliation');
    await waitFor(`${woken} drained and powered off again`, { timeoutMs: DAEMON_STEP_MS }, () => poweredOff(n));
    await world.checkInvariants('restart after SIGKILL');
    expect(world.powerEvents.filter((e) => e.host === woken && e.to === 'off').at(-1)).toMatchObject({ by: 'daemon', held: [] });
  }, 200_000);

  it('3b. a broken policy on SIGHUP is rejected with its errors and the daemon keeps going on the last good one', async () => {
    const good = world.policy();
    await world.writePolicy('version: 1\nmode: on\nsafety:\n  minHostOn: 1\nhosts: []\n');
    const since = daemon.lines.length;
    daemon.signal('SIGHUP');
    // One error line per problem, each with the file, line and column.
    const rejected = (pattern: RegExp) => (l: DaemonLogLine) => l.message === 'policy rejected on reload; keeping the last good policy' && pattern.test(String(l['issue']));
    await daemon.waitForLog(rejected(/policy\.yaml:2:7 mode: must be one of "enforce", "dry-run", got "on"/), 30_000, 'the mode error', since);
    await daemon.waitForLog(rejected(/policy\.yaml:4:3 safety\.minHostOn: unknown key \(did you mean "minHostsOn"\?\)/), 30_000, 'the minHostOn error', since);
    const after = daemon.lines.length;
    await daemon.waitForLog(isEvent('cycle finished'), 30_000, 'a cycle after the rejected reload', after);
    expect(daemon.running).toBe(true);
    expect((await fetch(`${world.baseUrl}/healthz`)).status).toBe(200);
    expect((await world.status())['mode']).toBe('enforce');
    await world.writePolicy(good);
    daemon.signal('SIGHUP');
    await daemon.waitForLog(isEvent('policy reloaded'), 30_000, 'a good reload', after);
    await world.checkInvariants('broken policy reload');
  }, 120_000);

  it('3c. a BMC that stops answering: its host is left alone, another one is woken instead', async () => {
    // The daemon would wake the first host it powered off (all are alike): freeze that one's BMC.
    const off = [3, 4, 5].filter(poweredOff);
    expect(off.length).toBeGreaterThanOrEqual(2);
    const frozen = off[0] as number;
    const frozenBmc = world.bmc(frozen);
    const eventsBefore = world.powerEvents.length;
    process.kill(frozenBmc.pid, 'SIGSTOP');
    world.timeline.add('test', `FAULT: the BMC of ${h(frozen)} stops answering (ipmi_sim SIGSTOPped)`);
    try {
      const since = daemon.lines.length;
      world.setLoad(1, OVERLOADED_H1);
      world.setLoad(2, FULL_H2);
      await daemon.waitForLog((l) => l.message === 'power status unknown' && l['host'] === h(frozen), 60_000, `power status unknown for ${h(frozen)}`, since);
      const on = await daemon.waitForLog(isEvent('power-on done'), DAEMON_STEP_MS, 'a power-on', since);
      const wokenHost = world.powerEvents.slice(eventsBefore).find((e) => e.to === 'on')?.host as string;
      expect(wokenHost).not.toBe(h(frozen));
      expect(String(on['what'])).toContain(wokenHost);
      await waitFor(`three guests on ${wokenHost}`, { timeoutMs: DAEMON_STEP_MS }, async () => ((await world.guestsByHost()).get(wokenHost)?.length ?? 0) >= 3);
      await world.checkInvariants('BMC not answering');
      expect(poweredOff(frozen)).toBe(true);
      expect(await frozenBmc.power()).toBe('off');
      expect(world.powerEvents.slice(eventsBefore).filter((e) => e.host === h(frozen))).toEqual([]);
    } finally {
      process.kill(frozenBmc.pid, 'SIGCONT');
      world.timeline.add('test', `the BMC of ${h(frozen)} answers again`);
    }
  }, 200_000);

  it('3d. SSH to a host hangs: it is unreachable, nothing is done to it, and it is observed again once it answers', async () => {
    world.setLoad(1, BUSY);
    world.setLoad(2, BUSY);
    const since = daemon.lines.length;
    const offBefore = world.powerEvents.length;
    await world.lab.freeze(2);
    world.timeline.add('test', `FAULT: ${h(2)} hangs (every process of it SIGSTOPped: TCP up, nothing answers)`);
    try {
      await daemon.waitForLog((l) => l.message === 'host did not answer' && l['host'] === h(2) && l['power'] === 'on', 60_000, `${h(2)} reported unreachable`, since);
    } finally {
      await world.lab.thaw(2);
      world.timeline.add('test', `${h(2)} thawed`);
    }
    const after = daemon.lines.length;
    // Hosts that are powered off are off, not unreachable: once h2 answers, nothing is.
    await daemon.waitForLog((l) => l.message === 'cycle finished' && l['unreachable'] === 0, 90_000, 'a cycle with h2 reachable again', after);
    await world.checkInvariants('SSH hang');
    expect(world.powerEvents.slice(offBefore).filter((e) => e.host === h(2))).toEqual([]);
    expect(daemon.running).toBe(true);
    // Every line the daemons wrote was a JSON log line on stdout.
    for (const d of world.daemons) expect(d.stderr, d.label).toBe('');
    perf['daemonPeakRssMiB'] = Math.round(((await daemon.sample())?.peakRssKiB ?? 0) / 1024);
    await snapshotMetrics('metrics at the end');
  }, 200_000);
});
