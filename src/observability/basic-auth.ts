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
 *
 * The listener may face the network and bcrypt runs on the daemon's one event loop (bcryptjs is pure
 * JS; its async compare yields only between slices of up to 100 ms). So at most
 * MAX_CONCURRENT_COMPARES compares run at once, and a request that would need one more is answered
 * 'busy' at once, without bcrypt: a flood of wrong passwords cannot stall migration polling, verify
 * deadlines or the watchdog feed. A cached success needs no compare and is accepted even then, so the
 * real Prometheus keeps scraping. Known and unknown users meet the limit alike, so 'busy' tells
 * nothing about user names either.
 */

/** Distinct (user, password) pairs remembered; more are verified each time (Prometheus uses one). */
const CACHE_ENTRIES = 100;
/**
 * bcrypt compares in flight at once. bcryptjs runs each one in slices of up to 100 ms between which
 * the loop turns, and every compare in flight adds a slice to a turn: one bounds a stall at about
 * 100 ms. One is enough, as Prometheus's own scrapes are answered from the cache after the first.
 */
export const MAX_CONCURRENT_COMPARES = 1;
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

/** What a request's credentials got: 'busy' when verifying them would need a bcrypt compare over the limit. */
export type BasicAuthVerdict = 'accepted' | 'refused' | 'busy';

/** Checks a password against a bcrypt hash; bcryptjs's async compare unless a test counts the calls. */
export type HashCompare = (password: string, hash: string) => Promise<boolean>;

export interface BasicAuthVerifierDeps {
  readonly compare?: HashCompare;
}

export class BasicAuthVerifier {
  /** digest(user, password, hash) of pairs bcrypt accepted, oldest first. Failures are not cached: each costs a bcrypt, which also slows guessing. */
  private readonly verified = new Set<string>();
  private readonly compare: HashCompare;
  private comparesInFlight = 0;

  constructor(
    private readonly users: ReadonlyMap<string, string>,
    deps: BasicAuthVerifierDeps = {},
  ) {
    this.compare = deps.compare ?? ((password, hash) => bcrypt.compare(password, hash));
  }

  get enabled(): boolean {
    return this.users.size > 0;
  }

  async verify(credentials: BasicCredentials | undefined): Promise<BasicAuthVerdict> {
    if (!this.enabled) return 'accepted';
    if (credentials === undefined) return 'refused';
    const known = this.users.get(credentials.user);
    const hash = known ?? DECOY_HASH;
    const key = digest(credentials.user, credentials.password, hash);
    // The cache is walked for unknown users too (their decoy key is never in it), so a fast 'busy'
    // takes as long for them as for a known user.
    const cached = this.isCached(key);
    if (known !== undefined && cached) return 'accepted';
    // Counted before the first await, so concurrent requests see each other.
    if (this.comparesInFlight >= MAX_CONCURRENT_COMPARES) return 'busy';
    this.comparesInFlight++;
    let matches: boolean;
    try {
      matches = await this.compare(credentials.password, hash);
    } finally {
      this.comparesInFlight--;
    }
    if (!matches || known === undefined) return 'refused';
    this.remember(key);
    return 'accepted';
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
