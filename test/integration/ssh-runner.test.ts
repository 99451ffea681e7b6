import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ssh2CommandRunner } from '../../src/drivers/exec/ssh2-command-runner.js';
import { isConsolidatorError } from '../../src/errors.js';
import { Lab } from '../lab/lab.js';
import { thrown } from '../helpers/thrown.js';
import { pause, waitFor } from '../helpers/wait-for.js';
import { labDrivers, RECONNECT_TIMEOUT_MS, RecordingLogger } from '../lab/lab-drivers.js';
import { mustRunLocal } from '../lab/lab-shell.js';

describe('Ssh2CommandRunner against real sshd', () => {
  let lab: Lab;
  let drivers: ReturnType<typeof labDrivers>;

  beforeAll(async () => {
    lab = await Lab.start({ hosts: 2 });
    drivers = labDrivers(lab, { ssh: { maxChannelsPerHost: 3 } });
  });

  afterAll(async () => {
    await drivers?.runner.close();
    await lab?.down();
  });

  const h1 = () => lab.host(1).name;

  it('runs an argv exactly, whatever characters it holds', async () => {
    const words = ["it's", 'a b', '$(reboot)', '`id`', 'x;y', '*', '~', '', 'line\nbreak', 'ünïcødé'];
    const r = await drivers.runner.run(h1(), ['printf', '%s\\0', ...words], { timeoutMs: 5_000 });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(words);
  });

  it('returns a non-zero exit and stderr as a result, and feeds stdin', async () => {
    const r = await drivers.runner.run(h1(), ['sh', '-c', 'cat; echo oops >&2; exit 3'], { timeoutMs: 5_000, stdin: 'hello' });
    expect(r).toEqual({ stdout: 'hello', stderr: 'oops\n', exitCode: 3 });
  });

  it('reuses one connection for many commands, with at most maxChannelsPerHost at once', async () => {
    const before = drivers.logger.count('ssh connected', { host: h1() });
    const started = Date.now();
    const results = await Promise.all(
      Array.from({ length: 9 }, (_, i) => drivers.runner.run(h1(), ['sh', '-c', `sleep 0.4; echo ${i}`], { timeoutMs: 20_000 })),
    );
    const elapsedMs = Date.now() - started;
    expect(results.map((r) => r.stdout.trim())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8']);
    // 9 commands, 3 at a time, 0.4 s each: three rounds.
    expect(elapsedMs).toBeGreaterThanOrEqual(3 * 400 - 50);
    expect(drivers.logger.count('ssh connected', { host: h1() }) - before).toBeLessThanOrEqual(1);
  });

  it('a command that runs too long times out with COMMAND_TIMEOUT, and the connection still works', async () => {
    const started = Date.now();
    await expect(drivers.runner.run(h1(), ['sleep', '30'], { timeoutMs: 700 })).rejects.toMatchObject({ code: 'COMMAND_TIMEOUT' });
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await drivers.runner.run(h1(), ['true'], { timeoutMs: 5_000 })).exitCode).toBe(0);
  });

  it('an abort signal stops a command with ABORTED', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    await expect(drivers.runner.run(h1(), ['sleep', '30'], { timeoutMs: 20_000, signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('a host that hangs mid-command (every process frozen) times out; after it thaws, commands work again', async () => {
    const h2 = lab.host(2).name;
    await drivers.runner.run(h2, ['true'], { timeoutMs: 5_000 });
    const running = drivers.runner.run(h2, ['sh', '-c', 'echo started; sleep 1; echo done'], { timeoutMs: 3_000 });
    await pause(300);
    await lab.freeze(2);
    try {
      const started = Date.now();
      const error = await thrown(running);
      expect(isConsolidatorError(error, 'COMMAND_TIMEOUT')).toBe(true);
      expect(String((error as Error).message)).toContain(h2);
      expect(Date.now() - started).toBeLessThan(4_000);
    } finally {
      await lab.thaw(2);
    }
    const r = await waitFor(`${h2} to run commands again after the thaw`, { timeoutMs: RECONNECT_TIMEOUT_MS }, () => drivers.runner.run(h2, ['echo', 'back'], { timeoutMs: 5_000 }));
    expect(r.stdout).toBe('back\n');
  });

  it('an unknown host key is refused, naming the host and its SHA256 fingerprint', async () => {
    const knownHosts = join(lab.dir, 'known_hosts.h2-only');
    const all = await readFile(lab.knownHostsFile, 'utf8');
    await writeFile(knownHosts, all.split('\n').filter((l) => l.startsWith(`${lab.host(2).address} `)).join('\n'));
    const runner = new Ssh2CommandRunner({ targets: lab.sshTargets(knownHosts), logger: new RecordingLogger() });
    try {
      const fingerprint = (await mustRunLocal('ssh-keygen', ['-lf', join(lab.host(1).dir, 'ssh_host_ed25519_key.pub')])).split(' ')[1];
      expect(fingerprint).toMatch(/^SHA256:/);
      const error = await runner.run(h1(), ['true'], { timeoutMs: 5_000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isConsolidatorError(error, 'SSH_HOST_KEY')).toBe(true);
      const message = (error as Error).message;
      expect(message).toContain(h1());
      expect(message).toContain(lab.host(1).address);
      expect(message).toContain(fingerprint);
      expect(message).toContain('is not in');
      // h2, which is known, is fine through the same runner.
      expect((await runner.run(lab.host(2).name, ['true'], { timeoutMs: 5_000 })).exitCode).toBe(0);
    } finally {
      await runner.close();
    }
  });

  it('a changed host key is refused as CHANGED', async () => {
    const knownHosts = join(lab.dir, 'known_hosts.swapped');
    const lines = (await readFile(lab.knownHostsFile, 'utf8')).trim().split('\n');
    const key2 = lines.find((l) => l.startsWith(`${lab.host(2).address} `))!.split(' ').slice(1).join(' ');
    await writeFile(knownHosts, `${lab.host(1).address} ${key2}\n`);
    const runner = new Ssh2CommandRunner({ targets: lab.sshTargets(knownHosts), logger: new RecordingLogger() });
    try {
      await expect(runner.run(h1(), ['true'], { timeoutMs: 5_000 })).rejects.toMatchObject({
        code: 'SSH_HOST_KEY',
        message: expect.stringMatching(/CHANGED/),
      });
    } finally {
      await runner.close();
    }
  });

  it('hashed known_hosts entries (ssh-keygen -H) are accepted', async () => {
    const hashed = await readFile(lab.hashedKnownHostsFile, 'utf8');
    expect(hashed).toMatch(/^\|1\|/);
    const runner = new Ssh2CommandRunner({ targets: lab.sshTargets(lab.hashedKnownHostsFile), logger: new RecordingLogger() });
    try {
      expect((await runner.run(h1(), ['hostname'], { timeoutMs: 5_000 })).stdout.trim()).toBe(h1());
    } finally {
      await runner.close();
    }
  });

  it('a host it has no settings for, and a bad host name, are refused before any connection', async () => {
    await expect(drivers.runner.run('nosuch.lab', ['true'], { timeoutMs: 2_000 })).rejects.toMatchObject({ code: 'SSH_CONNECT' });
    await expect(drivers.runner.run('bad host;rm', ['true'], { timeoutMs: 2_000 })).rejects.toMatchObject({ code: 'INVALID_NAME' });
  });

  it('a wrong key is refused with SSH_AUTH', async () => {
    const otherKey = join(lab.dir, 'other_key');
    await mustRunLocal('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const targets = new Map([...lab.sshTargets()].map(([name, t]) => [name, { ...t, keyFile: otherKey }]));
    const runner = new Ssh2CommandRunner({ targets, logger: new RecordingLogger() });
    try {
      await expect(runner.run(h1(), ['true'], { timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'SSH_AUTH' });
    } finally {
      await runner.close();
    }
  });

  it('a powered-off host gives SSH_CONNECT within the connect timeout; it reconnects after power-on', async () => {
    const h2 = lab.host(2).name;
    await lab.powerOff(2);
    const started = Date.now();
    await expect(drivers.runner.run(h2, ['true'], { timeoutMs: 10_000 })).rejects.toMatchObject({ code: 'SSH_CONNECT' });
    expect(Date.now() - started).toBeLessThan(5_000);
    await lab.powerOn(2);
    const r = await waitFor(`${h2} to run commands again after power-on`, { timeoutMs: RECONNECT_TIMEOUT_MS }, () => drivers.runner.run(h2, ['hostname'], { timeoutMs: 5_000 }));
    expect(r.stdout.trim()).toBe(h2);
  });
});
