import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { powerPathsFor } from '../../../src/cli/build-drivers.js';
import { checkCommandWith, type CheckDriversFactory } from '../../../src/cli/check.js';
import { CHECK_REPORT_FORMAT } from '../../../src/cli/check-report.js';
import { runCli } from '../../../src/cli/cli.js';
import { parseCommandArgs } from '../../../src/cli/command.js';
import { renderManPage } from '../../../src/cli/man-page.js';
import { loadPolicyOrThrow } from '../../../src/config/load.js';
import { ConsolidatorError, isConsolidatorError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { captureIo } from '../../helpers/capture.js';
import { fakeFleet, fakeHost, type FakeHost } from '../preflight/fake-fleet.js';

let dir: string;
let policyFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'check-cli-'));
  policyFile = join(dir, 'policy.yaml');
  for (const secret of ['id_ed25519', 'known_hosts', 'bmc-password']) await writeFile(join(dir, secret), 'x\n', { mode: 0o600 });
  await writeFile(
    policyFile,
    [
      'version: 1',
      'hostDefaults:',
      '  ssh: { keyFile: id_ed25519, knownHostsFile: known_hosts }',
      '  bmc: { user: admin, passwordFile: bmc-password }',
      'hosts:',
      '  - name: h1',
      '    ssh: { address: 10.0.0.1 }',
      '    bmc: { address: 10.9.0.1 }',
      '  - name: h2',
      '    ssh: { address: 10.0.0.2 }',
      '    bmc: { address: 10.9.0.2 }',
      '',
    ].join('\n'),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `consolidator check ARGS` on fake hosts; returns the exit code and what it printed. */
async function check(argv: string[], hosts: FakeHost[] = [fakeHost(1), fakeHost(2)]) {
  const fleet = fakeFleet(hosts);
  let closed = false;
  const build: CheckDriversFactory = () => ({
    runner: fleet.runner,
    hypervisor: fleet.hypervisor,
    powerPaths: fleet.powerPaths,
    close: async () => {
      closed = true;
    },
  });
  const command = checkCommandWith(build);
  const io = captureIo();
  let code: number;
  try {
    code = await command.run(parseCommandArgs(command, argv), io);
  } catch (e) {
    if (!isConsolidatorError(e)) throw e;
    code = e.code === 'USAGE' ? 64 : -1;
    io.stderr.write(e.message);
  }
  return { code, stdout: io.stdout.text, stderr: io.stderr.text, closed: () => closed, fleet };
}

describe('consolidator check', () => {
  it('exit 0 and a table when every check passes', async () => {
    const { code, stdout, closed } = await check(['--policy', policyFile]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^HOST\s+CHECK\s+RESULT\s+DETAIL\n/);
    expect(stdout).toMatch(/^h1\s+ssh\s+pass\s+root@10\.0\.0\.1:22, host key verified$/m);
    expect(stdout).toMatch(/^h1\s+bmc-power \(ipmitool\)\s+pass\s+power on$/m);
    expect(stdout).toMatch(/^h1 -> h2\s+peer-resolves\s+pass\s+h2 resolves to 10\.0\.0\.2 on h1$/m);
    expect(stdout).toMatch(/\n18 passed, 0 failed, 0 skipped: 2 hosts, 2 pairs, in \d+\.\d s\n$/);
    expect(stdout).not.toContain('problem');
    expect(closed()).toBe(true);
  });

  it('exit 1 naming each problem and its fix', async () => {
    const { code, stdout } = await check(['--policy', policyFile], [fakeHost(1, { bmcUuid: fakeHost(2).bmcUuid }), fakeHost(2, { resolves: {} })]);
    expect(code).toBe(1);
    expect(stdout).toMatch(/^h1\s+bmc-identity \(ipmitool\)\s+FAIL\s+the BMC reports system UUID/m);
    expect(stdout).toContain('\n2 problems:\n');
    expect(stdout).toContain('1. h1 bmc-identity (ipmitool): the BMC reports system UUID');
    expect(stdout).toContain("   fix: correct the BMC address of h1 in the policy (bmc.address): it is h2's;");
    expect(stdout).toContain('2. h2 -> h1 peer-resolves: h1 does not resolve on h2 (getent hosts h1)\n   fix: add h1 to DNS or to /etc/hosts on h2');
  });

  it('--json: a stable document with format, ok, counts and every result', async () => {
    const { code, stdout } = await check(['--policy', policyFile, '--json', 'h1'], [fakeHost(1, { power: new ConsolidatorError('BMC_UNREACHABLE', 'no answer') }), fakeHost(2)]);
    expect(code).toBe(1);
    const doc = JSON.parse(stdout) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(['format', 'ok', 'hosts', 'durationMs', 'counts', 'results']);
    expect(doc).toMatchObject({ format: CHECK_REPORT_FORMAT, ok: false, hosts: ['h1'], counts: { pass: 3, fail: 1, skip: 2 } });
    expect(doc['results']).toEqual([
      { host: 'h1', check: 'ssh', result: 'pass', detail: 'root@10.0.0.1:22, host key verified' },
      { host: 'h1', check: 'libvirt', result: 'pass', detail: 'libvirt 9.0.0' },
      { host: 'h1', check: 'qemu', result: 'pass', detail: 'QEMU 7.2.22' },
      {
        host: 'h1',
        check: 'bmc-power',
        path: 'ipmitool',
        result: 'fail',
        detail: 'the BMC did not answer: no answer',
        fix: 'check the BMC address and port of h1 in the policy, that the BMC answers from here, and that its ipmitool interface is enabled',
      },
      { host: 'h1', check: 'bmc-reading', path: 'ipmitool', result: 'skip', detail: 'the BMC did not answer' },
      { host: 'h1', check: 'bmc-identity', path: 'ipmitool', result: 'skip', detail: 'the BMC did not answer' },
    ]);
  });

  it('checks only the hosts named, in policy order, and pairs only among them', async () => {
    const { stdout, fleet } = await check(['--policy', policyFile, '--json', 'h2', 'h1', 'h2']);
    expect((JSON.parse(stdout) as { hosts: string[] }).hosts).toEqual(['h1', 'h2']);
    const one = await check(['--policy', policyFile, '--json', 'h2']);
    expect((JSON.parse(one.stdout) as { results: { peer?: string }[] }).results.some((r) => r.peer !== undefined)).toBe(false);
    expect(fleet.runner.calls.length).toBeGreaterThan(0);
  });

  it('exit 64 for a host the policy does not have, with a suggestion, before anything is contacted', async () => {
    const { code, stderr, fleet } = await check(['--policy', policyFile, 'h3', 'hl']);
    expect(code).toBe(64);
    expect(stderr).toContain(`h3 is not a host of ${policyFile}`);
    expect(fleet.runner.calls).toEqual([]);
    const typo = await check(['--policy', policyFile, 'hl']);
    expect(typo.stderr).toContain('(did you mean h1?)');
  });

  it('exit 64 for a bad --timeout or --concurrency', async () => {
    expect((await check(['--policy', policyFile, '--timeout', 'soon'])).code).toBe(64);
    expect((await check(['--policy', policyFile, '--concurrency', '0'])).code).toBe(64);
  });

  it('exit 78 with every policy problem for an invalid or missing policy, nothing contacted', async () => {
    const broken = await check(['--policy', 'test/fixtures/policies/broken.yaml']);
    expect(broken.code).toBe(78);
    expect(broken.stderr).toContain('broken.yaml:2:7 mode: must be one of');
    expect(broken.fleet.runner.calls).toEqual([]);
    expect((await check(['--policy', join(dir, 'none.yaml')])).code).toBe(78);
  });

  it('refuses a policy of simulated drivers: nothing real to check', async () => {
    const { code, stderr } = await check(['--policy', 'test/fixtures/policies/minimal.yaml']);
    expect(code).toBe(64);
    expect(stderr).toContain('uses the simulated drivers');
  });

  it('is in the command table: --help, the main help and the man page', async () => {
    const help = captureIo();
    expect(await runCli(['check', '--help'], help)).toBe(0);
    expect(help.stdout.text).toContain('Usage: consolidator check [HOST...] [--policy FILE] [--json]');
    const main = captureIo();
    await runCli(['--help'], main);
    expect(main.stdout.text).toMatch(/^ {2}check\s+preflight: /m);
    const man = renderManPage({ version: '0.0.0', date: '2026-12-02' });
    expect(man).toContain('.SS check');
    expect(man).toContain('.B consolidator check [HOST...] [\\-\\-policy FILE] [\\-\\-json]');
  });
});

describe('powerPathsFor', () => {
  it("returns the host's one configured path today (power.driver), built for that host", async () => {
    const loaded = await loadPolicyOrThrow(policyFile);
    const paths = powerPathsFor(loaded, 'h2', { logger: silentLogger });
    expect(paths.map((p) => p.path)).toEqual(['ipmitool']);
    expect(typeof paths[0]?.driver.status).toBe('function');
    expect(typeof paths[0]?.driver.systemUuid).toBe('function');
    expect(() => powerPathsFor(loaded, 'h9', { logger: silentLogger })).toThrow(`h9 is not a host of ${policyFile}`);
  });
});
