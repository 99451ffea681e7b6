import { describe, expect, it } from 'vitest';
import { PowerAttention, emptyAttentionState, hostsNeedingAttention, needsAttention, parseAttentionState } from '../../../src/state/power-attention.js';
import { ConsolidatorError, isConsolidatorError } from '../../../src/errors.js';
import { createLogger } from '../../../src/observability/logger.js';
import { CapturedStream } from '../../helpers/capture.js';
import { thrownSync } from '../../helpers/thrown.js';

const T0 = Date.UTC(2025, 0, 1);

function setup() {
  const stream = new CapturedStream();
  const attention = new PowerAttention({ logger: createLogger({ level: 'info', format: 'json', stream }) });
  const lines = () => stream.text.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
  return { attention, lines };
}

describe('PowerAttention', () => {
  it('marks a host, logs it once, and keeps the first reason', () => {
    const { attention, lines } = setup();
    const error = new ConsolidatorError('POWER_TIMEOUT', 'timed out waiting for h1 to report power on');
    attention.mark('h1', 'PowerOnFailed', T0, error);
    attention.mark('h1', 'BootTimeout', T0 + 1, error);
    expect(attention.needsAttention('h1')).toBe(true);
    expect(attention.needsAttention('h2')).toBe(false);
    expect(attention.state).toEqual({
      version: 1,
      hosts: { h1: { reason: 'PowerOnFailed', sinceMs: T0, errorCode: 'POWER_TIMEOUT', message: 'timed out waiting for h1 to report power on' } },
    });
    expect(lines()).toHaveLength(1);
    expect(lines()[0]).toMatchObject({ level: 'error', message: 'host needs operator attention', host: 'h1', reason: 'PowerOnFailed', errorCode: 'POWER_TIMEOUT', component: 'power-attention' });
  });

  it('clears a host when an operator has looked at it', () => {
    const { attention, lines } = setup();
    attention.mark('h1', 'PowerOnFailed', T0, new Error('boom'));
    expect(attention.get('h1')?.errorCode).toBe('INTERNAL');
    expect(attention.clear('h1')).toBe(true);
    expect(attention.clear('h1')).toBe(false);
    expect(attention.needsAttention('h1')).toBe(false);
    expect(lines()[1]).toMatchObject({ message: 'host attention cleared', host: 'h1' });
  });

  it('is JSON data the state store can persist and read back', () => {
    const { attention } = setup();
    attention.mark('h1', 'BootTimeout', T0, new ConsolidatorError('PREFLIGHT_FAILED', 'no answer'));
    const back = parseAttentionState(JSON.parse(JSON.stringify(attention.state)));
    expect(back).toEqual(attention.state);
    expect(needsAttention(back, 'h1')).toBe(true);
    expect(needsAttention(emptyAttentionState(), 'h1')).toBe(false);
    expect(hostsNeedingAttention(back)).toEqual(['h1']);
    const restored = new PowerAttention({ logger: createLogger({ level: 'error', format: 'json', stream: new CapturedStream() }), initial: back });
    expect(restored.needsAttention('h1')).toBe(true);
  });

  it.each([
    [{ version: 1, hosts: { h1: { reason: 'Tired', sinceMs: 1, errorCode: 'INTERNAL', message: '' } } }, 'hosts.h1.reason'],
    [{ version: 1, hosts: { h1: { reason: 'BootTimeout', sinceMs: 1, errorCode: 'NOPE', message: '' } } }, 'hosts.h1.errorCode'],
    [{ version: 1 }, 'hosts'],
  ])('rejects a corrupt state naming %s', (value, path) => {
    const e = thrownSync(() => parseAttentionState(value));
    expect(isConsolidatorError(e, 'STATE_CORRUPT')).toBe(true);
    expect(e.message).toContain(path);
  });
});
