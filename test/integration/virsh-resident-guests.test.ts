import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/lab.js';
import { labDrivers, never } from '../lab/lab-drivers.js';
import { libvirtdRunning, startLibvirtd, startStrayQemu, stopLibvirtdAtVirshCall, stopStrayQemu, unwrapVirsh } from '../lab/libvirtd-faults.js';

/** h1's DMI UUID as some firmware writes it (upper case); h2 has none. */
const H1_PRODUCT_UUID = 'D31D0000-ABCD-4000-8000-0000000000A1';

/**
 * The guest count before a power-off, and an observation whose libvirt connection fails half-way, on a
 * real lab (sshd + libvirtd + QEMU). Neither may ever read as "no guests" while a guest runs.
 */
describe('a failed libvirt query never reads as no guests (real lab)', () => {
  let lab: Lab;
  let drivers: ReturnType<typeof labDrivers>;
  const h1 = () => lab.host(1).name;
  const h2 = () => lab.host(2).name;

  beforeAll(async () => {
    lab = await Lab.start({ hosts: 2, productUuid: (n) => (n === 1 ? H1_PRODUCT_UUID : undefined) });
    await lab.startGuest(1, { name: 'web1', memoryMiB: 256 });
    await lab.startGuest(1, { name: 'db1', memoryMiB: 256, paused: true });
    await lab.startGuest(1, { name: 'off1', memoryMiB: 256, paused: true });
    await lab.virsh(1, ['destroy', 'off1']);
    drivers = labDrivers(lab);
  });

  afterEach(async () => {
    await unwrapVirsh(lab, 1);
    await startLibvirtd(lab, 1);
  });

  afterAll(async () => {
    await drivers?.runner.close();
    await lab?.down();
  });

  /** web1's QEMU process is alive (libvirt's pid file, read on the host's own folder). */
  const web1Runs = async () => {
    const pid = (await readFile(`${lab.host(1).dir}/run-libvirt/qemu/web1.pid`, 'utf8')).trim();
    return (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes('guest=web1');
  };

  it('agreeing sources: residentGuests names the guests not shut off; an empty host has none', async () => {
    expect([...(await drivers.hypervisor.residentGuests(h1(), never()))].sort()).toEqual(['db1', 'web1']);
    expect(await drivers.hypervisor.residentGuests(h2(), never())).toEqual([]);
  });

  it('host identity: the DMI system UUID (lower-case) and each domain’s UUID', async () => {
    const obs = await drivers.hypervisor.inspect(h1(), never());
    expect(obs.systemUuid).toBe(H1_PRODUCT_UUID.toLowerCase());
    expect((await drivers.hypervisor.inspect(h2(), never())).systemUuid).toBeUndefined();
    for (const name of ['web1', 'db1', 'off1']) {
      const uuid = (await lab.virsh(1, ['domuuid', name])).trim();
      expect(obs.domains.find((d) => d.name === name)?.uuid).toBe(uuid);
    }
  });

  it('libvirtd stops between virsh list and the batch: inspect throws, naming the host and the batch', async () => {
    await stopLibvirtdAtVirshCall(lab, 1, 2);
    const error = await drivers.hypervisor.inspect(h1(), never()).then(
      (obs) => ({ returned: obs.domains.map((d) => d.name) }),
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'COMMAND_FAILED', details: { host: h1(), failed: 'virsh version; domstats' } });
    expect((error as Error).message).toMatch(/failed to connect to the hypervisor/);
    // It really was stopped in between, and the guest kept running all along.
    expect(await libvirtdRunning(lab, 1)).toBe(false);
    expect(await web1Runs()).toBe(true);
  });

  it('libvirtd stops between virsh list and the batch: listDomains throws too', async () => {
    await stopLibvirtdAtVirshCall(lab, 1, 2);
    await expect(drivers.hypervisor.listDomains(h1(), never())).rejects.toMatchObject({ code: 'COMMAND_FAILED', details: { host: h1() } });
    expect(await web1Runs()).toBe(true);
  });

  it('libvirtd stops before the metadata reads: inspect throws (a missing-metadata error is not a connection error)', async () => {
    await stopLibvirtdAtVirshCall(lab, 1, 3);
    await expect(drivers.hypervisor.inspect(h1(), never())).rejects.toMatchObject({ code: 'COMMAND_FAILED', details: { host: h1(), failed: 'virsh metadata' } });
  });

  it('libvirtd gone: residentGuests throws GUEST_COUNT_UNCERTAIN while the guests run', async () => {
    await stopLibvirtdAtVirshCall(lab, 1, 1);
    await expect(drivers.hypervisor.residentGuests(h1(), never())).rejects.toMatchObject({
      code: 'GUEST_COUNT_UNCERTAIN',
      details: { host: h1(), failed: 'virsh list' },
      message: expect.stringMatching(/virsh list --all failed.*failed to connect/),
    });
    expect(await web1Runs()).toBe(true);
  });

  it('after libvirtd is back, the same host observes normally again', async () => {
    await stopLibvirtdAtVirshCall(lab, 1, 1);
    await expect(drivers.hypervisor.inspect(h1(), never())).rejects.toMatchObject({ code: 'COMMAND_FAILED', details: { failed: 'virsh list' } });
    await startLibvirtd(lab, 1);
    const obs = await drivers.hypervisor.inspect(h1(), never());
    expect(obs.domains.map((d) => d.name).sort()).toEqual(['db1', 'off1', 'web1']);
  });

  it('a QEMU process libvirt cannot see: residentGuests throws, naming both lists', async () => {
    const stray = await startStrayQemu(lab, 2, 'ghost1');
    try {
      const error = await drivers.hypervisor.residentGuests(h2(), never()).then(
        (names) => ({ returned: names }),
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code: 'GUEST_COUNT_UNCERTAIN', details: { host: h2(), failed: 'sources disagree', libvirt: '', hostSide: 'ghost1' } });
      expect((error as Error).message).toMatch(/virsh list --all shows no guest not shut off; the host shows ghost1 \(QEMU pid \d+\)/);
      // The other host's guests are not counted here (the lab's hosts share one PID namespace).
      expect((error as Error).message).not.toMatch(/web1/);
    } finally {
      await stopStrayQemu(stray);
    }
    expect(await drivers.hypervisor.residentGuests(h2(), never())).toEqual([]);
  });

  it('a run-state entry left behind: residentGuests throws, naming it', async () => {
    await lab.exec(2, ['sh', '-c', 'echo 4194000 > /run/libvirt/qemu/gone1.pid']);
    try {
      await expect(drivers.hypervisor.residentGuests(h2(), never())).rejects.toMatchObject({
        code: 'GUEST_COUNT_UNCERTAIN',
        message: expect.stringContaining('gone1 (no QEMU process, run-state pid 4194000 dead)'),
      });
    } finally {
      await lab.exec(2, ['rm', '-f', '/run/libvirt/qemu/gone1.pid']);
    }
  });
});
