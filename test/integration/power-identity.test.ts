/**
 * The identity check before a power action, with real components: two lab hosts (sshd + libvirtd +
 * QEMU in their own namespaces, each with its own DMI product_uuid), the real VirshHypervisor reading
 * that UUID over SSH, ipmi_sim BMCs answering Get System GUID whose power hooks really stop and boot
 * the lab hosts, the real ipmitool driver, and SupervisedPower comparing the two. A BMC that belongs to
 * another machine (a swapped inventory) is refused before anything reaches it; a BMC without a GUID
 * leaves nothing to compare.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SupervisedPower } from '../../src/actuator/supervised-power.js';
import { resolveHosts } from '../../src/config/resolve.js';
import { PolicySchema } from '../../src/config/schema.js';
import type { PowerDriver } from '../../src/drivers/power/power-driver.js';
import { ipmitoolPowerFromPolicy } from '../../src/drivers/power/ipmitool-power.js';
import type { HostId } from '../../src/model/ids.js';
import { hostsNeedingAttention, PowerAttention } from '../../src/state/power-attention.js';
import { PowerRecorder } from '../../src/state/power-record.js';
import { thrown } from '../helpers/thrown.js';
import { type Bmc, startBmcs } from '../lab/bmc.js';
import { Lab, labProductUuid } from '../lab/lab.js';
import { labDrivers, never, RecordingLogger } from '../lab/lab-drivers.js';
import { sshBanner } from '../helpers/ssh-banner.js';

/** This file's BMCs: their own loopback addresses and port, apart from the other IPMI tests. */
const BMC_PORT = 6233;
const BMC_ADDRESS = (n: number) => `127.0.1.${230 + n}`;
/** What SMBIOS (and a BMC copying it) uses for "no UUID set". */
const UNSET_UUID = '00000000-0000-0000-0000-000000000000';
const VERIFY_INTERVAL_MS = 200;
/** A lab host shuts down in well under a second on an idle machine; both cores may be busy in CI. */
const POWER = { softOffTimeoutSeconds: 10, verifyTimeoutSeconds: 10, bootTimeoutSeconds: 60, ipmi: { cipherSuite: 3, retries: 1, commandTimeoutSeconds: 5 } };

let lab: Lab | undefined;
let bmcs: Bmc[] = [];
let drivers: ReturnType<typeof labDrivers> | undefined;
/** What each host itself reported (its observation's systemUuid), by host name. */
const observed = new Map<HostId, string | undefined>();

const hostName = (n: number): HostId => (lab as Lab).host(n).name;
const bmc = (name: string): Bmc => {
  const found = bmcs.find((b) => b.name === name);
  if (found === undefined) throw new Error(`no BMC ${name}`);
  return found;
};
const signal = () => AbortSignal.timeout(60_000);


/** Every chassis request other than "get" (power, shutdown, reset, ...) and every real power change a BMC saw since `sinceMs`. */
async function commandsSince(b: Bmc, sinceMs: number): Promise<string[]> {
  return (await b.events())
    .filter((e) => e.atMs >= sinceMs)
    .map((e) => (e.kind === 'request' ? `${e.op} ${e.args.join(' ')}` : `power ${e.to} via ${e.via}`))
    .filter((e) => !e.startsWith('get '));
}

/**
 * The real ipmitool driver for an inventory (host name -> BMC), behind a decorator that writes down
 * which port calls reached it, in order: what SupervisedPower asked the BMC before acting.
 */
function inventory(wiring: readonly (readonly [HostId, Bmc])[], logger: RecordingLogger) {
  const policy = PolicySchema.parse({
    version: 1,
    power: POWER,
    hosts: wiring.map(([name, b]) => ({ name, bmc: { address: b.address, port: b.port, user: b.user, passwordFile: b.passwordFile } })),
  });
  const real = ipmitoolPowerFromPolicy({ power: policy.power, hosts: resolveHosts(policy, '/'), logger, verifyIntervalMs: VERIFY_INTERVAL_MS });
  const calls: string[] = [];
  const driver: PowerDriver = {
    status: (h, s) => real.status(h, s),
    powerOn: (h, s) => {
      calls.push(`powerOn ${h}`);
      return real.powerOn(h, s);
    },
    powerOff: (h, mode, s, options) => {
      calls.push(`powerOff ${h} ${mode}`);
      return real.powerOff(h, mode, s, options);
    },
    systemUuid: async (h, s) => {
      const uuid = await real.systemUuid(h, s);
      calls.push(`systemUuid ${h} -> ${uuid ?? 'none'}`);
      return uuid;
    },
  };
  return { driver, calls };
}

