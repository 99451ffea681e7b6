/**
 * IpmitoolPower against real BMC simulators (OpenIPMI ipmi_sim, one per host, on loopback) with the
 * real ipmitool: status, soft-off, hard-off, on, a soft-off the host ignores, the re-check that stops
 * the hard power-off after it, a host that does not power on, a wrong password, a BMC that does not
 * answer, the system UUID each BMC reports, and the password never in any argv.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveHosts, type ResolvedHost } from '../../src/config/resolve.js';
import { type Policy, PolicySchema } from '../../src/config/schema.js';
import { type IpmitoolPower, ipmitoolPowerFromPolicy } from '../../src/drivers/power/ipmitool-power.js';
import { PowerAttention } from '../../src/state/power-attention.js';
import { PowerRecorder, powerActionsInLast24h } from '../../src/state/power-record.js';
import { createPowerDriverRegistry } from '../../src/drivers/power/registry.js';
import { SupervisedPower } from '../../src/actuator/supervised-power.js';
import { createLogger, type Logger } from '../../src/observability/logger.js';
import { CapturedStream } from '../helpers/capture.js';
import { type Bmc, type PowerChange, startBmcs } from '../lab/bmc.js';
import { pause } from '../helpers/wait-for.js';
import { ConsolidatorError } from '../../src/errors.js';
import { thrown } from '../helpers/thrown.js';

/** This file's BMCs: 127.0.1.211-218 on a port of their own, so nothing else on loopback collides. */
const PORT = 6231;
const ADDRESS = (n: number) => `127.0.1.${210 + n}`;
const NOBODY = '127.0.1.219';
const SLOW_GET_MS = 400;
const SOFT_OFF_AFTER_MS = 700;
const VERIFY_INTERVAL_MS = 100;
/** A Dell-style product_uuid; its SMBIOS bytes are 44 45 4c 4c 51 00 10 34 80 51 b5 c0 4f 37 59 31. */
const H8_UUID = '4c4c4544-0051-3410-8051-b5c04f375931';
/** Tight, so failure tests are quick; still whole seconds as the policy wants them. */
const POWER = { softOffTimeoutSeconds: 1, verifyTimeoutSeconds: 2, ipmi: { cipherSuite: 3, retries: 1, commandTimeoutSeconds: 2 } };

let bmcs: Bmc[] = [];
let policy: Policy;
let hosts: ResolvedHost[];
let power: IpmitoolPower;
let logger: Logger;
const logs = new CapturedStream();
const changes: PowerChange[] = [];
let hookFile = '';

const bmc = (name: string): Bmc => {
  const found = bmcs.find((b) => b.name === name);
  if (found === undefined) throw new Error(`no BMC ${name}`);
  return found;
};
const signal = () => AbortSignal.timeout(60_000);


async function timed<T>(p: Promise<T>): Promise<{ value: T; ms: number }> {
  const startMs = Date.now();
  const value = await p;
  return { value, ms: Date.now() - startMs };
}

/** Requests and changes a BMC saw after `sinceMs`, as short strings ("set shutdown 1", "power off via soft"). */
async function eventsSince(b: Bmc, sinceMs: number): Promise<string[]> {
  return (await b.events())
    .filter((e) => e.atMs >= sinceMs)
    .map((e) => (e.kind === 'request' ? `${e.op} ${e.args.join(' ')}` : `power ${e.to} via ${e.via}`))
    .filter((e) => !e.startsWith('get '));
}

