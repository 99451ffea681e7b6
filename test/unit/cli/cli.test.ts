import { describe, expect, it } from 'vitest';
import { runCli } from '../../../src/cli/cli.js';
import { COMMANDS } from '../../../src/cli/commands.js';
import { captureIo } from '../../helpers/capture.js';

describe('the consolidator command line', () => {
  it('validates the example policy: exit 0 and a one-line summary', async () => {
    const io = captureIo();
    expect(await runCli(['validate', 'config/consolidator.example.yaml'], io)).toBe(0);
    expect(io.stdout.text).toBe(
      'config/consolidator.example.yaml: valid policy, 5 hosts (1 excluded), mode dry-run, schedule "*/5 * * * *", drivers virsh/ipmitool+redfish\n',
    );
  });

  it('exits 78 with every problem and no stack trace on an invalid policy', async () => {
    const io = captureIo();
    expect(await runCli(['validate', 'test/fixtures/policies/broken.yaml'], io)).toBe(78);
    expect(io.stderr.text).toContain('test/fixtures/policies/broken.yaml:2:7 mode: must be one of "enforce", "dry-run", got "on"');
    expect(io.stderr.text).toContain('test/fixtures/policies/broken.yaml:4:3 safety.minHostOn: unknown key (did you mean "minHostsOn"?)');
    expect(io.stderr.text).toMatch(/2 problems, policy not valid\n$/);
    expect(io.stderr.text).not.toMatch(/\n\s+at /);
  });

  it('exits 78 on a file that does not exist', async () => {
    const io = captureIo();
    expect(await runCli(['validate', 'no/such/policy.yaml'], io)).toBe(78);
    expect(io.stderr.text).toContain('no/such/policy.yaml:1:1 (file): cannot read the policy file: ENOENT');
  });

  it('exits 64 on a usage error', async () => {
    const io = captureIo();
    expect(await runCli(['validate'], io)).toBe(64);
    expect(io.stderr.text).toContain('missing FILE');
    const unknown = captureIo();
    expect(await runCli(['frobnicate'], unknown)).toBe(64);
    expect(unknown.stderr.text).toContain('unknown command "frobnicate"');
    const badOption = captureIo();
    expect(await runCli(['validate', '--nope', 'x'], badOption)).toBe(64);
  });

  it('has --help for every command, and --version', async () => {
    for (const command of COMMANDS) {
      const io = captureIo();
      expect(await runCli([command.name, '--help'], io)).toBe(0);
      expect(io.stdout.text).toContain(`Usage: ${command.usage}`);
      expect(io.stdout.text).toContain('Examples:');
    }
    const io = captureIo();
    expect(await runCli(['--help'], io)).toBe(0);
    for (const command of COMMANDS) expect(io.stdout.text).toContain(command.name);
    const version = captureIo();
    expect(await runCli(['--version'], version)).toBe(0);
    expect(version.stdout.text).toMatch(/^consolidator \d+\.\d+\.\d+\n$/);
  });
});
