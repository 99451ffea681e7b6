/**
 * Closed vocabularies that several layers report in: log fields and metric labels. Each is a string
 * union, so a value can be written as it is and checked against the list at a metric's edge.
 */

/** How an action ended. dry-run: it was only logged (mode: dry-run). */
export const ACTION_RESULTS = ['ok', 'failed', 'skipped', 'dry-run'] as const;
export type ActionResult = (typeof ACTION_RESULTS)[number];

/**
 * Why the actuator did not run a planned step: an expected outcome of the live re-check, not a failure.
 * - DependencyNotOk: a step it depends on failed, was skipped, or never completed.
 * - Stopping: the daemon is stopping (or an operator job was cancelled): no new step starts.
 * - MigrationCapReached: the execution's migration budget (maxMigrationsPerCycle, or a drain's) is used up.
 * - Maintenance / Excluded: the host went into maintenance, or the policy excludes it.
 * - VmGone: the VM no longer runs on its source. AlreadyOnDestination: it is already there.
 * - NoRoom: a fresh look at the destination shows it would go above target.
 * - PreflightFailed: a migration prerequisite failed (peer name, shared storage, versions, memory).
 * - MinHostsOn: powering off would leave fewer hosts on than the policy's minimum.
 * - PowerBudgetExhausted: the host reached its power actions per day.
 * - GuestsPresent: the fresh query before a power-off found a guest on the host.
 * - NotPoweredOffByUs: a power-on of a host consolidator did not power off.
 * - StateNotSaved: a save of the state failed during this execution: no new step of it starts.
 */
export const SKIP_REASONS = [
  'DependencyNotOk',
  'Stopping',
  'MigrationCapReached',
  'Maintenance',
  'Excluded',
  'VmGone',
  'AlreadyOnDestination',
  'NoRoom',
  'PreflightFailed',
  'MinHostsOn',
  'PowerBudgetExhausted',
  'GuestsPresent',
  'NotPoweredOffByUs',
  'StateNotSaved',
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/**
 * Why a host needs an operator. PowerOnFailed: the power-on command failed or the BMC never reported
 * the host on. BootTimeout: on, but its hypervisor did not answer within power.bootTimeoutSeconds
 * (marked by whoever waits for the boot: the actuator). IdentityMismatch: its BMC reports another
 * machine's system UUID than the host does (a mis-wired inventory). GuestsAtHardOff: a guest appeared
 * while it shut down, or its guests could not be counted then, so the hard power-off was not sent.
 */
export const ATTENTION_REASONS = ['PowerOnFailed', 'BootTimeout', 'IdentityMismatch', 'GuestsAtHardOff'] as const;
export type AttentionReason = (typeof ATTENTION_REASONS)[number];

/**
 * What one attempt of a power chain asked of one power path (src/drivers/power/power-chain.ts):
 * status, on (a power-on, or a re-send of it), force-on (the path's escalation: ForceOn, PowerCycle),
 * off (a power-off, soft or hard).
 */
export const POWER_ATTEMPT_ACTIONS = ['status', 'on', 'force-on', 'off'] as const;
export type PowerAttemptAction = (typeof POWER_ATTEMPT_ACTIONS)[number];

/**
 * How one attempt ended:
 * - ok: done, and read back where the path can (the host reports the requested state).
 * - unconfirmed: sent through a path without state (wol), and no other path could read the state:
 *   the boot timeout decides.
 * - timeout: the request was taken but the state did not follow (POWER_TIMEOUT).
 * - unreachable: the path did not answer (BMC_UNREACHABLE). auth: it refused our credentials (BMC_AUTH).
 * - failed: refused or broken otherwise (POWER_FAILED, PARSE, ...). aborted: the daemon is stopping.
 */
export const POWER_ATTEMPT_OUTCOMES = ['ok', 'unconfirmed', 'timeout', 'unreachable', 'auth', 'failed', 'aborted'] as const;
export type PowerAttemptOutcome = (typeof POWER_ATTEMPT_OUTCOMES)[number];
