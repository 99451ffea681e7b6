/**
 * npm run package [-- --out DIR]: builds consolidator_VERSION_all.deb with dpkg-deb.
 *
 * The package holds the built code and its production dependencies (pure JavaScript: optional
 * native add-ons are left out, so it is "Architecture: all"), the systemd units, sysusers and
 * tmpfiles snippets, the example policy as a conffile (dry-run), the JSON Schema, the demo, and a
 * man page rendered from the CLI's own command table. The only network it uses is npm's, for the
 * production dependencies (from npm's cache when they are there). The last line of stdout is the
 * path of the .deb.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, type Dirent, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { renderManPage } from '../src/cli/man-page.js';
import { debianControl, maintainerScripts, MAINTAINER, type PackageFacts } from './package-debian.js';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LIB = 'usr/lib/consolidator';

function main(): void {
  const { values } = parseArgs({ options: { out: { type: 'string' } }, allowPositionals: false });
  const outDir = resolve(values.out ?? join(repo, 'build'));
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string; engines: { node: string } };
  const released = sourceDate();

  run('npm', ['run', 'build'], repo);
  const root = mkdtempSync(join(tmpdir(), 'consolidator-deb-'));
  try {
    stageCode(root);
    stageSystemIntegration(root);
    stageDocs(root, pkg.version, released);
    normalisePermissions(root);
    const facts: PackageFacts = {
      version: pkg.version,
      minNode: pkg.engines.node.replace(/^>=\s*/, ''),
      installedSizeKiB: installedSizeKiB(root),
    };
    writeControl(root, facts);
    mkdirSync(outDir, { recursive: true });
    const deb = join(outDir, `consolidator_${pkg.version}_all.deb`);
    run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, deb], repo, { SOURCE_DATE_EPOCH: String(Math.floor(released.getTime() / 1000)) });
    process.stdout.write(`${deb}\n`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** The built code and the production node_modules, under /usr/lib/consolidator. */
function stageCode(root: string): void {
  const lib = join(root, LIB);
  mkdirSync(lib, { recursive: true });
  cpSync(join(repo, 'dist'), join(lib, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.map') });
  cpSync(join(repo, 'package.json'), join(lib, 'package.json'));
  cpSync(join(repo, 'package-lock.json'), join(lib, 'package-lock.json'));
  // --ignore-scripts: nothing of a dependency runs on the build machine; --omit=optional: ssh2's
  // native cpu-features and its compiler toolchain stay out (ssh2 works without them).
  run('npm', ['ci', '--omit=dev', '--omit=optional', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], lib);
  removeDotFiles(join(lib, 'node_modules'));

  const bin = join(root, 'usr/bin');
  mkdirSync(bin, { recursive: true });
  // A wrapper, not a symlink to main.js: the interpreter is Debian's /usr/bin/node whatever PATH says.
  writeFileSync(join(bin, 'consolidator'), `#!/bin/sh\nexec /usr/bin/node /${LIB}/dist/main.js "$@"\n`);
}

function stageSystemIntegration(root: string): void {
  const units = join(root, 'usr/lib/systemd/system');
  mkdirSync(units, { recursive: true });
  cpSync(join(repo, 'systemd/consolidator.service'), join(units, 'consolidator.service'));
  cpSync(join(repo, 'systemd/consolidator.socket'), join(units, 'consolidator.socket'));
  mkdirSync(join(root, 'usr/lib/sysusers.d'), { recursive: true });
  cpSync(join(repo, 'systemd/consolidator.sysusers.conf'), join(root, 'usr/lib/sysusers.d/consolidator.conf'));
  mkdirSync(join(root, 'usr/lib/tmpfiles.d'), { recursive: true });
  cpSync(join(repo, 'systemd/consolidator.tmpfiles.conf'), join(root, 'usr/lib/tmpfiles.d/consolidator.conf'));

  const etc = join(root, 'etc/consolidator');
  mkdirSync(etc, { recursive: true });
  const example = readFileSync(join(repo, 'config/consolidator.example.yaml'), 'utf8');
  if (!/^mode: dry-run$/m.test(example)) throw new Error('config/consolidator.example.yaml must be in dry-run mode: it is the installed default');
  writeFileSync(join(etc, 'consolidator.yaml'), installedPolicy(example));

  const share = join(root, 'usr/share/consolidator');
  mkdirSync(share, { recursive: true });
  cpSync(join(repo, 'config/consolidator.schema.json'), join(share, 'consolidator.schema.json'));
  cpSync(join(repo, 'config/demo.yaml'), join(share, 'demo/demo.yaml'));
  cpSync(join(repo, 'config/demo-workload'), join(share, 'demo/demo-workload'), { recursive: true });
  // The Grafana dashboard and the Prometheus alerting rules, for the monitoring side to pick up.
  cpSync(join(repo, 'contrib/grafana'), join(share, 'contrib/grafana'), { recursive: true });
  cpSync(join(repo, 'contrib/prometheus'), join(share, 'contrib/prometheus'), { recursive: true });
}

/**
 * The example policy as installed: its schema from /usr/share, its secrets where the unit's
 * LoadCredential= puts them, the hosts' keys in /etc/consolidator/known_hosts (the operator's to fill).
 */
function installedPolicy(example: string): string {
  const edits: readonly (readonly [RegExp, string])[] = [
    [/^# yaml-language-server: \$schema=.*$/m, '# yaml-language-server: $schema=/usr/share/consolidator/consolidator.schema.json'],
    [/keyFile: example-secrets\/id_ed25519/, 'keyFile: /run/credentials/consolidator.service/ssh-key   # from /etc/consolidator/credentials/ssh-key'],
    [/knownHostsFile: example-secrets\/known_hosts/, 'knownHostsFile: /etc/consolidator/known_hosts'],
    [/passwordFile: example-secrets\/bmc-password/, 'passwordFile: /run/credentials/consolidator.service/bmc-password   # from /etc/consolidator/credentials/bmc-password'],
  ];
  let policy = example;
  for (const [pattern, replacement] of edits) {
    if (!pattern.test(policy)) throw new Error(`config/consolidator.example.yaml no longer has ${pattern}: update installedPolicy() in scripts/package.ts`);
    policy = policy.replace(pattern, replacement);
  }
  return policy;
}

function stageDocs(root: string, version: string, released: Date): void {
  const man = join(root, 'usr/share/man/man8');
  mkdirSync(man, { recursive: true });
  writeFileSync(join(man, 'consolidator.8.gz'), gzipSync(renderManPage({ version, date: released.toISOString().slice(0, 10) }), { level: 9 }));

  const doc = join(root, 'usr/share/doc/consolidator');
  mkdirSync(doc, { recursive: true });
  writeFileSync(join(doc, 'copyright'), copyright(join(root, LIB, 'node_modules')));
  writeFileSync(join(doc, 'changelog.gz'), gzipSync(changelog(version, released), { level: 9 }));
}

/** Debian's free-form copyright file: our licence, then every bundled module's, with where its text is. */
function copyright(nodeModules: string): string {
  const lines = [
    'consolidator: energy-saving VM consolidation daemon for KVM/libvirt datacenters.',
    '',
    'Copyright 2025-2026 the consolidator authors.',
    'License: Apache-2.0',
    'On Debian systems the full text of the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0.',
    '',
    `Bundled npm modules under /${LIB}/node_modules, each under its own licence; its full text is in`,
    "the module's folder (LICENSE or README):",
    '',
  ];
  for (const name of moduleNames(nodeModules)) {
    const meta = JSON.parse(readFileSync(join(nodeModules, name, 'package.json'), 'utf8')) as { version?: string; license?: string };
    lines.push(`  ${name} ${meta.version ?? ''}: ${meta.license ?? 'see its folder'}`);
  }
  return `${lines.join('\n')}\n`;
}

function moduleNames(nodeModules: string): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(nodeModules).sort()) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) for (const scoped of readdirSync(join(nodeModules, entry)).sort()) names.push(`${entry}/${scoped}`);
    else names.push(entry);
  }
  return names;
}

