import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/cli.js';
import { captureIo } from '../../helpers/capture.js';
import { cycleAt, daemonsStoppedAfterEach, testHosts, testSetup, withClock, worldViolations, type TestDaemon, type TestVm } from '../../helpers/sim-daemon.js';

/** Roomy: h1 can be drained onto the others. */
const HOSTS = testHosts(3);
const VMS: TestVm[] = [
  { id: 'a', host: 'h1', load: 0.5 },
  { id: 'b', host: 'h1', load: 0.5 },
  { id: 'c', host: 'h2', load: 0.5 },
  { id: 'd', host: 'h3', load: 0.5 },
];
const VM_IDS = VMS.map((v) => v.id);
const HOST_IDS = HOSTS.map((h) => h.id);

const startDaemon = daemonsStoppedAfterEach();

/** A copy of the test daemon's policy whose metrics.listen is where it really listens, for the CLI. */
function cliPolicy(t: TestDaemon): string {
  const address = t.daemon.httpAddress;
  const file = join(t.dir, 'cli-policy.yaml');
  writeFileSync(file, readFileSync(t.policyFile, 'utf8').replace('127.0.0.1:0', `127.0.0.1:${address?.port}`));
  return file;
}

describe('operator jobs on the simulated datacenter', () => {
  it('drain moves every VM off, powers the host off on request, and the daemon leaves it alone', async () => {
    const t = await startDaemon({ setup: testSetup(HOSTS, VMS), policy: { consolidation: { enabled: false } } });
    await cycleAt(t, 300);
    const result = await withClock(t.datacenter, t.daemon.drain('h1', { powerOff: true, dryRun: false }));
    expect(result.refused).toBe(false);
    expect(result.ok).toBe(true);
    expect(t.datacenter.hostView('h1')?.vms).toEqual([]);
    expect(t.datacenter.hostView('h1')?.power).toBe('off');
    expect(t.daemon.state.isInMaintenance('h1')).toBe(true);
    // The operator's host: not ours to wake, and no cycle moves anything onto it.
    expect(t.daemon.state.poweredOffByUs()).not.toContain('h1');
    for (const at of [600, 900, 1200]) {
      const report = await cycleAt(t, at);
      expect(report.plan?.verdicts.find((v) => v.host === 'h1')?.reason).toBe('Maintenance');
      expect(report.plan?.actions.some((a) => (a.type === 'migrate' ? a.to === 'h1' : a.host === 'h1'))).toBe(false);
    }
    expect(worldViolations(t.datacenter, VM_IDS, HOST_IDS)).toEqual([]);
  });

  it('drain --dry-run shows the moves and does nothing', async () => {
    const t = await startDaemon({ setup: testSetup(HOSTS, VMS) });
    const result = await withClock(t.datacenter, t.daemon.drain('h1', { powerOff: false, dryRun: true }));
    expect(result.refused).toBe(false);
    if (result.refused) return;
    expect(result.actions.map((a) => (a.type === 'migrate' ? a.vm : a.type)).sort()).toEqual(['a', 'b']);
    expect(t.datacenter.totals().migrations).toBe(0);
    expect(t.daemon.state.isInMaintenance('h1')).toBe(false);
  });

  it('drain refuses, with reasons, a pinned VM, no room, and an unknown host', async () => {
    const t = await startDaemon({
      setup: testSetup(HOSTS, [...VMS, { id: 'db-1', host: 'h2', load: 0.1 }, { id: 'huge', host: 'h3', load: 0.9, vcpus: 14 }]),
      policy: { vmRules: { pinned: ['db-*'] } },
    });
    await cycleAt(t, 300);
    const pinned = await withClock(t.datacenter, t.daemon.drain('h2', { powerOff: false, dryRun: false }));
    expect(pinned).toMatchObject({ ok: false, refused: true });
    if (!pinned.refused) return;
    expect(pinned.reasons).toContain('VM db-1 is pinned (by a vmRules.pinned rule, libvirt metadata, or its state): move it by hand or unpin it');
    const noRoom = await withClock(t.datacenter, t.daemon.drain('h3', { powerOff: false, dryRun: false }));
    expect(noRoom.refused && noRoom.reasons.some((r) => /^VM huge \(.*\) fits on no other host under the policy's targets$/.test(r))).toBe(true);
    const unknown = await withClock(t.datacenter, t.daemon.drain('h9', { powerOff: false, dryRun: false }));
    expect(unknown.refused && unknown.reasons).toEqual(['no host named h9 in the policy']);
    expect(t.datacenter.totals().migrations).toBe(0);
  });

  it('wake powers a host on and waits for its hypervisor; undrain ends maintenance', async () => {
    const t = await startDaemon({ setup: testSetup(HOSTS, VMS), policy: { consolidation: { enabled: false } } });
    await withClock(t.datacenter, t.daemon.drain('h1', { powerOff: true, dryRun: false }));
    expect(t.datacenter.hostView('h1')?.power).toBe('off');
    const woken = await withClock(t.datacenter, t.daemon.wake('h1'));
    expect(woken).toEqual({ ok: true, message: 'h1 is on and its hypervisor answers (still in maintenance: consolidator undrain to use it)' });
    expect(t.datacenter.hostView('h1')?.power).toBe('on');
    expect(await t.daemon.undrain('h1')).toEqual({ ok: true, message: 'h1 is back in service' });
    expect(t.daemon.state.isInMaintenance('h1')).toBe(false);
  });

  it('the CLI talks to the running daemon: status, plan, drain, history', async () => {
    const t = await startDaemon({ setup: testSetup(HOSTS, VMS), policy: { consolidation: { enabled: false } } });
    await cycleAt(t, 300);
    const policy = cliPolicy(t);

    const status = captureIo();
    expect(await runCli(['status', '--policy', policy], status)).toBe(0);
    expect(status.stdout.text).toMatch(/^consolidator test, mode enforce/);
    expect(status.stdout.text).toContain('hosts on: h1, h2, h3');

    const plan = captureIo();
    expect(await runCli(['plan', '--policy', policy], plan)).toBe(0);
    expect(plan.stdout.text).toContain('Plan from the running daemon');
    expect(plan.stdout.text).toMatch(/h1\s+\d+%\s+\d+%\s+kept-on\s+\w+/);
    expect(plan.stdout.text).toContain('Hosts on: 3 -> 3');

    const drain = captureIo();
    const drained = withClock(t.datacenter, runCli(['drain', 'h1', '--power-off', '--policy', policy], drain));
    expect(await drained).toBe(0);
    expect(drain.stdout.text).toContain('Drained h1; it is in maintenance until "consolidator undrain h1".');

    const refused = captureIo();
    expect(await runCli(['drain', 'h9', '--policy', policy], refused)).toBe(2);
    expect(refused.stdout.text).toContain('no host named h9 in the policy');

    const history = captureIo();
    expect(await runCli(['history', '--policy', policy, '--json'], history)).toBe(0);
    const entries = JSON.parse(history.stdout.text) as { type: string; subject: string; result: string }[];
    expect(entries.filter((e) => e.result === 'ok').map((e) => `${e.type} ${e.subject}`).sort()).toEqual(['migrate a', 'migrate b', 'power-off h1']);
  });

  it('status says so when no daemon answers (exit 3)', async () => {
    const io = captureIo();
    expect(await runCli(['status', '--url', 'http://127.0.0.1:9'], io)).toBe(3);
    expect(io.stderr.text).toContain('no daemon answers');
  });
});
