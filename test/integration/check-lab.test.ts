/**
 * `consolidator check` against real components: two lab hosts (sshd, libvirtd + QEMU, each with its
 * own DMI product_uuid and its own /var/lib/libvirt), an ipmi_sim BMC per host answering the host's
 * system GUID, the real Ssh2CommandRunner, VirshHypervisor and ipmitool driver built from a policy
 * file, run through the CLI entry. First everything passes (a guest with a disk on storage both hosts
 * see); then one fault at a time, each named with its fix and exit 1: a wrong host key in known_hosts,
 * a BMC wired to the other host, a running guest whose disk only its own host has.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/cli.js';
import type { CheckReportJson } from '../../src/cli/check-report.js';
import { captureIo } from '../helpers/capture.js';
import { type Bmc, startBmcs } from '../lab/bmc.js';
import { Lab, labProductUuid } from '../lab/lab.js';
import { mustRunLocal } from '../lab/lab-shell.js';

/** This file's BMCs: loopback addresses and a port of their own, apart from the other IPMI tests. */
const BMC_PORT = 6236;
const BMC_ADDRESS = (n: number) => `127.0.1.${240 + n}`;
const SHARED_DISK = 'check-shared.img';
/** Inside a lab host: its own /var/lib/libvirt, which the other host does not have. */
const LOCAL_DISK = '/var/lib/libvirt/check-local.img';

let lab: Lab | undefined;
let bmcs: Bmc[] = [];
let dir: string;

const theLab = (): Lab => {
  if (!lab) throw new Error('no lab');
  return lab;
};

/** A policy for the lab's two hosts; `bmcOf` says which BMC each host's bmc section points at. */
async function writePolicy(name: string, options: { knownHostsFile?: string; bmcOf?: (n: number) => Bmc } = {}): Promise<string> {
  const l = theLab();
  const bmcOf = options.bmcOf ?? ((n: number) => bmcs[n - 1] as Bmc);
  const hosts = [1, 2].map((n) => {
    const b = bmcOf(n);
    return [
      `  - name: ${l.host(n).name}`,
      `    ssh: { address: ${l.host(n).address}, user: root, keyFile: ${l.keyFile}, knownHostsFile: ${options.knownHostsFile ?? l.knownHostsFile} }`,
      `    bmc: { address: ${b.address}, port: ${b.port}, user: ${b.user}, passwordFile: ${b.passwordFile} }`,
    ].join('\n');
  });
  const file = join(dir, `${name}.yaml`);
  await writeFile(
    file,
    ['version: 1', 'power:', '  verifyTimeoutSeconds: 10', '  ipmi: { cipherSuite: 3, retries: 1, commandTimeoutSeconds: 5 }', 'hosts:', ...hosts, ''].join('\n'),
  );
  return file;
}

async function check(argv: string[]) {
  const io = captureIo();
  const code = await runCli(['check', ...argv], io);
  return { code, stdout: io.stdout.text, stderr: io.stderr.text };
}

async function checkJson(policy: string) {
  const r = await check(['--policy', policy, '--json']);
  return { ...r, doc: JSON.parse(r.stdout) as CheckReportJson };
}

const failures = (doc: CheckReportJson) => doc.results.filter((r) => r.result === 'fail');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'check-lab-'));
  lab = await Lab.start({ hosts: 2 });
  bmcs = await startBmcs([1, 2].map((n) => ({ name: `check-bmc-h${n}`, address: BMC_ADDRESS(n), port: BMC_PORT, systemUuid: labProductUuid(n) })));
  // A guest on h1 whose disk is on storage both hosts see (the lab's shared folder).
  const shared = join(theLab().sharedDir, SHARED_DISK);
  await mustRunLocal('truncate', ['-s', '1M', shared]);
  await theLab().startGuest(1, { name: 'web1', memoryMiB: 64, disk: shared });
}, 240_000);

afterAll(async () => {
  await Promise.all(bmcs.map((b) => b.stop()));
  await lab?.down();
  await rm(dir, { recursive: true, force: true });
});

