/**
 * IPMI power on a real lab host: the BMC's power hooks stop and boot lab host h1 (its own network
 * namespace with sshd and libvirtd, test/lab/lab.ts), so an IPMI power-off really stops the host and
 * an IPMI power-on brings its sshd back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveHosts } from '../../src/config/resolve.js';
import { PolicySchema } from '../../src/config/schema.js';
import { type IpmitoolPower, ipmitoolPowerFromPolicy } from '../../src/drivers/power/ipmitool-power.js';
import { waitUntil } from '../../src/util/wait-until.js';
import { silentLogger } from '../../src/observability/logger.js';
import { type Bmc, startBmc } from '../lab/bmc.js';
import { Lab } from '../lab/lab.js';
import { sshBanner } from '../helpers/ssh-banner.js';

/** This file's BMC: its own loopback address and port, apart from ipmi-power.test.ts. */
const BMC_ADDRESS = '127.0.1.221';
const BMC_PORT = 6232;
const PROBE_INTERVAL_MS = 200;
const MS_PER_SECOND = 1000;
/** A lab host boots in about 0.5 s on an idle machine; both cores may be busy in CI. */
const POWER = { softOffTimeoutSeconds: 5, verifyTimeoutSeconds: 5, bootTimeoutSeconds: 60, ipmi: { cipherSuite: 3, retries: 1, commandTimeoutSeconds: 3 } };

let lab: Lab | undefined;
let bmc: Bmc | undefined;
let power: IpmitoolPower;
let hostName = '';
let hostAddress = '';


beforeAll(async () => {
  lab = await Lab.start({ hosts: 1 });
  const host = lab.host(1);
  hostName = host.name;
  hostAddress = host.address;
  const owned = lab;
  bmc = await startBmc({
    name: 'lab-h1',
    address: BMC_ADDRESS,
    port: BMC_PORT,
    // what ../shared/lab's on-power-0 / on-power-1 hooks do with stop-host.sh / start-host.sh
    onPowerOff: () => owned.powerOff(host.n),
    onPowerOn: () => owned.powerOn(host.n),
  });
  const policy = PolicySchema.parse({
    version: 1,
    power: POWER,
    hosts: [{ name: hostName, bmc: { address: bmc.address, port: bmc.port, user: bmc.user, passwordFile: bmc.passwordFile } }],
  });
  power = ipmitoolPowerFromPolicy({ power: policy.power, hosts: resolveHosts(policy, '/'), logger: silentLogger, verifyIntervalMs: PROBE_INTERVAL_MS });
});

afterAll(async () => {
  await bmc?.stop();
  await lab?.down();
});

describe('IPMI power on a lab host', () => {
  it('starts with the host on and its sshd answering', async () => {
    expect(await power.status(hostName, AbortSignal.timeout(30_000))).toBe('on');
    expect(await sshBanner(hostAddress)).toMatch(/^SSH-2\.0-/);
  });

  it('powers the host off: its sshd and libvirtd are gone', async () => {
    await power.powerOff(hostName, 'soft', AbortSignal.timeout(60_000));
    await bmc?.hooksSettled();
    expect(await sshBanner(hostAddress)).not.toMatch(/^SSH-/);
    expect(lab?.host(1).initPid).toBeUndefined();
    expect(await power.status(hostName, AbortSignal.timeout(30_000))).toBe('off');
  });

  it('powers the host on: its sshd comes back within the boot timeout', async () => {
    const startMs = Date.now();
    await power.powerOn(hostName, AbortSignal.timeout(60_000));
    const banner = await waitUntil({
      what: `${hostName} to answer on ssh after power-on`,
      timeoutMs: POWER.bootTimeoutSeconds * MS_PER_SECOND,
      intervalMs: PROBE_INTERVAL_MS,
      signal: AbortSignal.timeout(2 * POWER.bootTimeoutSeconds * MS_PER_SECOND),
      timeoutCode: 'POWER_TIMEOUT',
      probe: async () => {
        const said = await sshBanner(hostAddress);
        return said.startsWith('SSH-') ? { done: true, value: said } : { done: false, seen: said };
      },
    });
    expect(banner).toMatch(/^SSH-2\.0-OpenSSH/);
    expect(Date.now() - startMs).toBeLessThan(POWER.bootTimeoutSeconds * MS_PER_SECOND);
    await bmc?.hooksSettled();
    expect(await lab?.exec(1, ['hostname'])).toContain(hostName);
  });
});
