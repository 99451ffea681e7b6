import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, beforeAll } from 'vitest';
import { summarizePolicy } from '../../../src/cli/validate.js';
import { formatIssue, loadPolicyFile, loadPolicyText, type LoadResult } from '../../../src/config/load.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'consolidator-policy-'));
  writeFileSync(join(dir, 'key'), 'k');
  chmodSync(join(dir, 'key'), 0o600);
  writeFileSync(join(dir, 'known_hosts'), '');
  writeFileSync(join(dir, 'pw'), 'p');
  chmodSync(join(dir, 'pw'), 0o600);
});

/** A valid policy with real secret files, with `extra` YAML appended. */
function realHosts(): string {
  return [
    'version: 1',
    'hostDefaults:',
    `  ssh: { keyFile: ${dir}/key, knownHostsFile: ${dir}/known_hosts }`,
    `  bmc: { user: admin, passwordFile: ${dir}/pw }`,
    'hosts:',
    '  - name: h1',
    '    bmc: { address: 127.0.1.1 }',
    '  - name: h2',
    '    bmc: { address: 127.0.1.2 }',
  ].join('\n');
}

async function load(text: string): Promise<LoadResult> {
  return loadPolicyText(text, join(dir, 'policy.yaml'));
}

function messages(result: LoadResult): string[] {
  if (result.ok) return [];
  return result.issues.map((i) => formatIssue(i).replaceAll(`${dir}/`, ''));
}

describe('loading a policy', () => {
  it('accepts a valid policy and fills defaults', async () => {
    const result = await load(realHosts());
    expect(messages(result)).toEqual([]);
    if (!result.ok) return;
    expect(result.value.policy.mode).toBe('dry-run');
    expect(result.value.policy.thresholds.cpu.targetRatio).toBe(0.7);
    expect(result.value.policy.migration.nonConvergence).toBe('auto-converge');
    expect(result.value.hosts.map((h) => h.name)).toEqual(['h1', 'h2']);
    expect(result.value.hosts[0]?.ssh.keyFile).toBe(`${dir}/key`);
    expect(result.value.hosts[1]?.bmc.address).toBe('127.0.1.2');
  });

  it('accepts the shipped example and the minimal fixture', async () => {
    const example = await loadPolicyFile('config/consolidator.example.yaml');
    expect(example.ok ? [] : example.issues.map(formatIssue)).toEqual([]);
    const minimal = await loadPolicyFile('test/fixtures/policies/minimal.yaml');
    expect(minimal.ok).toBe(true);
  });

  it('reads relative secret paths from the policy file folder', async () => {
    const result = await loadPolicyText(
      ['version: 1', 'power: { driver: simulated }', 'hypervisor: { driver: simulated }', 'hostDefaults:', '  ssh: { keyFile: key, knownHostsFile: known_hosts }', 'hosts:', '  - name: h1'].join('\n'),
      join(dir, 'p.yaml'),
    );
    expect(result.ok && result.value.hosts[0]?.ssh.keyFile).toBe(join(dir, 'key'));
  });

  it('warns, without failing, about a secret readable by others', async () => {
    writeFileSync(join(dir, 'open-pw'), 'p');
    chmodSync(join(dir, 'open-pw'), 0o644);
    const result = await load(realHosts().replace(`${dir}/pw`, `${dir}/open-pw`));
    expect(result.ok).toBe(true);
    if (result.ok) expect(result.value.warnings.map((w) => w.message)).toEqual([`${dir}/open-pw can be read by group or others; chmod 600 it`]);
  });

  describe("a secret among systemd's credentials of the service (the installed policy's layout)", () => {
    const credential = '/run/credentials/consolidator-test-absent.service/bmc-password';
    const saved = process.env['CREDENTIALS_DIRECTORY'];
    const restore = () => {
      if (saved === undefined) delete process.env['CREDENTIALS_DIRECTORY'];
      else process.env['CREDENTIALS_DIRECTORY'] = saved;
    };

    it('is a warning outside that service (`validate` by hand), since systemd creates it only for the service', async () => {
      delete process.env['CREDENTIALS_DIRECTORY'];
      try {
        const result = await load(realHosts().replace(`${dir}/pw`, credential));
        expect(messages(result)).toEqual([]);
        if (result.ok) expect(result.value.warnings.map((w) => w.message)).toEqual([expect.stringContaining(`${credential} is a credential of consolidator-test-absent.service: it exists only while that service runs`)]);
      } finally {
        restore();
      }
    });

    it('is an error inside that service, where it must exist', async () => {
      process.env['CREDENTIALS_DIRECTORY'] = '/run/credentials/consolidator-test-absent.service';
      try {
        expect(messages(await load(realHosts().replace(`${dir}/pw`, credential)))).toEqual([`policy.yaml:4:37 hostDefaults.bmc.passwordFile: ${credential} does not exist`]);
      } finally {
        restore();
      }
    });
  });
});

