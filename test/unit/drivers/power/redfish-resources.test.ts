import { describe, expect, it } from 'vitest';
import { describeRedfishError, sessionUri, sessionsUri } from '../../../../src/drivers/power/redfish-client.js';
import {
  allowedFromActionInfo,
  chassisOf,
  chooseSystem,
  environmentPowerWatts,
  memberUris,
  pickResetType,
  powerConsumedWatts,
  powerStateOf,
  resetActionOf,
  systemUuidOf,
} from '../../../../src/drivers/power/redfish-resources.js';
import { normaliseFingerprint } from '../../../../src/drivers/power/redfish-transport.js';
import { thrownSync } from '../../../helpers/thrown.js';

/** Shaped after DMTF's public-rackmount1 mockup and an iDRAC 9 answer (trimmed). */
const IDRAC_SYSTEM = {
  '@odata.id': '/redfish/v1/Systems/System.Embedded.1',
  Id: 'System.Embedded.1',
  PowerState: 'On',
  UUID: '4C4C4544-0042-3610-8052-B4C04F333532',
  Actions: {
    '#ComputerSystem.Reset': {
      target: '/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset',
      'ResetType@Redfish.AllowableValues': ['On', 'ForceOff', 'ForceRestart', 'GracefulRestart', 'GracefulShutdown', 'PushPowerButton', 'Nmi', 'PowerCycle'],
    },
  },
  Links: { Chassis: [{ '@odata.id': '/redfish/v1/Chassis/System.Embedded.1' }] },
};

describe('reading Redfish resources', () => {
  it.each([
    ['On', 'on'],
    ['Off', 'off'],
    ['PoweringOn', 'unknown'],
    ['PoweringOff', 'unknown'],
    ['Paused', 'unknown'],
    [null, 'unknown'],
  ])('PowerState %s is %s', (said, state) => {
    expect(powerStateOf({ PowerState: said }).state).toBe(state);
  });

  it('chooses the one system, never assuming /Systems/1; by id when there are several', () => {
    const members = memberUris({ Members: [{ '@odata.id': '/redfish/v1/Systems/System.Embedded.1' }] });
    expect(chooseSystem('h1', members)).toBe('/redfish/v1/Systems/System.Embedded.1');
    const several = ['/redfish/v1/Systems/Node1', '/redfish/v1/Systems/Node2/'];
    expect(chooseSystem('h1', several, 'Node2')).toBe('/redfish/v1/Systems/Node2/');
    expect(thrownSync(() => chooseSystem('h1', several)).message).toBe(
      'the BMC of h1 lists 2 systems (/redfish/v1/Systems/Node1, /redfish/v1/Systems/Node2/): set bmc.redfish.systemId to the one that is h1',
    );
    expect(thrownSync(() => chooseSystem('h1', several, '1')).code).toBe('POWER_FAILED');
    expect(thrownSync(() => chooseSystem('h1', [])).message).toBe('the BMC of h1 lists no system in /redfish/v1/Systems');
  });

  it('reads the reset action and its allowed values, on the action or in an ActionInfo', () => {
    const action = resetActionOf('h1', IDRAC_SYSTEM);
    expect(action.target).toBe('/redfish/v1/Systems/System.Embedded.1/Actions/ComputerSystem.Reset');
    expect(pickResetType(action.allowed, ['On', 'PushPowerButton'])).toBe('On');
    expect(pickResetType(action.allowed, ['ForceOn', 'PowerCycle'])).toBe('PowerCycle');
    expect(pickResetType(['ForceOff', 'PushPowerButton'], ['On', 'PushPowerButton'])).toBe('PushPowerButton');
    expect(pickResetType(['ForceOff'], ['GracefulShutdown'])).toBeUndefined();
    expect(pickResetType(undefined, ['GracefulShutdown'])).toBe('GracefulShutdown');
    const viaInfo = resetActionOf('h1', { Actions: { '#ComputerSystem.Reset': { target: '/t', '@Redfish.ActionInfo': '/t/info' } } });
    expect(viaInfo).toEqual({ target: '/t', actionInfo: '/t/info' });
    expect(allowedFromActionInfo({ Parameters: [{ Name: 'Other' }, { Name: 'ResetType', AllowableValues: ['On', 'ForceOff'] }] })).toEqual(['On', 'ForceOff']);
    expect(thrownSync(() => resetActionOf('h1', { Actions: {} })).code).toBe('POWER_FAILED');
  });

  it('normalises the system UUID to lower case; none, all zeros and all F are undefined; garbage is PARSE', () => {
    expect(systemUuidOf('h1', IDRAC_SYSTEM)).toBe('4c4c4544-0042-3610-8052-b4c04f333532');
    expect(systemUuidOf('h1', {})).toBeUndefined();
    expect(systemUuidOf('h1', { UUID: '00000000-0000-0000-0000-000000000000' })).toBeUndefined();
    expect(systemUuidOf('h1', { UUID: 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF' })).toBeUndefined();
    expect(thrownSync(() => systemUuidOf('h1', { UUID: 'not-a-uuid' })).code).toBe('PARSE');
  });

  it('reads watts from Power.PowerControl (summed) or EnvironmentMetrics.PowerWatts', () => {
    expect(chassisOf(IDRAC_SYSTEM)).toBe('/redfish/v1/Chassis/System.Embedded.1');
    expect(powerConsumedWatts({ PowerControl: [{ PowerConsumedWatts: 244 }] })).toBe(244);
    expect(powerConsumedWatts({ PowerControl: [{ PowerConsumedWatts: 100 }, { PowerConsumedWatts: 50.5 }] })).toBe(150.5);
    expect(powerConsumedWatts({ PowerControl: [{ PowerConsumedWatts: null }] })).toBeUndefined();
    expect(environmentPowerWatts({ PowerWatts: { Reading: 312 } })).toBe(312);
    expect(environmentPowerWatts({})).toBeUndefined();
  });

  it('finds where to log in and the session to log out of', () => {
    expect(sessionsUri({ Links: { Sessions: { '@odata.id': '/redfish/v1/SessionService/Sessions' } } })).toBe('/redfish/v1/SessionService/Sessions');
    expect(sessionsUri({ SessionService: { '@odata.id': '/redfish/v1/SessionService' } })).toBe('/redfish/v1/SessionService/Sessions');
    expect(sessionsUri({ Links: {} })).toBeUndefined();
    const answer = (location?: string) => ({ status: 201, headers: location === undefined ? {} : { location }, body: '' });
    expect(sessionUri(answer('https://10.0.0.5/redfish/v1/SessionService/Sessions/7'), {})).toBe('/redfish/v1/SessionService/Sessions/7');
    expect(sessionUri(answer('/redfish/v1/SessionService/Sessions/8'), {})).toBe('/redfish/v1/SessionService/Sessions/8');
    expect(sessionUri(answer(), { '@odata.id': '/redfish/v1/SessionService/Sessions/9' })).toBe('/redfish/v1/SessionService/Sessions/9');
  });

  it('quotes the service’s own error message', () => {
    expect(describeRedfishError({ error: { message: 'General', '@Message.ExtendedInfo': [{ Message: 'Server is already powered ON.' }] } })).toBe(': Server is already powered ON.');
    expect(describeRedfishError({ error: { message: 'General' } })).toBe(': General');
    expect(describeRedfishError({})).toBe('');
  });

  it('compares fingerprints whatever their colons and case', () => {
    expect(normaliseFingerprint('AB:cd:01')).toBe('abcd01');
  });
});
