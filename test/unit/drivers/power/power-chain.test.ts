import { describe, expect, it } from 'vitest';
import { POWER_DRIVERS, POWER_ON_ONLY_PATHS, POWER_PATHS, type PowerPathName } from '../../../../src/config/schema.js';
import { createPowerDriverRegistry } from '../../../../src/drivers/power/registry.js';
import { type PowerAttempt, PowerChain, type PowerOnSender, type ChainPath } from '../../../../src/drivers/power/power-chain.js';
import type { PowerDriver, PowerOffMode, PowerOffOptions } from '../../../../src/drivers/power/power-driver.js';
import { ConsolidatorError, type ErrorCode } from '../../../../src/errors.js';
import type { HostId } from '../../../../src/model/ids.js';
import type { PowerState } from '../../../../src/model/snapshot.js';
import { silentLogger } from '../../../../src/observability/logger.js';
import { thrown } from '../../../helpers/thrown.js';

/** The machine every fake path acts on: a power-on that takes really turns it on. */
class Machine {
  power: 'on' | 'off' = 'off';
}

type Behaviour = 'obey' | 'ignore' | ErrorCode;

/**
 * A PowerDriver on a Machine with scripted behaviour: 'obey' does it, 'ignore' takes the request and
 * leaves the machine as it is (POWER_TIMEOUT, as a driver that reads back would report), an error
 * code fails with it. Each behaviour list is used in order, its last entry repeating.
 */
class FakePath implements PowerDriver {
  readonly calls: string[] = [];
  forcePowerOn?: (host: HostId, signal: AbortSignal) => Promise<void>;
  systemUuid?: (host: HostId, signal: AbortSignal) => Promise<string | undefined>;

  constructor(
    private readonly machine: Machine,
    private readonly script: { on?: Behaviour[]; off?: Behaviour[]; status?: ('answer' | 'unknown' | ErrorCode)[]; forceOn?: Behaviour[] } = {},
  ) {
    if (script.forceOn !== undefined) {
      this.forcePowerOn = async () => {
        this.calls.push('force-on');
        this.act(this.next<Behaviour>('forceOn', script.forceOn ?? []), 'on');
      };
    }
  }

  async status(): Promise<PowerState> {
    this.calls.push('status');
    const b = this.next('status', this.script.status ?? ['answer']);
    if (b === 'unknown') return 'unknown';
    if (b !== 'answer') throw new ConsolidatorError(b as ErrorCode, `status: ${b}`);
    return this.machine.power;
  }

  async powerOn(): Promise<void> {
    this.calls.push('on');
    this.act(this.next<Behaviour>('on', this.script.on ?? ['obey']), 'on');
  }

  async powerOff(_host: HostId, mode: PowerOffMode, signal: AbortSignal, options?: PowerOffOptions): Promise<void> {
    this.calls.push(`off-${mode}`);
    const b = this.next<Behaviour>('off', this.script.off ?? ['obey']);
    if (b === 'ignore' && mode === 'soft') {
      // the host ignored the ACPI request: the hard power-off goes through the caller's guard
      await options?.beforeHardOff?.(signal);
      this.calls.push('off-hard');
      this.machine.power = 'off';
      return;
    }
    this.act(b, 'off');
  }

  private readonly used = new Map<string, number>();
  private next<T>(key: string, list: readonly T[]): T {
    const i = this.used.get(key) ?? 0;
    this.used.set(key, i + 1);
    return list[Math.min(i, list.length - 1)] as T;
  }

  private act(b: Behaviour, to: 'on' | 'off'): void {
    if (b === 'obey') {
      this.machine.power = to;
      return;
    }
    if (b === 'ignore') throw new ConsolidatorError('POWER_TIMEOUT', `timed out waiting for power ${to}`);
    throw new ConsolidatorError(b, `power ${to}: ${b}`);
  }
}