describe('bad policies: each problem with file:line:col and the key', () => {
  const cases: { name: string; text: () => string; expected: string[] }[] = [
    { name: 'an empty file', text: () => '', expected: ['policy.yaml:1:1 (root): the policy file is empty: it needs at least version: 1 and hosts'] },
    { name: 'only a comment', text: () => '# nothing\n', expected: ['policy.yaml:1:1 (root): the policy file is empty: it needs at least version: 1 and hosts'] },
    {
      name: 'a YAML syntax error',
      text: () => 'version: 1\nhosts: [h1\nmode: enforce\n',
      expected: ['policy.yaml:3:1 (yaml): Flow sequence in block collection must be sufficiently indented and end with a ]'],
    },
    { name: 'a tab indent', text: () => 'version: 1\nhosts:\n\t- name: h1\n', expected: ['policy.yaml:3:1 (yaml): Tabs are not allowed as indentation'] },
    {
      name: 'a duplicate key',
      text: () => 'version: 1\nmode: enforce\nmode: dry-run\nhosts: []\n',
      expected: ['policy.yaml:3:1 (yaml): Map keys must be unique'],
    },
    { name: 'a list at the top', text: () => '- a\n- b\n', expected: ['policy.yaml:1:1 (root): the policy must be a mapping of keys to values (version: 1, hosts: ...)'] },
    {
      name: 'a wrong type',
      text: () => realHosts().replace('version: 1', 'version: 1\nsafety:\n  minHostsOn: two'),
      expected: ['policy.yaml:3:15 safety.minHostsOn: must be a number, got "two"'],
    },
    {
      name: 'a negative timeout',
      text: () => realHosts().replace('version: 1', 'version: 1\nmigration:\n  timeoutSeconds: -5'),
      expected: ['policy.yaml:3:19 migration.timeoutSeconds: must be greater than 0'],
    },
    {
      name: 'a ratio above 1',
      text: () => realHosts().replace('version: 1', 'version: 1\nthresholds:\n  memory:\n    targetRatio: 1.2'),
      expected: ['policy.yaml:4:18 thresholds.memory.targetRatio: must be at most 1 (a ratio of capacity)'],
    },
    {
      name: 'an unknown key, with a suggestion',
      text: () => realHosts().replace('version: 1', 'version: 1\nsafety:\n  minHostOn: 1'),
      expected: ['policy.yaml:3:3 safety.minHostOn: unknown key (did you mean "minHostsOn"?)'],
    },
    {
      name: 'an unknown top-level key far from any known one',
      text: () => realHosts() + '\nfrobnicate: true',
      expected: [expect.stringMatching(/^policy\.yaml:10:1 frobnicate: unknown key \(known keys: \$schema, version, mode/) as unknown as string],
    },
    {
      name: 'a misspelt enum value',
      text: () => realHosts().replace('version: 1', 'version: 1\nmigration:\n  nonConvergence: post-copy'),
      expected: [
        'policy.yaml:3:19 migration.nonConvergence: must be one of "auto-converge", "postcopy", "pause", "abort", got "post-copy" (did you mean "postcopy"?)',
      ],
    },
    { name: 'a missing version', text: () => realHosts().replace('version: 1\n', ''), expected: ['policy.yaml:1:1 version: is required (must be 1)'] },
    {
      name: 'a duplicate host',
      text: () => realHosts().replace('  - name: h2', '  - name: h1'),
      expected: ['policy.yaml:8:11 hosts[1].name: duplicate host name "h1" (already hosts[0])'],
    },
    {
      name: 'two hosts with the same BMC',
      text: () => realHosts().replace('127.0.1.2', '127.0.1.1'),
      expected: [
        'policy.yaml:9:21 hosts[1].bmc.address: host "h2" has the same BMC 127.0.1.1:623 as host "h1" (hosts[0]): powering one off would power off the other',
      ],
    },
    {
      name: 'two hosts with the same BMC, written differently (case, default port)',
      text: () => realHosts().replace('{ address: 127.0.1.1 }', '{ address: BMC-A.example }').replace('{ address: 127.0.1.2 }', '{ address: bmc-a.example, port: 623 }'),
      expected: [
        'policy.yaml:9:21 hosts[1].bmc.address: host "h2" has the same BMC bmc-a.example:623 as host "h1" (hosts[0]): powering one off would power off the other',
      ],
    },
    {
      name: 'two hosts with the same ssh address',
      text: () => realHosts().replace('    bmc: { address: 127.0.1.1 }', '    ssh: { address: 10.0.0.5 }\n    bmc: { address: 127.0.1.1 }').replace('    bmc: { address: 127.0.1.2 }', '    ssh: { address: 10.0.0.5, port: 22 }\n    bmc: { address: 127.0.1.2 }'),
      expected: ['policy.yaml:10:21 hosts[1].ssh.address: host "h2" has the same ssh address 10.0.0.5:22 as host "h1" (hosts[0]): each host needs its own'],
    },
    {
      name: "an ssh address that is another host's name (its default address)",
      text: () => realHosts().replace('    bmc: { address: 127.0.1.2 }', '    ssh: { address: h1 }\n    bmc: { address: 127.0.1.2 }'),
      expected: ['policy.yaml:9:21 hosts[1].ssh.address: host "h2" has the same ssh address h1:22 as host "h1" (hosts[0]): each host needs its own'],
    },
    {
      name: 'one IPv6 ssh address written with and without brackets',
      text: () => realHosts().replace('    bmc: { address: 127.0.1.1 }', '    ssh: { address: "[fd00::1]" }\n    bmc: { address: 127.0.1.1 }').replace('    bmc: { address: 127.0.1.2 }', '    ssh: { address: "FD00::1" }\n    bmc: { address: 127.0.1.2 }'),
      expected: ['policy.yaml:10:21 hosts[1].ssh.address: host "h2" has the same ssh address [fd00::1]:22 as host "h1" (hosts[0]): each host needs its own'],
    },
    {
      name: 'every host but the first on the BMC of hostDefaults',
      text: () =>
        realHosts()
          .replace('  bmc: { user: admin,', '  bmc: { address: 127.0.1.9, user: admin,')
          .replace('    bmc: { address: 127.0.1.1 }', '    labels: { rack: r1 }')
          .replace('    bmc: { address: 127.0.1.2 }', '    labels: { rack: r1 }'),
      expected: ['policy.yaml:8:5 hosts[1]: host "h2" has the same BMC 127.0.1.9:623 as host "h1" (hosts[0]): powering one off would power off the other'],
    },
    {
      name: 'a secret file that does not exist',
      text: () => realHosts().replace(`${dir}/pw`, `${dir}/missing-pw`),
      expected: [`policy.yaml:4:37 hostDefaults.bmc.passwordFile: missing-pw does not exist`],
    },
    {
      name: 'underload at or above target',
      text: () => realHosts().replace('version: 1', 'version: 1\nthresholds:\n  cpu: { underloadRatio: 0.8, targetRatio: 0.7 }'),
      expected: [
        'policy.yaml:3:26 thresholds.cpu.underloadRatio: must be below targetRatio (0.7): a host filled to target would count as underloaded and be emptied again',
      ],
    },
    {
      name: 'target above overload',
      text: () => realHosts().replace('version: 1', 'version: 1\nthresholds:\n  memory: { targetRatio: 0.9, overloadRatio: 0.85 }'),
      expected: ['policy.yaml:3:26 thresholds.memory.targetRatio: must not exceed overloadRatio (0.85): migrations would create overloaded hosts'],
    },
    {
      name: 'minHostsOn above the host count',
      text: () => realHosts().replace('version: 1', 'version: 1\nsafety: { minHostsOn: 3 }'),
      expected: ['policy.yaml:2:23 safety.minHostsOn: is 3 but the policy lists only 2 hosts'],
    },
    {
      name: 'a bad cron schedule',
      text: () => realHosts().replace('version: 1', 'version: 1\nschedule: "61 * * * *"'),
      expected: ['policy.yaml:2:11 schedule: "61 * * * *" is not a valid cron expression: minute 61 is out of range 0-59'],
    },
    {
      name: 'a bad cron expression in the proof-of-boot windows',
      text: () => realHosts().replace('version: 1', 'version: 1\npower: { proofOfBoot: { windows: ["* 25 * * *"] } }'),
      expected: ['policy.yaml:2:35 power.proofOfBoot.windows[0]: "* 25 * * *" is not a valid cron expression: hour 25 is out of range 0-23'],
    },
    {
      name: 'an unknown driver',
      text: () => realHosts().replace('version: 1', 'version: 1\npower: { driver: wol }'),
      expected: ['policy.yaml:2:18 power.driver: must be one of "ipmitool", "redfish", "simulated", got "wol"'],
    },
    {
      name: 'two hosts with the same Redfish service (address and port)',
      text: () =>
        realHosts()
          .replace('version: 1', 'version: 1\npower: { driver: redfish }')
          .replace('  bmc: { user: admin,', '  bmc: { redfish: { certificateSha256: "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB" }, user: admin,')
          .replace('{ address: 127.0.1.2 }', '{ address: 127.0.1.1, port: 443 }'),
      expected: [
        'policy.yaml:10:21 hosts[1].bmc.address: host "h2" has the same Redfish service https://127.0.1.1:443 as host "h1" (hosts[0]): powering one off would power off the other',
      ],
    },
    {
      name: 'a Redfish host whose certificate nothing verifies',
      text: () => realHosts().replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2, driver: redfish }'),
      expected: [
        'policy.yaml:8:5 hosts[1]: host "h2" has no bmc.redfish.caFile nor bmc.redfish.certificateSha256: the BMC\'s HTTPS certificate is always verified (or set bmc.redfish.insecureSkipVerify: true, on the host or in hostDefaults.bmc)',
      ],
    },
    {
      name: 'a Redfish host that both verifies and skips verification',
      text: () => realHosts().replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2, driver: redfish, redfish: { insecureSkipVerify: true, certificateSha256: "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB" } }'),
      expected: ['policy.yaml:8:5 hosts[1]: host "h2" sets bmc.redfish.insecureSkipVerify together with caFile or certificateSha256: choose verification or none'],
    },
    {
      name: 'a Redfish CA file that does not exist',
      text: () => realHosts().replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2, driver: redfish, redfish: { caFile: missing-ca.pem } }'),
      expected: ['policy.yaml:9:68 hosts[1].bmc.redfish.caFile: missing-ca.pem does not exist'],
    },
    {
      name: 'a fingerprint that is not SHA-256',
      text: () => realHosts().replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2, driver: redfish, redfish: { certificateSha256: "AB:CD" } }'),
      expected: [
        'policy.yaml:9:79 hosts[1].bmc.redfish.certificateSha256: must be a SHA-256 fingerprint: 64 hex digits, with or without colons (openssl x509 -noout -fingerprint -sha256)',
      ],
    },
    {
      name: 'a per-host bmc.driver under the simulated drivers',
      text: () =>
        realHosts()
          .replace('version: 1', 'version: 1\npower: { driver: simulated }\nhypervisor: { driver: simulated }\nsimulation: { workload: w, cores: 8, memoryMiB: 1024 }')
          .replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2, driver: ipmitool }'),
      expected: ['policy.yaml:12:40 hosts[1].bmc.driver: is ipmitool but power.driver is simulated: the simulated datacenter powers every host'],
    },
    {
      name: 'a host without BMC settings under the ipmitool driver',
      text: () => realHosts().replace('    bmc: { address: 127.0.1.2 }', '    labels: { rack: r1 }'),
      expected: ['policy.yaml:8:5 hosts[1]: host "h2" has no bmc.address (its power chain has ipmitool; set them on the host or in hostDefaults.bmc)'],
    },
    {
      name: 'a wol.mac that is not a MAC, naming the host and the key',
      text: () => realHosts().replace('version: 1', 'version: 1\npower: { chain: [ipmitool, wol] }').replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2 }\n    wol: { mac: "52:54:00:12:34" }'),
      expected: [
        'policy.yaml:7:5 hosts[0]: host "h1" has wol in its power chain but no wol.mac (the MAC of the NIC that wakes it)',
        'policy.yaml:11:17 hosts[1].wol.mac: host "h2" wol.mac "52:54:00:12:34" is not a MAC address (six hex pairs such as 52:54:00:12:34:56 or 52-54-00-12-34-56)',
      ],
    },
    {
      name: 'a multicast wol.mac and a broadcast that is not IPv4',
      text: () => realHosts().replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2 }\n    power: { chain: [ipmitool, wol] }\n    wol: { mac: "01:00:5e:00:00:01", broadcast: "ff02::1" }'),
      expected: [
        'policy.yaml:11:17 hosts[1].wol.mac: host "h2" wol.mac "01:00:5e:00:00:01" is a multicast or broadcast address: a NIC\'s own MAC is unicast',
        'policy.yaml:11:49 hosts[1].wol.broadcast: host "h2" wol.broadcast "ff02::1" is not an IPv4 address (magic packets are IPv4 broadcasts, e.g. 10.0.0.255)',
      ],
    },
    {
      name: 'two hosts with one MAC',
      text: () =>
        realHosts()
          .replace('version: 1', 'version: 1\npower: { chain: [ipmitool, wol] }')
          .replace('    bmc: { address: 127.0.1.1 }', '    bmc: { address: 127.0.1.1 }\n    wol: { mac: "52:54:00:aa:bb:01" }')
          .replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2 }\n    wol: { mac: "52-54-00-AA-BB-01" }'),
      expected: ['policy.yaml:12:17 hosts[1].wol.mac: host "h2" has the same wol.mac as host "h1" (hosts[0]): waking one would wake the other'],
    },
    {
      name: 'a chain with only wol, and a path listed twice',
      text: () =>
        realHosts()
          .replace('    bmc: { address: 127.0.1.1 }', '    bmc: { address: 127.0.1.1 }\n    power: { chain: [wol] }\n    wol: { mac: "52:54:00:aa:bb:01" }')
          .replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2 }\n    power: { chain: [ipmitool, ipmitool] }'),
      expected: [
        'policy.yaml:8:21 hosts[0].power.chain: host "h1" has no power path that reads the power state (wol only powers on): add one such as ipmitool, to power it off and to tell whether it is on',
        'policy.yaml:12:21 hosts[1].power.chain: lists ipmitool twice (host "h2")',
      ],
    },
    {
      name: 'an unknown power path',
      text: () => realHosts().replace('version: 1', 'version: 1\npower: { chain: [ipmitool, etherwake] }'),
      expected: ['policy.yaml:2:28 power.chain[1]: must be one of "ipmitool", "redfish", "wol", got "etherwake"'],
    },
  ];

  for (const c of cases) {
    it(`reports ${c.name}`, async () => {
      expect(messages(await load(c.text()))).toEqual(c.expected);
    });
  }

  it('accepts a mixed fleet: a Redfish host (pinned; one service, two systems) beside IPMI ones, and warns about insecureSkipVerify', async () => {
    const text = realHosts()
      .replace('    bmc: { address: 127.0.1.1 }', '    bmc: { address: 10.0.0.9, driver: redfish, redfish: { certificateSha256: "ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB", systemId: "1" } }')
      .replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 10.0.0.9, driver: redfish, redfish: { insecureSkipVerify: true, systemId: "2" } }')
      .concat('\n  - name: h3\n    bmc: { address: 10.0.0.9 }');
    const result = await load(text);
    expect(messages(result)).toEqual([]);
    if (!result.ok) return;
    expect(result.value.warnings.map((w) => w.message)).toEqual([
      'host "h2": bmc.redfish.insecureSkipVerify is true: the BMC certificate is not verified and its password can be read by anyone on the path',
    ]);
    expect(result.value.hosts.map((h) => [h.bmc.driver, h.bmc.port, h.bmc.redfish.certificateSha256 ?? null])).toEqual([
      ['redfish', 443, 'ab'.repeat(32)],
      ['redfish', 443, null],
      ['ipmitool', 623, null],
    ]);
  });

  it('merges bmc.redfish key by key with hostDefaults.bmc.redfish', async () => {
    const text = realHosts()
      .replace('  bmc: { user: admin,', '  bmc: { driver: redfish, redfish: { insecureSkipVerify: true }, user: admin,')
      .replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2, redfish: { systemId: Node2 } }');
    const result = await load(text);
    expect(messages(result)).toEqual([]);
    if (!result.ok) return;
    expect(result.value.hosts.map((h) => h.bmc.redfish)).toEqual([{ insecureSkipVerify: true }, { insecureSkipVerify: true, systemId: 'Node2' }]);
  });

  it('accepts two hosts on one address with different ports, for ssh and for the BMC', async () => {
    const text = realHosts()
      .replace('    bmc: { address: 127.0.1.1 }', '    ssh: { address: 10.0.0.5, port: 2201 }\n    bmc: { address: 127.0.1.1, port: 6231 }')
      .replace('    bmc: { address: 127.0.1.2 }', '    ssh: { address: 10.0.0.5, port: 2202 }\n    bmc: { address: 127.0.1.1, port: 6232 }');
    expect(messages(await load(text))).toEqual([]);
  });

  it('accepts a chain of ipmitool then wol, per host over the global one, and resolves it', async () => {
    const text = realHosts()
      .replace('version: 1', 'version: 1\npower: { chain: [ipmitool, wol], resends: 2 }')
      .replace('    bmc: { address: 127.0.1.1 }', '    bmc: { address: 127.0.1.1 }\n    wol: { mac: "52:54:00:aa:bb:01", interface: eth1 }')
      .replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2 }\n    power: { chain: [ipmitool] }');
    const result = await load(text);
    expect(messages(result)).toEqual([]);
    if (!result.ok) return;
    expect(result.value.policy.power.resends).toBe(2);
    expect(result.value.hosts.map((h) => h.powerChain)).toEqual([['ipmitool', 'wol'], ['ipmitool']]);
    expect(result.value.hosts[0]?.wol).toEqual({ mac: '52:54:00:aa:bb:01', port: 9, interface: 'eth1' });
    expect(summarizePolicy(result.value)).toMatch(/drivers virsh\/ipmitool, power chain \[ipmitool, wol\] \(1 host\), \[ipmitool\] \(1 host\)$/);
  });

  it('warns about wol settings of a host whose chain does not use them, and defaults to one re-send', async () => {
    const text = realHosts().replace('    bmc: { address: 127.0.1.2 }', '    bmc: { address: 127.0.1.2 }\n    wol: { mac: "52:54:00:aa:bb:02" }');
    const result = await load(text);
    expect(messages(result)).toEqual([]);
    if (!result.ok) return;
    expect(result.value.policy.power.resends).toBe(1);
    expect(result.value.hosts.map((h) => h.powerChain)).toEqual([['ipmitool'], ['ipmitool']]);
    expect(result.value.warnings.map((w) => formatIssue(w))).toEqual([
      expect.stringContaining('hosts[1].wol: host "h2" has wol settings but wol is not in its power chain (ipmitool): they are not used'),
    ]);
  });

  it('reports every schema problem at once', async () => {
    const text = realHosts().replace('version: 1', 'version: 1\nmode: enforced\nscheduel: x\nmigration: { timeoutSeconds: -1 }');
    const result = messages(await load(text));
    expect(result).toHaveLength(3);
    expect(result[0]).toContain('mode');
    expect(result[1]).toContain('scheduel');
    expect(result[2]).toContain('migration.timeoutSeconds');
  });
});
