import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { BasicAuthVerifier, MAX_CONCURRENT_COMPARES, type HashCompare } from '../../../src/observability/basic-auth.js';

/** A compare held open until the test settles it, so "in flight" is exact and nothing depends on timing. */
interface HeldCompare {
  readonly password: string;
  settle(result: boolean | Error): void;
}

function heldCompares(): { compare: HashCompare; held: HeldCompare[] } {
  const held: HeldCompare[] = [];
  const compare: HashCompare = (password) =>
    new Promise<boolean>((resolve, reject) => {
      held.push({ password, settle: (result) => (result instanceof Error ? reject(result) : resolve(result)) });
    });
  return { compare, held };
}

const HASH = bcrypt.hashSync('s3cret', 4);
const users = new Map([['prometheus', HASH]]);

describe('BasicAuthVerifier under load', () => {
  it('runs at most MAX_CONCURRENT_COMPARES compares at once and answers a request that needs another busy, without comparing', async () => {
    expect(MAX_CONCURRENT_COMPARES).toBeGreaterThanOrEqual(1);
    expect(MAX_CONCURRENT_COMPARES).toBeLessThanOrEqual(2);
    const { compare, held } = heldCompares();
    const verifier = new BasicAuthVerifier(users, { compare });
    const running = Array.from({ length: MAX_CONCURRENT_COMPARES }, (_, i) => verifier.verify({ user: 'prometheus', password: `guess ${i}` }));
    expect(held).toHaveLength(MAX_CONCURRENT_COMPARES);
    // A known user with a wrong password and an unknown user (the decoy hash) are both turned away alike.
    expect(await verifier.verify({ user: 'prometheus', password: 'one more' })).toBe('busy');
    expect(await verifier.verify({ user: 'nobody', password: 'one more' })).toBe('busy');
    expect(await verifier.verify(undefined)).toBe('refused');
    expect(held).toHaveLength(MAX_CONCURRENT_COMPARES);
    held[0]?.settle(false);
    expect(await running[0]).toBe('refused');
    // That slot is free again; an unknown user is refused even when the decoy compare says yes.
    const next = verifier.verify({ user: 'nobody', password: 'guess' });
    expect(held).toHaveLength(MAX_CONCURRENT_COMPARES + 1);
    held.at(-1)?.settle(true);
    expect(await next).toBe('refused');
    for (const h of held.slice(1, -1)) h.settle(false);
    expect(await Promise.all(running.slice(1))).toEqual(running.slice(1).map(() => 'refused'));
  });

  it('accepts cached credentials at once while a compare is in flight', async () => {
    const { compare, held } = heldCompares();
    const verifier = new BasicAuthVerifier(users, { compare });
    const login = verifier.verify({ user: 'prometheus', password: 's3cret' });
    held[0]?.settle(true);
    expect(await login).toBe('accepted');
    const flood = Array.from({ length: MAX_CONCURRENT_COMPARES }, (_, i) => verifier.verify({ user: 'prometheus', password: `guess ${i}` }));
    expect(await verifier.verify({ user: 'prometheus', password: 's3cret' })).toBe('accepted');
    // Only an exact cached pair skips the limit.
    expect(await verifier.verify({ user: 'prometheus', password: 's3cret ' })).toBe('busy');
    expect(held).toHaveLength(1 + MAX_CONCURRENT_COMPARES);
    for (const h of held.slice(1)) h.settle(false);
    expect(await Promise.all(flood)).toEqual(flood.map(() => 'refused'));
  });

  it('frees the slot when a compare throws', async () => {
    const { compare, held } = heldCompares();
    const verifier = new BasicAuthVerifier(users, { compare });
    const broken = verifier.verify({ user: 'prometheus', password: 'guess' });
    held[0]?.settle(new Error('bcrypt failed'));
    await expect(broken).rejects.toThrow('bcrypt failed');
    const next = verifier.verify({ user: 'prometheus', password: 's3cret' });
    expect(held).toHaveLength(2);
    held[1]?.settle(true);
    expect(await next).toBe('accepted');
  });

  it('accepts everything without compares when no users are configured', async () => {
    const { compare, held } = heldCompares();
    const verifier = new BasicAuthVerifier(new Map(), { compare });
    expect(await verifier.verify(undefined)).toBe('accepted');
    expect(held).toHaveLength(0);
  });

  it('uses bcryptjs by default', async () => {
    const verifier = new BasicAuthVerifier(users);
    expect(await verifier.verify({ user: 'prometheus', password: 's3cret' })).toBe('accepted');
    expect(await verifier.verify({ user: 'prometheus', password: 'wrong' })).toBe('refused');
  });
});