/** Wake-on-LAN on the Machine: sends always succeed; whether the machine wakes is scripted. */
class FakeWake implements PowerOnSender {
  sent = 0;
  constructor(
    private readonly machine: Machine,
    private readonly wakes: boolean | 'send-fails' = true,
  ) {}
  async sendPowerOn(): Promise<void> {
    this.sent++;
    if (this.wakes === 'send-fails') throw new ConsolidatorError('POWER_FAILED', 'no such interface');
    if (this.wakes) this.machine.power = 'on';
  }
}

function chain(paths: ChainPath[], options: { resends?: number; order?: PowerPathName[] } = {}) {
  const attempts: PowerAttempt[] = [];
  const driver = new PowerChain({
    paths,
    chainOf: () => options.order ?? paths.map((p) => p.name),
    resends: options.resends ?? 1,
    confirmTimeoutMs: 30,
    confirmIntervalMs: 5,
    logger: silentLogger,
    onAttempt: (a) => attempts.push(a),
  });
  const seen = () => attempts.map((a) => `${a.path} ${a.action} ${a.outcome}`);
  return { driver, attempts, seen };
}

const ipmi = (driver: PowerDriver): ChainPath => ({ name: 'ipmitool', kind: 'driver', driver });
/** A second driver path; the name is only a label here (the chain keys paths by name). */
const other = (driver: PowerDriver): ChainPath => ({ name: 'redfish' as PowerPathName, kind: 'driver', driver });
const wol = (sender: PowerOnSender): ChainPath => ({ name: 'wol', kind: 'power-on-only', sender });
const signal = () => AbortSignal.timeout(5_000);