/** SupervisedPower as the daemon builds it, with the host's UUID taken from what the host itself reported. */
function supervised(driver: PowerDriver, logger: RecordingLogger) {
  const attention = new PowerAttention({ logger });
  const recorder = new PowerRecorder();
  const power = new SupervisedPower({ driver, attention, recorder, logger, hostSystemUuid: (h) => observed.get(h) });
  return { power, attention, recorder };
}

beforeAll(async () => {
  lab = await Lab.start({ hosts: 2 });
  const owned = lab;
  bmcs = await startBmcs([
    // Each lab host's own BMC: it reports the host's product_uuid, and its power hooks stop and boot that host.
    { name: 'bmc-h1', address: BMC_ADDRESS(1), port: BMC_PORT, systemUuid: labProductUuid(1), onPowerOff: () => owned.powerOff(1), onPowerOn: () => owned.powerOn(1) },
    { name: 'bmc-h2', address: BMC_ADDRESS(2), port: BMC_PORT, systemUuid: labProductUuid(2), onPowerOff: () => owned.powerOff(2), onPowerOn: () => owned.powerOn(2) },
    // h2's power again, through a BMC whose GUID is not set (all zeros).
    { name: 'bmc-h2-no-guid', address: BMC_ADDRESS(3), port: BMC_PORT, systemUuid: UNSET_UUID, onPowerOff: () => owned.powerOff(2), onPowerOn: () => owned.powerOn(2) },
  ]);
  drivers = labDrivers(lab);
  for (const n of [1, 2]) observed.set(hostName(n), (await drivers.hypervisor.inspect(hostName(n), never())).systemUuid);
});

afterAll(async () => {
  await drivers?.runner.close();
  await Promise.all(bmcs.map((b) => b.stop()));
  await lab?.down();
});

