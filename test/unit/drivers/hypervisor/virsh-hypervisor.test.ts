import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CommandRunner, ExecResult, RunOptions } from '../../../../src/drivers/exec/command-runner.js';
import type { MigrateOptions, MigrationProgress } from '../../../../src/drivers/hypervisor/hypervisor-driver.js';
import { VirshHypervisor } from '../../../../src/drivers/hypervisor/virsh-hypervisor.js';
import { ConsolidatorError, isConsolidatorError } from '../../../../src/errors.js';
import { silentLogger } from '../../../../src/observability/logger.js';
import { pause } from '../../../helpers/wait-for.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../../../fixtures/virsh', name), 'utf8');
const ok = (stdout: string, stderr = ''): ExecResult => ({ stdout, stderr, exitCode: 0 });
const fail = (stderr: string): ExecResult => ({ stdout: '', stderr, exitCode: 1 });

type Handler = (host: string, argv: readonly string[], options: RunOptions) => ExecResult | Promise<ExecResult>;

/** Every command runs against the host's system libvirt, whoever the SSH user is. */
const SYSTEM_URI_PREFIX = ['env', 'LIBVIRT_DEFAULT_URI=qemu:///system'];

/** A CommandRunner that answers from a script, and records every call (without the URI prefix it checks). */
class FakeCommandRunner implements CommandRunner {
  readonly calls: { host: string; argv: readonly string[] }[] = [];
  constructor(private readonly handler: Handler) {}
  async run(host: string, full: readonly string[], options: RunOptions): Promise<ExecResult> {
    expect(full.slice(0, 2)).toEqual(SYSTEM_URI_PREFIX);
    const argv = full.slice(2);
    this.calls.push({ host, argv });
    return this.handler(host, argv, options);
  }
  async close(): Promise<void> {}
  commands(verb: string): { host: string; argv: readonly string[] }[] {
    return this.calls.filter((c) => c.argv[0] === 'virsh' && c.argv[1] === verb);
  }
}

const never = () => new AbortController().signal;
const fast = { jobPollIntervalMs: 5, abortGraceMs: 500, verifyTimeoutMs: 50 };
const OPTIONS: MigrateOptions = { bandwidthMiBps: 0, timeoutMs: 10_000, nonConvergence: 'abort', convergenceDeadlineMs: 5_000, persistent: true, undefineSource: true };

