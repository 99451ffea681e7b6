import { execFile } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { DEFAULTS } from '../config/defaults.js';
import { formatIssue, loadPolicyFile, type LoadedPolicy } from '../config/load.js';
import type { Daemon } from '../daemon/daemon.js';
import { ConsolidatorError } from '../errors.js';
import { createLogger, type LogLevel, type Logger } from '../observability/logger.js';
import type { CommandIo, OptionSpecs, ParsedArgs } from './command.js';
import { composeDaemon } from './compose-daemon.js';
import { DaemonClient } from './daemon-client.js';

export const DEFAULT_POLICY_FILE = '/etc/consolidator/consolidator.yaml';
const GETENT_TIMEOUT_MS = 2_000;

export const POLICY_OPTION: OptionSpecs = {
  policy: { type: 'string', short: 'p', valueName: 'FILE', help: `the policy file (default ${DEFAULT_POLICY_FILE})` },
};
export const JSON_OPTION: OptionSpecs = { json: { type: 'boolean', help: 'print JSON for scripts instead of a table' } };
/** The environment variable that names the operator socket (below --socket, above the policy). */
export const SOCKET_ENV = 'CONSOLIDATOR_SOCKET';
export const SOCKET_OPTION: OptionSpecs = {
  socket: { type: 'string', valueName: 'PATH', help: `the daemon's operator socket (default: $${SOCKET_ENV}, else control.socket in the policy, ${DEFAULTS.control.socket})` },
};

/** Where the operator socket is: --socket, then $CONSOLIDATOR_SOCKET, then the policy's control.socket. */
export function socketPath(args: ParsedArgs, env: Readonly<Record<string, string | undefined>>, policy: LoadedPolicy['policy'] | undefined): string {
  const option = args.values['socket'];
  if (typeof option === 'string' && option !== '') return option;
  const fromEnv = env[SOCKET_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  return policy?.control.socket ?? DEFAULTS.control.socket;
}

/**
 * The running daemon on the operator socket, undefined when none runs there. Not being allowed to
 * talk to it is an error that says how to become allowed, never a reason to act without it.
 */
export async function findDaemon(path: string, group: string): Promise<{ client: DaemonClient; status: Record<string, unknown> } | undefined> {
  const client = DaemonClient.forSocket(path);
  const found = await client.probe();
  if (found.kind === 'denied') {
    const owner = (await socketGroup(path)) ?? group;
    throw new ConsolidatorError('PERMISSION_DENIED', `permission denied on ${path}: add yourself to group ${owner} (usermod -aG ${owner} $USER, then log in again)`, { details: { path, group: owner } });
  }
  return found.kind === 'answers' ? { client, status: found.status } : undefined;
}

export interface OperatorContext {
  readonly loaded: LoadedPolicy;
  readonly logger: Logger;
  /** The running daemon, when one answers on the operator socket. */
  readonly daemon: DaemonClient | undefined;
}

/**
 * Loads the policy and looks for a running daemon. Commands that change things go through it when it
 * answers (so two actors never fight over a host); without one they act themselves, holding the state
 * lock. Logs go to stderr (warnings only unless --log-level), so stdout is the command's output.
 */
export async function operatorContext(args: ParsedArgs, io: CommandIo): Promise<OperatorContext> {
  const file = typeof args.values['policy'] === 'string' ? args.values['policy'] : DEFAULT_POLICY_FILE;
  const result = await loadPolicyFile(file);
  if (!result.ok) {
    throw new ConsolidatorError('POLICY_INVALID', `${file} is not a valid policy:\n${result.issues.map(formatIssue).join('\n')}`);
  }
  const level = (typeof args.values['log-level'] === 'string' ? args.values['log-level'] : 'warn') as LogLevel;
  const format = args.values['log-format'] === 'json' ? 'json' : 'pretty';
  const logger = createLogger({ level, format, stream: io.stderr });
  const found = await findDaemon(socketPath(args, process.env, result.value.policy), result.value.policy.control.group);
  return { loaded: result.value, logger, daemon: found?.client };
}

/** The name of the group that owns the socket file (what the daemon or systemd really set), if it can be read. */
async function socketGroup(path: string): Promise<string | undefined> {
  try {
    const { gid } = await stat(path);
    const { stdout } = await promisify(execFile)('getent', ['group', String(gid)], { timeout: GETENT_TIMEOUT_MS });
    const name = stdout.split(':')[0];
    return name !== undefined && name !== '' ? name : undefined;
  } catch {
    return undefined;
  }
}

/** Runs `fn` on a daemon of our own, with no schedule and no HTTP, holding the state lock. */
export async function withStandaloneDaemon<T>(ctx: OperatorContext, fn: (daemon: Daemon) => Promise<T>): Promise<T> {
  const { daemon, world } = await composeDaemon(ctx.loaded, ctx.logger, { role: 'standalone', env: {} });
  await daemon.start();
  world?.clock.start();
  try {
    return await fn(daemon);
  } finally {
    await daemon.stop();
    world?.clock.stop();
  }
}