function changelog(version: string, released: Date): string {
  const commit = git(['rev-parse', '--short=12', 'HEAD']) ?? 'unknown';
  return [
    `consolidator (${version}) unstable; urgency=medium`,
    '',
    `  * Built from the consolidator source tree at commit ${commit}.`,
    '',
    ` -- ${MAINTAINER}  ${rfc2822(released)}`,
    '',
  ].join('\n');
}

/** npm's own files (.bin, .package-lock.json) and the modules' development leftovers (.eslintrc, .npmignore, ...). */
function removeDotFiles(dir: string): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.name.startsWith('.')) rmSync(path, { recursive: true, force: true });
    else if (entry.isDirectory()) removeDotFiles(path);
  }
}

/** dpkg and lintian expect 0755 directories, 0755 for what is run and 0644 for the rest, whatever the umask. */
function normalisePermissions(root: string): void {
  const walk = (dir: string): void => {
    chmodSync(dir, 0o755);
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile()) chmodSync(path, (statSync(path).mode & 0o111) !== 0 ? 0o755 : 0o644);
    }
  };
  chmodSync(join(root, 'usr/bin/consolidator'), 0o755);
  walk(root);
}

function writeControl(root: string, facts: PackageFacts): void {
  const sums = md5sums(root);
  const debian = join(root, 'DEBIAN');
  mkdirSync(debian, { mode: 0o755 });
  writeFileSync(join(debian, 'md5sums'), sums);
  writeFileSync(join(debian, 'control'), debianControl(facts));
  writeFileSync(join(debian, 'conffiles'), '/etc/consolidator/consolidator.yaml\n');
  for (const [name, body] of Object.entries(maintainerScripts())) {
    writeFileSync(join(debian, name), body);
    chmodSync(join(debian, name), 0o755);
  }
  for (const name of ['control', 'conffiles', 'md5sums']) chmodSync(join(debian, name), 0o644);
}