describe('VirshHypervisor.inspect over captured observation output', () => {
  it('parses one pass, then computes deltas on the next', async () => {
    let pass = 0;
    const runner = new FakeCommandRunner((_host, argv) => {
      expect(argv.slice(0, 2)).toEqual(['sh', '-c']);
      pass++;
      return ok(fixture(pass === 1 ? 'observe.h1.pass1.txt' : 'observe.h1.pass2.txt'));
    });
    const hv = new VirshHypervisor({ runner, logger: silentLogger, now: () => 1_000 });
    const first = await hv.inspect('h1.lab', never());
    expect(first).toMatchObject({
      host: 'h1.lab',
      atMs: 1_000,
      capacity: { cpu: 8, memory: 32768 },
      memoryUsedMiB: 4096,
      versions: { libvirt: '9.0.0', qemu: '7.2.22' },
      systemUuid: 'd31d0000-abcd-4000-8000-0000000000a1',
    });
    expect(first.cpuCores).toBeUndefined();
    expect(first.domains).toEqual([
      { name: 'db1', uuid: 'c8a2746c-bfa8-4226-84e9-15acd381cc79', state: 'paused', vcpus: 2, memoryMiB: 1024, pinnedByMetadata: false, cpuTimeNs: expect.any(Number) },
      { name: 'web1', uuid: 'e1424164-9bd9-4ea5-a7d8-b2bd0523f3d8', state: 'running', vcpus: 1, memoryMiB: 512, pinnedByMetadata: false, cpuTimeNs: expect.any(Number) },
      { name: 'pinned1', uuid: '5427ab8f-bc10-4df8-80e7-08a3fc94353c', state: 'shutoff', vcpus: 1, memoryMiB: 256, pinnedByMetadata: true },
    ]);
    const second = await hv.inspect('h1.lab', never());
    // The lab advanced the fake /proc/stat by 1.5 busy cores between the passes.
    expect(second.cpuCores).toBeCloseTo(1.5, 9);
    const web1 = second.domains.find((d) => d.name === 'web1');
    expect(web1?.cpuCores).toBeGreaterThanOrEqual(0);
    expect(runner.calls).toHaveLength(2);
  });

  it('an empty host, and one without a DMI system UUID: no domains, no systemUuid', async () => {
    const obs = await new VirshHypervisor({ runner: new FakeCommandRunner(() => ok(fixture('observe.h2.empty.txt'))), logger: silentLogger }).inspect('h2.lab', never());
    expect(obs.domains).toEqual([]);
    expect(obs).not.toHaveProperty('systemUuid');
  });

  it('without metadata reading, nothing is pinned by metadata', async () => {
    const runner = new FakeCommandRunner(() => ok(fixture('observe.h2.no-metadata.txt')));
    const hv = new VirshHypervisor({ runner, logger: silentLogger, settings: { readPinnedMetadata: false } });
    const obs = await hv.inspect('h2.lab', never());
    expect(obs.capacity).toEqual({ cpu: 8, memory: 32768 });
    expect(obs.domains).toEqual([]);
  });

  it('a domain in domstats but not in the list (it appeared in between) is kept, and treated as pinned', async () => {
    // As if web1 had been defined just after `virsh list`: not listed, so its metadata was not read either.
    const web1 = 'e1424164-9bd9-4ea5-a7d8-b2bd0523f3d8';
    const text = fixture('observe.h1.pass1.txt')
      .replace(`${web1} web1\n`, '')
      .replace(`@@consolidator metadata ${web1}\n\n`, '')
      .replace('error: metadata not found: Requested metadata element is not present\n', '');
    const hv = new VirshHypervisor({ runner: new FakeCommandRunner(() => ok(text)), logger: silentLogger });
    const obs = await hv.inspect('h1.lab', never());
    expect(obs.domains.find((d) => d.name === 'web1')).toMatchObject({ pinnedByMetadata: true });
    expect(obs.domains.find((d) => d.name === 'web1')).not.toHaveProperty('uuid');
  });

  it.each([
    ['observe.h1.libvirtd-down.txt', 'COMMAND_FAILED', 'virsh list', /virsh list: exit 1; failed to connect to the hypervisor/],
    ['observe.h1.batch-connection-lost.txt', 'COMMAND_FAILED', 'virsh version; domstats', /virsh version; domstats: failed to connect to the hypervisor/],
    ['observe.h1.metadata-connection-lost.txt', 'COMMAND_FAILED', 'virsh metadata', /virsh metadata: failed to connect to the hypervisor/],
    ['observe.h1.listed-then-gone.txt', 'OBSERVATION_INCONSISTENT', 'virsh list vs domstats', /virsh list named tmp1 but domstats did not report it/],
  ])('%s: inspect and listDomains throw %s (never a shorter list)', async (file, code, failed, message) => {
    const hv = new VirshHypervisor({ runner: new FakeCommandRunner(() => ok(fixture(file))), logger: silentLogger });
    for (const call of [() => hv.inspect('h1.lab', never()), () => hv.listDomains('h1.lab', never())]) {
      const error = await call().then(
        (answer) => ({ answered: answer }),
        (e: unknown) => e,
      );
      expect(error).toMatchObject({ code, details: { host: 'h1.lab', failed } });
      expect((error as Error).message).toMatch(message);
    }
  });

  it('an observation script cut short (no end marker) fails, with the SSH stderr', async () => {
    const text = fixture('observe.h1.pass1.txt').split('@@consolidator version')[0] ?? '';
    const hv = new VirshHypervisor({ runner: new FakeCommandRunner(() => ({ stdout: text, stderr: 'sh: 1: virsh: Killed\n', exitCode: 137 })), logger: silentLogger });
    await expect(hv.inspect('h1.lab', never())).rejects.toMatchObject({ code: 'COMMAND_FAILED', message: expect.stringContaining('exit 137: sh: 1: virsh: Killed') });
  });

  it('refuses an invalid host name before running anything', async () => {
    const runner = new FakeCommandRunner(() => ok(''));
    const hv = new VirshHypervisor({ runner, logger: silentLogger });
    await expect(hv.inspect('a b', never())).rejects.toMatchObject({ code: 'INVALID_NAME' });
    await expect(hv.residentGuests('a b', never())).rejects.toMatchObject({ code: 'INVALID_NAME' });
    expect(runner.calls).toHaveLength(0);
  });
});

