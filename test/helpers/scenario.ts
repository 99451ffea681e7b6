import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { PolicyInput } from '../../src/config/schema.js';
import type { Action, PlanInput, PlanResult } from '../../src/planner/types.js';
import { EMPTY_MEMORY } from '../../src/planner/types.js';
import { host, NOW, planInput, plannerPolicy, snapshot, vm, type HostSpec, type VmSpec } from './cluster.js';

/** A named planner scenario, written as YAML a person can read (test/fixtures/scenarios/). */
export interface Scenario {
  name: string;
  description?: string;
  policy?: Partial<PolicyInput>;
  hosts: (HostSpec & { underloadedForMinutes?: number })[];
  vms: VmSpec[];
  poweredOffByUs?: string[];
  powerActionsLast24h?: Record<string, number>;
  expect: {
    /** `migrate VM FROM -> TO`, `power-off HOST`, `power-on HOST` in plan order. */
    actions: string[];
    /** host -> `outcome` or `outcome Reason`. */
    verdicts: Record<string, string>;
  };
}

export function loadScenario(file: string): Scenario {
  return parse(readFileSync(file, 'utf8')) as Scenario;
}

export function scenarioInput(s: Scenario): PlanInput {
  const underloadedSinceMs: Record<string, number> = {};
  for (const h of s.hosts) if (h.underloadedForMinutes !== undefined) underloadedSinceMs[h.id] = NOW - h.underloadedForMinutes * 60_000;
  return planInput(snapshot(s.hosts.map(host), s.vms.map(vm)), plannerPolicy(s.policy ?? {}), {
    memory: { ...EMPTY_MEMORY, underloadedSinceMs },
    poweredOffByUs: s.poweredOffByUs ?? [],
    powerActionsLast24h: s.powerActionsLast24h ?? {},
  });
}

export function describeAction(a: Action): string {
  if (a.type === 'migrate') return `migrate ${a.vm} ${a.from} -> ${a.to}`;
  return `${a.type} ${a.host}`;
}

export function describeVerdicts(result: PlanResult): Record<string, string> {
  return Object.fromEntries(result.verdicts.map((v) => [v.host, v.reason ? `${v.outcome} ${v.reason}` : v.outcome]));
}
