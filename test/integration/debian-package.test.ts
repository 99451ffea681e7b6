import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

async function exec(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(cmd, args, { ...opts, maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failure = e as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

// `npm run package` as an operator or a release job runs it; the .deb is then taken apart with
// Debian's own tools (dpkg-deb, lintian, man) and the packaged code is run from the unpacked tree.
describe('the Debian package', () => {
  let work: string;
  let deb: string;
  let unpacked: string;
  let buildSeconds: number;

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'consolidator-package-test-'));
    const started = Date.now();
    const built = await exec('npm', ['run', '--silent', 'package', '--', '--out', join(work, 'out')]);
    buildSeconds = (Date.now() - started) / 1000;
    expect(built.code, built.stderr).toBe(0);
    deb = built.stdout.trim().split('\n').at(-1) ?? '';
    unpacked = join(work, 'root');
    expect((await exec('dpkg-deb', ['-x', deb, unpacked])).code).toBe(0);
    expect((await exec('dpkg-deb', ['-e', deb, join(work, 'ctrl')])).code).toBe(0);
  }, 300_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('is named and described as Debian expects, with the runtime it needs', async () => {
    expect(deb).toMatch(/consolidator_\d+\.\d+\.\d+_all\.deb$/);
    const control = (await exec('dpkg-deb', ['-f', deb])).stdout;
    expect(control).toMatch(/^Architecture: all$/m);
    expect(control).toMatch(/^Depends: .*nodejs \(>= 20\.19\)/m);
    expect(control).toMatch(/^Depends: .*\bipmitool\b/m);
    expect(control).toMatch(/^Depends: .*\bopenssh-client\b/m);
    const size = (await exec('stat', ['-c', '%s', deb])).stdout.trim();
    console.log(`debian-package: ${deb.split('/').at(-1)} ${(Number(size) / 1024 / 1024).toFixed(2)} MiB, built in ${buildSeconds.toFixed(1)} s`);
  });

  it('holds the code, the units, the snippets, the conffile, the schema, the demo and the man page', async () => {
    const listing = (await exec('dpkg-deb', ['-c', deb])).stdout;
    for (const path of [
      './usr/bin/consolidator',
      './usr/lib/consolidator/dist/main.js',
      './usr/lib/consolidator/package.json',
      './usr/lib/consolidator/node_modules/ssh2/package.json',
      './usr/lib/systemd/system/consolidator.service',
      './usr/lib/systemd/system/consolidator.socket',
      './usr/lib/sysusers.d/consolidator.conf',
      './usr/lib/tmpfiles.d/consolidator.conf',
      './etc/consolidator/consolidator.yaml',
      './usr/share/consolidator/consolidator.schema.json',
      './usr/share/consolidator/demo/demo.yaml',
      './usr/share/consolidator/contrib/grafana/consolidator.json',
      './usr/share/consolidator/contrib/prometheus/consolidator-rules.yaml',
      './usr/share/man/man8/consolidator.8.gz',
      './usr/share/doc/consolidator/copyright',
      './usr/share/doc/consolidator/changelog.gz',
    ]) {
      expect(listing, path).toContain(` ${path}\n`);
    }
    // Development-only dependencies and native add-ons stay out ("all": no compiled code).
    expect(listing).not.toMatch(/node_modules\/(vitest|typescript|eslint|fast-check|tsx|cpu-features)\//);
    expect(listing).not.toMatch(/\.node\n/);
    expect(listing).not.toMatch(/consolidator\/dist\/.*\.map\n/);
    expect(readFileSync(join(work, 'ctrl', 'conffiles'), 'utf8')).toBe('/etc/consolidator/consolidator.yaml\n');
  });

  it('installs the example policy in dry-run mode, with the schema, credentials and known_hosts where the package puts them', async () => {
    const policy = readFileSync(join(unpacked, 'etc/consolidator/consolidator.yaml'), 'utf8');
    expect(policy).toMatch(/^mode: dry-run$/m);
    expect(policy).toContain('$schema=/usr/share/consolidator/consolidator.schema.json');
    expect(policy).toContain('keyFile: /run/credentials/consolidator.service/ssh-key');
    expect(policy).toContain('passwordFile: /run/credentials/consolidator.service/bmc-password');
    // Validated by hand on a fresh install, only the operator's own part is missing: the hosts' keys.
    const main = join(unpacked, 'usr/lib/consolidator/dist/main.js');
    const validate = await exec('node', [main, 'validate', join(unpacked, 'etc/consolidator/consolidator.yaml')], { cwd: work });
    expect(validate.code).toBe(78);
    expect(validate.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/hostDefaults\.ssh\.knownHostsFile: \/etc\/consolidator\/known_hosts does not exist$/),
      expect.stringMatching(/1 problem, policy not valid/),
    ]);
  });

  it('never starts or enables the service from its maintainer scripts, which are valid POSIX sh', async () => {
    for (const script of ['postinst', 'prerm', 'postrm']) {
      const syntax = await exec('sh', ['-n', join(work, 'ctrl', script)]);
      expect(syntax.code, `${script}: ${syntax.stderr}`).toBe(0);
      const body = readFileSync(join(work, 'ctrl', script), 'utf8');
      // try-restart is allowed: it restarts a daemon that already runs, after an upgrade.
      expect(body, script).not.toMatch(/\b(enable|start|(?<!try-)restart)\s+consolidator/);
    }
  });

  it('passes lintian with no error', async () => {
    const result = await exec('lintian', ['--fail-on', 'error', deb]);
    expect(result.stdout + result.stderr).not.toMatch(/^E: /m);
    expect(result.code, result.stdout).toBe(0);
  }, 120_000);

  it('has a man page that man renders without a warning, naming every command', async () => {
    const page = join(unpacked, 'usr/share/man/man8/consolidator.8.gz');
    const rendered = await exec('sh', ['-c', `MANWIDTH=100 man --warnings -l '${page}' 2>&1 >/dev/null; echo ---; MANWIDTH=100 man -l '${page}'`]);
    const [warnings, text] = rendered.stdout.split('---\n');
    expect(warnings?.trim()).toBe('');
    for (const command of ['run', 'plan', 'status', 'drain', 'undrain', 'wake', 'history', 'validate', 'simulate', 'schema']) {
      expect(text).toMatch(new RegExp(`^ {3}${command}$`, 'm'));
    }
    expect(text).toContain('/etc/consolidator/consolidator.yaml');
    expect(text).toMatch(/77\s+permission denied/);
  });

  it('runs from the package with its production dependencies only: version, validate, a demo cycle', async () => {
    const main = join(unpacked, 'usr/lib/consolidator/dist/main.js');
    const version = await exec('node', [main, '--version'], { cwd: work });
    expect(version.stdout).toMatch(/^consolidator \d+\.\d+\.\d+/);
    const validate = await exec('node', [main, 'validate', join(unpacked, 'usr/share/consolidator/demo/demo.yaml')], { cwd: work });
    expect(validate.code, validate.stderr).toBe(0);
    const once = await exec('node', [main, 'plan', '--policy', join(unpacked, 'usr/share/consolidator/demo/demo.yaml')], { cwd: work });
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout).toMatch(/demo-\d\d/);
  }, 120_000);
});
