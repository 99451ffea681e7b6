import type { HostId } from '../../model/ids.js';

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Exit status of the remote command; null when it was killed by a signal. */
  readonly exitCode: number | null;
}

export interface RunOptions {
  /** The command is abandoned (and its channel closed) after this long: COMMAND_TIMEOUT. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly stdin?: string;
}

/**
 * Runs a command on a host. The command is an argv: implementations quote it through the one quoting
 * function (shell-quote.ts), never by string concatenation. A non-zero exit is a result, not an error;
 * connection failures, timeouts and aborts throw ConsolidatorError (SSH_CONNECT, SSH_HOST_KEY,
 * SSH_AUTH, COMMAND_TIMEOUT, ABORTED).
 */
export interface CommandRunner {
  run(host: HostId, argv: readonly string[], options: RunOptions): Promise<ExecResult>;
  /** Closes pooled connections. */
  close(): Promise<void>;
}