beforeAll(async () => {
  bmcs = await startBmcs([
    { name: 'h1', address: ADDRESS(1), port: PORT, onPowerOff: (c) => void changes.push(c), onPowerOn: (c) => void changes.push(c) },
    { name: 'h2', address: ADDRESS(2), port: PORT, softOff: 'ignore' },
    { name: 'h3', address: ADDRESS(3), port: PORT, softOff: { afterMs: SOFT_OFF_AFTER_MS } },
    { name: 'h4', address: ADDRESS(4), port: PORT, getDelayMs: SLOW_GET_MS },
    { name: 'h5', address: ADDRESS(5), port: PORT, initialPower: 'off', powerOn: 'ignore' },
    { name: 'h8', address: ADDRESS(7), port: PORT, softOff: 'ignore', systemUuid: H8_UUID },
    { name: 'h9', address: ADDRESS(8), port: PORT, systemUuid: '00000000-0000-0000-0000-000000000000' },
  ]);
  hookFile = join(bmc('h2').dir, 'booted-by-hook');
  const wrongPasswordFile = join(bmc('h1').dir, 'wrong-password');
  await writeFile(wrongPasswordFile, 'not-the-password\n', { mode: 0o600 });
  policy = PolicySchema.parse({
    version: 1,
    power: POWER,
    hosts: [
      ...bmcs.map((b) => ({ name: b.name, bmc: { address: b.address, port: b.port, user: b.user, passwordFile: b.passwordFile } })),
      { name: 'h6', bmc: { address: ADDRESS(1), port: PORT, user: 'admin', passwordFile: wrongPasswordFile } },
      { name: 'h7', bmc: { address: NOBODY, port: PORT, user: 'admin', passwordFile: bmc('h1').passwordFile } },
    ],
  });
  hosts = resolveHosts(policy, '/');
  logger = createLogger({ level: 'debug', format: 'json', stream: logs });
  power = ipmitoolPowerFromPolicy({ power: policy.power, hosts, logger, verifyIntervalMs: VERIFY_INTERVAL_MS });
});

afterAll(async () => {
  await Promise.all(bmcs.map((b) => b.stop()));
  const alive = bmcs.filter((b) => existsSync(`/proc/${b.pid}`));
  if (alive.length > 0) throw new Error(`ipmi_sim still running: ${alive.map((b) => b.pid).join(', ')}`);
});

