/**
 * Redfish power on a real lab host: the lab Redfish service's power hooks stop and boot lab host h1
 * (its own network namespace with sshd and libvirtd, test/lab/lab.ts), so a Redfish GracefulShutdown or
 * ForceOff really stops the host and On brings its sshd back. And the identity check the daemon makes
 * before a power action (SupervisedPower, with the host's own DMI UUID read over SSH by the real virsh
 * driver) refuses a Redfish BMC whose ComputerSystem UUID is another machine's: nothing reaches it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SupervisedPower } from '../../src/actuator/supervised-power.js';
import type { CheckReportJson } from '../../src/cli/check-report.js';
import { runCli } from '../../src/cli/cli.js';
import { resolveHosts } from '../../src/config/resolve.js';
import { PolicySchema } from '../../src/config/schema.js';
import { type RedfishPower, redfishPowerFromPolicy } from '../../src/drivers/power/redfish-power.js';
import { PowerAttention } from '../../src/state/power-attention.js';
import { PowerRecorder } from '../../src/state/power-record.js';
import { waitUntil } from '../../src/util/wait-until.js';
import { captureIo } from '../helpers/capture.js';
import { sshBanner } from '../helpers/ssh-banner.js';
import { thrown } from '../helpers/thrown.js';
import { Lab, labProductUuid } from '../lab/lab.js';
import { labDrivers, never, RecordingLogger } from '../lab/lab-drivers.js';
import { type RedfishBmc, startRedfishBmc } from '../lab/redfish-bmc.js';
import { makeTestCertificates } from '../lab/test-certificates.js';

const VERIFY_INTERVAL_MS = 100;
const PROBE_INTERVAL_MS = 200;
const MS_PER_SECOND = 1000;
/** A lab host stops and boots in about a second on an idle machine; both cores may be busy in CI. */
const POWER = { driver: 'redfish', softOffTimeoutSeconds: 10, verifyTimeoutSeconds: 30, bootTimeoutSeconds: 60, redfish: { requestTimeoutSeconds: 5 } };

let lab: Lab | undefined;
let dir = '';
let own: RedfishBmc | undefined;
let stranger: RedfishBmc | undefined;
let drivers: ReturnType<typeof labDrivers> | undefined;
let power: RedfishPower | undefined;
let hostName = '';
let hostAddress = '';
let hostUuid: string | undefined;

function driverFor(b: RedfishBmc, caFile: string, logger: RecordingLogger): RedfishPower {
  const policy = PolicySchema.parse({
    version: 1,
    power: POWER,
    hosts: [{ name: hostName, bmc: { address: b.address, port: b.port, user: b.user, passwordFile: b.passwordFile, redfish: { caFile } } }],
  });
  return redfishPowerFromPolicy({ power: policy.power, hosts: resolveHosts(policy, '/'), logger, verifyIntervalMs: VERIFY_INTERVAL_MS });
}

let caFile = '';

beforeAll(async () => {
  lab = await Lab.start({ hosts: 1 });
  const owned = lab;
  const host = lab.host(1);
  hostName = host.name;
  hostAddress = host.address;
  dir = await mkdtemp(join(tmpdir(), 'redfish-lab-'));
  const certs = await makeTestCertificates(dir, 'lab');
  caFile = certs.caFile;
  const hooks = { onPowerOff: () => owned.powerOff(host.n), onPowerOn: () => owned.powerOn(host.n) };
  own = await startRedfishBmc({ name: 'lab-h1', cert: certs.cert, key: certs.key, systemUuid: labProductUuid(1), ...hooks });
  // h1's power again, behind a BMC that says it is another machine (a swapped inventory).
  stranger = await startRedfishBmc({ name: 'lab-h1-swapped', cert: certs.cert, key: certs.key, systemUuid: labProductUuid(2), ...hooks });
  power = driverFor(own, caFile, new RecordingLogger());
  drivers = labDrivers(lab);
  hostUuid = (await drivers.hypervisor.inspect(hostName, never())).systemUuid;
});

