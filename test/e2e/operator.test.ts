/**
 * End to end (issue 8 on the real lab): the operator commands against the running daemon, on lab
 * hosts with real libvirt and real BMCs. `consolidator drain HOST --power-off` empties the host by live
 * migration and powers it off through IPMI (the lab host really stops); the daemon then leaves it
 * alone; `consolidator wake HOST` powers it on and waits for its hypervisor; a drain that cannot be
 * done (a pinned VM, no room) is refused with its reason and changes nothing.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonLogLine, DaemonProcess } from './daemon-process.js';
import { E2eWorld } from './e2e-world.js';

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
    expect(result.stdout).toMatch(/VM (a1|a2) \(.*\) fits on no other host under the policy's targets/);
    expect(await world.guestsByHost()).toEqual(before);
    expect(poweredOff(1)).toBe(false);
    await world.checkInvariants('refused drain (no room)');
  }, 120_000);
});
