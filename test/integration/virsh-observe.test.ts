import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CommandRunner } from '../../src/drivers/exec/command-runner.js';
import { VirshHypervisor } from '../../src/drivers/hypervisor/virsh-hypervisor.js';
import { waitFor } from '../helpers/wait-for.js';
import type { HostFigures } from '../lab/fake-proc.js';
import { Lab } from '../lab/lab.js';
import { labDrivers, never, RECONNECT_TIMEOUT_MS } from '../lab/lab-drivers.js';

/** Three hosts, each with its own CPU count, memory and load, and their own guests. */
const FIGURES: Record<number, HostFigures> = {
  1: { cpus: 8, memoryMiB: 32 * 1024, memoryUsedMiB: 4 * 1024 },
  2: { cpus: 16, memoryMiB: 64 * 1024, memoryUsedMiB: 20 * 1024 },
  3: { cpus: 4, memoryMiB: 8 * 1024, memoryUsedMiB: 1024 },
};
const BUSY_CORES: Record<number, number> = { 1: 2, 2: 12.5, 3: 0.25 };

describe('VirshHypervisor.inspect on a real lab (sshd + libvirtd + QEMU)', () => {
  let lab: Lab;
  let drivers: ReturnType<typeof labDrivers>;

  beforeAll(async () => {
    lab = await Lab.start({ hosts: 3, figures: (n) => FIGURES[n] ?? FIGURES[1]! });
    await lab.startGuest(1, { name: 'web1', memoryMiB: 512 });
    await lab.startGuest(1, { name: 'db1', memoryMiB: 1024, vcpus: 2, paused: true });
    await lab.startGuest(2, { name: 'batch1', memoryMiB: 768, pinned: true, paused: true });
    drivers = labDrivers(lab);
  });

  afterAll(async () => {
    await drivers?.runner.close();
    await lab?.down();
  });

  it('reports each host its own capacity, memory use, domains and versions', async () => {
    const first = await Promise.all([1, 2, 3].map((n) => drivers.hypervisor.inspect(lab.host(n).name, never())));
    for (const [i, obs] of first.entries()) {
      const f = FIGURES[i + 1]!;
      expect(obs.host).toBe(lab.host(i + 1).name);
      expect(obs.capacity).toEqual({ cpu: f.cpus, memory: f.memoryMiB });
      expect(obs.memoryUsedMiB).toBe(f.memoryUsedMiB);
      // First pass: no previous /proc/stat sample, so no CPU figure yet.
      expect(obs.cpuCores).toBeUndefined();
      expect(obs.versions.libvirt).toMatch(/^\d+\.\d+/);
      expect(obs.versions.qemu).toMatch(/^\d+\.\d+/);
    }
    const byName = (n: number) => new Map(first[n - 1]!.domains.map((d) => [d.name, d]));
    expect(byName(1).get('web1')).toMatchObject({ state: 'running', vcpus: 1, memoryMiB: 512, pinnedByMetadata: false });
    expect(byName(1).get('db1')).toMatchObject({ state: 'paused', vcpus: 2, memoryMiB: 1024, pinnedByMetadata: false });
    expect(byName(2).get('batch1')).toMatchObject({ state: 'paused', vcpus: 1, memoryMiB: 768, pinnedByMetadata: true });
    expect(first[2]!.domains).toEqual([]);
  });

  it('computes CPU use from /proc/stat deltas and per-VM CPU from domstats deltas', async () => {
    for (const n of [1, 2, 3]) await drivers.hypervisor.inspect(lab.host(n).name, never());
    for (const n of [1, 2, 3]) await lab.advanceCpu(n, BUSY_CORES[n]!, 60);
    const second = await Promise.all([1, 2, 3].map((n) => drivers.hypervisor.inspect(lab.host(n).name, never())));
    for (const [i, obs] of second.entries()) expect(obs.cpuCores).toBeCloseTo(BUSY_CORES[i + 1]!, 6);
    const web1 = second[0]!.domains.find((d) => d.name === 'web1');
    expect(web1?.cpuTimeNs).toBeGreaterThan(0);
    // An idle guest uses a little CPU; the figure exists and is sane.
    expect(web1?.cpuCores).toBeGreaterThanOrEqual(0);
    expect(web1?.cpuCores).toBeLessThan(2);
  });

  it('follows a change of figures between passes (files updated in place)', async () => {
    await lab.setFigures(3, { cpus: 4, memoryMiB: 8 * 1024, memoryUsedMiB: 6 * 1024 });
    const obs = await drivers.hypervisor.inspect(lab.host(3).name, never());
    expect(obs.memoryUsedMiB).toBe(6 * 1024);
  });

  it('uses one SSH connection per host and one command per host per pass', async () => {
    const connects = drivers.logger.count('ssh connected');
    expect(connects).toBe(3);
    const { runner } = drivers;
    const commands: string[] = [];
    const counting: CommandRunner = {
      run: (host, argv, options) => {
        commands.push(host);
        return runner.run(host, argv, options);
      },
      close: () => runner.close(),
    };
    const counted = new VirshHypervisor({ runner: counting, logger: drivers.logger });
    await Promise.all([1, 2, 3].map((n) => counted.inspect(lab.host(n).name, never())));
    expect(commands.sort()).toEqual(['h1.lab', 'h2.lab', 'h3.lab']);
    expect(drivers.logger.count('ssh connected')).toBe(3);
  });

  it('listDomains answers without disturbing the CPU deltas', async () => {
    const domains = await drivers.hypervisor.listDomains(lab.host(1).name, never());
    expect(domains.map((d) => d.name).sort()).toEqual(['db1', 'web1']);
  });

  it('a host that is powered off fails its observation with SSH_CONNECT; it is back after power-on', async () => {
    await lab.powerOff(3);
    await expect(drivers.hypervisor.inspect(lab.host(3).name, never())).rejects.toMatchObject({ code: 'SSH_CONNECT' });
    await lab.powerOn(3);
    const obs = await waitFor(`${lab.host(3).name} to be inspected again after power-on`, { timeoutMs: RECONNECT_TIMEOUT_MS }, () => drivers.hypervisor.inspect(lab.host(3).name, never()));
    expect(obs.capacity.cpu).toBe(4);
  });
});
