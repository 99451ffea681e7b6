import { existsSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { Lab } from '../lab/lab.js';
import { runLocal } from '../lab/lab-shell.js';

async function processesMentioning(text: string): Promise<string[]> {
  const ps = await runLocal('ps', ['-eo', 'pid,args']);
  return ps.stdout.split('\n').filter((l) => l.includes(text) && !l.includes('ps -eo'));
}

describe('the lab itself', () => {
  const labs: Lab[] = [];
  afterAll(async () => {
    for (const lab of labs) await lab.down();
  });

  it('two labs side by side get their own ids, bridges, subnets and hosts; down() leaves nothing behind', async () => {
    const [a, b] = await Promise.all([Lab.start({ hosts: 1 }), Lab.start({ hosts: 1 })]);
    labs.push(a, b);
    expect(a.id).not.toBe(b.id);
    expect(a.subnetOctet).not.toBe(b.subnetOctet);
    expect((await a.exec(1, ['hostname'])).trim()).toBe('h1.lab');
    expect((await b.exec(1, ['hostname'])).trim()).toBe('h1.lab');
    // Each host answers on its own address, inside its own lab.
    expect(await a.virsh(1, ['-q', 'list', '--all'])).toBe('');
    await a.startGuest(1, { name: 'g1', memoryMiB: 128 });
    expect((await a.domains(1)).get('g1')).toBe('running');
    expect((await b.domains(1)).has('g1')).toBe(false);

    for (const lab of [a, b]) {
      await lab.down();
      labs.splice(labs.indexOf(lab), 1);
      const netns = (await runLocal('ip', ['netns', 'list'])).stdout;
      expect(netns).not.toContain(lab.id);
      expect((await runLocal('ip', ['link', 'show'])).stdout).not.toContain(lab.id);
      expect(existsSync(lab.dir)).toBe(false);
      expect(existsSync(`/etc/netns/${lab.netns(1)}`)).toBe(false);
      expect(await processesMentioning(lab.dir)).toEqual([]);
    }
  });

  it('power loss kills every process of the host; power-on brings sshd and libvirtd back with its figures', async () => {
    const lab = await Lab.start({ hosts: 1, figures: () => ({ cpus: 6, memoryMiB: 12288, memoryUsedMiB: 2048 }) });
    labs.push(lab);
    await lab.startGuest(1, { name: 'victim', memoryMiB: 128 });
    const ns = lab.netns(1);
    expect((await runLocal('ip', ['netns', 'pids', ns])).stdout.trim()).not.toBe('');
    await lab.powerOff(1);
    expect((await runLocal('ip', ['netns', 'pids', ns])).stdout.trim()).toBe('');
    expect(await processesMentioning('guest=victim')).toEqual([]);
    await lab.powerOn(1);
    expect((await lab.exec(1, ['head', '-1', '/proc/meminfo'])).trim()).toBe('MemTotal:       12582912 kB');
    expect((await lab.exec(1, ['grep', '-c', '^cpu[0-9]', '/proc/stat'])).trim()).toBe('6');
    // The guest died with its host; its definition survived (disks and /etc stay, /run does not).
    expect((await lab.domains(1)).get('victim')).toBe('shut off');
  });
});
