import { describe, expect, it } from 'vitest';
import {
  classifyIpmitoolFailure,
  parseChassisPowerControl,
  parseChassisPowerStatus,
  parseDcmiPowerReading,
  parseSystemGuid,
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

  it.each<[FixtureName, string | undefined]>([
    // bytes 44 45 4c 4c 51 00 10 34 | 80 51 b5 c0 4f 37 59 31: the first three fields byte-reversed, as
    // dmidecode and Linux's product_uuid print the SMBIOS Type 1 UUID (SMBIOS 2.6+, DSP0134 7.2.1)
    ['raw-get-system-guid', '4c4c4544-0051-3410-8051-b5c04f375931'],
    // all zeros: SMBIOS "not settable"; Linux then has no product_uuid
    ['raw-get-system-guid-unset', undefined],
  ])('%s -> system uuid %s', (name, uuid) => {
    expect(parseSystemGuid(fixture(name).stdout)).toBe(uuid);
  });

  it.each<[string, string | undefined]>([
    [' 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff\n', '33221100-5544-7766-8899-aabbccddeeff'],
    [' 00 11 22 33 44 55 66 77 88 99 AA BB CC DD EE FF\n', '33221100-5544-7766-8899-aabbccddeeff'],
    [' ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff\n', undefined], // SMBIOS "not present"
  ])('raw %j -> %s', (stdout, uuid) => {
    expect(parseSystemGuid(stdout)).toBe(uuid);
  });

  it.each([
    ['fifteen bytes', ' 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee\n'],
    ['seventeen bytes', ' 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff\n 00\n'],
    ['not hex', ' zz 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff\n'],
    ["ipmitool's own mc guid dump", 'System GUID   : 00000000000000000000000000003F6D\n'],
    ['nothing', ''],
  ])('rejects %s as PARSE', (_what, stdout) => {
    let error: unknown;
    try {
      parseSystemGuid(stdout);
    } catch (e) {
      error = e;
    }
    expect(isConsolidatorError(error, 'PARSE')).toBe(true);
  });

  it.each<[FixtureName, string, string, RegExp]>([
    ['error-wrong-password', 'auth', 'BMC_AUTH', /rejected the password/],
    ['error-wrong-user', 'auth', 'BMC_AUTH', /does not know this user/],
    ['error-cipher-suite-17', 'auth', 'BMC_AUTH', /cipher suite/],
    ['error-no-password', 'auth', 'BMC_AUTH', /got no password/],
    ['error-unreachable', 'unreachable', 'BMC_UNREACHABLE', /does not answer/],
    ['error-slow-bmc', 'unreachable', 'BMC_UNREACHABLE', /did not answer the command in time/],
    ['dcmi-power-reading-unsupported', 'unsupported', 'POWER_FAILED', /does not support DCMI/],
    ['error-raw-invalid-command', 'unsupported', 'POWER_FAILED', /does not support this command/],
    ['error-status-failed', 'refused', 'POWER_FAILED', /refused/],
    ['error-power-off-refused', 'refused', 'POWER_FAILED', /refused/],
  ])('%s -> %s (%s)', (name, kind, code, reason) => {
    const output = fixture(name);
    expect(output.exitCode).toBe(1);
    const failure = classifyIpmitoolFailure(output.stderr);
    expect(failure).toMatchObject({ kind, code });
    expect(failure.reason).toMatch(reason);
    // -v chatter is dropped: "Invalid completion code received: Invalid command" says nothing
    expect(failure.said).not.toMatch(/IANA|VSO|Discovered IPMB|Invalid completion code|RAW REQ/);
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
        'error-raw-invalid-command',
        'raw-get-system-guid',
        'raw-get-system-guid-unset',
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
