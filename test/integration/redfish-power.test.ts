/**
 * The Redfish power driver against the lab's Redfish service (test/lab/redfish-bmc.ts) over real
 * HTTPS on loopback, with a CA and certificates openssl made for this run: discovery, sessions,
 * AllowableValues, read-back, and the faults (401 mid-session, a BMC that accepts On and does nothing,
 * a slow BMC, a certificate that is not the trusted one, a wrong password).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildDrivers } from '../../src/cli/build-drivers.js';
import { resolveHosts } from '../../src/config/resolve.js';
import { PolicySchema } from '../../src/config/schema.js';
import { type RedfishPower, redfishPowerFromPolicy } from '../../src/drivers/power/redfish-power.js';
import { RecordingLogger } from '../lab/lab-drivers.js';
import { type RedfishBmc, type RedfishBmcOptions, startRedfishBmc } from '../lab/redfish-bmc.js';
import { makeTestCertificates, type TestCertificates } from '../lab/test-certificates.js';
import { thrown } from '../helpers/thrown.js';

const HOST = 'rf1.lab';
const UUID = 'A1B2C3D4-0000-4000-8000-00000000F001';
const VERIFY_INTERVAL_MS = 50;
const POWER = { softOffTimeoutSeconds: 2, verifyTimeoutSeconds: 2, redfish: { requestTimeoutSeconds: 2 } };

let dir = '';
let certs: TestCertificates;
let otherCerts: TestCertificates;
const started: RedfishBmc[] = [];
const drivers: RedfishPower[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'redfish-power-'));
  certs = await makeTestCertificates(dir, 'trusted');
  otherCerts = await makeTestCertificates(dir, 'other');
});

afterEach(async () => {
  await Promise.all(drivers.splice(0).map((d) => d.close()));
  await Promise.all(started.splice(0).map((b) => b.stop()));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function bmc(options: Partial<RedfishBmcOptions> = {}): Promise<RedfishBmc> {
  const b = await startRedfishBmc({ name: 'rf1', cert: certs.cert, key: certs.key, systemUuid: UUID, ...options });
  started.push(b);
  return b;
}

type Tls = { caFile?: string; certificateSha256?: string; insecureSkipVerify?: boolean };

function driver(b: RedfishBmc, tls: Tls = { caFile: certs.caFile }, overrides: { passwordFile?: string; power?: object } = {}) {
  const logger = new RecordingLogger();
  const policy = PolicySchema.parse({
    version: 1,
    power: { driver: 'redfish', ...POWER, ...overrides.power },
    hosts: [{ name: HOST, bmc: { address: b.address, port: b.port, user: b.user, passwordFile: overrides.passwordFile ?? b.passwordFile, redfish: tls } }],
  });
  const power = redfishPowerFromPolicy({ power: policy.power, hosts: resolveHosts(policy, '/'), logger, verifyIntervalMs: VERIFY_INTERVAL_MS });
  drivers.push(power);
  return { power, logger };
}

const signal = () => AbortSignal.timeout(30_000);
const logins = (b: RedfishBmc) => b.requests().filter((r) => r.method === 'POST' && r.path.endsWith('/SessionService/Sessions')).length;

describe('Redfish power against the lab Redfish service', () => {
  it('discovers System.Embedded.1, reads PowerState, the UUID (normalised) and the watts, in one session', async () => {
    const b = await bmc();
    const { power } = driver(b);
    expect(await power.status(HOST, signal())).toBe('on');
    expect(await power.systemUuid(HOST, signal())).toBe(UUID.toLowerCase());
    expect(await power.powerReadingWatts(HOST, signal())).toBe(180);
    expect(b.requests().some((r) => r.path === '/redfish/v1/Systems/System.Embedded.1')).toBe(true);
    expect(b.requests().some((r) => r.path === '/redfish/v1/Systems/1')).toBe(false);
    expect(logins(b)).toBe(1);
    expect(b.requests().filter((r) => r.path !== '/redfish/v1' && !r.path.endsWith('/Sessions')).every((r) => r.auth === 'session')).toBe(true);
  });

  it('soft power-off is GracefulShutdown read back to Off; power-on is On read back to On; the session is deleted on close', async () => {
    const b = await bmc();
    const { power } = driver(b);
    let t = Date.now();
    await power.powerOff(HOST, 'soft', signal());
    const softOffMs = Date.now() - t;
    expect(b.power()).toBe('Off');
    t = Date.now();
    await power.powerOn(HOST, signal());
    const onMs = Date.now() - t;
    expect(b.power()).toBe('On');
    expect(b.resets()).toEqual(['GracefulShutdown', 'On']);
    // Already on: nothing is sent (PushPowerButton would toggle it).
    await power.powerOn(HOST, signal());
    expect(b.resets()).toEqual(['GracefulShutdown', 'On']);
    expect(b.sessions()).toHaveLength(1);
    await power.close();
    expect(b.sessions()).toEqual([]);
    expect(b.requests().at(-1)).toMatchObject({ method: 'DELETE', status: 204 });
    console.log(`redfish figures: soft off ${softOffMs} ms, on ${onMs} ms (test BMC, no lab host)`);
  });

  it('a host that ignores GracefulShutdown: ForceOff after the soft-off timeout, once beforeHardOff passed; a throwing guard sends nothing', async () => {
    const b = await bmc({ softOff: 'ignore' });
    const { power } = driver(b);
    const refused = new Error('a domain appeared');
    const e = await power.powerOff(HOST, 'soft', signal(), { beforeHardOff: () => Promise.reject(refused) }).catch((x: unknown) => x);
    expect(e).toBe(refused);
    expect(b.resets()).toEqual(['GracefulShutdown']);
    expect(b.power()).toBe('On');
    let guarded = 0;
    await power.powerOff(HOST, 'soft', signal(), {
      beforeHardOff: async () => {
        guarded += 1;
      },
    });
    expect(guarded).toBe(1);
    expect(b.resets()).toEqual(['GracefulShutdown', 'GracefulShutdown', 'ForceOff']);
    expect(b.power()).toBe('Off');
  });

  it('honours AllowableValues: PushPowerButton where On is not offered, no GracefulShutdown -> ForceOff, values from an ActionInfo', async () => {
    const b = await bmc({ resetTypes: ['ForceOff', 'PushPowerButton'], allowableVia: 'actionInfo' });
    const { power, logger } = driver(b);
    let guarded = 0;
    await power.powerOff(HOST, 'soft', signal(), {
      beforeHardOff: async () => {
        guarded += 1;
      },
    });
    expect(guarded).toBe(1);
    expect(logger.count('the bmc offers no GracefulShutdown, powering off hard')).toBe(1);
    await power.powerOn(HOST, signal());
    expect(b.resets()).toEqual(['ForceOff', 'PushPowerButton']);
    expect(b.requests().some((r) => r.path.endsWith('/ResetActionInfo'))).toBe(true);
    const e = await thrown(power.forcePowerOn(HOST, signal()).then(() => power.powerOff(HOST, 'hard', signal())).then(() => power.forcePowerOn(HOST, signal())));
    expect(e.code).toBe('POWER_FAILED');
    expect(e.message).toContain('offers none of ForceOn, PowerCycle (ResetType@Redfish.AllowableValues: ForceOff, PushPowerButton)');
  });

  it('401 mid-session (token expired): logs in again once and the action succeeds', async () => {
    const b = await bmc();
    const { power, logger } = driver(b);
    expect(await power.status(HOST, signal())).toBe('on');
    b.expireSessions();
    await power.powerOff(HOST, 'hard', signal());
    expect(b.power()).toBe('Off');
    expect(logins(b)).toBe(2);
    expect(b.requests().filter((r) => r.status === 401)).toHaveLength(1);
    expect(logger.count('redfish session no longer accepted, logging in again')).toBe(1);
  });

  it('a BMC that accepts On and does nothing: powerOn is POWER_TIMEOUT; forcePowerOn (ForceOn, else PowerCycle) then works', async () => {
    const b = await bmc({ initialPower: 'off', powerOn: 'ignore' });
    const { power } = driver(b);
    const e = await thrown(power.powerOn(HOST, signal()));
    expect(e.code).toBe('POWER_TIMEOUT');
    expect(e.message).toContain(`waiting for ${HOST} to report PowerState On (last seen: PowerState Off`);
    await power.forcePowerOn(HOST, signal());
    expect(b.power()).toBe('On');
    expect(b.resets()).toEqual(['On', 'ForceOn']);

    const noForceOn = await bmc({ initialPower: 'off', powerOn: 'ignore', resetTypes: ['On', 'ForceOff', 'GracefulShutdown', 'PowerCycle'] });
    const second = driver(noForceOn).power;
    await second.forcePowerOn(HOST, signal());
    expect(noForceOn.resets()).toEqual(['PowerCycle']);
    expect(noForceOn.power()).toBe('On');
  });

  it('a slow BMC: the request times out with a clear error, no hang', async () => {
    const b = await bmc({ delayMs: 4_000 });
    const { power } = driver(b, { caFile: certs.caFile }, { power: { redfish: { requestTimeoutSeconds: 1 } } });
    const t = Date.now();
    const e = await thrown(power.status(HOST, signal()));
    expect(Date.now() - t).toBeLessThan(2_500);
    expect(e.code).toBe('BMC_UNREACHABLE');
    expect(e.message).toContain(`the BMC of ${HOST} (https://127.0.0.1:${b.port}) did not answer GET /redfish/v1/ within 1 s`);
  });

  it('a BMC that goes slow after accepting ForceOff: the read-back ends at its deadline (POWER_TIMEOUT, no answer), no hang', async () => {
    const later: { bmc?: RedfishBmc } = {};
    const slow = await bmc({ onPowerOff: () => later.bmc?.configure({ delayMs: 4_000 }) });
    later.bmc = slow;
    const { power } = driver(slow, { caFile: certs.caFile }, { power: { verifyTimeoutSeconds: 2, redfish: { requestTimeoutSeconds: 1 } } });
    const t = Date.now();
    const e = await thrown(power.powerOff(HOST, 'hard', signal()));
    expect(Date.now() - t).toBeLessThan(4_500);
    expect(e.code).toBe('POWER_TIMEOUT');
    expect(e.message).toContain(`waiting for ${HOST} to report PowerState Off (last seen: no answer from the BMC`);
    expect(e.cause).toMatchObject({ code: 'BMC_UNREACHABLE' });
    expect(slow.resets()).toEqual(['ForceOff']);
  });

  it('a certificate the CA did not sign, or not the pinned one: refused with a clear error, nothing sent', async () => {
    const b = await bmc({ cert: otherCerts.cert, key: otherCerts.key });
    const wrongCa = await thrown(driver(b, { caFile: certs.caFile }).power.status(HOST, signal()));
    expect(wrongCa.code).toBe('BMC_AUTH');
    expect(wrongCa.details['failure']).toBe('certificate');
    expect(wrongCa.message).toContain('is not trusted by bmc.redfish.caFile');
    expect(wrongCa.message).toContain('nothing was sent');
    const wrongPin = await thrown(driver(b, { certificateSha256: certs.sha256 }).power.status(HOST, signal()));
    expect(wrongPin.code).toBe('BMC_AUTH');
    expect(wrongPin.message).toContain(`not the pinned ${certs.sha256.replaceAll(':', '').toLowerCase()}`);
    // A CA that trusts it, but a pin that does not match: the pin is checked too.
    const caButPin = await thrown(driver(b, { caFile: otherCerts.caFile, certificateSha256: certs.sha256 }).power.status(HOST, signal()));
    expect(caButPin.code).toBe('BMC_AUTH');
    expect(b.requests()).toEqual([]);
    // The right pin (a self-signed BMC's way), or the right CA: accepted.
    expect(await driver(b, { certificateSha256: otherCerts.sha256 }).power.status(HOST, signal())).toBe('on');
    expect(await driver(b, { caFile: otherCerts.caFile }).power.status(HOST, signal())).toBe('on');
  });

  it('insecureSkipVerify: works, and warns at every start', async () => {
    const b = await bmc({ cert: otherCerts.cert, key: otherCerts.key });
    const { power, logger } = driver(b, { insecureSkipVerify: true });
    expect(logger.count('redfish certificate verification is disabled for this bmc (bmc.redfish.insecureSkipVerify): its password can be read on the path', { host: HOST })).toBe(1);
    expect(await power.status(HOST, signal())).toBe('on');
    expect(driver(b, { insecureSkipVerify: true }).logger.lines.filter((l) => l.level === 'warn')).toHaveLength(1);
  });

  it('a service without a SessionService: basic auth', async () => {
    const b = await bmc({ sessions: false });
    const { power, logger } = driver(b);
    await power.powerOff(HOST, 'soft', signal());
    expect(b.power()).toBe('Off');
    expect(logger.count('redfish service has no session service, using basic auth')).toBe(1);
    expect(b.requests().filter((r) => r.path !== '/redfish/v1').every((r) => r.auth === 'basic')).toBe(true);
  });

  it('a wrong password is BMC_AUTH, and the password is in no error, detail or log line', async () => {
    const b = await bmc();
    const wrongFile = join(dir, 'wrong-password');
    const wrong = 'Wr0ng-s3cret-value';
    await writeFile(wrongFile, `${wrong}\n`, { mode: 0o600 });
    const { power, logger } = driver(b, { caFile: certs.caFile }, { passwordFile: wrongFile });
    const e = await thrown(power.powerOn(HOST, signal()));
    expect(e.code).toBe('BMC_AUTH');
    expect(e.message).toContain(`refused user "${b.user}"`);
    const everything = JSON.stringify([e.message, e.toJSON(), logger.lines]);
    expect(everything).not.toContain(wrong);
    // And with the right one, after a soft-off: no line carries it either.
    const ok = driver(b);
    await ok.power.powerOff(HOST, 'soft', signal());
    await ok.power.close();
    expect(JSON.stringify(ok.logger.lines)).not.toContain(b.password);
  });

  it('the daemon’s driver bundle (buildDrivers, a mixed fleet): its close() logs the Redfish session out', async () => {
    const b = await bmc();
    const policy = PolicySchema.parse({
      version: 1,
      power: { ...POWER, driver: 'ipmitool' },
      hosts: [
        { name: HOST, bmc: { driver: 'redfish', address: b.address, port: b.port, user: b.user, passwordFile: b.passwordFile, redfish: { caFile: certs.caFile } } },
        { name: 'ipmi1.lab', bmc: { address: '127.0.1.250', user: 'admin', passwordFile: b.passwordFile } },
      ],
    });
    const bundle = buildDrivers({ file: 'policy.yaml', policy, hosts: resolveHosts(policy, '/'), warnings: [] }, new RecordingLogger());
    expect(await bundle.power.status(HOST, signal())).toBe('on');
    expect(b.sessions()).toHaveLength(1);
    await bundle.close();
    expect(b.sessions()).toEqual([]);
  });
});
