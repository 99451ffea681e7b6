import { describe, expect, it } from 'vitest';
import { createSystemdNotifier, watchdogIntervalMs } from '../../../src/daemon/systemd-notify.js';
import type { NotifyRunner } from '../../../src/daemon/systemd-notify.js';
import { createLogger } from '../../../src/observability/logger.js';
import { CapturedStream } from '../../helpers/capture.js';
import { pause } from '../../helpers/wait-for.js';

const PID = 4242;

/** A NotifyRunner that records each call; optionally slow or failing, to check ordering and error handling. */
function fakeRunner(behaviour: { delayMs?: (call: number) => number; fail?: 'exit' | 'throw' } = {}) {
  const calls: { argv: readonly string[]; socket: string | undefined }[] = [];
  const run: NotifyRunner = async (argv, env) => {
    const index = calls.length;
    calls.push({ argv, socket: env.NOTIFY_SOCKET });
    await pause(behaviour.delayMs?.(index) ?? 0);
    if (behaviour.fail === 'throw') throw new Error('cannot run systemd-notify: spawn systemd-notify ENOENT');
    return behaviour.fail === 'exit' ? { code: 1, stderr: 'Failed to notify init system: Connection refused\n' } : { code: 0, stderr: '' };
  };
  return { run, calls };
}

function notifier(env: NodeJS.ProcessEnv, run: NotifyRunner) {
  const stream = new CapturedStream();
  const logger = createLogger({ level: 'debug', format: 'json', stream });
  return { stream, notify: createSystemdNotifier({ env, logger, run, pid: PID, monotonicUsec: () => 123_456_789n }) };
}

describe('the systemd notifier', () => {
  it('does nothing at all without NOTIFY_SOCKET', async () => {
    const { run, calls } = fakeRunner();
    const { notify } = notifier({}, run);
    expect(notify.enabled).toBe(false);
    await notify.ready('ready');
    await notify.watchdog();
    await notify.reloading();
    await notify.stopping();
    await notify.status('x');
    expect(calls).toEqual([]);
    expect(notifier({ NOTIFY_SOCKET: '' }, run).notify.enabled).toBe(false);
  });

  it('sends each message with our PID, as VARIABLE=VALUE arguments, with the environment that names the socket', async () => {
    const { run, calls } = fakeRunner();
    const { notify } = notifier({ NOTIFY_SOCKET: '/run/systemd/notify' }, run);
    expect(notify.enabled).toBe(true);
    await notify.ready('watching 12 hosts, mode dry-run');
    await notify.status('cycle 7: 2 migrations');
    await notify.watchdog();
    await notify.reloading();
    await notify.stopping();
    expect(calls.map((c) => c.argv)).toEqual([
      [`--pid=${PID}`, 'READY=1', 'STATUS=watching 12 hosts, mode dry-run'],
      [`--pid=${PID}`, 'STATUS=cycle 7: 2 migrations'],
      [`--pid=${PID}`, 'WATCHDOG=1'],
      [`--pid=${PID}`, 'RELOADING=1', 'MONOTONIC_USEC=123456789', 'STATUS=reloading policy'],
      [`--pid=${PID}`, 'STOPPING=1', 'STATUS=stopping'],
    ]);
    expect(calls.every((c) => c.socket === '/run/systemd/notify')).toBe(true);
  });

  it('keeps the order of messages asked for without waiting, even when one send is slow', async () => {
    const { run, calls } = fakeRunner({ delayMs: (call) => (call === 0 ? 30 : 0) });
    const { notify } = notifier({ NOTIFY_SOCKET: '@notify' }, run);
    const sent: string[] = [];
    await Promise.all([
      notify.ready('up').then(() => sent.push('ready')),
      notify.watchdog().then(() => sent.push('watchdog')),
      notify.stopping().then(() => sent.push('stopping')),
    ]);
    expect(sent).toEqual(['ready', 'watchdog', 'stopping']);
    expect(calls.map((c) => c.argv[1])).toEqual(['READY=1', 'WATCHDOG=1', 'STOPPING=1']);
  });

  it('keeps a status on one short line, so it cannot inject another assignment', async () => {
    const { run, calls } = fakeRunner();
    const { notify } = notifier({ NOTIFY_SOCKET: '/run/systemd/notify' }, run);
    await notify.status('policy rejected:\nREADY=1\r\n\tline 2');
    await notify.status('x'.repeat(500));
    expect(calls[0]?.argv).toEqual([`--pid=${PID}`, 'STATUS=policy rejected: READY=1 line 2']);
    expect(calls[1]?.argv[1]).toHaveLength('STATUS='.length + 200);
  });

  it.each(['exit', 'throw'] as const)('logs a failed notification (%s) and never throws it', async (fail) => {
    const { run } = fakeRunner({ fail });
    const { notify, stream } = notifier({ NOTIFY_SOCKET: '/run/systemd/notify' }, run);
    await expect(notify.watchdog()).resolves.toBeUndefined();
    await expect(notify.ready('up')).resolves.toBeUndefined();
    const lines = stream.text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 'warn', message: 'systemd notification failed', component: 'systemd-notify', notification: 'WATCHDOG=1' });
    expect(lines[1]).toMatchObject({ notification: 'READY=1 STATUS=up' });
  });
});

describe('watchdogIntervalMs', () => {
  it.each([
    [{ WATCHDOG_USEC: '1800000000' }, 1_800_000],
    [{ WATCHDOG_USEC: '1800000000', WATCHDOG_PID: String(PID) }, 1_800_000],
    [{ WATCHDOG_USEC: '1800000000', WATCHDOG_PID: '1' }, undefined],
    [{ WATCHDOG_USEC: '0' }, undefined],
    [{ WATCHDOG_USEC: 'soon' }, undefined],
    [{}, undefined],
  ])('reads %j as %s ms', (env, expected) => {
    expect(watchdogIntervalMs(env, PID)).toBe(expected);
    expect(notifier({ ...env, NOTIFY_SOCKET: '/x' }, fakeRunner().run).notify.watchdogIntervalMs()).toBe(expected);
  });
});
