import { describe, expect, it } from 'vitest';
import {
  classifyIpmitoolFailure,
  parseChassisPowerControl,
  parseChassisPowerStatus,
  parseDcmiPowerReading,
} from '../../../../src/drivers/power/ipmitool-parsers.js';
import { isConsolidatorError } from '../../../../src/errors.js';
import { thrownSync } from '../../../helpers/thrown.js';
import { type FixtureName, fixture, fixtureNames } from './ipmitool-fixtures.js';

describe('ipmitool parsers over real output', () => {
  it.each<[FixtureName, 'on' | 'off']>([
    ['chassis-power-status-on', 'on'],
    ['chassis-power-status-off', 'off'],
  ])('%s -> power %s', (name, state) => {
    const output = fixture(name);
    expect(output.exitCode).toBe(0);
    expect(parseChassisPowerStatus(output.stdout)).toBe(state);
  });

  it.each<[FixtureName, string]>([
    ['chassis-power-on', 'on'],
    ['chassis-power-off', 'off'],
    ['chassis-power-soft', 'soft'],
    ['chassis-power-cycle', 'cycle'],
  ])('%s -> acknowledged %s', (name, control) => {
    expect(parseChassisPowerControl(fixture(name).stdout)).toBe(control);
  });

  it.each<[FixtureName, number | undefined]>([
    ['dcmi-power-reading-supported', 144],
    ['dcmi-power-reading-deactivated', undefined],
  ])('%s -> %s W', (name, watts) => {
    expect(parseDcmiPowerReading(fixture(name).stdout)).toBe(watts);
  });

  it.each<[FixtureName, string, string, RegExp]>([
    ['error-wrong-password', 'auth', 'BMC_AUTH', /rejected the password/],
    ['error-wrong-user', 'auth', 'BMC_AUTH', /does not know this user/],
    ['error-cipher-suite-17', 'auth', 'BMC_AUTH', /cipher suite/],
    ['error-no-password', 'auth', 'BMC_AUTH', /got no password/],
    ['error-unreachable', 'unreachable', 'BMC_UNREACHABLE', /does not answer/],
    ['error-slow-bmc', 'unreachable', 'BMC_UNREACHABLE', /did not answer the command in time/],
    ['dcmi-power-reading-unsupported', 'unsupported', 'POWER_FAILED', /does not support DCMI/],
    ['error-status-failed', 'refused', 'POWER_FAILED', /refused/],
    ['error-power-off-refused', 'refused', 'POWER_FAILED', /refused/],
  ])('%s -> %s (%s)', (name, kind, code, reason) => {
    const output = fixture(name);
    expect(output.exitCode).toBe(1);
    const failure = classifyIpmitoolFailure(output.stderr);
    expect(failure).toMatchObject({ kind, code });
    expect(failure.reason).toMatch(reason);
    // -v chatter is dropped: "Invalid completion code received: Invalid command" says nothing
    expect(failure.said).not.toMatch(/IANA|VSO|Discovered IPMB|Invalid completion code/);
  });

  it('has a case in this table for every fixture folder', () => {
    expect(fixtureNames()).toEqual(
      [
        'chassis-power-cycle',
        'chassis-power-off',
        'chassis-power-on',
        'chassis-power-soft',
        'chassis-power-status-off',
        'chassis-power-status-on',
        'dcmi-power-reading-deactivated',
        'dcmi-power-reading-supported',
        'dcmi-power-reading-unsupported',
        'error-cipher-suite-17',
        'error-no-password',
        'error-power-off-refused',
        'error-slow-bmc',
        'error-status-failed',
        'error-unreachable',
        'error-wrong-password',
        'error-wrong-user',
      ].sort(),
    );
  });

  it.each([
    ['status', () => parseChassisPowerStatus(fixture('chassis-power-on').stdout)],
    ['control', () => parseChassisPowerControl(fixture('chassis-power-status-on').stdout)],
    ['dcmi', () => parseDcmiPowerReading('')],
  ])('throws PARSE on output it does not know (%s)', (_name, parse) => {
    expect(isConsolidatorError(thrownSync(parse), 'PARSE')).toBe(true);
  });

  it('keeps unknown failures as they are, without chatter', () => {
    expect(classifyIpmitoolFailure('Loading IANA PEN Registry...\nsomething new\n')).toEqual({
      kind: 'other',
      code: 'POWER_FAILED',
      reason: 'ipmitool failed',
      said: 'something new',
    });
    expect(classifyIpmitoolFailure('').reason).toBe('ipmitool failed without a message');
  });
});
