/**
 * End to end (issue 8 on the real lab): the operator commands against the running daemon, on lab
 * hosts with real libvirt and real BMCs. `consolidator drain HOST --power-off` empties the host by live
 * migration and powers it off through IPMI (the lab host really stops); the daemon then leaves it
 * alone; `consolidator wake HOST` powers it on and waits for its hypervisor; a drain that cannot be
 * done (a pinned VM, no room) is refused with its reason and changes nothing; a drain that finds no
 * room wakes the host consolidator powered off (really booting it through IPMI), drains onto it, and
 * the daemon keeps that host on until the undrain.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonLogLine, DaemonProcess } from './daemon-process.js';
import { waitFor } from '../helpers/wait-for.js';
import { E2eWorld, metricValue } from './e2e-world.js';

const CPUS = 8;
const MEMORY_MIB = 16_384;
/** Every host is busy enough that the daemon itself neither empties nor relieves any. */
const BUSY = { cpuCores: 3, memoryMiB: 4096 };
/** Memory in use at about 76 % of 16 GiB: below overload, no room for a 1 GiB guest under the 0.8 target. */
const NO_ROOM_USED_MIB = 12_500;
const GUEST_MIB = 1024;
const EXIT_REFUSED = 2;

let world: E2eWorld;
let daemon: DaemonProcess | undefined;
const h = (n: number) => world.host(n);
const poweredOff = (n: number) => world.lab.host(n).initPid === undefined;
const cli = (...args: string[]) => world.runCli([...args, '--policy', world.policyFile]);
const esc = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

beforeAll(async () => {
  world = await E2eWorld.start({ name: 'operator', hosts: 3, cpus: CPUS, memoryMiB: MEMORY_MIB, load: () => ({ ...BUSY }) });
  await Promise.all([
    (async () => {
      await world.startGuest(1, { name: 'a1', memoryMiB: 1024 });
      await world.startGuest(1, { name: 'a2', memoryMiB: 1024, paused: true });
    })(),
    (async () => {
      await world.startGuest(2, { name: 'pin-b1', memoryMiB: 1024, paused: true });
      await world.startGuest(2, { name: 'b2', memoryMiB: 1024, paused: true, pinned: true });
    })(),
    (async () => {
      await world.startGuest(3, { name: 'c1', memoryMiB: 1024, paused: true });
      await world.startGuest(3, { name: 'c2', memoryMiB: 1024, paused: true });
    })(),
  ]);
  await world.checkInvariants('setup');
  await world.writePolicy(world.policy({ vmRules: { pinned: ['pin-*'], honourLibvirtMetadata: true } }));
  daemon = await world.startDaemon();
  await daemon.waitForLog((l: DaemonLogLine) => l.message === 'cycle finished', 30_000, 'a first cycle');
}, 180_000);

afterEach((ctx) => world?.timeline.printIfFailed(ctx));

afterAll(async () => {
  await world?.down();
}, 120_000);

