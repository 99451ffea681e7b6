import type { BmcTarget, IpmitoolOutput, IpmitoolRunner } from '../../../../src/drivers/power/ipmitool-runner.js';
import { sleep } from '../../../../src/util/wait-until.js';
import { type FixtureName, fixture } from './ipmitool-fixtures.js';

/**
 * A fake IpmitoolRunner behind our own port: one BMC per host, answering with real ipmitool output
 * (the fixtures), with scripted faults.
 */
export class FakeIpmitoolRunner implements IpmitoolRunner {
  readonly power = new Map<string, 'on' | 'off'>();
  /** How the host reacts to `chassis power soft`. */
  softOff: 'obey' | 'ignore' | 'refuse' = 'obey';
  /** 'ignore': the BMC acknowledges power-on but the host stays off. */
  powerOn: 'obey' | 'ignore' = 'obey';
  /** Replies used instead of the BMC's behaviour, one per call, first in first out. */
  readonly script: (FixtureName | Error)[] = [];
  /** Every call, as "host: command". */
  readonly calls: string[] = [];
  /** Each call takes this long (abortable). */
  delayMs = 0;

  async run(target: BmcTarget, command: readonly string[], signal: AbortSignal): Promise<IpmitoolOutput> {
    this.calls.push(`${target.host}: ${command.join(' ')}`);
    if (this.delayMs > 0) await sleep(this.delayMs, signal, 'fake ipmitool');
    const scripted = this.script.shift();
    if (scripted instanceof Error) throw scripted;
    if (scripted !== undefined) return fixture(scripted);
    const power = this.power.get(target.host) ?? 'on';
    switch (command.join(' ')) {
      case 'chassis power status':
        return fixture(power === 'on' ? 'chassis-power-status-on' : 'chassis-power-status-off');
      case 'chassis power on':
        if (this.powerOn === 'obey') this.power.set(target.host, 'on');
        return fixture('chassis-power-on');
      case 'chassis power off':
        this.power.set(target.host, 'off');
        return fixture('chassis-power-off');
      case 'chassis power soft':
        if (this.softOff === 'refuse') return fixture('error-power-off-refused');
        if (this.softOff === 'obey') this.power.set(target.host, 'off');
        return fixture('chassis-power-soft');
      case 'dcmi power reading':
        return fixture('dcmi-power-reading-unsupported');
      case 'raw 0x06 0x37':
        return fixture('raw-get-system-guid');
      default:
        throw new Error(`fake ipmitool: no reply for ${command.join(' ')}`);
    }
  }

  commands(): string[] {
    return this.calls.map((c) => c.replace(/^[^:]+: /, ''));
  }
}
