import { describe, expect, it } from 'vitest';
import { PowerAttention } from '../../../src/state/power-attention.js';
import type { PowerDriver, PowerOffMode } from '../../../src/drivers/power/power-driver.js';
import { PowerRecorder, powerActionsInLast24h } from '../../../src/state/power-record.js';
import { SupervisedPower } from '../../../src/actuator/supervised-power.js';
import { ConsolidatorError } from '../../../src/errors.js';
import type { PowerState } from '../../../src/model/snapshot.js';
import { silentLogger } from '../../../src/observability/logger.js';

/** A fake PowerDriver: hosts in memory, with the next failure scripted. */
class FakePower implements PowerDriver {
  readonly power = new Map<string, PowerState>();
  failNext: ConsolidatorError | undefined;
  readonly calls: string[] = [];

  async status(host: string): Promise<PowerState> {
    return this.power.get(host) ?? 'on';
  }
  async powerOn(host: string): Promise<void> {
    this.act(`on ${host}`);
    this.power.set(host, 'on');
  }
  async powerOff(host: string, mode: PowerOffMode): Promise<void> {
    this.act(`off ${mode} ${host}`);
    this.power.set(host, 'off');
  }
  private act(call: string): void {
    this.calls.push(call);
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure !== undefined) throw failure;
  }
}

function setup() {
  let nowMs = Date.UTC(2025, 0, 1);
  const driver = new FakePower();
  const attention = new PowerAttention({ logger: silentLogger });
  const recorder = new PowerRecorder();
  const power = new SupervisedPower({ driver, attention, recorder, logger: silentLogger, nowMs: () => (nowMs += 10) });
  return { driver, attention, recorder, power, now: () => nowMs };
}

const signal = () => new AbortController().signal;

describe('SupervisedPower', () => {
  it('records every power action with its time, mode and result', async () => {
    const { power, recorder, driver, now } = setup();
    await power.powerOff('h1', 'soft', signal());
    driver.failNext = new ConsolidatorError('BMC_UNREACHABLE', 'no answer');
    await expect(power.powerOff('h1', 'hard', signal())).rejects.toThrow('no answer');
    await power.powerOn('h1', signal());
    expect(recorder.record.hosts['h1']?.map((e) => [e.action, e.mode, e.result, e.durationMs])).toEqual([
      ['off', 'soft', 'ok', 10],
      ['off', 'hard', 'BMC_UNREACHABLE', 10],
      ['on', undefined, 'ok', 10],
    ]);
    expect(powerActionsInLast24h(recorder.record, 'h1', now())).toBe(3);
  });

  it('marks a host that fails to power on, and then refuses to power it off automatically', async () => {
    const { power, attention, driver, recorder } = setup();
    driver.failNext = new ConsolidatorError('POWER_TIMEOUT', 'timed out waiting for h1 to report power on');
    await expect(power.powerOn('h1', signal())).rejects.toThrow(/report power on/);
    expect(attention.get('h1')).toMatchObject({ reason: 'PowerOnFailed', errorCode: 'POWER_TIMEOUT' });
    await expect(power.powerOff('h1', 'soft', signal())).rejects.toThrow(/refusing to power off h1 automatically: it needs operator attention \(PowerOnFailed since /);
    expect(driver.calls).toEqual(['on h1']);
    expect(recorder.record.hosts['h1']).toHaveLength(1);
    attention.clear('h1');
    await power.powerOff('h1', 'soft', signal());
    expect(driver.calls).toEqual(['on h1', 'off soft h1']);
  });

  it('does not mark a host whose power-on was aborted (the daemon is stopping)', async () => {
    const { power, attention, driver, recorder } = setup();
    driver.failNext = new ConsolidatorError('ABORTED', 'aborted');
    await expect(power.powerOn('h1', signal())).rejects.toThrow('aborted');
    expect(attention.needsAttention('h1')).toBe(false);
    expect(recorder.record.hosts['h1']?.[0]?.result).toBe('ABORTED');
  });

  it('passes status through, and power readings where the driver has them', async () => {
    const { power, driver } = setup();
    driver.power.set('h1', 'off');
    expect(await power.status('h1', signal())).toBe('off');
    expect(await power.powerReadingWatts('h1', signal())).toBeUndefined();
  });
});
