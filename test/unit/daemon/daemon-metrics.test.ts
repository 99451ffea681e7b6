import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cycleAt, daemonsStoppedAfterEach, testSetup, THIN_HOSTS, THIN_VMS, withClock, writePolicy, type TestDaemon } from '../../helpers/sim-daemon.js';

/** The metrics the daemon itself sets (beyond a cycle's record step): leader, policy thresholds, hosts it powered off. */

const startDaemon = daemonsStoppedAfterEach();

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function scrape(t: TestDaemon): Promise<string> {
  return t.daemon.registry.metrics();
}

describe('the metrics the daemon sets from its policy and state', () => {
  it('leads (no HA: a single controller) and exports the policy thresholds, before any cycle', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS) });
    const text = await scrape(t);
    expect(sample(text, 'consolidator_leader')).toBe(1);
    expect(sample(text, 'consolidator_policy_threshold_ratio{resource="cpu",threshold="overload"}')).toBe(0.9);
    expect(sample(text, 'consolidator_policy_threshold_ratio{resource="memory",threshold="overload"}')).toBe(0.92);
    expect(sample(text, 'consolidator_policy_threshold_ratio{resource="cpu",threshold="target"}')).toBe(0.7);
    expect(sample(text, 'consolidator_hosts_powered_off_by_consolidator')).toBe(0);
  });

  it('takes new thresholds from an accepted reload, keeps the old ones on a rejected one', async () => {
    const t = await startDaemon({ setup: testSetup(THIN_HOSTS, THIN_VMS), policy: { thresholds: { cpu: { overloadRatio: 0.8 } } } });
    expect(sample(await scrape(t), 'consolidator_policy_threshold_ratio{resource="cpu",threshold="overload"}')).toBe(0.8);
    const good = readFileSync(t.policyFile, 'utf8');
    expect(good).toContain('overloadRatio: 0.8');
    writePolicy(t, good.replace('overloadRatio: 0.8', 'overloadRatio: 0.85'));
    expect(await t.daemon.reload()).toBe(true);
    expect(sample(await scrape(t), 'consolidator_policy_threshold_ratio{resource="cpu",threshold="overload"}')).toBe(0.85);
    writePolicy(t, good.replace('overloadRatio: 0.8', 'overloadRatio: 1.5'));
    expect(await t.daemon.reload()).toBe(false);
    expect(sample(await scrape(t), 'consolidator_policy_threshold_ratio{resource="cpu",threshold="overload"}')).toBe(0.85);
  });

  it('counts the hosts it powered off after each cycle, and again at start from the saved state', async () => {
    const setup = testSetup(THIN_HOSTS, THIN_VMS);
    const first = await startDaemon({ setup });
    for (const at of [300, 600, 900, 1200]) await cycleAt(first, at);
    await cycleAt(first);
    const off = first.daemon.state.poweredOffByUs().length;
    expect(off).toBeGreaterThanOrEqual(2);
    expect(sample(await scrape(first), 'consolidator_hosts_powered_off_by_consolidator')).toBe(off);
    await first.daemon.stop();

    // A restart on the same state: the count is there before the first cycle.
    const second = await startDaemon({ setup, dir: first.dir, datacenter: first.datacenter });
    expect(sample(await scrape(second), 'consolidator_hosts_powered_off_by_consolidator')).toBe(off);
  });

  it('updates the count after an operator wake', async () => {
    const setup = testSetup(THIN_HOSTS, THIN_VMS);
    const t = await startDaemon({ setup });
    for (const at of [300, 600, 900, 1200]) await cycleAt(t, at);
    await cycleAt(t);
    const before = t.daemon.state.poweredOffByUs();
    expect(before.length).toBeGreaterThanOrEqual(1);
    const host = before[0] as string;
    await withClock(t.datacenter, t.daemon.wake(host));
    expect(sample(await scrape(t), 'consolidator_hosts_powered_off_by_consolidator')).toBe(before.length - 1);
  });
});
