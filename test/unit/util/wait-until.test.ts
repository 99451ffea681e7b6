import { describe, expect, it } from 'vitest';
import { type ProbeResult, waitUntil } from '../../../src/util/wait-until.js';
import { ConsolidatorError } from '../../../src/errors.js';
import { thrown } from '../../helpers/thrown.js';


const base = { what: 'h1 to report power off', intervalMs: 5, timeoutCode: 'POWER_TIMEOUT' as const };

describe('waitUntil', () => {
  it('returns the value once the probe is done', async () => {
    let n = 0;
    const value = await waitUntil({
      ...base,
      timeoutMs: 1000,
      signal: new AbortController().signal,
      probe: async (): Promise<ProbeResult<number>> => (++n === 3 ? { done: true, value: n } : { done: false, seen: `try ${n}` }),
    });
    expect(value).toBe(3);
  });

  it('throws the timeout code naming what it awaited and what it last saw, with the last transient error as cause', async () => {
    const cause = new ConsolidatorError('BMC_UNREACHABLE', 'no answer');
    const e = await thrown(
      waitUntil({ ...base, timeoutMs: 30, signal: new AbortController().signal, details: { host: 'h1' }, probe: async () => ({ done: false, seen: 'power on', error: cause }) }),
    );
    expect(e.code).toBe('POWER_TIMEOUT');
    expect(e.message).toMatch(/^timed out after 0\.\d s waiting for h1 to report power off \(last seen: power on; \d+ checks\)$/);
    expect(e.details).toMatchObject({ host: 'h1', awaited: 'h1 to report power off', lastSeen: 'power on', timeoutMs: 30 });
    expect(e.cause).toBe(cause);
  });

  it('probes at least once even with no time left', async () => {
    let probes = 0;
    await thrown(waitUntil({ ...base, timeoutMs: 0, signal: new AbortController().signal, probe: async () => ({ done: false, seen: String(++probes) }) }));
    expect(probes).toBe(1);
  });

  it('lets a probe failure through at once', async () => {
    const e = await thrown(
      waitUntil({ ...base, timeoutMs: 1000, signal: new AbortController().signal, probe: async () => Promise.reject(new ConsolidatorError('BMC_AUTH', 'wrong password')) }),
    );
    expect(e.code).toBe('BMC_AUTH');
  });

  it('throws ABORTED as soon as the signal aborts, naming what it awaited', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('shutting down')), 20);
    const startMs = Date.now();
    const e = await thrown(waitUntil({ ...base, intervalMs: 10_000, timeoutMs: 60_000, signal: controller.signal, probe: async () => ({ done: false, seen: 'on' }) }));
    expect(e.code).toBe('ABORTED');
    expect(e.message).toBe('aborted while waiting for h1 to report power off: shutting down');
    expect(Date.now() - startMs).toBeLessThan(1000);
  });
});
