import { describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/config/schema.js';
import { cycleAt, daemonsStoppedAfterEach, testSetup, worldViolations, type TestHost, type TestVm } from '../../helpers/sim-daemon.js';

const startDaemon = daemonsStoppedAfterEach();

// Two 4-core hosts; two 2-vCPU VMs that take turns: one busy (2 cores) while the other idles (0.5).
const HOSTS: TestHost[] = [{ id: 'h1', cores: 4 }, { id: 'h2', cores: 4 }];
const VMS: TestVm[] = [
  { id: 'a', host: 'h1', load: (i) => (i % 2 === 0 ? 1 : 0.25) },
  { id: 'b', host: 'h2', load: (i) => (i % 2 === 0 ? 0.25 : 1) },
];

function policyWith(cpu: NonNullable<PolicyInput['hostDemand']>['cpu']): Partial<PolicyInput> {
  return {
    hostDemand: { cpu },
    consolidation: { underloadedForSeconds: 300 },
    // Limit 2.8 cores: the sum of the peaks (4) does not fit, the peak of the sum (2.5) does.
    thresholds: { cpu: { windowSeconds: 900, statistic: 'max', underloadRatio: 0.6, targetRatio: 0.7, overloadRatio: 0.9 }, memory: { windowSeconds: 900, statistic: 'max' } },
  };
}

async function runCycles(policy: Partial<PolicyInput>) {
  const t = await startDaemon({ setup: testSetup(HOSTS, VMS), policy });
  const reports = [];
  for (const at of [300, 600, 900, 1200, 1500]) reports.push(await cycleAt(t, at));
  return { t, outcomes: reports.flatMap((r) => r.outcomes) };
}

describe('the daemon with a peak-of-sum host demand (simulated datacenter)', () => {
  it('puts VMs that take turns on one host and powers the other off; the live re-check agrees with the plan', async () => {
    const { t, outcomes } = await runCycles(policyWith([{ kind: 'peak-of-sum', statistic: 'max' }]));
    const migrations = outcomes.filter((o) => o.action.type === 'migrate');
    expect(migrations.map((o) => o.result)).toEqual(['ok']);
    expect(outcomes.filter((o) => o.action.type === 'power-off' && o.result === 'ok')).toHaveLength(1);
    expect(worldViolations(t.datacenter, ['a', 'b'], ['h1', 'h2'])).toEqual([]);
  }, 60_000);

  it('with the sum of the peaks, nothing moves', async () => {
    const { outcomes } = await runCycles(policyWith([{ kind: 'sum-of-vms' }]));
    expect(outcomes.filter((o) => o.action.type === 'migrate')).toEqual([]);
  }, 60_000);
});
