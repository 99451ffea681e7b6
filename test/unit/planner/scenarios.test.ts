import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkPlan, planCycle } from '../../../src/planner/index.js';
import { describeAction, describeVerdicts, loadScenario, scenarioInput } from '../../helpers/scenario.js';

const DIR = 'test/fixtures/scenarios';

describe('named planner scenarios (test/fixtures/scenarios)', () => {
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.yaml')).sort()) {
    const scenario = loadScenario(join(DIR, file));
    it(scenario.name, () => {
      const input = scenarioInput(scenario);
      const result = planCycle(input);
      expect(result.actions.map(describeAction)).toEqual(scenario.expect.actions);
      expect(describeVerdicts(result)).toEqual(scenario.expect.verdicts);
      expect(checkPlan(input, result.actions).violations).toEqual([]);
      for (const verdict of result.verdicts) expect(verdict.detail.length).toBeGreaterThan(0);
    });
  }
});
