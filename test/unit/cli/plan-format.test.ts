import { describe, expect, it } from 'vitest';
import { formatPlan } from '../../../src/cli/plan.js';
import type { PlanResult } from '../../../src/planner/types.js';

const plan: PlanResult = {
  actions: [],
  verdicts: [
    {
      host: 'demo-01',
      outcome: 'kept-on',
      reason: 'NoRoomForVms',
      detail: 'overloaded (cpu 92%, memory 56%): no room',
      utilisation: { cpu: 0.78, memory: 0.56 },
      observed: { cpu: 0.92, memory: 0.56 },
      overloaded: true,
    },
    {
      host: 'demo-02',
      outcome: 'kept-on',
      reason: 'NotUnderloaded',
      detail: 'cpu 62%, memory 50%: not below the underload ratios',
      utilisation: { cpu: 0.7, memory: 0.5 },
      observed: { cpu: 0.62, memory: 0.5 },
      overloaded: false,
    },
  ],
  memory: { underloadedSinceMs: {}, hostCooldowns: {}, vmCooldownUntilMs: {} },
  summary: { activeHostsBefore: 2, activeHostsAfter: 2, migrations: 0, powerOffs: 0, powerOns: 0, estimatedSavingWatts: 0, memoryToMoveMiB: 0, budgetLimited: false },
  statistics: { cpu: 'p90', memory: 'max' },
};

describe('consolidator plan, as a table', () => {
  it('shows one CPU figure per host, the observed one the verdict is about, with its statistic named, and marks overloaded hosts', () => {
    const lines = formatPlan(plan, [], 'a test').split('\n');
    expect(lines[2]).toMatch(/^HOST {5}CPU \(p90\) {2}MEMORY \(max\) {2}VERDICT/);
    expect(lines[3]).toMatch(/^demo-01 {2}92% {8}56% {11}kept-on, overloaded {2}NoRoomForVms/);
    expect(lines[4]).toMatch(/^demo-02 {2}62% {8}50% {11}kept-on {2}\s+NotUnderloaded/);
    expect(lines.join('\n')).not.toContain('78%');
  });
});
