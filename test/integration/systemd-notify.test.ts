import { spawn } from 'node:child_process';
import type { ChildProcessByStdio } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createSystemdNotifier, runSystemdNotify } from '../../src/daemon/systemd-notify.js';
import { createLogger } from '../../src/observability/logger.js';
import { CapturedStream } from '../helpers/capture.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The notifier against the real systemd-notify binary, received by a stand-in for the service manager:
 * Node cannot bind an AF_UNIX datagram socket, so a tiny python3 process does, with SO_PASSCRED to see
 * which PID the kernel says sent each datagram, and closes the fd of each BARRIER=1 as systemd does.
 */
const RECEIVER = String.raw`
import array, json, os, socket, struct, sys
address = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind("\0" + address[1:] if address.startswith("@") else address)
print(json.dumps({"listening": True}), flush=True)
while True:
    data, ancillary, _flags, _addr = s.recvmsg(65536, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(4 * 16))
    pid, fds = None, 0
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", payload[:12])[0]
        elif level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            received = array.array("i")
            received.frombytes(payload[: len(payload) - len(payload) % 4])
            for fd in received:
                os.close(fd)
                fds += 1
    print(json.dumps({"data": data.decode(), "pid": pid, "fds": fds}), flush=True)
`;

interface Datagram {
  data: string;
  pid: number | null;
  fds: number;
}

const RECEIVER_START_TIMEOUT_MS = 10_000;
const DATAGRAM_TIMEOUT_MS = 5_000;
const POLL_MS = 10;

class Receiver {
  readonly datagrams: Datagram[] = [];
  private constructor(private readonly child: ChildProcessByStdio<null, Readable, Readable>) {}

  static async start(address: string): Promise<Receiver> {
    const child = spawn('python3', ['-u', '-c', RECEIVER, address], { stdio: ['ignore', 'pipe', 'pipe'] });
    const receiver = new Receiver(child);
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`receiver did not start: ${stderr}`)), RECEIVER_START_TIMEOUT_MS);
      child.once('exit', (code) => reject(new Error(`receiver exited ${String(code)}: ${stderr}`)));
      createInterface({ input: child.stdout }).on('line', (line) => {
        const parsed = JSON.parse(line) as Datagram | { listening: true };
        if ('listening' in parsed) {
          clearTimeout(timer);
          resolve();
        } else receiver.datagrams.push(parsed);
      });
    });
    return receiver;
  }

  /** Waits until `count` datagrams were printed (the receiver prints after releasing a barrier, so a line can trail). */
  async waitForDatagrams(count: number): Promise<void> {
    await waitFor(`${count} datagrams`, { timeoutMs: DATAGRAM_TIMEOUT_MS, intervalMs: POLL_MS, seen: () => JSON.stringify(this.datagrams) }, () => this.datagrams.length >= count);
  }

  /** The payloads received so far, without the barriers. */
  messages(): string[] {
    return this.datagrams.map((d) => d.data).filter((d) => d !== 'BARRIER=1');
  }

  stop(): void {
    this.child.kill('SIGTERM');
  }
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'consolidator-notify-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function receiverAt(address: string): Promise<Receiver> {
  const receiver = await Receiver.start(address);
  cleanups.push(() => receiver.stop());
  return receiver;
}

function logger() {
  const stream = new CapturedStream();
  return { stream, logger: createLogger({ level: 'debug', format: 'json', stream }) };
}

