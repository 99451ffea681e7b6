import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { observeScript, parseProductUuid, parseVirshListAll, qemuGuestName, residentGuestsScript } from '../../../../src/drivers/hypervisor/virsh-observation.js';

describe('the remote scripts', () => {
  it.each([
    ['observeScript(true)', observeScript(true)],
    ['observeScript(false)', observeScript(false)],
    ['residentGuestsScript()', residentGuestsScript()],
  ])('%s is valid POSIX sh', (_name, script) => {
    const r = spawnSync('sh', ['-n', '-c', script], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('no virsh call is hidden behind `|| true`', () => {
    for (const script of [observeScript(true), residentGuestsScript()]) expect(script).not.toMatch(/\|\|\s*true/);
  });
});

describe('qemuGuestName', () => {
  it.each([
    ['/usr/bin/qemu-system-x86_64 -name guest=web1,debug-threads=on -S -machine pc', 'web1'],
    ['/usr/libexec/qemu-kvm -name db1 -m 512', 'db1'],
    ['qemu-system-x86_64 -name guest=a,,b,debug-threads=on', 'a,b'],
    ['/usr/bin/qemu-nbd --fork /var/lib/img.qcow2', undefined],
  ])('%s -> %s', (line, name) => expect(qemuGuestName(line)).toBe(name));
});

describe('parseVirshListAll', () => {
  const unreadable = (line: string) => new Error(`unreadable ${line}`);
  it('names and states, shut off included', () => {
    const text = ' Id   Name      State\n--------------------------\n 1    web1      running\n -    pinned1   shut off\n 3    x         in shutdown\n';
    expect(parseVirshListAll(text, unreadable)).toEqual(new Map([['web1', 'running'], ['pinned1', 'shut off'], ['x', 'in shutdown']]));
  });
  it('refuses text that is not the table', () => {
    expect(() => parseVirshListAll('error: failed to connect to the hypervisor\n', unreadable)).toThrow(/unreadable/);
    expect(() => parseVirshListAll(' Id Name State\n-----\n garbage\n', unreadable)).toThrow(/unreadable/);
  });
});

describe('parseProductUuid', () => {
  it.each([
    ['D31D0000-ABCD-4000-8000-0000000000A1\n', 'd31d0000-abcd-4000-8000-0000000000a1'],
    ['4c4c4544-0042-3510-8052-b4c04f384d32', '4c4c4544-0042-3510-8052-b4c04f384d32'],
    ['', undefined],
    ['Not Settable\n', undefined],
  ])('%j -> %s', (text, uuid) => expect(parseProductUuid(text)).toBe(uuid));
});