describe('VirshHypervisor.residentGuests over captured output', () => {
  const hvWith = (stdout: string) => new VirshHypervisor({ runner: new FakeCommandRunner(() => ok(stdout)), logger: silentLogger });

  it('both sources agree: the guests not shut off', async () => {
    expect([...(await hvWith(fixture('resident.h1.agree.txt')).residentGuests('h1.lab', never()))]).toEqual(['db1', 'web1']);
    expect(await hvWith(fixture('resident.h2.none.txt')).residentGuests('h2.lab', never())).toEqual([]);
  });

  it.each([
    ['resident.h1.libvirtd-down.txt', 'virsh list', /virsh list --all failed \(exit 1: failed to connect to the hypervisor/],
    ['resident.h2.stray-qemu.txt', 'sources disagree', /virsh list --all shows no guest not shut off; the host shows ghost1 \(QEMU pid 4218\)/],
    ['resident.h2.stale-pid.txt', 'sources disagree', /the host shows gone1 \(no QEMU process, run-state pid 4194000 dead\)/],
  ])('%s: GUEST_COUNT_UNCERTAIN (%s)', async (file, failed, message) => {
    const error = await hvWith(fixture(file)).residentGuests('h1.lab', never()).then(
      (names) => ({ answered: names }),
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'GUEST_COUNT_UNCERTAIN', details: { host: 'h1.lab', failed } });
    expect((error as Error).message).toMatch(message);
  });

  it('libvirt shows a guest the host does not run: GUEST_COUNT_UNCERTAIN naming both lists', async () => {
    const text = fixture('resident.h1.agree.txt').replace(/^\d+ .*guest=db1,.*\n/m, '').replace(/^(xml|pid) db1.*\n/gm, '');
    await expect(hvWith(text).residentGuests('h1.lab', never())).rejects.toMatchObject({
      code: 'GUEST_COUNT_UNCERTAIN',
      message: expect.stringMatching(/virsh list --all shows db1 \(paused\), web1 \(running\) not shut off; the host shows web1 \(QEMU pid \d+, run-state xml, run-state pid \d+ alive\)/),
    });
  });

  it('a run-state directory the SSH user cannot list: GUEST_COUNT_UNCERTAIN, never an empty host', async () => {
    // What a non-root SSH user sees: no domains in its view, no readable run-state, no QEMU it may inspect.
    const text = '@@consolidator list\n Id   Name   State\n--------------------\n@@consolidator exit list\n0\n@@consolidator runstate-unreadable\n@@consolidator runstate\n@@consolidator qemu\n@@consolidator exit qemu\n1\n@@consolidator end\n';
    await expect(hvWith(text).residentGuests('h1.lab', never())).rejects.toMatchObject({ code: 'GUEST_COUNT_UNCERTAIN', message: expect.stringMatching(/run-state directory .* cannot be read/) });
  });

});

/**
 * A scripted pair of hosts for migrate(): the VM is on `src` until the migrate command "completes".
 * `migrate` decides how the migrate command ends; domjobabort resolves a hanging migrate as aborted.
 */
