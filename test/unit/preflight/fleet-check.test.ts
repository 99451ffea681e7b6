import { describe, expect, it } from 'vitest';
import { ConsolidatorError } from '../../../src/errors.js';
import type { CheckResult } from '../../../src/preflight/check-result.js';
import { isFleetHealthy } from '../../../src/preflight/check-result.js';
import { runFleetCheck } from '../../../src/preflight/fleet-check.js';
import { fakeFleet, fakeHost, fixture, uuidOf, type FakeHost } from './fake-fleet.js';

const DISKS = fixture('domblklist-details.disks.txt');

async function check(hosts: FakeHost[], options: { timeoutMs?: number; concurrency?: number; pairs?: boolean[] } = {}) {
  const fleet = fakeFleet(hosts);
  const targets = fleet.targets.map((t, i) => ({ ...t, pairs: options.pairs?.[i] ?? true }));
  const report = await runFleetCheck({
    runner: fleet.runner,
    hypervisor: fleet.hypervisor,
    powerPaths: fleet.powerPaths,
    targets,
    concurrency: options.concurrency ?? 4,
    timeoutMs: options.timeoutMs ?? 1_000,
  });
  const find = (host: string, name: CheckResult['check'], peer?: string): CheckResult => {
    const found = report.results.find((r) => r.host === host && r.check === name && r.peer === peer);
    if (!found) throw new Error(`no ${name} result for ${host}${peer ? ` -> ${peer}` : ''}`);
    return found;
  };
  return { report, find, fleet };
}

describe('runFleetCheck: a healthy fleet', () => {
  it('passes every check of every host and every ordered pair, in a stable order', async () => {
    const shared = new Set(['/srv/lab/shared/disk1.qcow2', '/dev/vg0/data']);
    const { report, find } = await check([fakeHost(1, { guests: { web1: DISKS }, files: shared }), fakeHost(2, { files: shared })]);

    expect(report.results.map((r) => [r.peer ? `${r.host}>${r.peer}` : r.host, r.check, r.result])).toEqual([
      ['h1', 'ssh', 'pass'],
      ['h1', 'libvirt', 'pass'],
      ['h1', 'qemu', 'pass'],
      ['h1', 'bmc-power', 'pass'],
      ['h1', 'bmc-reading', 'pass'],
      ['h1', 'bmc-identity', 'pass'],
      ['h2', 'ssh', 'pass'],
      ['h2', 'libvirt', 'pass'],
      ['h2', 'qemu', 'pass'],
      ['h2', 'bmc-power', 'pass'],
      ['h2', 'bmc-reading', 'pass'],
      ['h2', 'bmc-identity', 'pass'],
      ['h1>h2', 'peer-resolves', 'pass'],
      ['h1>h2', 'peer-storage', 'pass'],
      ['h1>h2', 'peer-versions', 'pass'],
      ['h2>h1', 'peer-resolves', 'pass'],
      ['h2>h1', 'peer-storage', 'pass'],
      ['h2>h1', 'peer-versions', 'pass'],
    ]);
    expect(isFleetHealthy(report)).toBe(true);
    expect(find('h1', 'ssh').detail).toBe('root@10.0.0.1:22, host key verified');
    expect(find('h1', 'libvirt').detail).toBe('libvirt 9.0.0');
    expect(find('h1', 'qemu').detail).toBe('QEMU 7.2.22');
    expect(find('h1', 'bmc-power')).toMatchObject({ path: 'ipmitool', detail: 'power on' });
    expect(find('h1', 'bmc-reading').detail).toBe('180 W');
    expect(find('h1', 'bmc-identity').detail).toBe(`system UUID ${uuidOf(1)} = DMI UUID of h1`);
    expect(find('h1', 'peer-resolves', 'h2').detail).toBe('h2 resolves to 10.0.0.2 on h1');
    // The file and block disks are checked; the network disk and the empty cdrom are not.
    expect(find('h1', 'peer-storage', 'h2').detail).toBe('all 2 disk(s) of 1 running guest(s) on h1 exist on h2');
    expect(find('h2', 'peer-storage', 'h1').detail).toBe('no guest runs on h2');
  });

  it('reads only: the BMC is asked its state, reading and UUID, never to switch', async () => {
    const { fleet } = await check([fakeHost(1), fakeHost(2)]);
    expect(fleet.power.calls.sort()).toEqual(['reading h1', 'reading h2', 'status h1', 'status h2', 'uuid h1', 'uuid h2']);
  });

  it('asks each host a fixed number of commands whatever the number of peers, names and paths on stdin', async () => {
    const shared = new Set(['/srv/lab/shared/disk1.qcow2', '/dev/vg0/data']);
    const hosts = [1, 2, 3].map((n) => fakeHost(n, { guests: { [`g${n}`]: DISKS }, files: shared }));
    const { fleet, report } = await check(hosts);
    expect(isFleetHealthy(report)).toBe(true);
    for (const h of ['h1', 'h2', 'h3']) expect(fleet.runner.calls.filter((c) => c.host === h)).toHaveLength(5);
    const getent = fleet.runner.calls.find((c) => c.host === 'h1' && c.argv[2]?.includes('getent'));
    expect(getent?.argv).toHaveLength(3);
    expect(getent?.stdin).toBe('h2\nh3\n');
    expect(report.results.filter((r) => r.check === 'peer-resolves')).toHaveLength(6);
  });
});

