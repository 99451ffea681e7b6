import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/cli.js';
import { captureIo } from '../../helpers/capture.js';
import { ConsolidatorError } from '../../../src/errors.js';
import { cycleAt, daemonsStoppedAfterEach, testHosts, testSetup, withClock, worldViolations, type TestDaemon, type TestDaemonOptions, type TestVm } from '../../helpers/sim-daemon.js';
import { thrown } from '../../helpers/thrown.js';

/** Roomy: h1 can be drained onto the others. */
const HOSTS = testHosts(3);
const VMS: TestVm[] = [
  { id: 'a', host: 'h1', load: 0.5 },
  { id: 'b', host: 'h1', load: 0.5 },
  { id: 'c', host: 'h2', load: 0.5 },
  { id: 'd', host: 'h3', load: 0.5 },
];
const VM_IDS = VMS.map((v) => v.id);
const VM_IDS_OF = (vms: readonly TestVm[]) => vms.map((v) => v.id);
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

  describe('on a consolidated cluster', () => {
    // h1 and h2 busy enough to stay on (50 %, 40 % CPU); h3 empty: the daemon powers it off. h1's
    // 8 cores do not fit in h2's 4.8 free under the 70 % target: a drain of h1 needs h3. c's load
    // drops later, so that h3 would be emptied again were it not kept for the maintenance.
    const vms: TestVm[] = [
      { id: 'a', host: 'h1', vcpus: 8, load: 0.5 },
      { id: 'b', host: 'h1', vcpus: 8, load: 0.5 },
      { id: 'c', host: 'h2', vcpus: 8, load: (sample) => (sample < 8 ? 0.8 : 0.1) },
    ];
    const policy = {
      thresholds: {
        cpu: { windowSeconds: 900, statistic: 'max', underloadRatio: 0.3, targetRatio: 0.7, overloadRatio: 0.9 },
        memory: { windowSeconds: 900, statistic: 'max', underloadRatio: 0.3, targetRatio: 0.7, overloadRatio: 0.9 },
      },
    } as const;
    const consolidated = async (wrapDrivers?: TestDaemonOptions['wrapDrivers']) => {
      const t = await startDaemon({ setup: testSetup(HOSTS, vms), policy, ...(wrapDrivers ? { wrapDrivers } : {}) });
      for (let at = 300; t.datacenter.hostView('h3')?.power !== 'off' && at <= 1800; at += 300) await cycleAt(t, at);
      expect(t.daemon.state.poweredOffByUs()).toEqual(['h3']);
      return t;
    };

    it('--no-wake refuses, in figures, and names the host waking would take', async () => {
      const t = await consolidated();
      const result = await withClock(t.datacenter, t.daemon.drain('h1', { powerOff: false, dryRun: false, noWake: true }));
      expect(result.refused).toBe(true);
      if (!result.refused) return;
      expect(result.room).toMatchObject({ needCpu: expect.closeTo(8, 1) as unknown, freeCpu: expect.closeTo(4.8, 1) as unknown, activeHosts: 1 });
      expect(result.wouldWake?.map((w) => w.host)).toEqual(['h3']);
      expect(result.reasons.join('\n')).toMatch(/^the VMs on h1 need 8\.\d\d CPU and 8192 MiB; the 1 host\(s\) on that may receive them have 4\.\d\d CPU and \d+ MiB free under the targets/);
      expect(result.reasons.at(-1)).toBe('waking h3 (+11.20 CPU, +45875 MiB) would make room: drain without --no-wake to have consolidator do it');
      expect(result.reasons.join('\n')).not.toContain('fits on no other host');
      // The same through the CLI and the operator route (noWake in the body).
      const cli = captureIo();
      expect(await withClock(t.datacenter, runCli(['drain', 'h1', '--no-wake', '--policy', cliPolicy(t)], cli))).toBe(2);
      expect(cli.stdout.text).toMatch(/^Drain of h1 refused, nothing was done:\n {2}- the VMs on h1 need 8\.\d\d CPU/);
      expect(cli.stdout.text).toContain('  - waking h3 (+11.20 CPU, +45875 MiB) would make room: drain without --no-wake to have consolidator do it\n');
      expect(t.datacenter.hostView('h3')?.power).toBe('off');
      expect(t.datacenter.totals().migrations).toBe(0);
    });

    it('a host that cannot be powered on fails the drain (thrown, marked for attention), and no VM moves', async () => {
      let failOn = false;
      const t = await consolidated((bundle) => ({
        ...bundle,
        power: {
          ...bundle.power,
          status: (h, signal) => bundle.power.status(h, signal),
          powerOn: (h, signal) => (failOn ? Promise.reject(new ConsolidatorError('POWER_FAILED', `BMC of ${h} says no`)) : bundle.power.powerOn(h, signal)),
          powerOff: (h, mode, signal, options) => bundle.power.powerOff(h, mode, signal, options),
        },
      }));
      failOn = true;
      // Caught as soon as it rejects (withClock only awaits it once the clock loop ends).
      const error = await withClock(t.datacenter, thrown(t.daemon.drain('h1', { powerOff: false, dryRun: false })));
      expect(error).toMatchObject({ code: 'POWER_FAILED', message: 'h3 could not be powered on to make room: BMC of h3 says no; no VM was moved' });
      expect(t.datacenter.totals().migrations).toBe(0);
      expect(t.daemon.state.isInMaintenance('h1')).toBe(false);
      expect(t.daemon.state.hostsNeedingAttention()).toEqual(['h3']);
      expect(t.daemon.history(10).map((e) => `${e.type} ${e.subject} ${e.result}`)).toContain('power-on h3 failed');
    });

    it('drain wakes the host consolidator powered off, drains, keeps it on while the drain holds (across a restart), and lets it go after undrain', async () => {
      const first = await consolidated();
      const result = await withClock(first.datacenter, first.daemon.drain('h1', { powerOff: false, dryRun: false }));
      expect(result).toMatchObject({ ok: true, refused: false });
      if (result.refused) return;
      expect(result.woken.map((w) => w.host)).toEqual(['h3']);
      expect(first.datacenter.hostView('h1')?.vms).toEqual([]);
      expect(first.datacenter.hostView('h3')?.power).toBe('on');
      expect(first.datacenter.hostView('h3')?.vms.length).toBeGreaterThan(0);
      expect(first.daemon.state.poweredOffByUs()).toEqual([]);
      expect(first.daemon.state.wokenForMaintenance()).toEqual({ h3: 'h1' });
      const history = first.daemon.history(50).map((e) => `${e.type} ${e.subject} ${e.result}`);
      expect(history).toContain('power-on h3 ok');

      // The mark is in the state file: a restarted daemon keeps h3 on too.
      await first.daemon.stop();
      const t = await startDaemon({ setup: testSetup(HOSTS, vms), policy, dir: first.dir, datacenter: first.datacenter });
      expect(t.daemon.state.wokenForMaintenance()).toEqual({ h3: 'h1' });
      const reasons: (string | undefined)[] = [];
      for (let at = t.datacenter.nowSeconds + 300; at <= 6000; at += 300) {
        const report = await cycleAt(t, at);
        reasons.push(report.plan?.verdicts.find((v) => v.host === 'h3')?.reason);
        expect(report.plan?.actions.some((a) => a.type === 'power-off' && a.host === 'h3')).toBe(false);
      }
      // Once c's load dropped, h3 is underloaded, and kept on for the maintenance of h1.
      expect(reasons).toContain('WokenForMaintenance');
      expect(t.datacenter.hostView('h3')?.power).toBe('on');

      expect(await t.daemon.undrain('h1')).toEqual({ ok: true, message: 'h1 is back in service\nh3, woken for its maintenance, may be emptied and powered off again' });
      expect(t.daemon.state.wokenForMaintenance()).toEqual({});
      const after: (string | undefined)[] = [];
      for (let at = t.datacenter.nowSeconds + 300; at <= 9000; at += 300) after.push((await cycleAt(t, at)).plan?.verdicts.find((v) => v.host === 'h3')?.reason);
      expect(after).not.toContain('WokenForMaintenance');
      // Eligible again: the next cycle empties it and powers it off (consolidator's to wake again).
      expect(after).toContain('PoweredOff');
      expect(t.datacenter.hostView('h3')?.power).toBe('off');
      expect(t.daemon.state.poweredOffByUs()).toContain('h3');
      expect(worldViolations(t.datacenter, VM_IDS_OF(vms), HOST_IDS)).toEqual([]);
    });
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