describe('consolidator check on the lab (real sshd, libvirt/QEMU, ipmi_sim, ipmitool)', () => {
  it('everything in order: every check passes, exit 0, and no secret in the output', async () => {
    const policy = await writePolicy('good');
    const started = Date.now();
    const { code, doc, stderr } = await checkJson(policy);
    const wallMs = Date.now() - started;
    console.log(`consolidator check, 2 lab hosts + 2 ipmi_sim BMCs: ${doc.durationMs} ms (${wallMs} ms with the policy load)`);

    // ipmi_sim has no DCMI power reading: the only checks not passed, skipped and said so.
    expect(doc.results.filter((r) => r.result !== 'pass').map((r) => [r.check, r.result, r.detail])).toEqual([
      ['bmc-reading', 'skip', 'the BMC offers no power reading'],
      ['bmc-reading', 'skip', 'the BMC offers no power reading'],
    ]);
    expect(code).toBe(0);
    expect(doc.counts).toEqual({ pass: 16, fail: 0, skip: 2 });
    const h1 = theLab().host(1).name;
    const h2 = theLab().host(2).name;
    const detail = (host: string, name: string, peer?: string) => doc.results.find((r) => r.host === host && r.check === name && r.peer === peer)?.detail;
    expect(detail(h1, 'libvirt')).toMatch(/^libvirt \d+\.\d+\.\d+$/);
    expect(detail(h1, 'qemu')).toMatch(/^QEMU \d+\.\d+\.\d+$/);
    expect(detail(h2, 'bmc-identity')).toBe(`system UUID ${labProductUuid(2)} = DMI UUID of ${h2}`);
    expect(detail(h1, 'peer-resolves', h2)).toBe(`${h2} resolves to ${theLab().host(2).address} on ${h1}`);
    expect(detail(h1, 'peer-storage', h2)).toBe(`all 1 disk(s) of 1 running guest(s) on ${h1} exist on ${h2}`);
    for (const b of bmcs) {
      expect(`${JSON.stringify(doc)}${stderr}`).not.toContain(b.password);
    }
    // The table says the same.
    const table = await check(['--policy', policy]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/\n16 passed, 0 failed, 2 skipped: 2 hosts, 2 pairs, in \d+\.\d s\n$/);
  });

  it('a wrong host key for h2 in known_hosts: ssh fails with the fingerprint and the ssh-keyscan fix, exit 1', async () => {
    const l = theLab();
    const other = join(dir, 'other_key');
    await mustRunLocal('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const otherKey = (await readFile(`${other}.pub`, 'utf8')).trim().split(/\s+/).slice(0, 2).join(' ');
    const lines = (await readFile(l.knownHostsFile, 'utf8')).split('\n').map((line) => (line.startsWith(`${l.host(2).address} `) ? `${l.host(2).address} ${otherKey}` : line));
    const knownHostsFile = join(dir, 'known_hosts.wrong');
    await writeFile(knownHostsFile, lines.join('\n'));

    const { code, doc } = await checkJson(await writePolicy('wrong-key', { knownHostsFile }));

    expect(code).toBe(1);
    const h2 = l.host(2).name;
    const ssh = doc.results.find((r) => r.host === h2 && r.check === 'ssh');
    expect(ssh?.result).toBe('fail');
    expect(ssh?.detail).toMatch(/ssh-ed25519 SHA256:\S+ does not match the key\(s\) on line 2 of .*known_hosts\.wrong: the host key CHANGED/);
    expect(ssh?.fix).toContain(`ssh-keyscan -p 22 -t ed25519 ${l.host(2).address} >> ${knownHostsFile}`);
    // h1 is unaffected; h2's SSH checks are skipped, its BMC still answers.
    expect(failures(doc).filter((r) => r.host === l.host(1).name && r.peer === undefined)).toEqual([]);
    expect(doc.results.find((r) => r.host === h2 && r.check === 'libvirt')?.result).toBe('skip');
    expect(doc.results.find((r) => r.host === h2 && r.check === 'bmc-power')?.result).toBe('pass');
    expect(doc.counts.fail).toBe(1);
  });

  it('the BMCs swapped in the policy: identity fails on both hosts, naming the owner, exit 1', async () => {
    const { code, doc, stdout } = await checkJson(await writePolicy('swapped', { bmcOf: (n) => bmcs[2 - n] as Bmc }));
    const [h1, h2] = [theLab().host(1).name, theLab().host(2).name];
    expect(code).toBe(1);
    expect(failures(doc).map((r) => [r.host, r.check, r.result])).toEqual([
      [h1, 'bmc-identity', 'fail'],
      [h2, 'bmc-identity', 'fail'],
    ]);
    expect(failures(doc)[0]?.detail).toBe(`the BMC reports system UUID ${labProductUuid(2)}, ${h1} itself ${labProductUuid(1)}: that BMC belongs to ${h2}`);
    expect(stdout).not.toContain(bmcs[0]?.password);
  });

  it('a running guest whose disk only h1 has: peer-storage h1 -> h2 fails naming guest, disk and path, exit 1', async () => {
    const l = theLab();
    await l.exec(1, ['truncate', '-s', '1M', LOCAL_DISK]);
    await l.startGuest(1, { name: 'db1', memoryMiB: 64, disk: LOCAL_DISK });
    try {
      const { code, doc } = await checkJson(await writePolicy('local-disk'));
      const [h1, h2] = [l.host(1).name, l.host(2).name];
      expect(code).toBe(1);
      expect(failures(doc)).toEqual([
        {
          host: h1,
          peer: h2,
          check: 'peer-storage',
          result: 'fail',
          detail: `${h2} does not see 1 disk(s) of the guests on ${h1}: db1 vda ${LOCAL_DISK} is missing`,
          fix: expect.stringContaining('storage every host mounts at the same path') as string,
        },
      ]);
    } finally {
      await l.removeGuest('db1');
    }
  });
});
