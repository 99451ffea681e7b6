import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  hostMatches,
  keyTypeOf,
  knownHostsName,
  parseKnownHosts,
  sha256Fingerprint,
  verifyHostKey,
} from '../../../../src/drivers/exec/known-hosts.js';

/** Real keys from ssh-keygen, so blobs, fingerprints and hashed names are OpenSSH's own. */
let dir: string;
let keyA: { line: string; blob: Buffer; fingerprint: string };
let keyB: { line: string; blob: Buffer; fingerprint: string };

function keygen(name: string) {
  const file = join(dir, name);
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file]);
  const line = readFileSync(`${file}.pub`, 'utf8').trim();
  const fingerprint = spawnSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).stdout.split(' ')[1] ?? '';
  return { line, blob: Buffer.from(line.split(' ')[1] ?? '', 'base64'), fingerprint };
}

/** Writes a known_hosts file, hashes it with ssh-keygen -H if asked, and parses it. */
function knownHosts(lines: string[], hashed = false) {
  const file = join(dir, `kh-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  if (hashed) spawnSync('ssh-keygen', ['-q', '-H', '-f', file]);
  return { file, entries: parseKnownHosts(readFileSync(file, 'utf8')) };
}

const keyPart = (k: { line: string }) => k.line.split(' ').slice(0, 2).join(' ');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'known-hosts-test-'));
  keyA = keygen('a');
  keyB = keygen('b');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('sha256Fingerprint and keyTypeOf', () => {
  it('match ssh-keygen -l', () => {
    expect(sha256Fingerprint(keyA.blob)).toBe(keyA.fingerprint);
    expect(keyTypeOf(keyA.blob)).toBe('ssh-ed25519');
    expect(keyTypeOf(Buffer.from([0, 0]))).toBeUndefined();
  });
});

describe('knownHostsName', () => {
  it.each([
    ['h1.lab', 22, 'h1.lab'],
    ['10.0.0.1', 2222, '[10.0.0.1]:2222'],
  ])('%s:%d -> %s', (host, port, name) => expect(knownHostsName(host, port)).toBe(name));
});

describe('verifyHostKey', () => {
  it.each([
    // lines, host, port, key, verdict, hashed
    [['h1.lab KEY_A'], 'h1.lab', 22, 'A', 'trusted'],
    [['h1.lab KEY_A'], 'H1.LAB', 22, 'A', 'trusted'],
    [['h1.lab KEY_A'], 'h2.lab', 22, 'A', 'unknown'],
    [['h1.lab KEY_A'], 'h1.lab', 22, 'B', 'changed'],
    [['h1.lab KEY_A'], 'h1.lab', 2222, 'A', 'unknown'],
    [['[h1.lab]:2222 KEY_A'], 'h1.lab', 2222, 'A', 'trusted'],
    [['[h1.lab]:2222 KEY_A'], 'h1.lab', 22, 'A', 'unknown'],
    [['h0.lab,h1.lab,10.0.0.1 KEY_A'], '10.0.0.1', 22, 'A', 'trusted'],
    [['*.lab KEY_A'], 'h7.lab', 22, 'A', 'trusted'],
    [['h?.lab,!h3.lab KEY_A'], 'h3.lab', 22, 'A', 'unknown'],
    [['h?.lab,!h3.lab KEY_A'], 'h4.lab', 22, 'A', 'trusted'],
    [['h1.lab KEY_B', 'h1.lab KEY_A'], 'h1.lab', 22, 'A', 'trusted'],
    [['h1.lab KEY_A', '@revoked * KEY_A'], 'h1.lab', 22, 'A', 'revoked'],
    [['@cert-authority *.lab KEY_A'], 'h1.lab', 22, 'A', 'unknown'],
    [['# comment', '', 'h1.lab KEY_A comment words'], 'h1.lab', 22, 'A', 'trusted'],
  ])('%j: %s:%d key %s -> %s', (lines, host, port, key, verdict) => {
    const text = lines.map((l) => l.replace('KEY_A', keyPart(keyA)).replace('KEY_B', keyPart(keyB)));
    const { entries } = knownHosts(text);
    expect(verifyHostKey(entries, host, port, key === 'A' ? keyA.blob : keyB.blob).kind).toBe(verdict);
  });

  it.each([
    ['h1.lab', 22],
    ['10.250.0.11', 22],
    ['10.250.0.11', 2222],
  ])('hashed entries from ssh-keygen -H: %s:%d', (host, port) => {
    const { file, entries } = knownHosts([`${knownHostsName(host, port)} ${keyPart(keyA)}`], true);
    expect(readFileSync(file, 'utf8')).toMatch(/^\|1\|[^|]+\|[^ ]+ ssh-ed25519 /);
    expect(verifyHostKey(entries, host, port, keyA.blob).kind).toBe('trusted');
    expect(verifyHostKey(entries, host, port, keyB.blob).kind).toBe('changed');
    expect(verifyHostKey(entries, 'other.lab', port, keyA.blob).kind).toBe('unknown');
    // ssh-keygen -F agrees that the name is in the file.
    const found = spawnSync('ssh-keygen', ['-F', knownHostsName(host, port), '-f', file], { encoding: 'utf8' });
    expect(found.status).toBe(0);
  });

  it('hostMatches ignores malformed hashed names', () => {
    expect(hostMatches('|1|onlysalt', 'h1.lab')).toBe(false);
  });

  it('parseKnownHosts skips lines it cannot use', () => {
    expect(parseKnownHosts('@unknown-marker h1 ssh-ed25519 AAAA\nonlyhost\nh1 ssh-ed25519\n')).toEqual([]);
  });
});