describe('runFleetCheck: each check fails on its own fault, with a fix', () => {
  it('an unknown host key: ssh fails with the ssh-keyscan fix, the host’s other SSH checks are skipped, its BMC still checked', async () => {
    const sshError = new ConsolidatorError('SSH_HOST_KEY', 'host key of h2 (10.0.0.2) ssh-ed25519 SHA256:abc is not in /etc/consolidator/known_hosts; refused', {
      details: { host: 'h2', fingerprint: 'SHA256:abc', keyType: 'ssh-ed25519', verdict: 'unknown', knownHostsFile: '/etc/consolidator/known_hosts' },
    });
    const { report, find } = await check([fakeHost(1), fakeHost(2, { sshError })]);
    expect(isFleetHealthy(report)).toBe(false);
    expect(find('h2', 'ssh')).toMatchObject({ result: 'fail', detail: expect.stringContaining('SHA256:abc is not in') });
    expect(find('h2', 'ssh').fix).toBe(
      'add the key to known_hosts once verified: ssh-keyscan -p 22 -t ed25519 10.0.0.2 | ssh-keygen -lf - must print SHA256:abc, ' +
        "as ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on h2's console does; then ssh-keyscan -p 22 -t ed25519 10.0.0.2 >> /etc/consolidator/known_hosts",
    );
    expect(find('h2', 'libvirt').result).toBe('skip');
    expect(find('h2', 'bmc-power').result).toBe('pass');
    expect(find('h2', 'bmc-identity')).toMatchObject({ result: 'skip', detail: expect.stringContaining('DMI UUID is unknown') });
    expect(find('h2', 'peer-resolves', 'h1').result).toBe('skip');
  });

  it('a changed host key: the fix says to remove the old key only if the host was reinstalled', async () => {
    const sshError = new ConsolidatorError('SSH_HOST_KEY', 'host key CHANGED', { details: { fingerprint: 'SHA256:new', keyType: 'ssh-ed25519', verdict: 'changed', knownHostsFile: '/k' } });
    const { find } = await check([fakeHost(1, { sshError })]);
    expect(find('h1', 'ssh').fix).toContain('ssh-keygen -R 10.0.0.1 -f /k');
    expect(find('h1', 'ssh').fix).toContain('someone may be in the middle');
  });

  it('libvirtd down: libvirt fails with the virsh error, QEMU skipped', async () => {
    const version = { stdout: '', stderr: "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory\n", exitCode: 1 };
    const { find } = await check([fakeHost(1, { version })]);
    expect(find('h1', 'libvirt')).toMatchObject({ result: 'fail', detail: 'virsh version failed: failed to connect to the hypervisor', fix: expect.stringContaining('start libvirtd on h1') });
    expect(find('h1', 'qemu').result).toBe('skip');
  });

  it.each([
    ['nothing', ''],
    ['garbage', 'Segmentation fault\n'],
    ['a version that is no number', 'Running against daemon: banana\n'],
  ])('virsh version printing %s: a clear failure, no crash', async (_what, stdout) => {
    const { find } = await check([fakeHost(1, { version: { stdout, stderr: '', exitCode: 0 } })]);
    expect(find('h1', 'libvirt')).toMatchObject({ result: 'fail', detail: expect.stringContaining('virsh version printed no libvirt version') });
  });

  it('no QEMU hypervisor: qemu fails, libvirt passes', async () => {
    const { find } = await check([fakeHost(1, { version: { stdout: 'Running against daemon: 9.0.0\n', stderr: '', exitCode: 0 } })]);
    expect(find('h1', 'libvirt').result).toBe('pass');
    expect(find('h1', 'qemu')).toMatchObject({ result: 'fail', fix: expect.stringContaining('install QEMU on h1') });
  });

  it('a BMC that does not answer: bmc-power fails, reading and identity skipped', async () => {
    const { find } = await check([fakeHost(1, { power: new ConsolidatorError('BMC_UNREACHABLE', 'ipmitool: no answer from 10.9.0.1') })]);
    expect(find('h1', 'bmc-power')).toMatchObject({ result: 'fail', detail: expect.stringContaining('no answer from 10.9.0.1'), fix: expect.stringContaining('BMC address and port') });
    expect(find('h1', 'bmc-reading').result).toBe('skip');
    expect(find('h1', 'bmc-identity').result).toBe('skip');
  });

  it('a BMC that refuses the credentials: the fix names the user and password file', async () => {
    const { find } = await check([fakeHost(1, { power: new ConsolidatorError('BMC_AUTH', 'ipmitool: authentication refused') })]);
    expect(find('h1', 'bmc-power').fix).toContain('bmc.passwordFile');
  });

  it('a BMC that hangs and ignores its signal: fails at the timeout, the others are not held up', async () => {
    const started = Date.now();
    const { find } = await check([fakeHost(1, { bmcHangs: true }), fakeHost(2)], { timeoutMs: 200 });
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(find('h1', 'bmc-power')).toMatchObject({ result: 'fail', detail: expect.stringContaining('no answer within 200 ms') });
    expect(find('h2', 'bmc-power').result).toBe('pass');
  });

  it('a BMC that belongs to another host: identity fails and names that host', async () => {
    const { find } = await check([fakeHost(1, { bmcUuid: uuidOf(2) }), fakeHost(2)]);
    expect(find('h1', 'bmc-identity')).toMatchObject({
      result: 'fail',
      detail: `the BMC reports system UUID ${uuidOf(2)}, h1 itself ${uuidOf(1)}: that BMC belongs to h2`,
      fix: expect.stringContaining("it is h2's"),
    });
    expect(find('h2', 'bmc-identity').result).toBe('pass');
  });

  it('no UUID on one side: identity skipped with the reason, not failed', async () => {
    const { find } = await check([fakeHost(1, { bmcUuid: undefined }), fakeHost(2, { dmi: undefined })]);
    expect(find('h1', 'bmc-identity')).toMatchObject({ result: 'skip', detail: expect.stringContaining('reports no system UUID') });
    expect(find('h2', 'bmc-identity')).toMatchObject({ result: 'skip', detail: expect.stringContaining('No such file or directory') });
  });

  it('a peer name that does not resolve: peer-resolves fails from that source only', async () => {
    const { find } = await check([fakeHost(1, { resolves: { h1: '10.0.0.1' } }), fakeHost(2)]);
    expect(find('h1', 'peer-resolves', 'h2')).toMatchObject({ result: 'fail', detail: 'h2 does not resolve on h1 (getent hosts h2)', fix: expect.stringContaining('/etc/hosts on h1') });
    expect(find('h2', 'peer-resolves', 'h1').result).toBe('pass');
  });

  it('a guest disk missing on the peer: peer-storage fails naming guest, disk and path', async () => {
    const { find } = await check([fakeHost(1, { guests: { web1: DISKS } }), fakeHost(2, { files: new Set(['/dev/vg0/data']) })]);
    expect(find('h1', 'peer-storage', 'h2')).toMatchObject({
      result: 'fail',
      detail: 'h2 does not see 1 disk(s) of the guests on h1: web1 vda /srv/lab/shared/disk1.qcow2 is missing',
      fix: expect.stringContaining('storage every host mounts at the same path'),
    });
  });

  it('an older destination: peer-versions fails in that direction only', async () => {
    const older = { stdout: 'Running hypervisor: QEMU 7.2.22\nRunning against daemon: 8.0.0\n', stderr: '', exitCode: 0 };
    const { find } = await check([fakeHost(1), fakeHost(2, { version: older })]);
    expect(find('h1', 'peer-versions', 'h2')).toMatchObject({ result: 'fail', detail: expect.stringContaining('libvirt 8.0.0 < 9.0.0'), fix: expect.stringContaining('upgrade h2') });
    expect(find('h2', 'peer-versions', 'h1').result).toBe('pass');
  });

  it('an excluded host is checked on its own but takes no part in pairs', async () => {
    const { report } = await check([fakeHost(1), fakeHost(2), fakeHost(3)], { pairs: [true, true, false] });
    expect(report.results.filter((r) => r.host === 'h3').map((r) => r.check)).toEqual(['ssh', 'libvirt', 'qemu', 'bmc-power', 'bmc-reading', 'bmc-identity']);
    expect(report.results.some((r) => r.peer === 'h3')).toBe(false);
  });

  it('never has more hosts in flight than the bound', async () => {
    const hosts = [1, 2, 3, 4, 5].map((n) => fakeHost(n));
    const fleet = fakeFleet(hosts);
    let inFlight = 0;
    let most = 0;
    const runner = {
      run: async (...args: Parameters<typeof fleet.runner.run>) => {
        most = Math.max(most, ++inFlight);
        await new Promise((resolve) => setTimeout(resolve, 5));
        try {
          return await fleet.runner.run(...args);
        } finally {
          inFlight--;
        }
      },
      close: async () => undefined,
    };
    await runFleetCheck({ runner, hypervisor: fleet.hypervisor, powerPaths: fleet.powerPaths, targets: fleet.targets, concurrency: 2, timeoutMs: 1_000 });
    expect(most).toBe(2);
  });
});