function md5sums(root: string): string {
  const lines = filesUnder(root)
    .filter((rel) => !rel.startsWith('etc/'))
    .map((rel) => `${createHash('md5').update(readFileSync(join(root, rel))).digest('hex')}  ${rel}`);
  return `${lines.join('\n')}\n`;
}

function installedSizeKiB(root: string): number {
  return filesUnder(root).reduce((kib, rel) => kib + Math.ceil(statSync(join(root, rel)).size / 1024), 0);
}

/** Every regular file under root, relative to it, in a stable order. */
function filesUnder(root: string): string[] {
  return (readdirSync(root, { recursive: true, withFileTypes: true }) as Dirent[])
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
    .sort();
}

/** The commit's date, so two builds of one commit are the same package (SOURCE_DATE_EPOCH wins). */
function sourceDate(): Date {
  const epoch = process.env['SOURCE_DATE_EPOCH'] ?? git(['log', '-1', '--format=%ct']);
  return epoch ? new Date(Number(epoch) * 1000) : new Date();
}

function rfc2822(date: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${days[date.getUTCDay()]}, ${two(date.getUTCDate())} ${months[date.getUTCMonth()]} ${date.getUTCFullYear()} ${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())} +0000`;
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, { cwd: repo, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function run(cmd: string, args: string[], cwd: string, env: Record<string, string> = {}): void {
  // Their output goes to stderr: stdout's last line is the .deb's path, for scripts and tests.
  execFileSync(cmd, args, { cwd, stdio: ['ignore', process.stderr, process.stderr], env: { ...process.env, ...env } });
}

main();