describe('systemd notifications through the systemd-notify binary', () => {
  it('delivers READY, STATUS, WATCHDOG, RELOADING and STOPPING, in order, each followed by a barrier', async () => {
    const socket = join(await tempDir(), 'notify.sock');
    const receiver = await receiverAt(socket);
    const { logger: log, stream } = logger();
    const notify = createSystemdNotifier({ env: { PATH: process.env.PATH, NOTIFY_SOCKET: socket }, logger: log });

    await notify.ready('watching 3 hosts');
    await notify.status('cycle 1: nothing to do');
    await notify.watchdog();
    const before = process.hrtime.bigint() / 1000n;
    await notify.reloading();
    await notify.ready('policy reloaded');
    await notify.stopping();

    // Each message and its barrier: 12 datagrams.
    await receiver.waitForDatagrams(12);
    const pid = process.pid;
    const messages = receiver.messages();
    expect(messages).toHaveLength(6);
    expect(messages[0]).toBe(`MAINPID=${pid}\nREADY=1\nSTATUS=watching 3 hosts`);
    expect(messages[1]).toBe(`MAINPID=${pid}\nSTATUS=cycle 1: nothing to do`);
    expect(messages[2]).toBe(`MAINPID=${pid}\nWATCHDOG=1`);
    const reloading = /^MAINPID=\d+\nRELOADING=1\nMONOTONIC_USEC=(\d+)\nSTATUS=reloading policy$/.exec(messages[3] ?? '');
    expect(reloading).not.toBeNull();
    // CLOCK_MONOTONIC, the clock systemd compares MONOTONIC_USEC with.
    const monotonicUsec = BigInt(reloading?.[1] ?? '0');
    expect(monotonicUsec >= before && monotonicUsec <= process.hrtime.bigint() / 1000n).toBe(true);
    expect(messages[4]).toBe(`MAINPID=${pid}\nREADY=1\nSTATUS=policy reloaded`);
    expect(messages[5]).toBe(`MAINPID=${pid}\nSTOPPING=1\nSTATUS=stopping`);

    const barriers = receiver.datagrams.filter((d) => d.data === 'BARRIER=1');
    expect(barriers).toHaveLength(6);
    expect(barriers.every((b) => b.fds === 1)).toBe(true);
    // As root, systemd-notify can claim our PID as the sender; unprivileged, the kernel gives its own.
    const senders = receiver.datagrams.filter((d) => d.data !== 'BARRIER=1').map((d) => d.pid);
    if (process.getuid?.() === 0) expect(senders.every((p) => p === pid)).toBe(true);
    else expect(senders.every((p) => typeof p === 'number')).toBe(true);
    expect(stream.text).toBe('');
  });

  it('reaches an abstract socket (@name), as systemd may hand out', async () => {
    const address = `@consolidator-test-${process.pid}-${Date.now()}`;
    const receiver = await receiverAt(address);
    const notify = createSystemdNotifier({ env: { PATH: process.env.PATH, NOTIFY_SOCKET: address }, logger: logger().logger });
    await notify.ready('up');
    await receiver.waitForDatagrams(2);
    expect(receiver.messages()).toEqual([`MAINPID=${process.pid}\nREADY=1\nSTATUS=up`]);
  });

  it('logs, and does not throw, when nobody listens on the socket', async () => {
    const socket = join(await tempDir(), 'nobody.sock');
    const { logger: log, stream } = logger();
    const notify = createSystemdNotifier({ env: { PATH: process.env.PATH, NOTIFY_SOCKET: socket }, logger: log });
    await expect(notify.watchdog()).resolves.toBeUndefined();
    const line = JSON.parse(stream.text.trim()) as Record<string, unknown>;
    expect(line).toMatchObject({ level: 'warn', message: 'systemd notification failed', notification: 'WATCHDOG=1', exitCode: 1 });
    expect(String(line.stderr)).toMatch(/No such file or directory|Connection refused/);
  });

  it('logs, and does not throw, when systemd-notify is not installed', async () => {
    const { logger: log, stream } = logger();
    const notify = createSystemdNotifier({ env: { PATH: await tempDir(), NOTIFY_SOCKET: '/run/systemd/notify' }, logger: log });
    await expect(notify.ready('up')).resolves.toBeUndefined();
    expect(stream.text).toContain('systemd notification failed');
    expect(stream.text).toContain('ENOENT');
  });

  it('the runner reports the exit code and stderr of systemd-notify', async () => {
    const result = await runSystemdNotify(['--definitely-not-an-option'], { PATH: process.env.PATH });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/unrecognized option|invalid option/);
  });
});