describe('PowerChain status', () => {
  it('answers from the first path that answers, asking the next one when a path fails', async () => {
    const m = new Machine();
    m.power = 'on';
    const first = new FakePath(m, { status: ['BMC_UNREACHABLE'] });
    const second = new FakePath(m);
    const { driver, seen } = chain([ipmi(first), other(second)]);
    expect(await driver.status('h1', signal())).toBe('on');
    expect(seen()).toEqual(['ipmitool status unreachable', 'redfish status ok']);
  });

  it('never reads "off" when no path answers: the error, and the single error unchanged', async () => {
    const m = new Machine();
    const one = chain([ipmi(new FakePath(m, { status: ['BMC_UNREACHABLE'] })), wol(new FakeWake(m))]);
    const e1 = await thrown(one.driver.status('h1', signal()));
    expect(e1.code).toBe('BMC_UNREACHABLE');
    expect(e1.message).toBe('status: BMC_UNREACHABLE');
    const two = chain([ipmi(new FakePath(m, { status: ['BMC_UNREACHABLE'] })), other(new FakePath(m, { status: ['BMC_AUTH'] }))]);
    const e2 = await thrown(two.driver.status('h1', signal()));
    expect(e2.code).toBe('BMC_AUTH');
    expect(e2.message).toMatch(/power status of h1 failed through every power path \(ipmitool status #1: BMC_UNREACHABLE, redfish status #2: BMC_AUTH\)/);
  });

  it('never asks wol for a status', async () => {
    const m = new Machine();
    const wake = new FakeWake(m);
    const { driver, seen } = chain([wol(wake), ipmi(new FakePath(m))]);
    expect(await driver.status('h1', signal())).toBe('off');
    expect(seen()).toEqual(['ipmitool status ok']);
  });
});

describe('PowerChain powerOff', () => {
  it('goes through the first path with state, never wol, and to the next path only when one does not answer', async () => {
    const m = new Machine();
    m.power = 'on';
    const wake = new FakeWake(m);
    const first = new FakePath(m, { off: ['BMC_UNREACHABLE'] });
    const second = new FakePath(m);
    const { driver, seen } = chain([wol(wake), ipmi(first), other(second)]);
    await driver.powerOff('h1', 'soft', signal());
    expect(m.power).toBe('off');
    expect(wake.sent).toBe(0);
    expect(seen()).toEqual(['ipmitool off unreachable', 'redfish off ok']);
  });

  it('stops at a path that answered and failed (no second power-off elsewhere)', async () => {
    const m = new Machine();
    m.power = 'on';
    const second = new FakePath(m);
    const { driver } = chain([ipmi(new FakePath(m, { off: ['POWER_TIMEOUT'] })), other(second)]);
    expect((await thrown(driver.powerOff('h1', 'soft', signal()))).code).toBe('POWER_TIMEOUT');
    expect(second.calls).toEqual([]);
  });

  it("passes the caller's beforeHardOff guard on, and its refusal ends the power-off unchanged", async () => {
    const m = new Machine();
    m.power = 'on';
    const refusal = new ConsolidatorError('BMC_UNREACHABLE', 'guests could not be counted');
    const second = new FakePath(m);
    const first = new FakePath(m, { off: ['ignore'] });
    const { driver } = chain([ipmi(first), other(second)]);
    const e = await thrown(driver.powerOff('h1', 'soft', signal(), { beforeHardOff: async () => { throw refusal; } }));
    expect(e).toBe(refusal);
    expect(first.calls).toEqual(['off-soft']);
    expect(second.calls).toEqual([]);
    expect(m.power).toBe('on');
    let guarded = 0;
    await driver.powerOff('h1', 'soft', signal(), { beforeHardOff: async () => { guarded++; } });
    expect(guarded).toBe(1);
    expect(m.power).toBe('off');
  });
});

describe('PowerChain powerOn', () => {
  it('is one attempt when the first path takes', async () => {
    const m = new Machine();
    const { driver, seen } = chain([ipmi(new FakePath(m)), wol(new FakeWake(m))]);
    await driver.powerOn('h1', signal());
    expect(m.power).toBe('on');
    expect(seen()).toEqual(['ipmitool on ok']);
  });

  it('re-sends a power-on that did not take, through the same path', async () => {
    const m = new Machine();
    const first = new FakePath(m, { on: ['ignore', 'obey'] });
    const wake = new FakeWake(m);
    const { driver, attempts } = chain([ipmi(first), wol(wake)], { resends: 1 });
    await driver.powerOn('h1', signal());
    expect(m.power).toBe('on');
    expect(first.calls).toEqual(['on', 'on']);
    expect(wake.sent).toBe(0);
    expect(attempts.map((a) => [a.path, a.action, a.attempt, a.outcome])).toEqual([
      ['ipmitool', 'on', 1, 'timeout'],
      ['ipmitool', 'on', 2, 'ok'],
    ]);
  });

  it('escalates with forcePowerOn where the path offers it, after the re-sends', async () => {
    const m = new Machine();
    const first = new FakePath(m, { on: ['ignore'], forceOn: ['obey'] });
    const { driver, seen } = chain([ipmi(first), wol(new FakeWake(m))], { resends: 2 });
    await driver.powerOn('h1', signal());
    expect(first.calls).toEqual(['on', 'on', 'on', 'force-on']);
    expect(seen()).toEqual(['ipmitool on timeout', 'ipmitool on timeout', 'ipmitool on timeout', 'ipmitool force-on ok']);
  });

  it('records no escalation when the path offers none, and falls back to wol, confirmed by the state read back', async () => {
    const m = new Machine();
    const first = new FakePath(m, { on: ['ignore'] });
    const wake = new FakeWake(m);
    const { driver, seen } = chain([ipmi(first), wol(wake)], { resends: 1 });
    await driver.powerOn('h1', signal());
    expect(m.power).toBe('on');
    expect(wake.sent).toBe(1);
    expect(seen()).toEqual(['ipmitool on timeout', 'ipmitool on timeout', 'wol on ok']);
    expect(first.calls.filter((c) => c === 'force-on')).toEqual([]);
  });

  it('does not escalate a path that did not answer (a ForceOn would not get through either)', async () => {
    const m = new Machine();
    const first = new FakePath(m, { on: ['BMC_UNREACHABLE'], status: ['BMC_UNREACHABLE'], forceOn: ['obey'] });
    const { driver, seen } = chain([ipmi(first), wol(new FakeWake(m))], { resends: 0 });
    await driver.powerOn('h1', signal());
    expect(seen()).toEqual(['ipmitool on unreachable', 'wol on unconfirmed']);
    expect(first.calls).not.toContain('force-on');
  });

  it('judges wol by the other paths: still off is a timeout, re-sent, then the error names every attempt', async () => {
    const m = new Machine();
    const wake = new FakeWake(m, false);
    const { driver, seen } = chain([ipmi(new FakePath(m, { on: ['ignore'] })), wol(wake)], { resends: 1 });
    const e = await thrown(driver.powerOn('h1', signal()));
    expect(e.code).toBe('POWER_TIMEOUT');
    expect(wake.sent).toBe(2);
    expect(seen()).toEqual(['ipmitool on timeout', 'ipmitool on timeout', 'wol on timeout', 'wol on timeout']);
    expect(e.message).toMatch(/^power on of h1 failed through every power path \(ipmitool on #1: POWER_TIMEOUT, ipmitool on #2: POWER_TIMEOUT, wol on #3: POWER_TIMEOUT, wol on #4: POWER_TIMEOUT\); last: h1 still reports power off/);
  });

  it('does not re-send wol when the packet could not be sent', async () => {
    const m = new Machine();
    const wake = new FakeWake(m, 'send-fails');
    const { driver, seen } = chain([ipmi(new FakePath(m, { on: ['ignore'] })), wol(wake)], { resends: 3 });
    expect((await thrown(driver.powerOn('h1', signal()))).code).toBe('POWER_FAILED');
    expect(wake.sent).toBe(1);
    expect(seen().slice(-1)).toEqual(['wol on failed']);
  });

  it('with one path and no re-sends, is that driver alone: one call, its error unchanged', async () => {
    const m = new Machine();
    const only = new FakePath(m, { on: ['ignore'] });
    const { driver } = chain([ipmi(only)], { resends: 0 });
    const e = await thrown(driver.powerOn('h1', signal()));
    expect(e.message).toBe('timed out waiting for power on');
    expect(only.calls).toEqual(['on']);
  });

  it('stops at once when aborted, and counts the attempt as aborted', async () => {
    const m = new Machine();
    const controller = new AbortController();
    const first = new FakePath(m, { on: ['ignore'] });
    first.powerOn = async () => {
      controller.abort();
      throw new ConsolidatorError('ABORTED', 'stopping');
    };
    const wake = new FakeWake(m);
    const { driver, seen } = chain([ipmi(first), wol(wake)], { resends: 2 });
    expect((await thrown(driver.powerOn('h1', controller.signal))).code).toBe('ABORTED');
    expect(seen()).toEqual(['ipmitool on aborted']);
    expect(wake.sent).toBe(0);
  });
});

describe('PowerChain identity', () => {
  it('lets a power-on through wol go out when no BMC answers for the system uuid, but not in a chain without wol', async () => {
    const m = new Machine();
    const broken = new FakePath(m);
    broken.systemUuid = async () => {
      throw new ConsolidatorError('BMC_UNREACHABLE', 'no answer');
    };
    expect(await chain([ipmi(broken), wol(new FakeWake(m))]).driver.systemUuid('h1', signal())).toBeUndefined();
    expect((await thrown(chain([ipmi(broken)]).driver.systemUuid('h1', signal()))).code).toBe('BMC_UNREACHABLE');
  });
});

describe('power paths', () => {
  it('every real power driver can be a path of a chain, and every path is a registered driver or a power-on-only one', () => {
    const real = POWER_DRIVERS.filter((d) => d !== 'simulated');
    expect([...POWER_PATHS].sort()).toEqual([...real, ...POWER_ON_ONLY_PATHS].sort());
    const registry = createPowerDriverRegistry();
    for (const path of POWER_PATHS) expect(POWER_ON_ONLY_PATHS.includes(path) || registry.has(path)).toBe(true);
  });
});
