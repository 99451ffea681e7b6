import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

/** The built CLI, as an operator runs it (`npm run build` comes first in the test command). */
async function consolidator(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run('node', ['dist/main.js', ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failure = e as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

describe('the built consolidator binary', () => {
  it('validates the example policy', async () => {
    const result = await consolidator('validate', 'config/consolidator.example.yaml');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/valid policy, 5 hosts \(1 excluded\), mode dry-run/);
  });

  it('exits 78 on a broken policy, with positions and without a stack trace', async () => {
    const result = await consolidator('validate', 'test/fixtures/policies/broken.yaml');
    expect(result.code).toBe(78);
    expect(result.stderr).toContain('broken.yaml:2:7 mode:');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('check: exits 64 for a host the policy does not have, naming the hosts it has', async () => {
    const result = await consolidator('check', '--policy', 'config/consolidator.example.yaml', 'nosuch-host');
    expect(result.code).toBe(64);
    expect(result.stderr).toContain('nosuch-host is not a host of config/consolidator.example.yaml');
    expect(result.stdout).toBe('');
  });

  it('prints its version', async () => {
    const result = await consolidator('--version');
    expect(result.stdout).toMatch(/^consolidator \d+\.\d+\.\d+/);
  });
});