describe('operator commands on a real lab, through the running daemon', () => {
  it('drain --power-off empties the host by live migration and powers it off through its BMC; the daemon leaves it off', async () => {
    const result = await world.asOperator(() => cli('drain', h(3), '--power-off'));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`Drained ${h(3)}; it is in maintenance until "consolidator undrain ${h(3)}".`);
    expect(result.stdout).toMatch(/migrate c1\s.*ok/);
    expect(result.stdout).toMatch(/migrate c2\s.*ok/);
    expect(result.stdout).toMatch(new RegExp(`power off ${h(3).replace('.', '\\.')}.*ok`));
    expect(poweredOff(3)).toBe(true);
    expect(await world.bmc(3).power()).toBe('off');
    expect(world.powerEvents).toEqual([expect.objectContaining({ host: h(3), to: 'off', by: 'operator', held: [] })]);
    const placement = await world.checkInvariants('drain --power-off');
    for (const g of ['c1', 'c2']) expect([h(1), h(2)]).toContain(placement.get(g)?.[0]?.[0]);
    // In maintenance: the daemon never powers it on, whatever happens (two more cycles).
    for (let i = 0; i < 2; i++) await (daemon as DaemonProcess).waitForLog((l) => l.message === 'cycle finished', 30_000, 'a cycle', (daemon as DaemonProcess).lines.length);
    expect(world.powerEvents.filter((e) => e.to === 'on')).toEqual([]);
    const status = await cli('status');
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/in maintenance: h3\.lab/);
    expect(status.stdout).toMatch(/powered off by consolidator: -/);
  }, 150_000);

  it('wake powers the host on through its BMC and returns once its hypervisor answers', async () => {
    const result = await world.asOperator(() => cli('wake', h(3)));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`${h(3)} is on and its hypervisor answers`);
    expect(world.powerEvents.filter((e) => e.to === 'on')).toEqual([expect.objectContaining({ host: h(3), by: 'operator' })]);
    expect(await world.lab.virsh(3, ['-q', 'version', '--daemon'])).toMatch(/libvirt/i);
    const undrain = await cli('undrain', h(3));
    expect(undrain.code, undrain.stderr).toBe(0);
    await world.checkInvariants('wake');
  }, 150_000);

  it('refuses to drain a host that holds a pinned VM, says why, and moves nothing', async () => {
    const before = await world.guestsByHost();
    const result = await world.asOperator(() => cli('drain', h(2)));
    expect(result.code).toBe(EXIT_REFUSED);
    expect(result.stdout).toContain(`Drain of ${h(2)} refused, nothing was done:`);
    expect(result.stdout).toContain('VM pin-b1 is pinned');
    expect(result.stdout).toContain('VM b2 is pinned');
    expect(await world.guestsByHost()).toEqual(before);
    await world.checkInvariants('refused drain (pinned)');
  }, 120_000);

  it('refuses to drain a host whose VMs fit nowhere under target, says why, and moves nothing', async () => {
    // h2 and h3 fill up (their own use grows), short of the overload ratio.
    const byHost = await world.guestsByHost();
    for (const n of [2, 3]) world.setLoad(n, { memoryMiB: NO_ROOM_USED_MIB - GUEST_MIB * (byHost.get(h(n))?.length ?? 0) });
    // Let the daemon see the new figures (its window is a few seconds).
    const d = daemon as DaemonProcess;
    for (let i = 0; i < 3; i++) await d.waitForLog((l) => l.message === 'cycle finished', 30_000, 'a cycle', d.lines.length);
    const before = await world.guestsByHost();
    const result = await world.asOperator(() => cli('drain', h(1), '--power-off'));
    expect(result.code).toBe(EXIT_REFUSED);
    expect(result.stdout).toContain(`Drain of ${h(1)} refused, nothing was done:`);
    // In figures: what h1's VMs need against what h2 and h3 have free; no host is consolidator's to wake.
    expect(result.stdout).toMatch(new RegExp(`- the VMs on ${esc(h(1))} need \\d+\\.\\d\\d CPU and \\d+ MiB; the 2 host\\(s\\) on that may receive them have \\d+\\.\\d\\d CPU and \\d+ MiB free under the targets`));
    expect(result.stdout).toContain('- no host consolidator powered off can be woken to make room');
    expect(result.stdout).not.toContain('fits on no other host');
    expect(await world.guestsByHost()).toEqual(before);
    expect(poweredOff(1)).toBe(false);
    await world.checkInvariants('refused drain (no room)');
  }, 120_000);

  it('a drain that finds no room wakes the host consolidator powered off, waits for it, drains, and the daemon keeps it on until undrain', async () => {
    const d = daemon as DaemonProcess;
    // h3 (empty) goes idle: the daemon powers it off itself. h2 stays full, h1 busy.
    world.setLoad(3, { cpuCores: 0, memoryMiB: 512 });
    await waitFor('the daemon to power h3 off', { timeoutMs: 60_000 }, () => world.powerEvents.some((e) => e.host === h(3) && e.to === 'off' && e.by === 'daemon'));
    const status = await cli('status');
    expect(status.stdout).toMatch(/powered off by consolidator: h3\.lab/);

    const refused = await world.asOperator(() => cli('drain', h(1), '--no-wake'));
    expect(refused.code).toBe(EXIT_REFUSED);
    expect(refused.stdout).toContain(`Drain of ${h(1)} refused, nothing was done:`);
    expect(refused.stdout).toMatch(new RegExp(`- waking ${esc(h(3))} \\(\\+\\d+\\.\\d\\d CPU, \\+\\d+ MiB\\) would make room: drain without --no-wake to have consolidator do it`));
    expect(poweredOff(3)).toBe(true);

    const onH1 = (await world.guestsByHost()).get(h(1)) ?? [];
    expect(onH1.length).toBeGreaterThan(0);
    // The lab's fake /proc/stat is rewritten every second: a read can catch it half written and the
    // host "does not answer" for that observation. Only that refusal is retried.
    let result = await world.asOperator(() => cli('drain', h(1)));
    for (let i = 0; i < 3 && result.code === EXIT_REFUSED && result.stdout.includes(`${h(1)} does not answer`); i++) {
      result = await world.asOperator(() => cli('drain', h(1)));
    }
    world.timeline.add('test', `drain output:\n${result.stdout}`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain(`Drained ${h(1)}; it is in maintenance until "consolidator undrain ${h(1)}".`);
    expect(result.stdout).toMatch(new RegExp(`Woken to make room \\(kept on until "consolidator undrain ${esc(h(1))}"\\): ${esc(h(3))} \\(\\+`));
    expect(poweredOff(3)).toBe(false);
    expect(world.powerEvents.filter((e) => e.host === h(3) && e.to === 'on').at(-1)).toMatchObject({ by: 'operator' });
    const placement = await world.checkInvariants('drain with wake');
    for (const g of onH1) expect(placement.get(g)?.[0]?.[0]).not.toBe(h(1));
    expect((await world.guestsByHost()).get(h(3))?.length ?? 0).toBeGreaterThan(0);

    // Underloaded, but woken for h1's maintenance: the daemon keeps it on (two more cycles).
    const offsBefore = world.powerEvents.filter((e) => e.to === 'off').length;
    for (let i = 0; i < 2; i++) await d.waitForLog((l) => l.message === 'cycle finished', 30_000, 'a cycle', d.lines.length);
    expect(world.powerEvents.filter((e) => e.to === 'off').length).toBe(offsBefore);
    expect(metricValue(await world.metricsText(), 'consolidator_hosts_kept', { reason: 'WokenForMaintenance' })).toBe(1);

    const undrain = await cli('undrain', h(1));
    expect(undrain.code, undrain.stderr).toBe(0);
    expect(undrain.stdout).toContain(`${h(1)} is back in service\n${h(3)}, woken for its maintenance, may be emptied and powered off again`);
  }, 240_000);
});
