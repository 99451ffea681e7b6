/**
 * The one error class of the project. Expected outcomes (a host kept on, a policy error list) are
 * data; a ConsolidatorError is a failure, with a code from a closed set that is usable as a log field
 * and a metric label, details that never carry secrets, and the underlying cause.
 */
export const ERROR_CODES = [
  'POLICY_INVALID',
  'POLICY_UNREADABLE',
  'USAGE',
  'SSH_CONNECT',
  'SSH_HOST_KEY',
  'SSH_AUTH',
  'COMMAND_TIMEOUT',
  'COMMAND_FAILED',
  'PARSE',
  'OBSERVATION_INCONSISTENT',
  'GUEST_COUNT_UNCERTAIN',
  'INVALID_NAME',
  'PREFLIGHT_FAILED',
  'MIGRATION_FAILED',
  'MIGRATION_TIMEOUT',
  'POWER_FAILED',
  'POWER_TIMEOUT',
  'IDENTITY_MISMATCH',
  'GUESTS_PRESENT',
  'BMC_AUTH',
  'BMC_UNREACHABLE',
  'UNKNOWN_DRIVER',
  'STATE_CORRUPT',
  'STATE_IO',
  'INVARIANT_VIOLATED',
  'WORKLOAD_INVALID',
  'ABORTED',
  'CONTROL_SOCKET',
  'PERMISSION_DENIED',
  'ETCD_UNAVAILABLE',
  'ETCD_REQUEST',
  'NOT_LEADER',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export type ErrorDetails = Readonly<Record<string, string | number | boolean | undefined>>;

export class ConsolidatorError extends Error {
  override readonly name = 'ConsolidatorError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, options: { details?: ErrorDetails; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }

  /** A plain object for structured logs: code, message, details and the chain of causes. */
  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, details: this.details, cause: describeCause(this.cause) };
  }
}

export function isConsolidatorError(e: unknown, code?: ErrorCode): e is ConsolidatorError {
  return e instanceof ConsolidatorError && (code === undefined || e.code === code);
}

/** Wraps anything thrown into a ConsolidatorError, keeping an existing one as it is. */
export function asConsolidatorError(e: unknown, code: ErrorCode, message: string): ConsolidatorError {
  if (e instanceof ConsolidatorError) return e;
  return new ConsolidatorError(code, `${message}: ${errorMessage(e)}`, { cause: e });
}

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

function describeCause(cause: unknown, depth = 0): unknown {
  if (cause === undefined || depth > 5) return undefined;
  if (cause instanceof ConsolidatorError) return cause.toJSON();
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    return {
      name: cause.name,
      message: cause.message,
      ...(typeof code === 'string' ? { code } : {}),
      cause: describeCause(cause.cause, depth + 1),
    };
  }
  return String(cause);
}