describe('the BMC identity check before a power action (real lab hosts, ipmi_sim, ipmitool)', () => {
  it('a swapped inventory: powering off h2 through the BMC that is really h1’s is refused, and nothing reaches that BMC', async () => {
    // h1 runs a guest: the machine a mis-wired power-off of "h2" would really stop.
    await (lab as Lab).startGuest(1, { name: 'web1', memoryMiB: 128 });
    const logger = new RecordingLogger();
    const { driver, calls } = inventory(
      [
        [hostName(1), bmc('bmc-h2')],
        [hostName(2), bmc('bmc-h1')],
      ],
      logger,
    );
    const { power, attention, recorder } = supervised(driver, logger);
    const sinceMs = Date.now();

    const e = await thrown(power.powerOff(hostName(2), 'soft', signal()));

    expect(observed.get(hostName(2))).toBe(labProductUuid(2));
    expect(e.code).toBe('IDENTITY_MISMATCH');
    expect(e.message).toContain(`its BMC reports system UUID ${labProductUuid(1)}, but ${hostName(2)} itself reports ${labProductUuid(2)}`);
    expect(e.details).toMatchObject({ host: hostName(2), bmcSystemUuid: labProductUuid(1), hostSystemUuid: labProductUuid(2) });
    expect(hostsNeedingAttention(attention.state)).toEqual([hostName(2)]);
    expect(attention.get(hostName(2))).toMatchObject({ reason: 'IdentityMismatch', errorCode: 'IDENTITY_MISMATCH' });
    // The BMC was asked who it is, and nothing else: no power command, no power change, nothing recorded.
    expect(calls).toEqual([`systemUuid ${hostName(2)} -> ${labProductUuid(1)}`]);
    await bmc('bmc-h1').hooksSettled();
    expect(await commandsSince(bmc('bmc-h1'), sinceMs)).toEqual([]);
    expect(await commandsSince(bmc('bmc-h2'), sinceMs)).toEqual([]);
    expect(await bmc('bmc-h1').power()).toBe('on');
    expect(recorder.record.hosts).toEqual({});
    // h1 (the machine behind that BMC) still runs its guest and answers on ssh; so does h2.
    expect((await (lab as Lab).virsh(1, ['domstate', 'web1'])).trim()).toBe('running');
    expect(await sshBanner((lab as Lab).host(1).address)).toMatch(/^SSH-2\.0-/);
    expect(await sshBanner((lab as Lab).host(2).address)).toMatch(/^SSH-2\.0-/);
    // And it stays refused: the host needs an operator now.
    const again = await thrown(power.powerOff(hostName(2), 'soft', signal()));
    expect(again.code).toBe('POWER_FAILED');
    expect(again.message).toContain('IdentityMismatch');
    await (lab as Lab).virsh(1, ['destroy', 'web1']);
  });

  it('the host’s own BMC: the UUIDs agree and the soft power-off goes through; the lab host really stops', async () => {
    const logger = new RecordingLogger();
    const { driver, calls } = inventory(
      [
        [hostName(1), bmc('bmc-h1')],
        [hostName(2), bmc('bmc-h2')],
      ],
      logger,
    );
    const { power, attention, recorder } = supervised(driver, logger);
    const sinceMs = Date.now();

    await power.powerOff(hostName(1), 'soft', signal());

    // What the host itself reported is what its BMC reports: compared first (equal), then sent.
    expect(observed.get(hostName(1))).toBe(labProductUuid(1));
    expect(bmc('bmc-h1').systemUuid).toBe(observed.get(hostName(1)));
    expect(calls).toEqual([`systemUuid ${hostName(1)} -> ${observed.get(hostName(1))}`, `powerOff ${hostName(1)} soft`]);
    await bmc('bmc-h1').hooksSettled();
    expect(await commandsSince(bmc('bmc-h1'), sinceMs)).toEqual(['set shutdown 1', 'power off via soft']);
    expect((lab as Lab).host(1).initPid).toBeUndefined();
    expect(await sshBanner((lab as Lab).host(1).address)).not.toMatch(/^SSH-/);
    expect(await driver.status(hostName(1), signal())).toBe('off');
    expect(hostsNeedingAttention(attention.state)).toEqual([]);
    expect(recorder.record.hosts[hostName(1)]).toMatchObject([{ action: 'off', mode: 'soft', result: 'ok' }]);
    // h2, on the other BMC, untouched.
    expect(await commandsSince(bmc('bmc-h2'), sinceMs)).toEqual([]);
    expect(await sshBanner((lab as Lab).host(2).address)).toMatch(/^SSH-2\.0-/);
  });

  it('a BMC without a GUID: nothing to compare, the power-off goes on', async () => {
    const logger = new RecordingLogger();
    const { driver, calls } = inventory([[hostName(2), bmc('bmc-h2-no-guid')]], logger);
    const { power, attention } = supervised(driver, logger);
    const sinceMs = Date.now();
    expect(observed.get(hostName(2))).toBe(labProductUuid(2)); // the host does report one

    await power.powerOff(hostName(2), 'soft', signal());

    // Asked, answered "none" (all zeros), and the power-off went on.
    expect(calls).toEqual([`systemUuid ${hostName(2)} -> none`, `powerOff ${hostName(2)} soft`]);
    expect(logger.count('the bmc reports no system guid (all zeros or all ones)', { host: hostName(2) })).toBe(1);
    await bmc('bmc-h2-no-guid').hooksSettled();
    expect(await commandsSince(bmc('bmc-h2-no-guid'), sinceMs)).toEqual(['set shutdown 1', 'power off via soft']);
    expect((lab as Lab).host(2).initPid).toBeUndefined();
    expect(await sshBanner((lab as Lab).host(2).address)).not.toMatch(/^SSH-/);
    expect(hostsNeedingAttention(attention.state)).toEqual([]);
  });
});
