/**
 * End to end (issue 9), migration faults: the real daemon drains real lab hosts while
 * 1. the destination host loses power in the middle of the migration (a guest filled with random
 *    bytes, under a bandwidth cap, so the migration lasts seconds): the VM stays on its source, the
 *    source is not powered off, the dead host is not powered on by the daemon; once the host is back
 *    the drain completes;
 * 2. a guest never converges under the bandwidth cap (it keeps dirtying its memory): the policy's
 *    non-convergence action (pause) applies, and the guest ends running exactly once, on the destination.
 * Invariants are checked against the hosts themselves after each step.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pause, waitFor } from '../helpers/wait-for.js';
import type { DaemonProcess } from './daemon-process.js';
import { E2eWorld, isEvent } from './e2e-world.js';

const CPUS = 8;
const MEMORY_MIB = 16_384;
/** Not underloaded, room to spare. */
const BUSY = { cpuCores: 3, memoryMiB: 4096 };
/** Not underloaded, no room (CPU above the 0.7 target, below the 0.9 overload ratio). */
const FULL = { cpuCores: 6, memoryMiB: 4096 };
const IDLE = { cpuCores: 0.3, memoryMiB: 1024 };
const FAT_MIB = 256;
const FILL_MIB = 64;
/** 64 MiB of random pages at 8 MiB/s: about 8 s of migration. */
const FAT_CAP_MIBPS = 8;
/** The dirtying guest rewrites 4 MiB over and over: at 1 MiB/s pre-copy never catches up. */
const DIRTY_CAP_MIBPS = 1;
const DIRTY_REGION_MIB = 4;
const CONVERGENCE_DEADLINE_SECONDS = 5;
const STEP_MS = 90_000;

let world: E2eWorld;
let daemon: DaemonProcess | undefined;

const h = (n: number) => world.host(n);
const poweredOff = (n: number) => world.lab.host(n).initPid === undefined;

beforeAll(async () => {
  // h1: the source (a fat guest); h2: the only destination with room (empty); h3: no room; h4: busy, for now.
  const loads = [IDLE, BUSY, FULL, BUSY];
  world = await E2eWorld.start({ name: 'migration-faults', hosts: 4, cpus: CPUS, memoryMiB: MEMORY_MIB, load: (n) => ({ ...(loads[n - 1] ?? BUSY) }) });
  const fill = await world.lab.writeFillFile('fat', FILL_MIB);
  await world.startGuest(1, { name: 'fat', memoryMiB: FAT_MIB, fillFile: fill });
  await world.startGuest(3, { name: 'p3a', memoryMiB: 1024, paused: true });
  await world.startGuest(3, { name: 'p3b', memoryMiB: 1024, paused: true });
  await world.checkInvariants('setup');
  await world.writePolicy(world.policy({ migration: { bandwidthMiBps: FAT_CAP_MIBPS, timeoutSeconds: 60, nonConvergence: 'auto-converge', convergenceDeadlineSeconds: 10 } }));
  daemon = await world.startDaemon();
}, 180_000);

afterEach((ctx) => world?.timeline.printIfFailed(ctx));

afterAll(async () => {
  if (!world) return;
  await world.stopDaemons();
  // A dirtying guest keeps a core busy: never leave one behind (it may never have been started).
  await world.removeGuest('dirty').catch(() => undefined);
  await world.down();
}, 120_000);

describe('migration faults on a real lab', () => {
  it('the destination loses power mid-migration: the VM stays on its source, which stays on; the drain completes once the host is back', async () => {
    const d = daemon as DaemonProcess;
    await d.waitForLog(isEvent('migration started', { vm: 'fat', to: h(2), component: 'actuator' }), STEP_MS, 'the migration of fat');
    // Let it copy for a while: mid-migration, guest pages in flight (it lasts about 8 s).
    await pause(2_500);
    const since = d.lines.length;
    await world.losePower(2);
    const failed = await d.waitForLog(isEvent('migrate failed'), 60_000, 'the failed migration', since);
    expect(String(failed['what'])).toContain('fat');
    await world.checkInvariants('destination power loss');
    expect((await world.placement()).get('fat')).toEqual([[h(1), 'running']]);
    expect(poweredOff(1)).toBe(false);
    // The power-off of h1 depended on the failed migration: skipped.
    await d.waitForLog((l) => l.message === 'cycle finished' && Number(l['failed']) >= 1, 60_000, 'the end of the failed cycle', since);
    // The daemon does not power on a host it did not power off, however long it stays off.
    const more = d.lines.length;
    await d.waitForLog(isEvent('cycle finished'), 30_000, 'another cycle', more);
    expect(world.powerEvents.filter((e) => e.host === h(2) && e.to === 'on')).toEqual([]);
    expect(await world.bmc(2).power()).toBe('off');

    await world.restorePower(2);
    await waitFor(`${h(1)} drained and powered off`, { timeoutMs: STEP_MS }, () => poweredOff(1));
    const placement = await world.checkInvariants('drain after the power came back');
    expect(placement.get('fat')).toEqual([[h(2), 'running']]);
    expect(world.powerEvents.filter((e) => e.to === 'off' && e.by !== 'test')).toEqual([expect.objectContaining({ host: h(1), by: 'daemon', held: [] })]);
  }, 200_000);

  it('a guest that never converges under the cap: the non-convergence action (pause) applies and it ends running once, on the destination', async () => {
    const d = daemon as DaemonProcess;
    const since = d.lines.length;
    await world.writePolicy(
      world.policy({ migration: { bandwidthMiBps: DIRTY_CAP_MIBPS, timeoutSeconds: 60, nonConvergence: 'pause', convergenceDeadlineSeconds: CONVERGENCE_DEADLINE_SECONDS } }),
    );
    d.signal('SIGHUP');
    await d.waitForLog(isEvent('policy reloaded'), 30_000, 'the reload', since);
    const rom = await world.lab.writeDirtyRom('dirty', { regionStartMiB: 2, regionMiB: DIRTY_REGION_MIB, delayLoops: 1 });
    await world.startGuest(4, { name: 'dirty', memoryMiB: 64, optionRom: rom });
    world.setLoad(4, IDLE);
    const finished = await d.waitForLog(isEvent('migration finished', { vm: 'dirty', component: 'actuator' }), STEP_MS, 'the migration of dirty', since);
    expect(finished).toMatchObject({ from: h(4), nonConvergence: 'pause', state: 'running' });
    expect(Number(finished['durationMs'])).toBeGreaterThan(CONVERGENCE_DEADLINE_SECONDS * 1000);
    // The driver said so when it paused the guest at the convergence deadline.
    expect(d.count((l) => l.message === 'guest paused to let the migration finish offline' && l['vm'] === 'dirty', since)).toBe(1);
    await waitFor(`${h(4)} powered off`, { timeoutMs: STEP_MS }, () => poweredOff(4));
    const placement = await world.checkInvariants('non-converging guest');
    expect(placement.get('dirty')?.[0]?.[1]).toBe('running');
    expect(placement.get('dirty')?.[0]?.[0]).not.toBe(h(4));
  }, 200_000);
});