function scriptedHosts(opts: { migrate: 'complete' | 'hang' | ((abort: Promise<void>) => Promise<ExecResult>); initial?: 'running' | 'paused'; arrive?: 'running' | 'paused' }) {
  let location: 'src' | 'dst' = 'src';
  let sourceState = opts.initial ?? 'running';
  let signalAbort: () => void = () => undefined;
  const aborted = new Promise<void>((resolve) => {
    signalAbort = resolve;
  });
  const runner = new FakeCommandRunner(async (host, argv) => {
    const [, verb] = argv;
    if (verb === 'domstate') {
      if ((host === 'src' && location === 'src') || (host === 'dst' && location === 'dst')) {
        return ok(host === 'src' ? `${sourceState} (user)\n` : `${opts.arrive ?? (opts.initial === 'paused' ? 'paused' : 'running')} (migrated)\n`);
      }
      return fail(fixture('domstate-reason.nosuch.stderr.txt'));
    }
    if (verb === 'domjobinfo') return location === 'src' ? ok(fixture('domjobinfo.unbounded-autoconverge.txt')) : fail(fixture('domjobinfo.completed-source-gone.stderr.txt'));
    if (verb === 'domjobabort') {
      signalAbort();
      return ok('');
    }
    if (verb === 'suspend') {
      sourceState = 'paused';
      return ok('');
    }
    if (verb === 'resume' || verb === 'migrate-postcopy') return ok('');
    if (verb === 'migrate') {
      if (opts.migrate === 'complete') {
        location = 'dst';
        return ok('');
      }
      if (opts.migrate === 'hang') {
        await aborted;
        return fail(fixture('migrate-aborted.stderr.txt'));
      }
      const r = await opts.migrate(aborted);
      if (r.exitCode === 0) location = 'dst';
      return r;
    }
    throw new Error(`unscripted ${argv.join(' ')}`);
  });
  return { runner, hv: new VirshHypervisor({ runner, logger: silentLogger, settings: fast }) };
}

