/**
 * The power chain on a real lab host: ipmitool (ipmi_sim) first, Wake-on-LAN second. The BMC is set
 * to accept "chassis power on" and do nothing (a BMC that lies); the chain re-sends, gives up on
 * IPMI, sends the magic packet to the lab's WoL listener on loopback, which boots lab host h1 (its
 * own network namespace with sshd and libvirtd) the way a NIC would, and the BMC, which now reports
 * the host on, confirms it. Measured: from the power-on to the host's sshd answering.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPowerChain } from '../../src/cli/build-drivers.js';
import type { LoadedPolicy } from '../../src/config/load.js';
import { resolveHosts } from '../../src/config/resolve.js';
import { PolicySchema } from '../../src/config/schema.js';
import type { PowerAttempt, PowerChain } from '../../src/drivers/power/power-chain.js';
import { silentLogger } from '../../src/observability/logger.js';
import { PowerAttemptMetrics } from '../../src/observability/power-attempt-metrics.js';
import { waitUntil } from '../../src/util/wait-until.js';
import { type Bmc, startBmc } from '../lab/bmc.js';
import { Lab, labProductUuid } from '../lab/lab.js';
import { startWolListener, type WolListener } from '../lab/wol-listener.js';
import { labDrivers } from '../lab/lab-drivers.js';
import { SupervisedPower } from '../../src/actuator/supervised-power.js';
import { waitForHypervisor } from '../../src/actuator/wait-for-hypervisor.js';
import { PowerAttention } from '../../src/state/power-attention.js';
import { PowerRecorder } from '../../src/state/power-record.js';
import { sshBanner } from '../helpers/ssh-banner.js';

/** This file's BMC and WoL listener: their own loopback address, apart from the other IPMI tests. */
const BMC_ADDRESS = '127.0.1.225';
const BMC_PORT = 6236;
const WOL_ADDRESS = '127.0.1.225';
const MAC = '52:54:00:15:00:01';
const PROBE_INTERVAL_MS = 200;
const MS_PER_SECOND = 1000;
const POWER = { softOffTimeoutSeconds: 5, verifyTimeoutSeconds: 5, bootTimeoutSeconds: 60, resends: 1, chain: ['ipmitool', 'wol'], ipmi: { cipherSuite: 3, retries: 1, commandTimeoutSeconds: 3 } };

let lab: Lab | undefined;
let bmc: Bmc | undefined;
let listener: WolListener | undefined;
let chain: PowerChain;
let hostName = '';
let hostAddress = '';
const attempts: PowerAttempt[] = [];
const registry = new Registry();
let bmcDir: string | undefined;
let wakeHook: () => Promise<void> = async () => undefined;

beforeAll(async () => {
  lab = await Lab.start({ hosts: 1 });
  const host = lab.host(1);
  hostName = host.name;
  hostAddress = host.address;
  const owned = lab;
  // Our own folder: the password file must outlive the BMC (a dead BMC, not a missing password).
  bmcDir = await mkdtemp(join(tmpdir(), 'bmc-chain-h1-'));
  bmc = await startBmc({ name: 'chain-h1', address: BMC_ADDRESS, port: BMC_PORT, dir: bmcDir, onPowerOff: () => owned.powerOff(host.n), onPowerOn: () => owned.powerOn(host.n) });
  const ownedBmc = bmc;
  // The NIC wakes the machine: its BMC sees the power come on (and its hook boots the lab host).
  wakeHook = () => ownedBmc.setPower('on');
  listener = await startWolListener({ address: WOL_ADDRESS, port: 0, wake: { [MAC]: () => wakeHook() } });
  const policy = PolicySchema.parse({
    version: 1,
    power: POWER,
    hosts: [
      {
        name: hostName,
        bmc: { address: bmc.address, port: bmc.port, user: bmc.user, passwordFile: bmc.passwordFile },
        wol: { mac: MAC, broadcast: listener.address, port: listener.port },
      },
    ],
  });
  const loaded: LoadedPolicy = { file: 'power-chain-wol.yaml', policy, hosts: resolveHosts(policy, '/'), warnings: [] };
  const metrics = new PowerAttemptMetrics(registry);
  chain = buildPowerChain(loaded, silentLogger, {
    onPowerAttempt: (a) => {
      attempts.push(a);
      metrics.count(a);
    },
  });
});

afterAll(async () => {
  await listener?.stop();
  await bmc?.stop();
  await lab?.down();
  if (bmcDir !== undefined) await rm(bmcDir, { recursive: true, force: true });
});

