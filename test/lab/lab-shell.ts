import { execFile, spawnSync } from 'node:child_process';

/** How long one lab housekeeping command (ip, nsenter virsh, ssh-keygen) may take. */
export const LAB_COMMAND_TIMEOUT_MS = 60_000;

export interface LabCommandResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** Runs a local command (no shell) and returns its output, whatever its exit status. */
export function runLocal(file: string, args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<LabCommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      [...args],
      { timeout: options.timeoutMs ?? LAB_COMMAND_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(new Error(`${file} ${args.join(' ')}: ${error.message}${stderr ? `\n${stderr}` : ''}`));
          return;
        }
        resolve({ stdout, stderr, exitCode: typeof error?.code === 'number' ? error.code : 0 });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Like runLocal, but a non-zero exit is an error that carries stderr. */
export async function mustRunLocal(file: string, args: readonly string[], options: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const result = await runLocal(file, args, options);
  if (result.exitCode !== 0) {
    throw new Error(`${file} ${args.join(' ')} exited ${result.exitCode}: ${result.stderr.trim() || result.stdout.trim()}`);
  }
  return result.stdout;
}

/** Synchronous variant for exit handlers, where nothing asynchronous runs any more. */
export function runLocalSync(file: string, args: readonly string[]): string {
  const out = spawnSync(file, [...args], { encoding: 'utf8', timeout: LAB_COMMAND_TIMEOUT_MS });
  return out.stdout ?? '';
}
