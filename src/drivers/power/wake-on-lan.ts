import { createSocket, type Socket } from 'node:dgram';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { ResolvedHost } from '../../config/resolve.js';
import { ConsolidatorError, errorMessage } from '../../errors.js';
import type { HostId } from '../../model/ids.js';
import { parseMac } from '../../model/mac-address.js';
import type { Logger } from '../../observability/logger.js';

/** A magic packet: 6 bytes of 0xFF (the synchronisation stream), then the target MAC 16 times. */
const SYNC_BYTES = 6;
const MAC_BYTES = 6;
const MAC_REPEATS = 16;
export const MAGIC_PACKET_BYTES = SYNC_BYTES + MAC_BYTES * MAC_REPEATS;
const LIMITED_BROADCAST = '255.255.255.255';

/** The magic packet that wakes the NIC with `mac` (6 bytes). */
export function magicPacket(mac: Buffer): Buffer {
  if (mac.length !== MAC_BYTES) throw new ConsolidatorError('INTERNAL', `a MAC has ${MAC_BYTES} bytes, not ${mac.length}`);
  const packet = Buffer.alloc(MAGIC_PACKET_BYTES, 0xff);
  for (let i = 0; i < MAC_REPEATS; i++) mac.copy(packet, SYNC_BYTES + i * MAC_BYTES);
  return packet;
}

/** The IPv4 broadcast address of `address` in the network `netmask` (10.1.2.3/255.255.255.0 -> 10.1.2.255). */
export function directedBroadcast(address: string, netmask: string): string {
  const a = address.split('.').map(Number);
  const m = netmask.split('.').map(Number);
  return a.map((octet, i) => (octet | (~(m[i] ?? 0) & 0xff)) & 0xff).join('.');
}

/** Where a host's magic packets go, and from which source address. */
export interface WakeTarget {
  readonly host: HostId;
  readonly mac: Buffer;
  readonly broadcast: string;
  readonly port: number;
  /** The address of the policy's interface, bound as the source; undefined: the kernel chooses. */
  readonly sourceAddress?: string;
}

export type InterfaceTable = NodeJS.Dict<NetworkInterfaceInfo[]>;

/**
 * The target of a host's wol settings. The interface is looked up when the packet is sent (an
 * interface can get its address after the daemon started): its first IPv4 address is the source,
 * and its directed broadcast the destination unless wol.broadcast says otherwise.
 */
export function wakeTarget(host: ResolvedHost, interfaces: InterfaceTable): WakeTarget {
  const wol = host.wol;
  if (wol === undefined) {
    throw new ConsolidatorError('POWER_FAILED', `${host.name} has no wol.mac in the policy: it cannot be woken over the LAN`, { details: { host: host.name } });
  }
  const mac = parseMac(wol.mac);
  if (!mac.ok) throw new ConsolidatorError('POLICY_INVALID', `host "${host.name}" wol.mac "${wol.mac}" ${mac.problem}`, { details: { host: host.name } });
  if (wol.interface === undefined) return { host: host.name, mac: mac.bytes, broadcast: wol.broadcast ?? LIMITED_BROADCAST, port: wol.port };
  const v4 = (interfaces[wol.interface] ?? []).find((i) => i.family === 'IPv4');
  if (v4 === undefined) {
    const known = Object.keys(interfaces).sort().join(', ');
    throw new ConsolidatorError('POWER_FAILED', `cannot wake ${host.name}: interface ${wol.interface} (wol.interface) has no IPv4 address here; interfaces: ${known}`, {
      details: { host: host.name, interface: wol.interface },
    });
  }
  return { host: host.name, mac: mac.bytes, broadcast: wol.broadcast ?? directedBroadcast(v4.address, v4.netmask), port: wol.port, sourceAddress: v4.address };
}

export interface WakeOnLanDeps {
  readonly hosts: readonly ResolvedHost[];
  readonly logger: Logger;
  /** Magic packets per power-on: UDP may drop one, and a NIC ignores the extra ones. */
  readonly packetsPerSend: number;
  /** The machine's interfaces (os.networkInterfaces by default; a table in tests). */
  readonly interfaces?: () => InterfaceTable;
}

/**
 * Wake-on-LAN: sends magic packets over UDP (node:dgram) to a host's broadcast address. A power-on
 * only, with no state of its own: the packet goes out, nothing answers. Whether the host woke is for
 * the power chain to read through its other paths (a BMC that still reports the power state), or for
 * the actuator's boot timeout (the hypervisor answers, or it does not).
 * Errors: POWER_FAILED (no wol.mac, no such interface, the send failed), POLICY_INVALID (a bad MAC
 * that validation should have caught), ABORTED.
 */
export class WakeOnLan {
  private readonly hosts: ReadonlyMap<HostId, ResolvedHost>;
  private readonly log: Logger;
  private readonly packetsPerSend: number;
  private readonly interfaces: () => InterfaceTable;

  constructor(deps: WakeOnLanDeps) {
    this.hosts = new Map(deps.hosts.map((h) => [h.name, h]));
    this.log = deps.logger.child({ component: 'wake-on-lan' });
    this.packetsPerSend = deps.packetsPerSend;
    this.interfaces = deps.interfaces ?? networkInterfaces;
  }

  /** Sends the host's magic packets; resolves once they are handed to the kernel (not once the host is up). */
  async sendPowerOn(host: HostId, signal: AbortSignal): Promise<void> {
    const resolved = this.hosts.get(host);
    if (resolved === undefined) throw new ConsolidatorError('POWER_FAILED', `${host} is not a host of the policy`, { details: { host } });
    signal.throwIfAborted();
    const target = wakeTarget(resolved, this.interfaces());
    const socket = createSocket({ type: 'udp4' });
    try {
      await bind(socket, target.sourceAddress);
      socket.setBroadcast(true);
      const packet = magicPacket(target.mac);
      for (let i = 0; i < this.packetsPerSend; i++) {
        if (signal.aborted) throw new ConsolidatorError('ABORTED', `wake-on-lan of ${host} aborted`, { details: { host } });
        await send(socket, packet, target);
      }
    } catch (e) {
      if (e instanceof ConsolidatorError) throw e;
      throw new ConsolidatorError('POWER_FAILED', `cannot send the wake-on-lan packet of ${host} to ${target.broadcast}:${target.port}: ${errorMessage(e)}`, {
        details: { host, broadcast: target.broadcast, port: target.port },
        cause: e,
      });
    } finally {
      socket.close();
    }
    this.log.info('wake-on-lan packets sent', { host, broadcast: target.broadcast, port: target.port, packets: this.packetsPerSend, ...(target.sourceAddress ? { source: target.sourceAddress } : {}) });
  }
}

function bind(socket: Socket, address: string | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ port: 0, ...(address !== undefined ? { address } : {}) }, () => {
      socket.off('error', reject);
      resolve();
    });
  });
}

function send(socket: Socket, packet: Buffer, target: WakeTarget): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.send(packet, target.port, target.broadcast, (e) => (e ? reject(e) : resolve()));
  });
}
