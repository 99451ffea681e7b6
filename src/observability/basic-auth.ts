import { createHash, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';

/**
 * HTTP basic auth against bcrypt hashes (exporter-toolkit's basic_auth_users), for the metrics
 * endpoint. bcrypt costs tens of milliseconds by design; Prometheus scrapes every few seconds with the
 * same credentials, so a verified (user, password, hash) triple is remembered, as exporter-toolkit
 * does (successes only). The cache holds only SHA-256 digests, never a password; it is bounded, and an entry is keyed
 * on the hash too, so a changed hash (a new web config) never reuses an old verdict.
 *
 * An unknown user is checked against a decoy hash, so the answer takes as long as for a known one and
 * the response time does not tell which user names exist. Digest comparisons are constant-time.
 */

/** Distinct (user, password) pairs remembered; more are verified each time (Prometheus uses one). */
const CACHE_ENTRIES = 100;
/** A valid bcrypt hash of a random string nobody knows, at the usual cost 10. */
const DECOY_HASH = '$2y$10$QE.478PylM0/81djYAPNneL5ya4y7L4/UJNjxOSr3j/PKS2f9Ciu2';

export interface BasicCredentials {
  readonly user: string;
  readonly password: string;
}

/** The user and password of an `Authorization: Basic ...` header, or undefined when it is not one. */
export function parseBasicAuthorization(header: string | undefined): BasicCredentials | undefined {
  if (header === undefined) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (match?.[1] === undefined) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export class BasicAuthVerifier {
  /** digest(user, password, hash) of pairs bcrypt accepted, oldest first. Failures are not cached: each costs a bcrypt, which also slows guessing. */
  private readonly verified = new Set<string>();

  constructor(private readonly users: ReadonlyMap<string, string>) {}

  get enabled(): boolean {
    return this.users.size > 0;
  }

  async verify(credentials: BasicCredentials | undefined): Promise<boolean> {
    if (!this.enabled) return true;
    if (credentials === undefined) return false;
    const known = this.users.get(credentials.user);
    const hash = known ?? DECOY_HASH;
    const key = digest(credentials.user, credentials.password, hash);
    if (known !== undefined && this.isCached(key)) return true;
    const verdict = await bcrypt.compare(credentials.password, hash);
    if (!verdict || known === undefined) return false;
    this.remember(key);
    return true;
  }

  private isCached(key: Buffer): boolean {
    // Walk every entry with a constant-time comparison rather than a Map lookup on the digest: the
    // cache is small, and the time taken then does not depend on which entry matched.
    let found = false;
    for (const entry of this.verified) {
      if (timingSafeEqual(Buffer.from(entry, 'hex'), key)) found = true;
    }
    return found;
  }

  private remember(key: Buffer): void {
    if (this.verified.size >= CACHE_ENTRIES) {
      const oldest = this.verified.values().next().value;
      if (oldest !== undefined) this.verified.delete(oldest);
    }
    this.verified.add(key.toString('hex'));
  }
}

function digest(user: string, password: string, hash: string): Buffer {
  return createHash('sha256').update(JSON.stringify([user, password, hash])).digest();
}
