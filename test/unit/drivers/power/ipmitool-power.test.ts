import { describe, expect, it } from 'vitest';
import { IpmitoolPower, type IpmitoolPowerTiming } from '../../../../src/drivers/power/ipmitool-power.js';
import { ConsolidatorError, isConsolidatorError } from '../../../../src/errors.js';
import { silentLogger } from '../../../../src/observability/logger.js';
import { FakeIpmitoolRunner } from './fake-ipmitool-runner.js';
import { testPolicy } from './policy.js';
import { thrown } from '../../../helpers/thrown.js';

const TIMING: IpmitoolPowerTiming = { softOffTimeoutMs: 60, verifyTimeoutMs: 80, verifyIntervalMs: 5 };

function setup(timing: IpmitoolPowerTiming = TIMING) {
  const runner = new FakeIpmitoolRunner();
  const { hosts } = testPolicy(2, { hosts: [{ name: 'h1', bmc: { address: '127.0.1.1' } }, { name: 'h2' }] });
  const power = new IpmitoolPower({ hosts, runner, timing, logger: silentLogger });
  return { runner, power };
}

const signal = () => new AbortController().signal;


describe('IpmitoolPower', () => {
  it('reads the power state', async () => {
    const { runner, power } = setup();
    expect(await power.status('h1', signal())).toBe('on');
    runner.power.set('h1', 'off');
    expect(await power.status('h1', signal())).toBe('off');
  });

  it('powers on and verifies by reading the state back', async () => {
    const { runner, power } = setup();
    runner.power.set('h1', 'off');
    await power.powerOn('h1', signal());
    expect(runner.commands()).toEqual(['chassis power on', 'chassis power status']);
    expect(runner.power.get('h1')).toBe('on');
  });

  it('powers off hard when asked to', async () => {
    const { runner, power } = setup();
    await power.powerOff('h1', 'hard', signal());
    expect(runner.commands()).toEqual(['chassis power off', 'chassis power status']);
  });

  it('powers off soft, with no hard power-off when the host obeys', async () => {
    const { runner, power } = setup();
    await power.powerOff('h1', 'soft', signal());
    expect(runner.commands()).toEqual(['chassis power soft', 'chassis power status']);
  });

  it('powers off hard after the soft-off timeout when the host ignores soft-off', async () => {
    const { runner, power } = setup();
    runner.softOff = 'ignore';
    const startMs = Date.now();
    await power.powerOff('h1', 'soft', signal());
    expect(Date.now() - startMs).toBeGreaterThanOrEqual(TIMING.softOffTimeoutMs);
    const commands = runner.commands();
    expect(commands[0]).toBe('chassis power soft');
    expect(commands.filter((c) => c === 'chassis power status').length).toBeGreaterThan(2);
    expect(commands.slice(-2)).toEqual(['chassis power off', 'chassis power status']);
  });

  it('powers off hard at once when the BMC refuses soft-off', async () => {
    const { runner, power } = setup();
    runner.softOff = 'refuse';
    await power.powerOff('h1', 'soft', signal());
    expect(runner.commands()).toEqual(['chassis power soft', 'chassis power off', 'chassis power status']);
  });

  describe('the re-check before a soft power-off turns hard (beforeHardOff)', () => {
    it('sends no hard power-off when the re-check throws, and lets its error through', async () => {
      const { runner, power } = setup();
      runner.softOff = 'ignore';
      const refusal = new ConsolidatorError('POWER_FAILED', 'h1 holds a domain again: vm7');
      const checkedAtMs: number[] = [];
      const startMs = Date.now();
      const e = await thrown(
        power.powerOff('h1', 'soft', signal(), {
          beforeHardOff: async () => {
            checkedAtMs.push(Date.now() - startMs);
            throw refusal;
          },
        }),
      );
      expect(e).toBe(refusal);
      expect(checkedAtMs).toHaveLength(1);
      expect(checkedAtMs[0]).toBeGreaterThanOrEqual(TIMING.softOffTimeoutMs);
      expect(runner.commands()).not.toContain('chassis power off');
      expect(runner.commands()[0]).toBe('chassis power soft');
      expect(runner.power.get('h1') ?? 'on').toBe('on');
    });

    it('powers off hard once the re-check passes, after it and not before', async () => {
      const { runner, power } = setup();
      runner.softOff = 'ignore';
      let commandsAtCheck: string[] = [];
      await power.powerOff('h1', 'soft', signal(), {
        beforeHardOff: async () => {
          commandsAtCheck = runner.commands();
        },
      });
      expect(commandsAtCheck).not.toContain('chassis power off');
      expect(runner.commands().slice(commandsAtCheck.length)).toEqual(['chassis power off', 'chassis power status']);
    });

    it('re-checks before the hard power-off that follows a BMC refusing soft-off', async () => {
      const { runner, power } = setup();
      runner.softOff = 'refuse';
      const e = await thrown(power.powerOff('h1', 'soft', signal(), { beforeHardOff: () => Promise.reject(new ConsolidatorError('POWER_FAILED', 'not empty')) }));
      expect(e.message).toBe('not empty');
      expect(runner.commands()).toEqual(['chassis power soft']);
    });

    it('is not called when the host obeys soft-off, nor for a hard power-off', async () => {
      const { runner, power } = setup();
      let calls = 0;
      const options = { beforeHardOff: async () => void (calls += 1) };
      await power.powerOff('h1', 'soft', signal(), options);
      runner.power.set('h1', 'on');
      await power.powerOff('h1', 'hard', signal(), options);
      expect(calls).toBe(0);
      expect(runner.commands()).toEqual(['chassis power soft', 'chassis power status', 'chassis power off', 'chassis power status']);
    });

    it('passes its abort signal to the re-check', async () => {
      const { runner, power } = setup();
      runner.softOff = 'ignore';
      const controller = new AbortController();
      let seen: AbortSignal | undefined;
      await power.powerOff('h1', 'soft', controller.signal, { beforeHardOff: async (s) => void (seen = s) });
      expect(seen).toBe(controller.signal);
    });
  });

  it('throws POWER_TIMEOUT naming what it awaited when the host does not come on', async () => {
    const { runner, power } = setup();
    runner.power.set('h1', 'off');
    runner.powerOn = 'ignore';
    const e = await thrown(power.powerOn('h1', signal()));
    expect(e.code).toBe('POWER_TIMEOUT');
    expect(e.message).toMatch(/waiting for h1 to report power on \(last seen: power off/);
    expect(e.details).toMatchObject({ host: 'h1', want: 'on', awaited: 'h1 to report power on' });
  });

  it('keeps verifying through a BMC that stops answering for a while', async () => {
    const { runner, power } = setup();
    runner.power.set('h1', 'off');
    runner.script.push('chassis-power-on', 'error-slow-bmc', 'error-unreachable');
    runner.power.set('h1', 'on'); // the host comes on while its BMC is busy
    await power.powerOn('h1', signal());
    expect(runner.commands()).toEqual(['chassis power on', 'chassis power status', 'chassis power status', 'chassis power status']);
  });

  it('ends a verification that never sees an answer with the last BMC error as cause', async () => {
    const { runner, power } = setup();
    runner.script.push('chassis-power-off', ...Array<'error-unreachable'>(100).fill('error-unreachable'));
    const e = await thrown(power.powerOff('h1', 'hard', signal()));
    expect(e.code).toBe('POWER_TIMEOUT');
    expect(e.message).toMatch(/last seen: no answer from the BMC/);
    expect(isConsolidatorError(e.cause, 'BMC_UNREACHABLE')).toBe(true);
  });

  it.each([
    ['error-wrong-password', 'BMC_AUTH', /rejected the password/],
    ['error-wrong-user', 'BMC_AUTH', /does not know this user/],
    ['error-unreachable', 'BMC_UNREACHABLE', /does not answer/],
    ['error-status-failed', 'POWER_FAILED', /refused/],
  ] as const)('fails status with %s as %s', async (name, code, message) => {
    const { runner, power } = setup();
    runner.script.push(name);
    const e = await thrown(power.status('h1', signal()));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
    expect(e.message).toMatch(/^ipmitool chassis power status failed for h1: /);
    expect(e.details).toMatchObject({ host: 'h1', bmc: '127.0.1.1:623', command: 'chassis power status' });
  });

  it('does not retry a wrong password while verifying', async () => {
    const { runner, power } = setup();
    runner.script.push('chassis-power-off', 'error-wrong-password');
    const e = await thrown(power.powerOff('h1', 'hard', signal()));
    expect(e.code).toBe('BMC_AUTH');
    expect(runner.calls).toHaveLength(2);
  });

  it('stops waiting as soon as it is aborted', async () => {
    const { runner, power } = setup({ ...TIMING, softOffTimeoutMs: 60_000 });
    runner.softOff = 'ignore';
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('daemon stopping')), 30);
    const startMs = Date.now();
    const e = await thrown(power.powerOff('h1', 'soft', controller.signal));
    expect(e.code).toBe('ABORTED');
    expect(e.message).toMatch(/h1 to report power off.*daemon stopping/);
    expect(Date.now() - startMs).toBeLessThan(1000);
  });

  it('reads no power where the BMC has no DCMI, and does not ask again', async () => {
    const { runner, power } = setup();
    expect(await power.powerReadingWatts('h1', signal())).toBeUndefined();
    expect(await power.powerReadingWatts('h1', signal())).toBeUndefined();
    expect(runner.calls).toHaveLength(1);
  });

  it('reads watts where the BMC has DCMI', async () => {
    const { runner, power } = setup();
    runner.script.push('dcmi-power-reading-supported');
    expect(await power.powerReadingWatts('h1', signal())).toBe(144);
  });

  it('reads the system UUID with Get System GUID, as Linux shows product_uuid', async () => {
    const { runner, power } = setup();
    expect(await power.systemUuid('h1', signal())).toBe('4c4c4544-0051-3410-8051-b5c04f375931');
    expect(runner.commands()).toEqual(['raw 0x06 0x37']);
  });

  it('reads no system UUID from a BMC that reports all zeros, or has no Get System GUID (not asked again)', async () => {
    const { runner, power } = setup();
    runner.script.push('raw-get-system-guid-unset');
    expect(await power.systemUuid('h1', signal())).toBeUndefined();
    runner.script.push('error-raw-invalid-command');
    expect(await power.systemUuid('h1', signal())).toBeUndefined();
    expect(await power.systemUuid('h1', signal())).toBeUndefined();
    expect(runner.commands()).toEqual(['raw 0x06 0x37', 'raw 0x06 0x37']);
  });

  it('fails the system UUID read like any other command when the BMC refuses us', async () => {
    const { runner, power } = setup();
    runner.script.push('error-wrong-password');
    const e = await thrown(power.systemUuid('h1', signal()));
    expect(e.code).toBe('BMC_AUTH');
    expect(e.message).toMatch(/^ipmitool raw 0x06 0x37 failed for h1: the BMC rejected the password/);
  });

  it('fails clearly for a host without a BMC address, or not in the policy', async () => {
    const { power } = setup();
    expect((await thrown(power.powerOn('h2', signal()))).message).toMatch(/h2 has no bmc.address/);
    expect((await thrown(power.status('h9', signal()))).message).toMatch(/h9 is not a host of the policy/);
  });
});