describe('IpmitoolPower with ipmi_sim and ipmitool', () => {
  it('reads the power state', async () => {
    expect(await power.status('h1', signal())).toBe('on');
    await bmc('h1').setPower('off');
    expect(await power.status('h1', signal())).toBe('off');
    await bmc('h1').setPower('on');
    expect(await power.status('h1', signal())).toBe('on');
  });

  it('powers off soft, and sends no hard power-off when the host obeys', async () => {
    const sinceMs = Date.now();
    changes.length = 0;
    await power.powerOff('h1', 'soft', signal());
    expect(await bmc('h1').power()).toBe('off');
    expect(await eventsSince(bmc('h1'), sinceMs)).toEqual(['set shutdown 1', 'power off via soft']);
    await bmc('h1').hooksSettled();
    expect(changes).toEqual([{ to: 'off', via: 'soft' }]);
  });

  it('powers on, and the power-on hook runs', async () => {
    const sinceMs = Date.now();
    changes.length = 0;
    await power.powerOn('h1', signal());
    expect(await bmc('h1').power()).toBe('on');
    expect(await eventsSince(bmc('h1'), sinceMs)).toEqual(['set power 1', 'power on via power']);
    await bmc('h1').hooksSettled();
    expect(changes).toEqual([{ to: 'on', via: 'power' }]);
  });

  it('powers off hard', async () => {
    const sinceMs = Date.now();
    await power.powerOff('h1', 'hard', signal());
    expect(await eventsSince(bmc('h1'), sinceMs)).toEqual(['set power 0', 'power off via power']);
    await power.powerOn('h1', signal());
  });

  it('powers off hard after the soft-off timeout when the host ignores soft-off', async () => {
    const sinceMs = Date.now();
    const { ms } = await timed(power.powerOff('h2', 'soft', signal()));
    expect(ms).toBeGreaterThanOrEqual(POWER.softOffTimeoutSeconds * 1000);
    expect(ms).toBeLessThan((POWER.softOffTimeoutSeconds + POWER.verifyTimeoutSeconds) * 1000 + 2000);
    expect(await eventsSince(bmc('h2'), sinceMs)).toEqual(['set shutdown 1', 'set power 0', 'power off via power']);
    const [shutdown, hardOff] = (await bmc('h2').events()).filter((e) => e.kind === 'request' && e.op === 'set' && e.atMs >= sinceMs);
    expect((hardOff?.atMs ?? 0) - (shutdown?.atMs ?? 0)).toBeGreaterThanOrEqual(POWER.softOffTimeoutSeconds * 1000 - 50);
    expect(logs.text).toContain('soft power-off timed out, powering off hard');
  });

  it('waits for a host that takes its time to shut down after soft-off', async () => {
    const sinceMs = Date.now();
    const { ms } = await timed(power.powerOff('h3', 'soft', signal()));
    expect(ms).toBeGreaterThanOrEqual(SOFT_OFF_AFTER_MS - 50);
    expect(await eventsSince(bmc('h3'), sinceMs)).toEqual(['set shutdown 1', 'power off via soft']);
  });

  it('sends no hard power-off after an ignored soft-off when the re-check refuses, through SupervisedPower', async () => {
    const recorder = new PowerRecorder();
    const supervised = new SupervisedPower({ driver: power, attention: new PowerAttention({ logger }), recorder, logger });
    const sinceMs = Date.now();
    const checks: { atMs: number; power: string }[] = [];
    const e = await thrown(
      supervised.powerOff('h8', 'soft', signal(), {
        beforeHardOff: async () => {
          checks.push({ atMs: Date.now() - sinceMs, power: await bmc('h8').power() });
          throw new ConsolidatorError('POWER_FAILED', 'h8 holds a domain again (vm-late): not powering it off hard');
        },
      }),
    );
    expect(e.message).toMatch(/holds a domain again/);
    expect(checks).toHaveLength(1);
    expect(checks[0]?.atMs).toBeGreaterThanOrEqual(POWER.softOffTimeoutSeconds * 1000);
    expect(checks[0]?.power).toBe('on'); // the host really ignored the soft-off
    await pause(2 * VERIFY_INTERVAL_MS);
    expect(await eventsSince(bmc('h8'), sinceMs)).toEqual(['set shutdown 1']);
    expect(await bmc('h8').power()).toBe('on');
    expect(await power.status('h8', signal())).toBe('on');
    expect(recorder.record.hosts['h8']?.[0]).toMatchObject({ action: 'off', mode: 'soft', result: 'POWER_FAILED' });
    expect(logs.text).toContain('hard power-off cancelled by the re-check before it');
  });

  it('powers off hard after an ignored soft-off once the re-check passes', async () => {
    const sinceMs = Date.now();
    let checked = 0;
    await power.powerOff('h8', 'soft', signal(), { beforeHardOff: async () => void (checked += 1) });
    expect(checked).toBe(1);
    expect(await eventsSince(bmc('h8'), sinceMs)).toEqual(['set shutdown 1', 'set power 0', 'power off via power']);
    await power.powerOn('h8', signal());
  });

  it('reads the system UUID each BMC reports, in the form of the host\'s product_uuid', async () => {
    expect(await power.systemUuid('h8', signal())).toBe(H8_UUID);
    expect(bmc('h8').guidHex).toBe('44454c4c510010348051b5c04f375931'); // what lan.conf says, SMBIOS byte order
    const h1 = await power.systemUuid('h1', signal());
    const h2 = await power.systemUuid('h2', signal());
    expect(h1).toBe(bmc('h1').systemUuid);
    expect(h2).toBe(bmc('h2').systemUuid);
    expect(h1).not.toBe(h2);
    expect(h1).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(await power.systemUuid('h9', signal())).toBeUndefined(); // all zeros: not set
  });

  it('fails the system UUID read on a wrong password, not with undefined', async () => {
    expect((await thrown(power.systemUuid('h6', signal()))).code).toBe('BMC_AUTH');
  });

  it('fails fast and clearly on a wrong password (BMC_AUTH)', async () => {
    const { value: e, ms } = await timed(thrown(power.status('h6', signal())));
    expect(e.code).toBe('BMC_AUTH');
    expect(e.message).toMatch(/^ipmitool chassis power status failed for h6: the BMC rejected the password/);
    expect(ms).toBeLessThan(1000);
    expect(JSON.stringify(e.toJSON())).not.toContain('not-the-password');
  });

  it('fails within the policy timeout on a BMC that does not answer (BMC_UNREACHABLE), not after 20 s', async () => {
    const { value: e, ms } = await timed(thrown(power.status('h7', signal())));
    expect(e.code).toBe('BMC_UNREACHABLE');
    expect(e.message).toMatch(/h7/);
    expect(ms).toBeLessThanOrEqual(POWER.ipmi.commandTimeoutSeconds * 1000 + 500);
    const off = await timed(thrown(power.powerOff('h7', 'hard', signal())));
    expect(off.value.code).toBe('BMC_UNREACHABLE');
    expect(off.ms).toBeLessThanOrEqual(POWER.ipmi.commandTimeoutSeconds * 1000 + 500);
  });

  it('never puts the password in any process argv, only in the environment of ipmitool', async () => {
    const password = bmc('h4').password;
    const seen = { ipmitool: 0, leaks: [] as string[], inEnviron: 0 };
    let calling = true;
    const calls = (async () => {
      try {
        for (let i = 0; i < 3; i++) expect(await power.status('h4', signal())).toBe('on');
      } finally {
        calling = false;
      }
    })();
    while (calling) {
      for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
        const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
        if (cmdline.includes(password)) seen.leaks.push(cmdline.replaceAll('\0', ' '));
        if (!cmdline.startsWith('ipmitool\0') || !cmdline.includes(`${bmc('h4').address}\0`)) continue;
        seen.ipmitool += 1;
        const environ = await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '');
        if (environ.split('\0').includes(`IPMI_PASSWORD=${password}`)) seen.inEnviron += 1;
      }
    }
    await calls;
    expect(seen.leaks).toEqual([]);
    expect(seen.ipmitool).toBeGreaterThan(0); // the scan really saw the calls in flight
    expect(seen.inEnviron).toBeGreaterThan(0);
  });

  it('reads no power where the BMC has no DCMI (ipmi_sim)', async () => {
    expect(await power.powerReadingWatts('h1', signal())).toBeUndefined();
  });

  it('marks a host that does not power on for attention, and refuses to power it off automatically', async () => {
    const attention = new PowerAttention({ logger });
    const recorder = new PowerRecorder();
    const supervised = new SupervisedPower({ driver: power, attention, recorder, logger });
    const { value: e, ms } = await timed(thrown(supervised.powerOn('h5', signal())));
    expect(e.code).toBe('POWER_TIMEOUT');
    expect(e.message).toMatch(/waiting for h5 to report power on \(last seen: power off/);
    expect(ms).toBeGreaterThanOrEqual(POWER.verifyTimeoutSeconds * 1000);
    expect(attention.get('h5')).toMatchObject({ reason: 'PowerOnFailed', errorCode: 'POWER_TIMEOUT' });
    expect(logs.text).toContain('"message":"host needs operator attention"');
    await bmc('h5').setPower('on'); // an operator fixed it by hand
    const refused = await thrown(supervised.powerOff('h5', 'soft', signal()));
    expect(refused.message).toMatch(/refusing to power off h5 automatically/);
    expect(await bmc('h5').power()).toBe('on');
    expect(powerActionsInLast24h(recorder.record, 'h5', Date.now())).toBe(1);
    expect(recorder.record.hosts['h5']?.[0]).toMatchObject({ action: 'on', result: 'POWER_TIMEOUT' });
  });

  it('runs argv hooks on a real power change', async () => {
    const b = await startBmcs([{ name: 'hook', address: ADDRESS(6), port: PORT, initialPower: 'off', onPowerOn: ['touch', hookFile] }]);
    bmcs.push(...b);
    const withHook = ipmitoolPowerFromPolicy({
      power: policy.power,
      hosts: resolveHosts(PolicySchema.parse({ version: 1, hosts: [{ name: 'hook', bmc: { address: ADDRESS(6), port: PORT, user: 'admin', passwordFile: bmc('hook').passwordFile } }] }), '/'),
      logger,
      verifyIntervalMs: VERIFY_INTERVAL_MS,
    });
    await withHook.powerOn('hook', signal());
    await bmc('hook').hooksSettled();
    expect(existsSync(hookFile)).toBe(true);
  });

  it('is what power.driver "ipmitool" picks from the registry', async () => {
    const driver = createPowerDriverRegistry().create(policy.power.driver, { policy, hosts, logger });
    expect(await driver.status('h1', signal())).toBe('on');
  });

  it('never wrote a password to the logs', () => {
    expect(logs.text.length).toBeGreaterThan(0);
    for (const b of bmcs) expect(logs.text).not.toContain(b.password);
    expect(logs.text).not.toContain('not-the-password');
  });
});
