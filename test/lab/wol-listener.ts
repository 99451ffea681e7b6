/**
 * The lab's Wake-on-LAN: a UDP listener on a loopback address that plays the NICs of lab hosts. A
 * datagram that holds a valid magic packet (6 bytes 0xFF, then one MAC 16 times) for a MAC it knows
 * runs that MAC's wake hook (in the lab: the BMC's setPower('on'), which boots the lab host, so its
 * BMC then reports it on as a real one would). Like a NIC, it looks for the pattern anywhere in the
 * payload; anything else (another MAC, a short or broken pattern) is counted and ignored.
 */
import { createSocket, type Socket } from 'node:dgram';

const SYNC = Buffer.alloc(6, 0xff);
const MAC_BYTES = 6;
const MAC_REPEATS = 16;
const PACKET_BYTES = SYNC.length + MAC_BYTES * MAC_REPEATS;

export interface WolListenerOptions {
  /** A loopback address (127.0.1.N). */
  readonly address: string;
  /** 0: any free port (read it from `port`). */
  readonly port: number;
  /** MAC (aa:bb:cc:dd:ee:ff, any case) -> what waking it does. */
  readonly wake: Readonly<Record<string, () => void | Promise<void>>>;
}

export interface WolDatagram {
  readonly atMs: number;
  readonly bytes: number;
  /** The MAC the payload wakes; undefined when it holds no valid magic packet. */
  readonly mac?: string;
  readonly outcome: 'woken' | 'unknown-mac' | 'malformed';
}

export interface WolListener {
  readonly address: string;
  readonly port: number;
  /** Every datagram received so far, oldest first. */
  readonly received: readonly WolDatagram[];
  /** Resolves once every wake hook started so far has finished; rejects with a hook's failure. */
  hooksSettled(): Promise<void>;
  stop(): Promise<void>;
}

/** The MAC a payload's magic packet is for, or undefined when it holds none. */
export function magicPacketMac(payload: Buffer): string | undefined {
  for (let at = payload.indexOf(SYNC); at !== -1 && at + PACKET_BYTES <= payload.length; at = payload.indexOf(SYNC, at + 1)) {
    const mac = payload.subarray(at + SYNC.length, at + SYNC.length + MAC_BYTES);
    let repeated = true;
    for (let i = 1; i < MAC_REPEATS && repeated; i++) {
      const start = at + SYNC.length + i * MAC_BYTES;
      repeated = payload.subarray(start, start + MAC_BYTES).equals(mac);
    }
    if (repeated) return [...mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
  }
  return undefined;
}

export async function startWolListener(options: WolListenerOptions): Promise<WolListener> {
  const wake = new Map(Object.entries(options.wake).map(([mac, hook]) => [mac.toLowerCase().replaceAll('-', ':'), hook]));
  const received: WolDatagram[] = [];
  const hooks: Promise<void>[] = [];
  const socket: Socket = createSocket({ type: 'udp4' });
  socket.on('message', (payload) => {
    const mac = magicPacketMac(payload);
    const hook = mac === undefined ? undefined : wake.get(mac);
    const outcome = mac === undefined ? 'malformed' : hook === undefined ? 'unknown-mac' : 'woken';
    received.push({ atMs: Date.now(), bytes: payload.length, ...(mac !== undefined ? { mac } : {}), outcome });
    if (hook !== undefined) hooks.push(Promise.resolve().then(hook));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(options.port, options.address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  const port = socket.address().port;
  return {
    address: options.address,
    port,
    received,
    hooksSettled: async () => {
      await Promise.all(hooks);
    },
    stop: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}