afterAll(async () => {
  await power?.close();
  await drivers?.runner.close();
  await own?.stop();
  await stranger?.stop();
  await lab?.down();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

const signal = () => AbortSignal.timeout(90_000);

describe('Redfish power on a lab host', () => {
  it('the BMC is the host’s: the ComputerSystem UUID is what the host itself reports', async () => {
    expect(hostUuid).toBe(labProductUuid(1));
    expect(await power?.systemUuid(hostName, signal())).toBe(hostUuid);
    expect(await power?.status(hostName, signal())).toBe('on');
    expect(await sshBanner(hostAddress)).toMatch(/^SSH-2\.0-/);
  });

  it('a BMC whose UUID is another machine’s: the identity check refuses the power-off, nothing reaches the BMC', async () => {
    const logger = new RecordingLogger();
    const driver = driverFor(stranger as RedfishBmc, caFile, logger);
    const attention = new PowerAttention({ logger });
    const supervised = new SupervisedPower({ driver, attention, recorder: new PowerRecorder(), logger, hostSystemUuid: () => hostUuid });
    const e = await thrown(supervised.powerOff(hostName, 'soft', signal()));
    expect(e.code).toBe('IDENTITY_MISMATCH');
    expect(e.message).toContain(`its BMC reports system UUID ${labProductUuid(2)}, but ${hostName} itself reports ${labProductUuid(1)}`);
    expect(stranger?.resets()).toEqual([]);
    expect(stranger?.requests().every((r) => r.method === 'GET' || r.path.endsWith('/Sessions'))).toBe(true);
    expect(await sshBanner(hostAddress)).toMatch(/^SSH-2\.0-/);
    await driver.close();
  });

  it('consolidator check reaches the host through its Redfish path (power, watts, identity), and logs the session out', async () => {
    const l = lab as Lab;
    const policyFor = async (b: RedfishBmc, name: string) => {
      const file = join(dir, `${name}.yaml`);
      await writeFile(
        file,
        [
          'version: 1',
          'power: { verifyTimeoutSeconds: 10, redfish: { requestTimeoutSeconds: 5 } }',
          'hosts:',
          `  - name: ${hostName}`,
          `    ssh: { address: ${hostAddress}, user: root, keyFile: ${l.keyFile}, knownHostsFile: ${l.knownHostsFile} }`,
          `    bmc: { driver: redfish, address: ${b.address}, port: ${b.port}, user: ${b.user}, passwordFile: ${b.passwordFile}, redfish: { caFile: ${caFile} } }`,
          '',
        ].join('\n'),
      );
      return file;
    };
    const run = async (file: string) => {
      const io = captureIo();
      const code = await runCli(['check', '--policy', file, '--json'], io);
      return { code, doc: JSON.parse(io.stdout.text) as CheckReportJson, text: io.stdout.text + io.stderr.text };
    };
    const good = await run(await policyFor(own as RedfishBmc, 'check-good'));
    const bmcResults = good.doc.results.filter((r) => r.check.startsWith('bmc-'));
    expect(bmcResults.map((r) => [r.check, r.path, r.result])).toEqual([
      ['bmc-power', 'redfish', 'pass'],
      ['bmc-reading', 'redfish', 'pass'],
      ['bmc-identity', 'redfish', 'pass'],
    ]);
    expect(good.code).toBe(0);
    expect(good.text).not.toContain((own as RedfishBmc).password);
    const swapped = await run(await policyFor(stranger as RedfishBmc, 'check-swapped'));
    expect(swapped.code).toBe(1);
    expect(swapped.doc.results.find((r) => r.check === 'bmc-identity')).toMatchObject({ path: 'redfish', result: 'fail' });
    // Both checks logged their sessions out; the stranger was only read.
    expect(stranger?.sessions()).toEqual([]);
    expect(stranger?.resets()).toEqual([]);
    expect(own?.sessions()).toHaveLength(1); // this file's own driver's session, still in use
  });

  it('GracefulShutdown really stops the host: its sshd and libvirtd are gone', async () => {
    const t = Date.now();
    await power?.powerOff(hostName, 'soft', signal());
    const ms = Date.now() - t;
    await own?.hooksSettled();
    expect(own?.resets()).toEqual(['GracefulShutdown']);
    expect(lab?.host(1).initPid).toBeUndefined();
    expect(await sshBanner(hostAddress)).not.toMatch(/^SSH-/);
    expect(await power?.status(hostName, signal())).toBe('off');
    console.log(`redfish lab figures: soft off (GracefulShutdown -> PowerState Off, lab host stopped) ${ms} ms`);
  });

  it('On boots the host: its sshd answers again within the boot timeout', async () => {
    const t = Date.now();
    await power?.powerOn(hostName, signal());
    const onMs = Date.now() - t;
    const banner = await waitUntil({
      what: `${hostName} to answer on ssh after power-on`,
      timeoutMs: POWER.bootTimeoutSeconds * MS_PER_SECOND,
      intervalMs: PROBE_INTERVAL_MS,
      signal: signal(),
      timeoutCode: 'POWER_TIMEOUT',
      probe: async () => {
        const said = await sshBanner(hostAddress);
        return said.startsWith('SSH-') ? { done: true, value: said } : { done: false, seen: said };
      },
    });
    const sshMs = Date.now() - t;
    expect(banner).toMatch(/^SSH-2\.0-OpenSSH/);
    expect(own?.resets()).toEqual(['GracefulShutdown', 'On']);
    expect(await lab?.exec(1, ['hostname'])).toContain(hostName);
    console.log(`redfish lab figures: on (On -> PowerState On) ${onMs} ms, to an ssh banner ${sshMs} ms`);
  });

  it('ForceOff stops it at once; the session is logged out on close', async () => {
    const t = Date.now();
    await power?.powerOff(hostName, 'hard', signal());
    const ms = Date.now() - t;
    expect(own?.resets().at(-1)).toBe('ForceOff');
    expect(lab?.host(1).initPid).toBeUndefined();
    expect(own?.sessions()).toHaveLength(1);
    await power?.close();
    expect(own?.sessions()).toEqual([]);
    console.log(`redfish lab figures: hard off (ForceOff -> PowerState Off) ${ms} ms`);
  });
});
