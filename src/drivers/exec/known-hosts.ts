import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * OpenSSH known_hosts, read-only: plain and hashed (`|1|salt|hash`) host entries, `[host]:port`
 * for ports other than 22, wildcards and negations, `@revoked` keys. `@cert-authority` lines are
 * read but never trusted (certificate host keys are not supported), so such hosts stay unknown.
 */

const DEFAULT_SSH_PORT = 22;
const HASHED_PREFIX = '|1|';

export interface KnownHostEntry {
  readonly marker?: 'cert-authority' | 'revoked';
  /** The host field as written (comma-separated patterns or one hashed name). */
  readonly hosts: string;
  readonly keyType: string;
  readonly key: Buffer;
  /** 1-based line in the file, for messages. */
  readonly line: number;
}

export type HostKeyVerdict =
  | { readonly kind: 'trusted'; readonly line: number }
  | { readonly kind: 'unknown' }
  /** The host is known, but with other keys: possibly someone in the middle. */
  | { readonly kind: 'changed'; readonly knownLines: readonly number[] }
  | { readonly kind: 'revoked'; readonly line: number };

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0] === '@cert-authority' || fields[0] === '@revoked') {
      marker = fields[0] === '@revoked' ? 'revoked' : 'cert-authority';
      fields.shift();
    } else if (fields[0]?.startsWith('@')) {
      continue; // an unknown marker: OpenSSH ignores the line too
    }
    const [hosts, keyType, keyBase64] = fields;
    if (hosts === undefined || keyType === undefined || keyBase64 === undefined) continue;
    const key = Buffer.from(keyBase64, 'base64');
    if (key.length === 0) continue;
    entries.push({ ...(marker ? { marker } : {}), hosts, keyType, key, line: i + 1 });
  }
  return entries;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === DEFAULT_SSH_PORT ? host : `[${host}]:${port}`;
}

/** `SHA256:...` as `ssh-keygen -l` prints it, from the raw public key blob. */
export function sha256Fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

/** The key type written inside an SSH public key blob (its first string). */
export function keyTypeOf(key: Buffer): string | undefined {
  if (key.length < 4) return undefined;
  const length = key.readUInt32BE(0);
  if (length === 0 || 4 + length > key.length) return undefined;
  return key.subarray(4, 4 + length).toString('latin1');
}

export function verifyHostKey(entries: readonly KnownHostEntry[], host: string, port: number, key: Buffer): HostKeyVerdict {
  const name = knownHostsName(host, port);
  const forHost = entries.filter((e) => e.marker !== 'cert-authority' && hostMatches(e.hosts, name));
  const revoked = entries.find((e) => e.marker === 'revoked' && sameKey(e.key, key));
  if (revoked) return { kind: 'revoked', line: revoked.line };
  const match = forHost.find((e) => e.marker === undefined && sameKey(e.key, key));
  if (match) return { kind: 'trusted', line: match.line };
  const known = forHost.filter((e) => e.marker === undefined);
  if (known.length > 0) return { kind: 'changed', knownLines: known.map((e) => e.line) };
  return { kind: 'unknown' };
}

function sameKey(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** OpenSSH's match_hostname: any negated match vetoes, otherwise any positive match wins. */
export function hostMatches(hostsField: string, name: string): boolean {
  if (hostsField.startsWith(HASHED_PREFIX)) return hashedMatches(hostsField, name);
  let matched = false;
  for (const pattern of hostsField.split(',')) {
    const negated = pattern.startsWith('!');
    const body = negated ? pattern.slice(1) : pattern;
    if (wildcardMatches(body.toLowerCase(), name.toLowerCase())) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function hashedMatches(field: string, name: string): boolean {
  const [salt, hash] = field.slice(HASHED_PREFIX.length).split('|');
  if (salt === undefined || hash === undefined) return false;
  const expected = Buffer.from(hash, 'base64');
  const actual = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

function wildcardMatches(pattern: string, name: string): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === name;
  const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*').replaceAll('?', '.')}$`);
  return regex.test(name);
}
