import { describe, expect, it } from 'vitest';
import { runProcess } from '../../../../src/drivers/power/run-process.js';
import { thrown } from '../../../helpers/thrown.js';

const base = { timeoutMs: 5000, env: { PATH: process.env['PATH'] ?? '' }, maxOutputBytes: 1024 };
const node = (code: string) => [process.execPath, '-e', code];


describe('runProcess', () => {
  it('returns output and exit code, a non-zero exit being a result', async () => {
    const result = await runProcess(node('process.stdout.write("out"); process.stderr.write("err"); process.exit(3)'), { ...base, signal: new AbortController().signal });
    expect(result).toMatchObject({ stdout: 'out', stderr: 'err', exitCode: 3 });
  });

  it('passes only the environment it is given, and arguments without a shell', async () => {
    const result = await runProcess([...node('console.log(JSON.stringify([Object.keys(process.env), process.argv.slice(1)]))'), '$HOME', ';', 'x y'], {
      ...base,
      env: { ONLY: '1' },
      signal: new AbortController().signal,
    });
    const [keys, args] = JSON.parse(result.stdout) as [string[], string[]];
    expect(keys.filter((k) => k !== 'NODE_OPTIONS')).toEqual(['ONLY']);
    expect(args).toEqual(['$HOME', ';', 'x y']);
  });

  it('keeps at most maxOutputBytes of each stream', async () => {
    const result = await runProcess(node('process.stdout.write("x".repeat(5000))'), { ...base, signal: new AbortController().signal });
    expect(result.stdout).toHaveLength(1024);
  });

  it('kills the process at the timeout: COMMAND_TIMEOUT', async () => {
    const startMs = Date.now();
    const e = await thrown(runProcess(node('setTimeout(() => {}, 10000)'), { ...base, timeoutMs: 100, signal: new AbortController().signal }));
    expect(e.code).toBe('COMMAND_TIMEOUT');
    expect(Date.now() - startMs).toBeLessThan(3000);
  });

  it('kills the process when aborted: ABORTED', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const e = await thrown(runProcess(node('setTimeout(() => {}, 10000)'), { ...base, signal: controller.signal }));
    expect(e.code).toBe('ABORTED');
  });

  it('fails with COMMAND_FAILED when the program does not exist', async () => {
    const e = await thrown(runProcess(['/nonexistent/program'], { ...base, signal: new AbortController().signal }));
    expect(e.code).toBe('COMMAND_FAILED');
    expect(e.message).toMatch(/ENOENT/);
  });
});
