import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { DEFAULTS, DEMO_CONTROL_SOCKET } from '../config/defaults.js';
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
  socket: {
    type: 'string',
    valueName: 'PATH',
    help: `the daemon's operator socket (default: $${SOCKET_ENV}, else control.socket in --policy, else ${DEFAULTS.control.socket}, then the demo's ${DEMO_CONTROL_SOCKET})`,
  },
};

/**
 * Where to look for the daemon, in order. A socket the operator named (--socket, then
 * $CONSOLIDATOR_SOCKET, then --policy's control.socket) is the only place looked at: a command meant
 * for one cluster never falls through to another daemon. With none named: the installed policy's
 * control.socket when it can be read, the default socket, then the demo's well-known socket.
 */
export function socketCandidates(
  args: ParsedArgs,
  env: Readonly<Record<string, string | undefined>>,
  named: { readonly policySocket?: string | undefined; readonly installedSocket?: string | undefined },
): readonly string[] {
  const option = args.values['socket'];
  if (typeof option === 'string' && option !== '') return [option];
  const fromEnv = env[SOCKET_ENV];
  if (fromEnv !== undefined && fromEnv !== '') return [fromEnv];
  if (named.policySocket !== undefined) return [named.policySocket];
  return [...new Set([named.installedSocket ?? DEFAULTS.control.socket, DEFAULTS.control.socket, DEMO_CONTROL_SOCKET])];
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

/** What a look for the daemon found: the daemon, or the sockets tried and the policy to act with. */
export interface DaemonSearch {
  readonly found: { readonly client: DaemonClient; readonly status: Record<string, unknown> } | undefined;
  readonly tried: readonly string[];
  /** The policy given with --policy (loaded, valid), or undefined. */
  readonly policy: LoadedPolicy | undefined;
  /** The policy file to act with when no daemon answers: --policy's, else the installed one. */
  readonly policyFile: string;
}

/**
 * Looks for the running daemon where socketCandidates says, in order. Reads a policy only to learn
 * where its socket is: --policy's (which must be valid), or the installed one when it can be read
 * (a member of the group need not read /etc/consolidator, and a broken one must not stop status).
 */
export async function searchDaemon(args: ParsedArgs, env: Readonly<Record<string, string | undefined>>): Promise<DaemonSearch> {
  const given = typeof args.values['policy'] === 'string' ? args.values['policy'] : undefined;
  const named = typeof args.values['socket'] === 'string' || (env[SOCKET_ENV] ?? '') !== '';
  let policy: LoadedPolicy | undefined;
  let installedSocket: string | undefined;
  let group: string = DEFAULTS.control.group;
  if (given !== undefined) {
    policy = await loadValidPolicy(given);
    group = policy.policy.control.group;
  } else if (!named) {
    const installed = await loadPolicyFile(DEFAULT_POLICY_FILE).catch(() => undefined);
    if (installed?.ok) {
      installedSocket = installed.value.policy.control.socket;
      group = installed.value.policy.control.group;
    }
  }
  const tried = socketCandidates(args, env, { policySocket: policy?.policy.control.socket, installedSocket });
  for (const path of tried) {
    const found = await findDaemon(path, group);
    if (found) return { found, tried, policy, policyFile: given ?? DEFAULT_POLICY_FILE };
  }
  return { found: undefined, tried, policy, policyFile: given ?? DEFAULT_POLICY_FILE };
}

/** Either the running daemon to go through, or the policy to act with stand-alone. */
export type OperatorContext =
  | { readonly daemon: DaemonClient; readonly logger: Logger; readonly status: Record<string, unknown> }
  | { readonly daemon: undefined; readonly logger: Logger; readonly loaded: LoadedPolicy };
export type StandaloneContext = Extract<OperatorContext, { daemon: undefined }>;

/**
 * Looks for a running daemon (searchDaemon). Commands that change things go through it when it
 * answers (so two actors never fight over a host), and then need no policy file locally; without one
 * they act themselves with the policy, holding the state lock. Logs go to stderr (warnings only
 * unless --log-level), so stdout is the command's output.
 */
export async function operatorContext(args: ParsedArgs, io: CommandIo, env: Readonly<Record<string, string | undefined>> = process.env): Promise<OperatorContext> {
  const level = (typeof args.values['log-level'] === 'string' ? args.values['log-level'] : 'warn') as LogLevel;
  const format = args.values['log-format'] === 'json' ? 'json' : 'pretty';
  const logger = createLogger({ level, format, stream: io.stderr });
  const search = await searchDaemon(args, env);
  if (search.found) return { daemon: search.found.client, logger, status: search.found.status };
  if (search.policy) return { daemon: undefined, logger, loaded: search.policy };
  try {
    await access(search.policyFile, constants.R_OK);
  } catch {
    throw new ConsolidatorError(
      'POLICY_UNREADABLE',
      `no daemon answers on ${search.tried.join(', ')} and there is no readable policy at ${search.policyFile} to act without one: ` +
        'pass --policy FILE (or --socket PATH, $' + SOCKET_ENV + ') or start the daemon (the demo: npx consolidator run --policy config/demo.yaml)',
      { details: { tried: search.tried.join(', '), policyFile: search.policyFile } },
    );
  }
  return { daemon: undefined, logger, loaded: await loadValidPolicy(search.policyFile) };
}

async function loadValidPolicy(file: string): Promise<LoadedPolicy> {
  const result = await loadPolicyFile(file);
  if (!result.ok) {
    throw new ConsolidatorError('POLICY_INVALID', `${file} is not a valid policy:\n${result.issues.map(formatIssue).join('\n')}`);
  }
  return result.value;
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
export async function withStandaloneDaemon<T>(ctx: StandaloneContext, fn: (daemon: Daemon) => Promise<T>): Promise<T> {
  // Under HA only the elected leader acts, fenced on etcd: a command of its own would act beside it.
  if (ctx.loaded.policy.ha) {
    throw new ConsolidatorError(
      'NOT_LEADER',
      `no daemon answers here and ${ctx.loaded.file} has an ha section: operator commands go through the leading controller (consolidator status on any controller names it); none acts on its own`,
    );
  }
  const { daemon, world, dispose } = await composeDaemon(ctx.loaded, ctx.logger, { role: 'standalone', env: {} });
  await daemon.start();
  world?.clock.start();
  try {
    return await fn(daemon);
  } finally {
    await daemon.stop();
    world?.clock.stop();
    await dispose();
  }
}
