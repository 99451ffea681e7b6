import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { ConsolidatorError, errorMessage, type ErrorCode } from '../../errors.js';
import { assertHostName, type HostId } from '../../model/ids.js';
import type { Logger } from '../../observability/logger.js';
import type { CommandRunner, ExecResult, RunOptions } from './command-runner.js';
import { keyTypeOf, knownHostsName, parseKnownHosts, sha256Fingerprint, verifyHostKey, type HostKeyVerdict } from './known-hosts.js';
import { shellQuote } from './shell-quote.js';

/** Where and as whom to reach one host (ResolvedSsh from the policy fits). */
export interface SshTarget {
  readonly address: string;
  readonly port: number;
  readonly user: string;
  /** Private key; default: the systemd credential `ssh-key`, then ~/.ssh/id_ed25519, id_ecdsa, id_rsa. */
  readonly keyFile?: string;
  /** Default ~/.ssh/known_hosts. Unknown, changed and revoked keys are refused. */
  readonly knownHostsFile?: string;
}

export interface Ssh2RunnerSettings {
  /** TCP connect + SSH handshake + authentication, at most. */
  readonly connectTimeoutMs: number;
  /** SSH-level keepalive: a dead peer is detected after interval x countMax. */
  readonly keepaliveIntervalMs: number;
  readonly keepaliveCountMax: number;
  /** Channels (commands) open at once on one host's connection; more wait their turn. */
  readonly maxChannelsPerHost: number;
  /** Reconnect backoff after a failed connection: min, doubling up to max. */
  readonly reconnectBackoffMinMs: number;
  readonly reconnectBackoffMaxMs: number;
  /** After a timeout or abort, how long the channel may take to close before the connection is dropped. */
  readonly channelCloseGraceMs: number;
  /** Output kept per stream; more is an error (COMMAND_FAILED), never silently truncated. */
  readonly maxOutputBytes: number;
}

export const SSH2_RUNNER_DEFAULTS: Ssh2RunnerSettings = {
  connectTimeoutMs: 10_000,
  keepaliveIntervalMs: 5_000,
  keepaliveCountMax: 3,
  // OpenSSH's default MaxSessions is 10; stay below it.
  maxChannelsPerHost: 8,
  reconnectBackoffMinMs: 500,
  reconnectBackoffMaxMs: 30_000,
  channelCloseGraceMs: 2_000,
  maxOutputBytes: 32 * 1024 * 1024,
};

/** File name of the systemd credential (LoadCredential=ssh-key:/path) used when no keyFile is set. */
export const SSH_KEY_CREDENTIAL = 'ssh-key';
const DEFAULT_KEY_FILES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

export interface Ssh2CommandRunnerDeps {
  /** SSH settings per host; a host it does not know is refused. */
  readonly targets: ReadonlyMap<HostId, SshTarget>;
  readonly logger: Logger;
  readonly settings?: Partial<Ssh2RunnerSettings>;
}

interface Connection {
  readonly client: Client;
  /** Settles once: the authenticated client, or the reason it could not connect. */
  ready: Promise<Client>;
  closed: boolean;
}

interface HostState {
  connection?: Connection;
  /** Consecutive failed connection attempts, for the backoff. */
  failures: number;
  nextAttemptAtMs: number;
  lastError?: ConsolidatorError;
  activeChannels: number;
  readonly waiters: (() => void)[];
}

/**
 * CommandRunner over SSH with the ssh2 library: one pooled connection per host, reused across
 * commands and cycles, with keepalive, reconnect backoff, a cap on concurrent channels, a timeout and
 * an abort signal on every command, and host keys checked against known_hosts.
 *
 * A timed-out or aborted command has its channel closed; the remote process may outlive it (sshd
 * sends it no signal without a terminal), so callers that start long remote jobs stop them themselves
 * (the virsh driver runs `virsh domjobabort`).
 */
export class Ssh2CommandRunner implements CommandRunner {
  private readonly settings: Ssh2RunnerSettings;
  private readonly hosts = new Map<HostId, HostState>();
  private readonly log: Logger;
  private closing = false;

  constructor(private readonly deps: Ssh2CommandRunnerDeps) {
    this.settings = { ...SSH2_RUNNER_DEFAULTS, ...deps.settings };
    this.log = deps.logger.child({ component: 'ssh' });
  }

