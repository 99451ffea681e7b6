import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationProgress } from '../../src/drivers/hypervisor/hypervisor-driver.js';
import { isConsolidatorError } from '../../src/errors.js';
import { Lab } from '../lab/lab.js';
import { labDrivers, MIGRATE_DEFAULTS, never } from '../lab/lab-drivers.js';

/** Size of the random data a "filled" guest carries, and the cap that makes it take a few seconds. */
const FILL_MIB = 8;
const CAP_MIBPS = 4;

describe('VirshHypervisor.migrate on a real lab: virsh migrate --live over qemu+ssh', () => {
  let lab: Lab;
  let drivers: ReturnType<typeof labDrivers>;
  let fill: string;
  const h = (n: number) => lab.host(n).name;

  beforeAll(async () => {
    lab = await Lab.start({ hosts: 3 });
    fill = await lab.writeFillFile('random', FILL_MIB);
    drivers = labDrivers(lab);
  });

  afterAll(async () => {
    await drivers?.runner.close();
    await lab?.down();
  });

  async function expectOnlyOn(vm: string, n: number, state: string) {
    for (const host of lab.hosts) {
      if (host.initPid === undefined) continue;
      const domains = await lab.domains(host.n);
      if (host.n === n) expect(domains.get(vm), `${vm} on h${host.n}`).toBe(state);
      else expect(domains.has(vm), `${vm} must be gone from h${host.n}`).toBe(false);
    }
  }

  it('moves a running VM; it runs on the destination and is gone from the source', async () => {
    await lab.startGuest(1, { name: 'run1', memoryMiB: 1024 });
    const progress: MigrationProgress[] = [];
    const result = await drivers.hypervisor.migrate('run1', h(1), h(2), MIGRATE_DEFAULTS, never(), (p) => progress.push(p));
    expect(result.state).toBe('running');
    expect(result.nonConvergenceApplied).toBeUndefined();
    expect(result.durationMs).toBeGreaterThan(0);
    await expectOnlyOn('run1', 2, 'running');
    // --persistent --undefinesource: defined on the destination, nothing left on the source
    expect(await lab.virsh(2, ['dominfo', 'run1'])).toMatch(/Persistent:\s+yes/);
  });

  it('moves a paused VM; it arrives paused', async () => {
    await lab.startGuest(1, { name: 'paused1', memoryMiB: 512, paused: true });
    const result = await drivers.hypervisor.migrate('paused1', h(1), h(2), MIGRATE_DEFAULTS, never());
    expect(result.state).toBe('paused');
    await expectOnlyOn('paused1', 2, 'paused');
  });

  it('moves a running VM with real data under a bandwidth cap; progress shows the cap', async () => {
    await lab.startGuest(1, { name: 'fat1', memoryMiB: 256, fillFile: fill });
    const progress: MigrationProgress[] = [];
    const result = await drivers.hypervisor.migrate('fat1', h(1), h(2), { ...MIGRATE_DEFAULTS, bandwidthMiBps: CAP_MIBPS }, never(), (p) => progress.push(p));
    expect(result.state).toBe('running');
    // 8 MiB at 4 MiB/s: at least about two seconds.
    expect(result.durationMs).toBeGreaterThan(((FILL_MIB / CAP_MIBPS) * 1000) / 2);
    const bandwidths = progress.map((p) => p.memoryBandwidthMiBps).filter((b): b is number => b !== undefined && b > 0);
    expect(bandwidths.length).toBeGreaterThan(0);
    for (const b of bandwidths) expect(b).toBeLessThanOrEqual(CAP_MIBPS * 1.25);
    expect(progress.every((p) => p.vm === 'fat1' && p.phase === 'precopy')).toBe(true);
    await expectOnlyOn('fat1', 2, 'running');
  });

  it('moves a paused VM with real data under a bandwidth cap; it arrives paused', async () => {
    await lab.startGuest(1, { name: 'fat2', memoryMiB: 256, fillFile: fill, paused: true });
    const result = await drivers.hypervisor.migrate('fat2', h(1), h(3), { ...MIGRATE_DEFAULTS, bandwidthMiBps: CAP_MIBPS }, never());
    expect(result.state).toBe('paused');
    await expectOnlyOn('fat2', 3, 'paused');
  });

  it('without --persistent --undefinesource the source keeps a shut-off definition, and that counts as gone', async () => {
    await lab.startGuest(1, { name: 'transient1', memoryMiB: 256 });
    const result = await drivers.hypervisor.migrate('transient1', h(1), h(3), { ...MIGRATE_DEFAULTS, persistent: false, undefineSource: false }, never());
    expect(result.state).toBe('running');
    expect((await lab.domains(1)).get('transient1')).toBe('shut off');
    expect((await lab.domains(3)).get('transient1')).toBe('running');
    await lab.removeGuest('transient1');
  });

  it('a migration aborted at its timeout leaves the VM running on the source (MIGRATION_TIMEOUT)', async () => {
    await lab.startGuest(1, { name: 'slow1', memoryMiB: 256, fillFile: fill });
    const error = await drivers.hypervisor
      .migrate('slow1', h(1), h(2), { ...MIGRATE_DEFAULTS, bandwidthMiBps: 1, timeoutMs: 2_000 }, never())
      .then(() => undefined, (e: unknown) => e);
    expect(isConsolidatorError(error, 'MIGRATION_TIMEOUT')).toBe(true);
    expect((error as Error).message).toMatch(/not finished after 2000 ms, aborted/);
    expect((error as Error).message).toContain('VM is running');
    expect((error as Error).message).toContain(`on ${h(1)}, absent from ${h(2)}`);
    await expectOnlyOn('slow1', 1, 'running');
  });

  it("the caller's abort signal stops the migration (ABORTED); the VM keeps running on the source", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 1_500);
    await expect(
      drivers.hypervisor.migrate('slow1', h(1), h(2), { ...MIGRATE_DEFAULTS, bandwidthMiBps: 1 }, controller.signal),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    await expectOnlyOn('slow1', 1, 'running');
  });

  it('preflight passes for a good pair and lists every problem otherwise', async () => {
    expect(await drivers.hypervisor.preflight('slow1', h(1), h(2), never())).toEqual({ ok: true, problems: [] });
    expect((await drivers.hypervisor.preflight('nosuch', h(1), h(2), never())).problems).toEqual([`VM nosuch is not defined on ${h(1)}`]);

    // Not enough memory on the destination.
    const figures = lab.host(2).figures;
    await lab.setFigures(2, { ...figures, memoryUsedMiB: figures.memoryMiB - 100 });
    const short = await drivers.hypervisor.preflight('slow1', h(1), h(2), never());
    await lab.setFigures(2, figures);
    expect(short.ok).toBe(false);
    expect(short.problems.join('\n')).toMatch(/has 100 MiB available, slow1 needs 256 MiB/);

    // A disk in the source's own /var/lib/libvirt/images, which the destination does not have.
    await lab.exec(1, ['qemu-img', 'create', '-q', '-f', 'qcow2', '/var/lib/libvirt/images-disk.qcow2', '16M']);
    const xml = join(lab.sharedDir, 'disky.xml');
    await writeFile(
      xml,
      (await lab.virsh(1, ['dumpxml', 'slow1']))
        .replace(/<name>slow1<\/name>/, '<name>disky</name>')
        .replace(/<uuid>.*<\/uuid>/, '')
        .replace('<devices>', "<devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/var/lib/libvirt/images-disk.qcow2'/><target dev='vda' bus='virtio'/></disk>"),
    );
    await lab.virsh(1, ['define', xml]);
    const disky = await drivers.hypervisor.preflight('disky', h(1), h(2), never());
    expect(disky.problems).toEqual([`VM disky is not running or paused on ${h(1)}`, `disk /var/lib/libvirt/images-disk.qcow2 of disky does not exist on ${h(2)} (no shared storage?)`]);
    await lab.virsh(1, ['undefine', 'disky']);
  });

  it('a migration to a host that has just been powered off fails cleanly; the VM still runs on the source', async () => {
    await lab.powerOff(3);
    const preflight = await drivers.hypervisor.preflight('slow1', h(1), h(3), never());
    expect(preflight.ok).toBe(false);
    expect(preflight.problems.join('\n')).toMatch(/destination h3.lab unreachable/);
    const error = await drivers.hypervisor.migrate('slow1', h(1), h(3), MIGRATE_DEFAULTS, never()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isConsolidatorError(error, 'MIGRATION_FAILED')).toBe(true);
    const message = (error as Error).message;
    expect(message).toMatch(/ssh: connect to host h3.lab port 22/);
    expect(message).toContain(`VM is running`);
    expect(message).toContain(`on ${h(1)}, unknown on ${h(3)}`);
    await expectOnlyOn('slow1', 1, 'running');
  });

  it('refuses bad names, the same host, and a VM that is not on the source', async () => {
    await expect(drivers.hypervisor.migrate('bad name', h(1), h(2), MIGRATE_DEFAULTS, never())).rejects.toMatchObject({ code: 'INVALID_NAME' });
    await expect(drivers.hypervisor.migrate('slow1', h(1), 'x;reboot', MIGRATE_DEFAULTS, never())).rejects.toMatchObject({ code: 'INVALID_NAME' });
    await expect(drivers.hypervisor.migrate('slow1', h(1), h(1), MIGRATE_DEFAULTS, never())).rejects.toMatchObject({ code: 'MIGRATION_FAILED' });
    await expect(drivers.hypervisor.migrate('run1', h(1), h(2), MIGRATE_DEFAULTS, never())).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringContaining(`absent from ${h(1)}`),
    });
  });

  it('abortMigration with no migration running is a no-op', async () => {
    await drivers.hypervisor.abortMigration('slow1', h(1), never());
  });
});
