import { describe, expect, it } from 'vitest';
import { withDeadline } from '../../../src/preflight/deadline.js';
import { thrown } from '../../helpers/thrown.js';

describe('withDeadline', () => {
  it('returns what the work returns in time', async () => {
    expect(await withDeadline('x', 1_000, undefined, async () => 42)).toBe(42);
  });

  it('gives up at the deadline even when the work ignores its signal, and aborts that signal', async () => {
    let seen: AbortSignal | undefined;
    const e = await thrown(
      withDeadline('the BMC of h1', 50, undefined, (signal) => {
        seen = signal;
        return new Promise<never>(() => undefined);
      }),
    );
    expect(e.code).toBe('COMMAND_TIMEOUT');
    expect(e.message).toBe('the BMC of h1: no answer within 50 ms');
    expect(seen?.aborted).toBe(true);
  });

  it('stops at once when the caller aborts', async () => {
    const parent = new AbortController();
    const pending = thrown(withDeadline('ssh to h1', 10_000, parent.signal, () => new Promise<never>(() => undefined)));
    parent.abort();
    expect((await pending).code).toBe('ABORTED');
  });
});
