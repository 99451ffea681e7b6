/**
 * Wake-on-LAN: the magic packet, where it goes, and a real send over loopback UDP to the lab's
 * listener (test/lab/wol-listener.ts), which wakes only on a valid packet for a MAC it knows.
 */
import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { resolveHosts } from '../../../../src/config/resolve.js';
import { PolicySchema } from '../../../../src/config/schema.js';
import { directedBroadcast, MAGIC_PACKET_BYTES, magicPacket, WakeOnLan, wakeTarget } from '../../../../src/drivers/power/wake-on-lan.js';
import { parseMac } from '../../../../src/model/mac-address.js';
import { silentLogger } from '../../../../src/observability/logger.js';
import { waitFor } from '../../../helpers/wait-for.js';
import { thrown } from '../../../helpers/thrown.js';
import { magicPacketMac, startWolListener, type WolListener } from '../../../lab/wol-listener.js';

const LISTEN_ADDRESS = '127.0.1.231';
const MAC = '52:54:00:c0:ff:ee';

function hostsWith(wol: Record<string, unknown>) {
  const policy = PolicySchema.parse({ version: 1, power: { chain: ['ipmitool', 'wol'] }, hosts: [{ name: 'h1', wol }] });
  return resolveHosts(policy, '/');
}

function mac(text: string): Buffer {
  const parsed = parseMac(text);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.bytes;
}

describe('MAC addresses and the magic packet', () => {
  it.each([
    ['52:54:00:12:34:56', true],
    ['52-54-00-AB-cd-EF', true],
    ['52:54:00-12:34:56', false],
    ['52:54:00:12:34', false],
    ['5254.0012.3456', false],
    ['00:00:00:00:00:00', false],
    ['ff:ff:ff:ff:ff:ff', false],
    ['01:00:5e:00:00:fb', false],
  ])('%s is a NIC address: %s', (text, ok) => {
    expect(parseMac(text).ok).toBe(ok);
  });

  it('is 6 bytes of 0xFF and the MAC 16 times', () => {
    const packet = magicPacket(mac(MAC));
    expect(packet).toHaveLength(MAGIC_PACKET_BYTES);
    expect(packet.subarray(0, 6)).toEqual(Buffer.alloc(6, 0xff));
    for (let i = 0; i < 16; i++) expect(packet.subarray(6 + i * 6, 12 + i * 6).toString('hex')).toBe('525400c0ffee');
    expect(magicPacketMac(packet)).toBe(MAC);
  });
});

describe('where the packet goes', () => {
  it('the limited broadcast and port 9 by default; the interface gives the source and the directed broadcast', () => {
    expect(wakeTarget(hostsWith({ mac: MAC })[0]!, {})).toMatchObject({ broadcast: '255.255.255.255', port: 9 });
    const table = { eth1: [{ address: '10.20.30.40', netmask: '255.255.252.0', family: 'IPv4' as const, mac: MAC, internal: false, cidr: '10.20.30.40/22' }] };
    expect(wakeTarget(hostsWith({ mac: MAC, interface: 'eth1', port: 7 })[0]!, table)).toMatchObject({ broadcast: '10.20.31.255', port: 7, sourceAddress: '10.20.30.40' });
    expect(wakeTarget(hostsWith({ mac: MAC, interface: 'eth1', broadcast: '10.20.30.255' })[0]!, table)).toMatchObject({ broadcast: '10.20.30.255' });
    expect(directedBroadcast('192.168.1.77', '255.255.255.0')).toBe('192.168.1.255');
  });

  it('names the host and the interface when the interface has no IPv4 address', async () => {
    const wol = new WakeOnLan({ hosts: hostsWith({ mac: MAC, interface: 'eth9' }), logger: silentLogger, packetsPerSend: 1, interfaces: () => ({ lo: [] }) });
    const e = await thrown(wol.sendPowerOn('h1', AbortSignal.timeout(1000)));
    expect(e.code).toBe('POWER_FAILED');
    expect(e.message).toBe('cannot wake h1: interface eth9 (wol.interface) has no IPv4 address here; interfaces: lo');
  });
});

describe('a real send to the lab listener (loopback UDP)', () => {
  let listener: WolListener | undefined;
  afterEach(async () => {
    await listener?.stop();
    listener = undefined;
  });

  it('wakes the host whose MAC the packet carries, from the interface lo', async () => {
    let woken = 0;
    listener = await startWolListener({ address: LISTEN_ADDRESS, port: 0, wake: { [MAC.toUpperCase()]: () => void woken++ } });
    const hosts = hostsWith({ mac: MAC, broadcast: LISTEN_ADDRESS, port: listener.port, interface: 'lo' });
    const wol = new WakeOnLan({ hosts, logger: silentLogger, packetsPerSend: 3 });
    await wol.sendPowerOn('h1', AbortSignal.timeout(1000));
    const l = listener;
    await waitFor('3 datagrams', { timeoutMs: 2000, intervalMs: 10 }, async () => (l.received.length === 3 ? true : undefined));
    await l.hooksSettled();
    expect(l.received.map((d) => d.outcome)).toEqual(['woken', 'woken', 'woken']);
    expect(woken).toBe(3);
  });

  it('ignores another MAC and malformed payloads', async () => {
    let woken = 0;
    listener = await startWolListener({ address: LISTEN_ADDRESS, port: 0, wake: { [MAC]: () => void woken++ } });
    const good = magicPacket(mac(MAC));
    const broken = Buffer.from(good);
    broken[6 + 15 * 6 + 5] = 0xef; // the 16th repetition differs
    const payloads = [
      magicPacket(mac('52:54:00:c0:ff:ef')),
      good.subarray(0, MAGIC_PACKET_BYTES - 1),
      broken,
      Buffer.concat([Buffer.alloc(5, 0xff), good.subarray(6)]),
      Buffer.from('wake up h1'),
      // a NIC finds the pattern anywhere in the frame: after a prefix it is still a wake-up
      Buffer.concat([Buffer.from('prefix'), good]),
    ];
    const socket = createSocket('udp4');
    for (const p of payloads) await new Promise<void>((resolve, reject) => socket.send(p, listener?.port, LISTEN_ADDRESS, (e) => (e ? reject(e) : resolve())));
    socket.close();
    const l = listener;
    await waitFor('all datagrams', { timeoutMs: 2000, intervalMs: 10 }, async () => (l.received.length === payloads.length ? true : undefined));
    await l.hooksSettled();
    expect(l.received.map((d) => d.outcome)).toEqual(['unknown-mac', 'malformed', 'malformed', 'malformed', 'malformed', 'woken']);
    expect(woken).toBe(1);
  });
});
