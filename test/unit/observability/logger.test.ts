import { describe, expect, it } from 'vitest';
import { ConsolidatorError } from '../../../src/errors.js';
import { createLogger } from '../../../src/observability/logger.js';
import { CapturedStream } from '../../helpers/capture.js';

function lines(stream: CapturedStream): Record<string, unknown>[] {
  return stream.text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('the logger', () => {
  it('writes JSON lines with the event, fields and child fields', () => {
    const stream = new CapturedStream();
    const log = createLogger({ level: 'info', format: 'json', stream }).child({ component: 'planner' });
    log.info('host kept', { host: 'h1', reason: 'PinnedVm' });
    log.debug('not shown');
    const [line] = lines(stream);
    expect(line).toMatchObject({ level: 'info', message: 'host kept', component: 'planner', host: 'h1', reason: 'PinnedVm' });
    expect(lines(stream)).toHaveLength(1);
  });

  it('never writes secrets, even nested or in a child', () => {
    const stream = new CapturedStream();
    const log = createLogger({ level: 'info', format: 'json', stream }).child({ token: 'tok-123' });
    log.info('connect', { password: 'hunter2', bmc: { user: 'admin', passwordFile: '/etc/pw', secret: 's3' } });
    expect(stream.text).not.toContain('hunter2');
    expect(stream.text).not.toContain('s3"');
    expect(stream.text).not.toContain('tok-123');
    expect(stream.text).toContain('/etc/pw');
  });

  it('writes errors with code, details and cause', () => {
    const stream = new CapturedStream();
    const log = createLogger({ level: 'info', format: 'json', stream });
    const cause = Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' });
    log.error('migration failed', { err: new ConsolidatorError('MIGRATION_FAILED', 'vm1 did not arrive', { details: { vm: 'vm1' }, cause }) });
    const [line] = lines(stream);
    expect(line?.['err']).toEqual({
      code: 'MIGRATION_FAILED',
      message: 'vm1 did not arrive',
      details: { vm: 'vm1' },
      cause: { name: 'Error', message: 'connect ETIMEDOUT', code: 'ETIMEDOUT' },
    });
  });

  it('writes one readable line per event in pretty format', () => {
    const stream = new CapturedStream();
    createLogger({ level: 'info', format: 'pretty', stream }).child({ component: 'actuator' }).info('host powered off', { host: 'h3', watts: 120 });
    expect(stream.text).toMatch(/^\S+ info {2}\[actuator\] host powered off host=h3 watts=120\n$/);
  });
});

describe('log redaction', () => {
  function logged(fields: Record<string, unknown>, format: 'json' | 'pretty' = 'json'): string {
    const stream = new CapturedStream();
    createLogger({ level: 'info', format, stream }).info('event', fields);
    return stream.text;
  }

  let deep: Record<string, unknown> = { password: 'S-deep' };
  for (let i = 0; i < 12; i++) deep = { level: deep };

  const cyclic: Record<string, unknown> = { name: 'node', token: 'S-cycle' };
  cyclic['self'] = cyclic;
  cyclic['children'] = [cyclic, { secret: 'S-cycle-child' }];

  it.each<[string, Record<string, unknown>, string[]]>([
    ['a secret key at the top', { password: 'S1' }, []],
    ['an array of objects with secrets', { hosts: [{ name: 'h1', bmc: { password: 'S1' } }, { name: 'h2', token: 'S2' }] }, ['h1', 'h2']],
    ['an array inside an array', { matrix: [[{ secret: 'S1' }], [[{ apiKey: 'S2' }]]] }, []],
    ['an object inside an array inside an object', { policy: { power: { chain: [{ driver: 'redfish', credentials: { user: 'u', pass: 'S1' } }] } } }, ['redfish']],
    ['a secret five levels down (the old limit was four)', { a: { b: { c: { d: { e: { privateKey: 'S1' } } } } } }, []],
    ['a secret twelve levels down', { deep }, []],
    ['a Map of secrets', { headers: new Map<string, unknown>([['authorization', 'Basic S1'], ['accept', 'json']]) }, ['accept']],
    ['a secret inside an error-like object in an array', { errors: [{ message: 'failed', detail: { passphrase: 'S1' } }] }, ['failed']],
    ['secrets in a structure that contains itself', { cyclic }, ['node', '[circular]']],
  ])('%s', (_what, fields, kept) => {
    for (const format of ['json', 'pretty'] as const) {
      const text = logged(fields, format);
      expect(text, format).not.toMatch(/S\d|S-deep|S-cycle/);
      expect(text, format).toContain('[redacted]');
      for (const k of kept) expect(text, format).toContain(k);
    }
  });

  it('keeps what is not secret: file names of secrets, plain arrays, dates, shared references', () => {
    const shared = { host: 'h1' };
    const line = JSON.parse(logged({ passwordFile: '/etc/pw', tokenFile: 't', ids: [1, 2, 3], at: new Date(0), a: shared, b: shared })) as Record<string, unknown>;
    expect(line).toMatchObject({ passwordFile: '/etc/pw', tokenFile: 't', ids: [1, 2, 3], at: '1970-01-01T00:00:00.000Z', a: { host: 'h1' }, b: { host: 'h1' } });
  });

  it('redacts fields a child logger carries, at any depth', () => {
    const stream = new CapturedStream();
    createLogger({ level: 'info', format: 'json', stream })
      .child({ component: 'power', bmcs: [{ host: 'h1', password: 'S1' }] })
      .info('event');
    expect(stream.text).not.toContain('S1');
    expect(stream.text).toContain('h1');
  });
});