describe('a power chain of ipmitool then wol, on a lab host whose BMC ignores power-on', () => {
  it('powers the host off through ipmitool, never through wol', async () => {
    expect(await chain.status(hostName, AbortSignal.timeout(30_000))).toBe('on');
    await chain.powerOff(hostName, 'soft', AbortSignal.timeout(60_000));
    await bmc?.hooksSettled();
    expect(await sshBanner(hostAddress)).not.toMatch(/^SSH-/);
    expect(await chain.status(hostName, AbortSignal.timeout(30_000))).toBe('off');
    expect(listener?.received).toEqual([]);
  });

  it('re-sends the ignored IPMI power-on, then wakes the host over the LAN; its sshd answers', async () => {
    await bmc?.configure({ powerOn: 'ignore' });
    attempts.length = 0;
    const startMs = Date.now();
    await chain.powerOn(hostName, AbortSignal.timeout(120_000));
    const poweredOnMs = Date.now() - startMs;
    const banner = await waitUntil({
      what: `${hostName} to answer on ssh after the wake-on-lan`,
      timeoutMs: POWER.bootTimeoutSeconds * MS_PER_SECOND,
      intervalMs: PROBE_INTERVAL_MS,
      signal: AbortSignal.timeout(2 * POWER.bootTimeoutSeconds * MS_PER_SECOND),
      timeoutCode: 'POWER_TIMEOUT',
      probe: async () => {
        const said = await sshBanner(hostAddress);
        return said.startsWith('SSH-') ? { done: true, value: said } : { done: false, seen: said };
      },
    });
    const sshMs = Date.now() - startMs;
    const wolAttempt = attempts.find((a) => a.path === 'wol');
    // The figures the report quotes: the whole chain, and the wake-on-lan attempt on its own.
    console.log(JSON.stringify({ figure: 'power-chain-wol', poweredOnMs, sshMs, wolAttemptMs: wolAttempt?.durationMs, attempts: attempts.map((a) => `${a.path} ${a.action} #${a.attempt} ${a.outcome} ${a.durationMs}ms`) }));

    expect(banner).toMatch(/^SSH-2\.0-OpenSSH/);
    expect(attempts.map((a) => `${a.path} ${a.action} ${a.outcome}`)).toEqual(['ipmitool on timeout', 'ipmitool on timeout', 'wol on ok']);
    const ignored = (await bmc?.events())?.filter((e) => e.kind === 'request' && e.op === 'set' && e.args.join(' ').includes('power 1'));
    expect(ignored?.length ?? 0).toBeGreaterThanOrEqual(2);
    expect(listener?.received.map((d) => d.outcome)).toEqual(['woken', 'woken', 'woken']);
    expect(await chain.status(hostName, AbortSignal.timeout(30_000))).toBe('on');
    expect(sshMs).toBeLessThan((2 * POWER.verifyTimeoutSeconds + POWER.bootTimeoutSeconds) * MS_PER_SECOND);
    await bmc?.hooksSettled();
    expect(await lab?.exec(1, ['hostname'])).toContain(hostName);

    const text = await registry.metrics();
    expect(text).toContain('consolidator_power_attempts_total{path="ipmitool",action="on",outcome="timeout"} 2');
    expect(text).toContain('consolidator_power_attempts_total{path="wol",action="on",outcome="ok"} 1');
  });

  it('with a BMC that does not answer at all: identity unchecked, the wake goes out unconfirmed, and the host is up once its hypervisor answers', async () => {
    await chain.powerOff(hostName, 'soft', AbortSignal.timeout(60_000));
    await bmc?.hooksSettled();
    expect(await sshBanner(hostAddress)).not.toMatch(/^SSH-/);
    const owned = lab as Lab;
    wakeHook = () => owned.powerOn(1);
    await bmc?.stop();
    const before = listener?.received.length ?? 0;
    attempts.length = 0;
    const attention = new PowerAttention({ logger: silentLogger });
    const recorder = new PowerRecorder();
    const supervised = new SupervisedPower({ driver: chain, attention, recorder, logger: silentLogger, hostSystemUuid: () => labProductUuid(1) });
    const { hypervisor, runner } = labDrivers(owned);
    try {
      const startMs = Date.now();
      await supervised.powerOn(hostName, AbortSignal.timeout(120_000));
      const poweredOnMs = Date.now() - startMs;
      await waitForHypervisor({ hypervisor, host: hostName, timeoutMs: POWER.bootTimeoutSeconds * MS_PER_SECOND, intervalMs: PROBE_INTERVAL_MS, signal: AbortSignal.timeout(120_000), nowMs: Date.now });
      const hypervisorMs = Date.now() - startMs;
      console.log(JSON.stringify({ figure: 'power-chain-wol-dead-bmc', poweredOnMs, hypervisorMs, attempts: attempts.map((a) => `${a.path} ${a.action} #${a.attempt} ${a.outcome} ${a.durationMs}ms`) }));
      expect(attempts.map((a) => `${a.path} ${a.action} ${a.outcome}`)).toEqual(['ipmitool on unreachable', 'ipmitool on unreachable', 'wol on unconfirmed']);
      expect(listener?.received.slice(before).map((d) => d.outcome)).toEqual(['woken', 'woken', 'woken']);
      expect(attention.needsAttention(hostName)).toBe(false);
      expect(await sshBanner(hostAddress)).toMatch(/^SSH-2\.0-/);
    } finally {
      await runner.close();
    }
  });
});
