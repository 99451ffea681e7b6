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