describe('VirshHypervisor.migrate, scripted', () => {
  it('builds the virsh migrate argv from the options (one quoting path: the runner gets an argv)', async () => {
    const { runner, hv } = scriptedHosts({ migrate: 'complete' });
    await hv.migrate('vm1', 'src', 'dst', { ...OPTIONS, bandwidthMiBps: 50, nonConvergence: 'auto-converge' }, never());
    expect(runner.commands('migrate')[0]?.argv).toEqual([
      'virsh', 'migrate', '--live', '--persistent', '--undefinesource', '--bandwidth', '50', '--auto-converge', '--domain', 'vm1', '--desturi', 'qemu+ssh://dst/system',
    ]);
    const { runner: r2, hv: hv2 } = scriptedHosts({ migrate: 'complete' });
    await hv2.migrate('vm1', 'src', 'dst', { ...OPTIONS, persistent: false, undefineSource: false, nonConvergence: 'postcopy' }, never());
    expect(r2.commands('migrate')[0]?.argv).toEqual(['virsh', 'migrate', '--live', '--postcopy', '--domain', 'vm1', '--desturi', 'qemu+ssh://dst/system']);
  });

  it('resolves with the verified state: running, or paused for a paused VM', async () => {
    expect(await scriptedHosts({ migrate: 'complete' }).hv.migrate('vm1', 'src', 'dst', OPTIONS, never())).toMatchObject({ state: 'running' });
    expect(await scriptedHosts({ migrate: 'complete', initial: 'paused' }).hv.migrate('vm1', 'src', 'dst', OPTIONS, never())).toMatchObject({ state: 'paused' });
  });

  it('a success that cannot be verified is a failure that says where the VM is', async () => {
    const { hv } = scriptedHosts({ migrate: 'complete', arrive: 'paused' });
    await expect(hv.migrate('vm1', 'src', 'dst', OPTIONS, never())).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringContaining('VM is absent from src, paused (migrated) on dst'),
    });
  });

  it('timeout: domjobabort, then MIGRATION_TIMEOUT naming where the VM runs', async () => {
    const { runner, hv } = scriptedHosts({ migrate: 'hang' });
    const progress: MigrationProgress[] = [];
    const error = await hv.migrate('vm1', 'src', 'dst', { ...OPTIONS, timeoutMs: 40, convergenceDeadlineMs: 10_000 }, never(), (p) => progress.push(p)).catch((e: unknown) => e);
    expect(isConsolidatorError(error, 'MIGRATION_TIMEOUT')).toBe(true);
    expect((error as ConsolidatorError).message).toMatch(/not finished after 40 ms, aborted \(operation aborted: job 'migration out' canceled by client\)/);
    expect((error as ConsolidatorError).message).toContain('VM is running (user) on src, absent from dst');
    expect((error as ConsolidatorError).details).toMatchObject({ onSource: 'running', onDestination: 'absent' });
    expect(runner.commands('domjobabort')).toHaveLength(1);
    expect(progress[0]).toMatchObject({ vm: 'vm1', phase: 'precopy', iteration: 3, autoConvergeThrottlePercent: 20 });
  });

  it('abort policy: at the deadline, domjobabort and MIGRATION_FAILED (did not converge)', async () => {
    const { runner, hv } = scriptedHosts({ migrate: 'hang' });
    await expect(hv.migrate('vm1', 'src', 'dst', { ...OPTIONS, convergenceDeadlineMs: 20 }, never())).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringMatching(/did not converge within 20 ms, aborted per policy/),
    });
    expect(runner.commands('domjobabort')).toHaveLength(1);
  });

  it('pause policy: suspend at the deadline; the VM arrives and runs', async () => {
    const { runner, hv } = scriptedHosts({
      migrate: async () => {
        await pause(60);
        return ok('');
      },
      arrive: 'paused',
    });
    const result = await hv.migrate('vm1', 'src', 'dst', { ...OPTIONS, nonConvergence: 'pause', convergenceDeadlineMs: 10 }, never());
    expect(result).toMatchObject({ state: 'running', nonConvergenceApplied: 'pause' });
    expect(runner.commands('suspend')).toHaveLength(1);
    expect(runner.commands('resume').map((c) => c.host)).toEqual(['dst']);
  });

  it('pause policy, failed migration: the guest we paused is resumed on the source', async () => {
    const { runner, hv } = scriptedHosts({
      migrate: async () => {
        await pause(60);
        return fail(fixture('migrate-destination-off.stderr.txt'));
      },
    });
    await expect(hv.migrate('vm1', 'src', 'dst', { ...OPTIONS, nonConvergence: 'pause', convergenceDeadlineMs: 10 }, never())).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringContaining('resumed it on the source'),
    });
    expect(runner.commands('resume').map((c) => c.host)).toEqual(['src']);
  });

  it('postcopy policy: migrate-postcopy at the deadline, never aborted past the timeout', async () => {
    const { runner, hv } = scriptedHosts({
      migrate: async () => {
        await pause(80);
        return ok('');
      },
    });
    const result = await hv.migrate('vm1', 'src', 'dst', { ...OPTIONS, nonConvergence: 'postcopy', convergenceDeadlineMs: 10, timeoutMs: 30 }, never());
    expect(result).toMatchObject({ state: 'running', nonConvergenceApplied: 'postcopy' });
    expect(runner.commands('migrate-postcopy')).toHaveLength(1);
    expect(runner.commands('domjobabort')).toHaveLength(0);
  });

  it('a dropped SSH session, VM still on the source: MIGRATION_FAILED naming the lost connection and the location', async () => {
    const { hv } = scriptedHosts({
      migrate: async () => {
        throw new ConsolidatorError('SSH_CONNECT', 'connection to src lost while running virsh migrate');
      },
    });
    await expect(hv.migrate('vm1', 'src', 'dst', OPTIONS, never())).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringMatching(/connection to src lost.*VM is running \(user\) on src, absent from dst/),
    });
  });

  it('refuses a VM that is not on the source, and one that is shut off, without starting anything', async () => {
    const runner = new FakeCommandRunner((_h, argv) => (argv[1] === 'domstate' ? fail(fixture('domstate-reason.nosuch.stderr.txt')) : ok('')));
    const hv = new VirshHypervisor({ runner, logger: silentLogger, settings: fast });
    await expect(hv.migrate('vm1', 'src', 'dst', OPTIONS, never())).rejects.toMatchObject({ code: 'MIGRATION_FAILED', message: expect.stringContaining('absent from src') });
    const off = new FakeCommandRunner((_h, argv) => (argv[1] === 'domstate' ? ok(fixture('domstate-reason.off1.txt')) : ok('')));
    await expect(new VirshHypervisor({ runner: off, logger: silentLogger }).migrate('vm1', 'src', 'dst', OPTIONS, never())).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringContaining('not running or paused'),
    });
    expect(runner.commands('migrate')).toHaveLength(0);
    expect(off.commands('migrate')).toHaveLength(0);
  });
});
