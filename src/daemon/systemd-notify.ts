import { spawn } from 'node:child_process';
import { errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';

/**
 * systemd's notify protocol (sd_notify(3)): READY=1, STATUS=..., WATCHDOG=1, RELOADING=1, STOPPING=1,
 * sent as one datagram to the AF_UNIX socket named in $NOTIFY_SOCKET.
 *
 * How, without a native module: Node's dgram has no AF_UNIX datagram sockets, and the npm modules that
 * add them (unix-dgram, sd-notify) are native addons. So each message is sent by systemd's own
 * `systemd-notify` binary, spawned with argv only (no shell): `systemd-notify --pid=<our pid> READY=1
 * STATUS=...`. It claims our PID as the sender, falling back to its own PID when the kernel refuses
 * (an unprivileged service may not fake credentials), so the unit sets NotifyAccess=all (a message from
 * any process of the service's cgroup counts). It then waits on a BARRIER=1 until the manager has
 * processed the message, which removes the race where systemd-notify exits before the manager looks up
 * its cgroup. Costs one short process per message; the daemon sends a handful per cycle at most.
 *
 * The watchdog is fed by the daemon when a cycle completes, never by a bare timer: a daemon whose
 * cycles hang is restarted. So the unit's WatchdogSec must exceed a few schedule intervals plus the
 * longest cycle (migrations included); see systemd/consolidator.service.
 *
 * Without $NOTIFY_SOCKET (not started by systemd, or Type=simple) every call does nothing. A failing
 * notification is logged and never thrown: the daemon works without it.
 */

export interface NotifyRunResult {
  /** Exit code, or null when killed. */
  readonly code: number | null;
  readonly stderr: string;
}

/** Runs `systemd-notify` with these arguments and environment (injectable for tests). */
export type NotifyRunner = (argv: readonly string[], env: NodeJS.ProcessEnv) => Promise<NotifyRunResult>;

export interface SystemdNotifierDeps {
  /** The environment systemd gave us (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID); usually process.env. */
  readonly env: NodeJS.ProcessEnv;
  readonly logger: Logger;
  readonly run?: NotifyRunner;
  /** Our PID, claimed as the sender; process.pid by default. */
  readonly pid?: number;
  /** CLOCK_MONOTONIC in microseconds, for RELOADING=1's MONOTONIC_USEC; process.hrtime by default. */
  readonly monotonicUsec?: () => bigint;
}

export interface SystemdNotifier {
  /** True when $NOTIFY_SOCKET is set, i.e. messages are actually sent. */
  readonly enabled: boolean;
  /** Start-up (or a reload) finished: READY=1, with a status line. */
  ready(status: string): Promise<void>;
  /** A one-line status shown by `systemctl status`. */
  status(text: string): Promise<void>;
  /** WATCHDOG=1: call when a cycle completed. */
  watchdog(): Promise<void>;
  /** RELOADING=1 with MONOTONIC_USEC; follow with ready() when the reload is done (or rejected). */
  reloading(): Promise<void>;
  /** STOPPING=1: shutting down (finishing or aborting an in-flight step). */
  stopping(): Promise<void>;
  /** The watchdog timeout systemd expects us to beat, ms; undefined when there is no watchdog for us. */
  watchdogIntervalMs(): number | undefined;
}

export const SYSTEMD_NOTIFY_BINARY = 'systemd-notify';
/** systemd-notify waits up to 5 s on its barrier; allow it that and a margin. */
const NOTIFY_TIMEOUT_MS = 10_000;
/** A STATUS= line is shown on one line of `systemctl status`; keep it short. */
const MAX_STATUS_CHARS = 200;
const USEC_PER_MS = 1000;
const NANOSECONDS_PER_MICROSECOND = 1000n;

export function createSystemdNotifier(deps: SystemdNotifierDeps): SystemdNotifier {
  const log = deps.logger.child({ component: 'systemd-notify' });
  const socket = deps.env.NOTIFY_SOCKET;
  const enabled = socket !== undefined && socket !== '';
  const run = deps.run ?? runSystemdNotify;
  const pid = deps.pid ?? process.pid;
  const monotonicUsec = deps.monotonicUsec ?? (() => process.hrtime.bigint() / NANOSECONDS_PER_MICROSECOND);
  // Messages go out one at a time, in the order they were asked for (READY before WATCHDOG).
  let queue: Promise<void> = Promise.resolve();

  const send = (assignments: readonly string[]): Promise<void> => {
    if (!enabled) return Promise.resolve();
    const next = queue.then(async () => {
      try {
        const result = await run([`--pid=${pid}`, ...assignments], deps.env);
        if (result.code !== 0) {
          log.warn('systemd notification failed', { notification: assignments.join(' '), exitCode: result.code, stderr: result.stderr.trim() });
        }
      } catch (e) {
        log.warn('systemd notification failed', { notification: assignments.join(' '), err: e });
      }
    });
    queue = next;
    return next;
  };

  return {
    enabled,
    ready: (status) => send(['READY=1', `STATUS=${oneLine(status)}`]),
    status: (text) => send([`STATUS=${oneLine(text)}`]),
    watchdog: () => send(['WATCHDOG=1']),
    reloading: () => send(['RELOADING=1', `MONOTONIC_USEC=${monotonicUsec().toString()}`, 'STATUS=reloading policy']),
    stopping: () => send(['STOPPING=1', 'STATUS=stopping']),
    watchdogIntervalMs: () => watchdogIntervalMs(deps.env, pid),
  };
}

/**
 * The watchdog timeout from $WATCHDOG_USEC, in ms, when it is meant for `pid` ($WATCHDOG_PID unset or
 * equal); undefined when there is none. Ping at least every half of it.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usecText = env.WATCHDOG_USEC;
  if (usecText === undefined || !/^\d+$/.test(usecText)) return undefined;
  const pidText = env.WATCHDOG_PID;
  if (pidText !== undefined && pidText !== '' && Number(pidText) !== pid) return undefined;
  const usec = Number(usecText);
  return usec > 0 ? usec / USEC_PER_MS : undefined;
}

/** A status is one line: newlines would start a new assignment in the datagram. */
function oneLine(text: string): string {
  const flat = text.replace(/[\r\n\t]+/g, ' ').trim();
  return flat.length > MAX_STATUS_CHARS ? `${flat.slice(0, MAX_STATUS_CHARS - 1)}…` : flat;
}

/** Spawns systemd-notify without a shell; never rejects for a non-zero exit, only reports it. */
export const runSystemdNotify: NotifyRunner = (argv, env) =>
  new Promise((resolve, reject) => {
    const child = spawn(SYSTEMD_NOTIFY_BINARY, [...argv], { env, stdio: ['ignore', 'ignore', 'pipe'], timeout: NOTIFY_TIMEOUT_MS });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.once('error', (e) => reject(new Error(`cannot run ${SYSTEMD_NOTIFY_BINARY}: ${errorMessage(e)}`, { cause: e })));
    child.once('close', (code) => resolve({ code, stderr }));
  });
