/**
 * End to end (issue 15, proof of boot) on the real lab: the daemon empties and powers off an idle host
 * through IPMI (the lab host really stops); once it has kept it off for power.proofOfBoot.afterDays (a
 * fraction of a day here), it powers it on through the BMC, waits until the host's libvirt answers,
 * records the proof, and leaves the host on for minOnSeconds before it may empty it again. Only once a
 * day: the host powered off again is not woken a second time.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DaemonProcess } from './daemon-process.js';
import { waitFor } from '../helpers/wait-for.js';
import { E2eWorld, metricValue } from './e2e-world.js';

const BUSY = { cpuCores: 3, memoryMiB: 4096 };
const IDLE = { cpuCores: 0, memoryMiB: 256 };
const AFTER_SECONDS = 30;
const MIN_ON_SECONDS = 20;

let world: E2eWorld;
let daemon: DaemonProcess | undefined;
const h = (n: number) => world.host(n);

beforeAll(async () => {
  world = await E2eWorld.start({ name: 'proof-of-boot', hosts: 3, cpus: 8, memoryMiB: 16_384, load: (n) => (n === 3 ? { ...IDLE } : { ...BUSY }) });
  await Promise.all([world.startGuest(1, { name: 'a1', memoryMiB: 1024, paused: true }), world.startGuest(2, { name: 'b1', memoryMiB: 1024, paused: true })]);
  await world.checkInvariants('setup');
  const base = world.policy();
  await world.writePolicy(
    world.policy({
      power: { ...(base.power as object), proofOfBoot: { afterDays: AFTER_SECONDS / 86_400, minOnSeconds: MIN_ON_SECONDS, maxHostsPerDay: 1 } },
    }),
  );
  daemon = await world.startDaemon();
}, 180_000);

afterEach((ctx) => world?.timeline.printIfFailed(ctx));

afterAll(async () => {
  await world?.down();
}, 120_000);

describe('proof of boot on a real lab', () => {
  it('powers off the idle host, wakes it through IPMI once afterDays have passed, waits for libvirt, and leaves it on', async () => {
    const d = daemon as DaemonProcess;
    const off = await waitFor('the daemon to power the idle host off', { timeoutMs: 90_000 }, () => world.powerEvents.find((e) => e.host === h(3) && e.to === 'off' && e.by === 'daemon'));
    const passed = await d.waitForLog((l) => l.message === 'proof of boot passed' && l['host'] === h(3), 150_000, 'a proof of boot of the idle host');
    const on = world.powerEvents.find((e) => e.host === h(3) && e.to === 'on');
    expect(on?.by).toBe('daemon');
    expect((on?.atMs ?? 0) - off.atMs).toBeGreaterThanOrEqual(AFTER_SECONDS * 1000);
    expect(d.lines.some((l) => l.message === 'powering on' && l['host'] === h(3) && l['reason'] === 'ProofOfBoot')).toBe(true);
    // It waited for the hypervisor: the lab host's libvirt answers, and the proof took the boot's time.
    expect(Number(passed['durationMs'])).toBeGreaterThan(0);
    expect(world.lab.host(3).initPid).toBeDefined();
    // Counted in the cycle's record phase, once its act phase (the boot) is over.
    await waitFor('the proof of boot counted', { timeoutMs: 30_000 }, async () => metricValue(await world.metricsText(), 'consolidator_proof_of_boot_total', { outcome: 'ok' }) === 1);
    const status = await world.runCli(['status', '--policy', world.policyFile]);
    expect(status.stdout).toMatch(new RegExp(`last proof of boot: ${h(3).replace('.', '\\.')} ok `));

    // Idle, it is emptied again, but not before minOnSeconds; and not proven again the same day.
    const offAgain = await waitFor('the daemon to power the host off again', { timeoutMs: 90_000 }, () =>
      world.powerEvents.find((e) => e.host === h(3) && e.to === 'off' && e.atMs > (on?.atMs ?? 0)),
    );
    expect(offAgain.atMs - (on?.atMs ?? 0)).toBeGreaterThanOrEqual(MIN_ON_SECONDS * 1000);
    await new Promise((resolve) => setTimeout(resolve, (AFTER_SECONDS + 15) * 1000));
    expect(world.powerEvents.filter((e) => e.host === h(3) && e.to === 'on')).toHaveLength(1);
    await world.checkInvariants('proof of boot');
    expect(world.violations).toEqual([]);
  }, 400_000);
});
