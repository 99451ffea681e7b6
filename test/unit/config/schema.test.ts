import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { policyJsonSchema } from '../../../src/config/schema.js';

describe('the JSON Schema for editors', () => {
  it('is up to date in config/consolidator.schema.json (regenerate: npm run schema)', () => {
    const committed = JSON.parse(readFileSync('config/consolidator.schema.json', 'utf8')) as unknown;
    expect(committed).toEqual(policyJsonSchema());
  });

  it('describes every top-level key and forbids unknown ones', () => {
    const schema = policyJsonSchema() as { properties: Record<string, { description?: string }>; additionalProperties: unknown };
    expect(schema.additionalProperties).toBe(false);
    for (const [key, value] of Object.entries(schema.properties)) {
      expect(value.description, key).toBeTruthy();
    }
  });
});
