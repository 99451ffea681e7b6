import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BmcTarget, ProcessIpmitoolRunner, ipmitoolArgv, readBmcPassword } from '../../../../src/drivers/power/ipmitool-runner.js';
import { thrown } from '../../../helpers/thrown.js';

const SETTINGS = { cipherSuite: 3, retries: 1, commandTimeoutMs: 5000 };
const PASSWORD = 'pw-in-a-file-9f3';
let dir = '';
let target: BmcTarget;
/** A stand-in for ipmitool that prints its argv and whether it got IPMI_PASSWORD (not the value). */
let fakeIpmitool = '';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ipmitool-runner-'));
  await writeFile(join(dir, 'password'), `${PASSWORD}\nsecond line ignored\n`, { mode: 0o600 });
  target = { host: 'h1', address: '127.0.1.1', port: 623, user: 'admin', passwordFile: join(dir, 'password') };
  fakeIpmitool = join(dir, 'ipmitool');
  await writeFile(
    fakeIpmitool,
    `#!/bin/sh
case "$*" in *sleep*) sleep 5 ;; esac
echo "argv: $*"
[ "$IPMI_PASSWORD" = "${PASSWORD}" ] && echo "password: from env"
echo "env: $(env | cut -d= -f1 | sort | tr '\\n' ' ')"
exit 0
`,
  );
  await chmod(fakeIpmitool, 0o755);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});


describe('ipmitoolArgv', () => {
  it('uses lanplus, the cipher suite, retries and a per-attempt timeout, -E and never the password', () => {
    const argv = ipmitoolArgv('ipmitool', target, SETTINGS, ['chassis', 'power', 'status']);
    expect(argv).toEqual(
      'ipmitool -I lanplus -H 127.0.1.1 -p 623 -U admin -E -C 3 -R 1 -N 2 -v chassis power status'.split(' '),
    );
    expect(argv.join(' ')).not.toContain(PASSWORD);
    expect(argv).not.toContain('-P');
  });

  it.each([
    [{ retries: 0, commandTimeoutMs: 5000 }, '1', '2'], // -R 0 would mean ipmitool's own 20 s default
    [{ retries: 2, commandTimeoutMs: 2000 }, '2', '1'], // -N is at least 1 s
    [{ retries: 1, commandTimeoutMs: 10_000 }, '1', '5'],
  ])('spreads the command timeout over the attempts (%o -> -R %s -N %s)', (settings, r, n) => {
    const argv = ipmitoolArgv('ipmitool', target, { cipherSuite: 3, ...settings }, ['mc', 'info']);
    expect(argv[argv.indexOf('-R') + 1]).toBe(r);
    expect(argv[argv.indexOf('-N') + 1]).toBe(n);
  });

  it('leaves out -U and -E when the policy has no user or password file', () => {
    const argv = ipmitoolArgv('ipmitool', { host: 'h1', address: 'bmc1', port: 6230 }, SETTINGS, ['mc', 'info']);
    expect(argv).not.toContain('-U');
    expect(argv).not.toContain('-E');
  });
});

describe('readBmcPassword', () => {
  it('reads the first line of the file', async () => {
    expect(await readBmcPassword({ ...target, passwordFile: join(dir, 'password') })).toBe(PASSWORD);
  });

  it('fails with BMC_AUTH naming the file (not its content) when it cannot be read or is empty', async () => {
    const missing = await thrown(readBmcPassword({ ...target, passwordFile: join(dir, 'missing') }));
    expect(missing.code).toBe('BMC_AUTH');
    expect(missing.message).toMatch(/cannot read the BMC password file of h1 \(.*missing\)/);
    await writeFile(join(dir, 'empty'), '\n');
    const empty = await thrown(readBmcPassword({ ...target, passwordFile: join(dir, 'empty') }));
    expect(empty.message).toMatch(/is empty/);
  });
});

describe('ProcessIpmitoolRunner', () => {
  it('passes the password in the environment of ipmitool only, with a minimal environment', async () => {
    const runner = new ProcessIpmitoolRunner({ settings: SETTINGS, program: fakeIpmitool });
    const output = await runner.run(target, ['chassis', 'power', 'status'], new AbortController().signal);
    expect(output.exitCode).toBe(0);
    expect(output.stdout).toContain('argv: -I lanplus -H 127.0.1.1 -p 623 -U admin -E -C 3');
    expect(output.stdout).toContain('password: from env');
    expect(output.stdout).toMatch(/env: .*IPMI_PASSWORD/);
    expect(output.stdout).not.toMatch(/env: .*HOME/);
    expect(process.env['IPMI_PASSWORD']).toBeUndefined();
  });

  it('turns a call that outlives the command timeout into BMC_UNREACHABLE', async () => {
    const runner = new ProcessIpmitoolRunner({ settings: { ...SETTINGS, commandTimeoutMs: 200 }, program: fakeIpmitool });
    const startMs = Date.now();
    const e = await thrown(runner.run(target, ['sleep'], new AbortController().signal));
    expect(e.code).toBe('BMC_UNREACHABLE');
    expect(e.message).toMatch(/the BMC of h1 \(127.0.1.1:623\) did not answer ipmitool sleep within 0.2 s/);
    expect(Date.now() - startMs).toBeLessThan(2000);
  });

  it('fails with POWER_FAILED when ipmitool cannot be started', async () => {
    const runner = new ProcessIpmitoolRunner({ settings: SETTINGS, program: join(dir, 'no-such-ipmitool') });
    const e = await thrown(runner.run(target, ['mc', 'info'], new AbortController().signal));
    expect(e.code).toBe('POWER_FAILED');
    expect(e.message).toMatch(/cannot run ipmitool for h1/);
  });

  it('fails with BMC_AUTH before running anything when the password file is missing', async () => {
    const runner = new ProcessIpmitoolRunner({ settings: SETTINGS, program: fakeIpmitool });
    const e = await thrown(runner.run({ ...target, passwordFile: join(dir, 'nope') }, ['mc', 'info'], new AbortController().signal));
    expect(e.code).toBe('BMC_AUTH');
  });
});