  async run(host: HostId, argv: readonly string[], options: RunOptions): Promise<ExecResult> {
    assertHostName(host);
    const command = shellQuote(argv);
    if (this.closing) throw new ConsolidatorError('ABORTED', `ssh runner closed; not running ${argv[0] ?? ''} on ${host}`);
    const guard = new Deadline(host, argv, options);
    try {
      const state = this.stateOf(host);
      await this.acquireChannel(state, guard);
      try {
        const client = await this.connection(host, state, guard);
        return await this.exec(host, client, command, options.stdin, guard);
      } finally {
        this.releaseChannel(state);
      }
    } finally {
      guard.dispose();
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    for (const state of this.hosts.values()) {
      const connection = state.connection;
      delete state.connection;
      if (connection && !connection.closed) connection.client.end();
      for (const wake of state.waiters.splice(0)) wake();
    }
  }

  private stateOf(host: HostId): HostState {
    let state = this.hosts.get(host);
    if (!state) {
      state = { failures: 0, nextAttemptAtMs: 0, activeChannels: 0, waiters: [] };
      this.hosts.set(host, state);
    }
    return state;
  }

  private async acquireChannel(state: HostState, guard: Deadline): Promise<void> {
    while (state.activeChannels >= this.settings.maxChannelsPerHost) {
      await guard.race(
        new Promise<void>((resolve) => {
          state.waiters.push(resolve);
        }),
        'waiting for a free SSH channel',
      );
      if (this.closing) throw new ConsolidatorError('ABORTED', 'ssh runner closed');
    }
    state.activeChannels++;
  }

  private releaseChannel(state: HostState): void {
    state.activeChannels--;
    state.waiters.shift()?.();
  }

  private async connection(host: HostId, state: HostState, guard: Deadline): Promise<Client> {
    const existing = state.connection;
    if (existing && !existing.closed) return guard.race(existing.ready, 'connecting');
    const waitMs = state.nextAttemptAtMs - Date.now();
    if (waitMs > 0) {
      if (waitMs >= guard.remainingMs() || !state.lastError) {
        const last = state.lastError;
        throw new ConsolidatorError(last?.code ?? 'SSH_CONNECT', `${last?.message ?? `cannot connect to ${host}`} (next attempt in ${waitMs} ms)`, {
          details: { host, retryInMs: waitMs },
          ...(last ? { cause: last } : {}),
        });
      }
      await guard.sleep(waitMs, 'waiting to reconnect');
    }
    const connection = this.connect(host, state);
    state.connection = connection;
    return guard.race(connection.ready, 'connecting');
  }

  private connect(host: HostId, state: HostState): Connection {
    const target = this.deps.targets.get(host);
    const client = new Client();
    const connection: Connection = {
      client,
      closed: false,
      ready: Promise.resolve(client),
    };
    const ready = (async () => {
      if (!target) throw new ConsolidatorError('SSH_CONNECT', `no SSH settings for host ${host}`, { details: { host } });
      const [privateKey, knownHosts] = await Promise.all([readPrivateKey(host, target), readKnownHosts(host, target)]);
      let refusal: ConsolidatorError | undefined;
      const config: ConnectConfig = {
        host: target.address,
        port: target.port,
        username: target.user,
        privateKey,
        readyTimeout: this.settings.connectTimeoutMs,
        keepaliveInterval: this.settings.keepaliveIntervalMs,
        keepaliveCountMax: this.settings.keepaliveCountMax,
        hostVerifier: (key: Buffer): boolean => {
          const verdict = verifyHostKey(knownHosts.entries, target.address, target.port, key);
          if (verdict.kind === 'trusted') return true;
          refusal = hostKeyRefusal(host, target, knownHosts.file, key, verdict);
          return false;
        },
      };
      return new Promise<Client>((resolve, reject) => {
        client.once('ready', () => resolve(client));
        client.once('error', (e: Error & { level?: string }) => {
          if (refusal) reject(refusal);
          else if (e.level === 'client-authentication') {
            reject(new ConsolidatorError('SSH_AUTH', `ssh to ${host} (${target.user}@${target.address}:${target.port}): authentication refused`, { details: { host }, cause: e }));
          } else if (/timed out/i.test(e.message) && e.level === 'client-timeout') {
            reject(new ConsolidatorError('SSH_CONNECT', `ssh to ${host} (${target.address}:${target.port}): no answer within ${this.settings.connectTimeoutMs} ms`, { details: { host }, cause: e }));
          } else {
            reject(new ConsolidatorError('SSH_CONNECT', `ssh to ${host} (${target.address}:${target.port}) failed: ${e.message}`, { details: { host }, cause: e }));
          }
        });
        client.connect(config);
      });
    })();
    client.on('error', (e: Error) => {
      // After 'ready', errors (keepalive timeout, reset) end the connection; 'close' follows.
      this.log.debug('ssh connection error', { host, error: e });
    });
    client.on('close', () => {
      connection.closed = true;
      if (state.connection === connection) delete state.connection;
      this.log.debug('ssh connection closed', { host });
    });
    connection.ready = ready.then(
      (c) => {
        state.failures = 0;
        state.nextAttemptAtMs = 0;
        delete state.lastError;
        this.log.debug('ssh connected', { host });
        return c;
      },
      (e: unknown) => {
        connection.closed = true;
        if (state.connection === connection) delete state.connection;
        client.destroy();
        const error = e instanceof ConsolidatorError ? e : new ConsolidatorError('SSH_CONNECT', `ssh to ${host} failed: ${errorMessage(e)}`, { cause: e });
        state.failures++;
        const backoff = Math.min(this.settings.reconnectBackoffMaxMs, this.settings.reconnectBackoffMinMs * 2 ** (state.failures - 1));
        state.nextAttemptAtMs = Date.now() + backoff;
        state.lastError = error;
        this.log.warn('ssh connect failed', { host, code: error.code, error: error.message, failures: state.failures, retryInMs: backoff });
        throw error;
      },
    );
    // Callers race this promise against their own deadline and may have gone; the failure is logged
    // and kept in state.lastError above, so nothing is lost by not rethrowing it here.
    connection.ready.catch(() => undefined);
    return connection;
  }

  private exec(host: HostId, client: Client, command: string, stdin: string | undefined, guard: Deadline): Promise<ExecResult> {
    return new Promise<ExecResult>((resolve, reject) => {
      let settled = false;
      const finish = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        guard.onExpire(undefined);
        outcome();
      };
      const expire = (reason: ConsolidatorError, channel: ClientChannel | undefined) => {
        finish(() => reject(reason));
        if (!channel) return;
        try {
          channel.signal('KILL');
        } catch (e) {
          this.log.debug('ssh signal failed', { host, error: e });
        }
        channel.close();
        const grace = setTimeout(() => {
          this.log.warn('ssh channel did not close; dropping the connection', { host });
          client.destroy();
        }, this.settings.channelCloseGraceMs);
        channel.once('close', () => clearTimeout(grace));
      };
      guard.onExpire((reason) => expire(reason, undefined));
      const onChannel = (err: Error | undefined, channel: ClientChannel) => {
        if (err) {
          finish(() => reject(new ConsolidatorError('SSH_CONNECT', `ssh to ${host}: cannot open a channel: ${err.message}`, { details: { host }, cause: err })));
          return;
        }
        if (settled) {
          channel.close();
          return;
        }
        guard.onExpire((reason) => expire(reason, channel));
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let outBytes = 0;
        let errBytes = 0;
        let exitCode: number | null | undefined;
        const tooMuch = () =>
          expire(new ConsolidatorError('COMMAND_FAILED', `command on ${host} wrote more than ${this.settings.maxOutputBytes} bytes`, { details: { host } }), channel);
        channel.on('data', (chunk: Buffer) => {
          outBytes += chunk.length;
          if (outBytes > this.settings.maxOutputBytes) tooMuch();
          else stdout.push(chunk);
        });
        channel.stderr.on('data', (chunk: Buffer) => {
          errBytes += chunk.length;
          if (errBytes > this.settings.maxOutputBytes) tooMuch();
          else stderr.push(chunk);
        });
        channel.on('exit', (code: number | null) => {
          exitCode = typeof code === 'number' ? code : null;
        });
        channel.on('close', () => {
          finish(() => {
            if (exitCode === undefined) {
              reject(new ConsolidatorError('SSH_CONNECT', `connection to ${host} lost while running ${guard.what}`, { details: { host } }));
              return;
            }
            resolve({ stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8'), exitCode });
          });
        });
        if (stdin !== undefined) channel.end(stdin);
        else channel.end();
      };
      try {
        client.exec(command, onChannel);
      } catch (e) {
        finish(() => reject(new ConsolidatorError('SSH_CONNECT', `ssh to ${host}: connection not usable: ${errorMessage(e)}`, { details: { host }, cause: e })));
      }
    });
  }
}

/** The timeout and abort signal of one run(), turned into ConsolidatorErrors. */
class Deadline {
  readonly what: string;
  private readonly startedMs = Date.now();
  private readonly timer: NodeJS.Timeout;
  private expired?: ConsolidatorError;
  private listener: ((reason: ConsolidatorError) => void) | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = () => this.expire('ABORTED', `${this.what} on ${this.host} aborted`);

  constructor(
    private readonly host: HostId,
    argv: readonly string[],
    private readonly options: RunOptions,
  ) {
    this.what = `'${argv.slice(0, 2).join(' ')}'`;
    this.timer = setTimeout(() => this.expire('COMMAND_TIMEOUT', `${this.what} on ${host} timed out after ${options.timeoutMs} ms`), options.timeoutMs);
    this.signal = options.signal;
    if (this.signal?.aborted) this.onAbort();
    else this.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  remainingMs(): number {
    return this.options.timeoutMs - (Date.now() - this.startedMs);
  }

  /** Called at most once, when the deadline passes or the signal aborts; undefined unregisters. */
  onExpire(listener: ((reason: ConsolidatorError) => void) | undefined): void {
    this.listener = listener;
    if (listener && this.expired) listener(this.expired);
  }

  /** Waits for `promise`, or throws when the deadline passes first. */
  race<T>(promise: Promise<T>, stage: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.onExpire((reason) => reject(new ConsolidatorError(reason.code, `${reason.message} (${stage})`, { details: reason.details })));
      promise.then(
        (v) => {
          this.onExpire(undefined);
          resolve(v);
        },
        (e: unknown) => {
          this.onExpire(undefined);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  sleep(ms: number, stage: string): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    return this.race(
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, ms);
      }),
      stage,
    ).finally(() => clearTimeout(timer));
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.onAbort);
    this.listener = undefined;
  }

  private expire(code: ErrorCode, message: string): void {
    if (this.expired) return;
    this.expired = new ConsolidatorError(code, message, { details: { host: this.host, timeoutMs: this.options.timeoutMs } });
    this.listener?.(this.expired);
  }
}

async function readPrivateKey(host: HostId, target: SshTarget): Promise<Buffer> {
  const candidates = target.keyFile
    ? [target.keyFile]
    : [
        ...(process.env.CREDENTIALS_DIRECTORY ? [join(process.env.CREDENTIALS_DIRECTORY, SSH_KEY_CREDENTIAL)] : []),
        ...DEFAULT_KEY_FILES.map((f) => join(homedir(), '.ssh', f)),
      ];
  for (const file of candidates) {
    try {
      const key = await readFile(file);
      if (key.includes('ENCRYPTED')) {
        throw new ConsolidatorError('SSH_AUTH', `ssh key ${file} for ${host} is passphrase-protected; use an unencrypted key kept readable by root only`, {
          details: { host, keyFile: file },
        });
      }
      return key;
    } catch (e) {
      if (e instanceof ConsolidatorError) throw e;
      if (target.keyFile) {
        throw new ConsolidatorError('SSH_AUTH', `cannot read ssh key ${file} for ${host}: ${errorMessage(e)}`, { details: { host, keyFile: file }, cause: e });
      }
    }
  }
  throw new ConsolidatorError('SSH_AUTH', `no ssh key for ${host}: set ssh.keyFile (tried ${candidates.join(', ')})`, { details: { host } });
}

async function readKnownHosts(host: HostId, target: SshTarget): Promise<{ file: string; entries: ReturnType<typeof parseKnownHosts> }> {
  const file = target.knownHostsFile ?? join(homedir(), '.ssh', 'known_hosts');
  try {
    return { file, entries: parseKnownHosts(await readFile(file, 'utf8')) };
  } catch (e) {
    throw new ConsolidatorError('SSH_HOST_KEY', `cannot read known_hosts ${file} to verify ${host}: ${errorMessage(e)}`, {
      details: { host, knownHostsFile: file },
      cause: e,
    });
  }
}

function hostKeyRefusal(host: HostId, target: SshTarget, file: string, key: Buffer, verdict: Exclude<HostKeyVerdict, { kind: 'trusted' }>): ConsolidatorError {
  const fingerprint = sha256Fingerprint(key);
  const keyType = keyTypeOf(key) ?? 'unknown type';
  const where = knownHostsName(target.address, target.port);
  const reason =
    verdict.kind === 'unknown'
      ? `is not in ${file}`
      : verdict.kind === 'revoked'
        ? `is revoked in ${file} line ${verdict.line}`
        : `does not match the key(s) on line ${verdict.knownLines.join(', ')} of ${file}: the host key CHANGED (reinstall, or someone in the middle)`;
  return new ConsolidatorError('SSH_HOST_KEY', `host key of ${host} (${where}) ${keyType} ${fingerprint} ${reason}; refused`, {
    details: { host, address: target.address, port: target.port, fingerprint, keyType, verdict: verdict.kind, knownHostsFile: file },
  });
}
