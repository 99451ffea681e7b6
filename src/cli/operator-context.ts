import { formatIssue, loadPolicyFile, type LoadedPolicy } from '../config/load.js';
import type { Daemon } from '../daemon/daemon.js';
import { ConsolidatorError } from '../errors.js';
import { createLogger, type LogLevel, type Logger } from '../observability/logger.js';
import type { CommandIo, OptionSpecs, ParsedArgs } from './command.js';
import { composeDaemon } from './compose-daemon.js';
import { DaemonClient } from './daemon-client.js';

export const DEFAULT_POLICY_FILE = '/etc/consolidator/consolidator.yaml';

export const POLICY_OPTION: OptionSpecs = {
  policy: { type: 'string', short: 'p', valueName: 'FILE', help: `the policy file (default ${DEFAULT_POLICY_FILE})` },
};
export const JSON_OPTION: OptionSpecs = { json: { type: 'boolean', help: 'print JSON for scripts instead of a table' } };

export interface OperatorContext {
  readonly loaded: LoadedPolicy;
  readonly logger: Logger;
  /** The running daemon, when one answers on the policy's metrics.listen. */
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
  const client = DaemonClient.forListen(result.value.policy.metrics.listen);
  const status = await client.status();
  return { loaded: result.value, logger, daemon: status ? client : undefined };
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
