import { readFile } from 'node:fs/promises';
import { ConsolidatorError, errorMessage, isConsolidatorError } from '../../errors.js';
import type { HostId } from '../../model/ids.js';
import { runProcess } from './run-process.js';

/** Where a host's BMC is and who we are to it; the password stays in its file until the call. */
export interface BmcTarget {
  readonly host: HostId;
  readonly address: string;
  readonly port: number;
  readonly user?: string;
  readonly passwordFile?: string;
}

export interface IpmitoolSettings {
  /** ipmitool -C; ipmi_sim needs 3, real BMCs usually 3 or 17. */
  readonly cipherSuite: number;
  /** ipmitool -R. */
  readonly retries: number;
  /** Hard limit for one ipmitool call, whatever -R and -N add up to. */
  readonly commandTimeoutMs: number;
}

export interface IpmitoolOutput {
  readonly stdout: string;
  readonly stderr: string;
  /** null when ipmitool was killed by a signal. */
  readonly exitCode: number | null;
  readonly durationMs: number;
}

/**
 * Runs one ipmitool command against a host's BMC. A non-zero exit is returned as output (the caller
 * classifies it); thrown: BMC_UNREACHABLE (no result within the command timeout), BMC_AUTH (the
 * password file cannot be read), POWER_FAILED (ipmitool cannot be started), ABORTED.
 */
export interface IpmitoolRunner {
  run(target: BmcTarget, command: readonly string[], signal: AbortSignal): Promise<IpmitoolOutput>;
}

const MS_PER_SECOND = 1000;
/** ipmitool treats -R 0 as "use my default" (4 retries, about 20 s against a silent BMC). */
const MIN_RETRIES = 1;
/** -N takes whole seconds. */
const MIN_ATTEMPT_TIMEOUT_SECONDS = 1;
const OUTPUT_LIMIT_BYTES = 64 * 1024;
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * ipmitool's argv for one command: IPMI v2 (lanplus), the cipher suite, retries and a per-attempt
 * timeout that spreads the command timeout over the attempts, and -v so that a session failure says
 * why (wrong password and silent BMC read the same without it). The password is never here: with a
 * password file, `-E` makes ipmitool read it from IPMI_PASSWORD in its environment.
 */
export function ipmitoolArgv(program: string, target: BmcTarget, settings: IpmitoolSettings, command: readonly string[]): string[] {
  const retries = Math.max(MIN_RETRIES, settings.retries);
  const attemptSeconds = Math.max(MIN_ATTEMPT_TIMEOUT_SECONDS, Math.floor(settings.commandTimeoutMs / MS_PER_SECOND / (retries + 1)));
  return [
    program,
    '-I',
    'lanplus',
    '-H',
    target.address,
    '-p',
    String(target.port),
    ...(target.user !== undefined ? ['-U', target.user] : []),
    ...(target.passwordFile !== undefined ? ['-E'] : []),
    '-C',
    String(settings.cipherSuite),
    '-R',
    String(retries),
    '-N',
    String(attemptSeconds),
    '-v',
    ...command,
  ];
}

/** The password: the first line of the file, without its line ending. */
export async function readBmcPassword(target: BmcTarget & { readonly passwordFile: string }): Promise<string> {
  let text: string;
  try {
    text = await readFile(target.passwordFile, 'utf8');
  } catch (e) {
    throw new ConsolidatorError('BMC_AUTH', `cannot read the BMC password file of ${target.host} (${target.passwordFile}): ${errorMessage(e)}`, {
      details: { host: target.host, passwordFile: target.passwordFile },
      cause: e,
    });
  }
  const password = text.split(/\r?\n/, 1)[0] ?? '';
  if (password === '') {
    throw new ConsolidatorError('BMC_AUTH', `the BMC password file of ${target.host} (${target.passwordFile}) is empty`, {
      details: { host: target.host, passwordFile: target.passwordFile },
    });
  }
  return password;
}

export interface ProcessIpmitoolRunnerDeps {
  readonly settings: IpmitoolSettings;
  /** The ipmitool binary (looked up in PATH by default). */
  readonly program?: string;
}

/**
 * Runs the real ipmitool as a child process: argv array, no shell, a minimal environment (PATH, and
 * IPMI_PASSWORD read from the host's password file for this one call), killed at the command timeout.
 */
export class ProcessIpmitoolRunner implements IpmitoolRunner {
  private readonly settings: IpmitoolSettings;
  private readonly program: string;

  constructor(deps: ProcessIpmitoolRunnerDeps) {
    this.settings = deps.settings;
    this.program = deps.program ?? 'ipmitool';
  }

  async run(target: BmcTarget, command: readonly string[], signal: AbortSignal): Promise<IpmitoolOutput> {
    const env: Record<string, string> = { PATH: process.env['PATH'] ?? FALLBACK_PATH, LC_ALL: 'C' };
    if (target.passwordFile !== undefined) env['IPMI_PASSWORD'] = await readBmcPassword({ ...target, passwordFile: target.passwordFile });
    const what = `ipmitool ${command.join(' ')}`;
    const details = { host: target.host, bmc: `${target.address}:${target.port}`, command: command.join(' ') };
    try {
      return await runProcess(ipmitoolArgv(this.program, target, this.settings, command), {
        timeoutMs: this.settings.commandTimeoutMs,
        signal,
        env,
        maxOutputBytes: OUTPUT_LIMIT_BYTES,
      });
    } catch (e) {
      if (isConsolidatorError(e, 'COMMAND_TIMEOUT')) {
        throw new ConsolidatorError(
          'BMC_UNREACHABLE',
          `the BMC of ${target.host} (${target.address}:${target.port}) did not answer ${what} within ${this.settings.commandTimeoutMs / MS_PER_SECOND} s`,
          { details: { ...details, timeoutMs: this.settings.commandTimeoutMs }, cause: e },
        );
      }
      if (isConsolidatorError(e, 'COMMAND_FAILED')) {
        throw new ConsolidatorError('POWER_FAILED', `cannot run ipmitool for ${target.host}: ${e.message}`, { details, cause: e });
      }
      throw e;
    }
  }
}
