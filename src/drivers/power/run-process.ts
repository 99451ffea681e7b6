import { spawn } from 'node:child_process';
import { ConsolidatorError } from '../../errors.js';

export interface ProcessResult {
  readonly stdout: string;
  readonly stderr: string;
  /** null when the process was killed by a signal. */
  readonly exitCode: number | null;
  readonly durationMs: number;
}

export interface RunProcessOptions {
  readonly timeoutMs: number;
  readonly signal: AbortSignal;
  /** The child's whole environment (nothing is inherited unless the caller passes it). */
  readonly env: Readonly<Record<string, string>>;
  /** Output kept per stream; the rest is dropped (a runaway tool cannot fill memory). */
  readonly maxOutputBytes: number;
}

/**
 * Runs a local program with an argv array (no shell), a hard timeout and an abort signal; the child
 * is killed (SIGKILL) on either and always reaped before this settles. A non-zero exit is a result.
 * Throws COMMAND_TIMEOUT, ABORTED, or COMMAND_FAILED when the program cannot be started.
 */
export function runProcess(argv: readonly string[], options: RunProcessOptions): Promise<ProcessResult> {
  const [program, ...args] = argv;
  if (program === undefined) return Promise.reject(new ConsolidatorError('INTERNAL', 'runProcess needs a program'));
  if (options.signal.aborted) {
    return Promise.reject(new ConsolidatorError('ABORTED', `aborted before running ${program}`, { cause: options.signal.reason }));
  }
  const startMs = Date.now();
  return new Promise((resolve, reject) => {
    // Its own process group, so that a kill reaches whatever it started too (a wrapper script's children).
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...options.env }, shell: false, detached: true });
    const stdout = collect(options.maxOutputBytes);
    const stderr = collect(options.maxOutputBytes);
    child.stdout.on('data', stdout.add);
    child.stderr.on('data', stderr.add);
    let ended: 'timeout' | 'aborted' | undefined;
    let spawnError: Error | undefined;
    const kill = (why: 'timeout' | 'aborted') => {
      ended ??= why;
      killGroup(child.pid);
    };
    const timer = setTimeout(() => kill('timeout'), options.timeoutMs);
    const onAbort = () => kill('aborted');
    options.signal.addEventListener('abort', onAbort, { once: true });
    child.on('error', (e) => {
      spawnError = e;
    });
    // Once a killed process is gone, nothing it left behind may hold the result back.
    child.on('exit', () => {
      if (ended === undefined) return;
      child.stdout.destroy();
      child.stderr.destroy();
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      const durationMs = Date.now() - startMs;
      const details = { program, durationMs };
      if (spawnError !== undefined) {
        reject(new ConsolidatorError('COMMAND_FAILED', `cannot run ${program}: ${spawnError.message}`, { details, cause: spawnError }));
      } else if (ended === 'timeout') {
        reject(new ConsolidatorError('COMMAND_TIMEOUT', `${program} did not finish within ${options.timeoutMs} ms`, { details: { ...details, timeoutMs: options.timeoutMs } }));
      } else if (ended === 'aborted') {
        reject(new ConsolidatorError('ABORTED', `${program} was aborted`, { details, cause: options.signal.reason }));
      } else {
        resolve({ stdout: stdout.text(), stderr: stderr.text(), exitCode, durationMs });
      }
    });
  });
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch (e) {
    // ESRCH: already gone. Anything else is a bug worth seeing.
    if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
  }
}

function collect(maxBytes: number): { add: (chunk: Buffer) => void; text: () => string } {
  const chunks: Buffer[] = [];
  let size = 0;
  return {
    add: (chunk) => {
      if (size >= maxBytes) return;
      const kept = chunk.subarray(0, maxBytes - size);
      chunks.push(kept);
      size += kept.length;
    },
    text: () => Buffer.concat(chunks).toString('utf8'),
  };
}
