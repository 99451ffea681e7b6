import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { EnergyLedger, type LedgerHost } from '../../../src/state/energy-ledger.js';

const MODEL = { kind: 'linear', idleWatts: 100, maxWatts: 300 } as const;
const HOUR_MS = 3_600_000;

function host(name: string, over: Partial<LedgerHost> = {}): LedgerHost {
  return { name, power: 'on', offByUs: false, cpuRatio: 0.5, watts: null, powerModel: MODEL, ...over };
}

describe('EnergyLedger: energy saved against every host on', () => {
  it('a host consolidator kept off saves its idle draw for as long as it stays off; the hosts on draw the same on both sides', () => {
    const ledger = new EnergyLedger({ maxIntervalSeconds: 2 * 3600 });
    const hosts = [host('a'), host('b', { power: 'off', offByUs: true, cpuRatio: null })];
    ledger.observe(0, hosts);
    const joules = ledger.observe(HOUR_MS, hosts);
    expect(joules).toBe(100 * 3600);
    const t = ledger.totals();
    expect(t.savedKWh).toBeCloseTo(0.1, 9);
    expect(t.actualKWh).toBeCloseTo(0.2, 9); // a at 50 %: 200 W for an hour
    expect(t.allHostsOnKWh).toBeCloseTo(0.3, 9);
    expect(t.hostHoursOff).toBe(1);
    expect(t.idleMethod).toEqual({ b: 'model' });
    expect(ledger.savingWattsNow()).toBe(100);
  });

  it('claims nothing for a host an operator powered off, or one whose state is unknown', () => {
    const ledger = new EnergyLedger({ maxIntervalSeconds: 7200 });
    const hosts = [host('a', { power: 'off', offByUs: false }), host('b', { power: 'unknown' })];
    ledger.observe(0, hosts);
    expect(ledger.observe(HOUR_MS, hosts)).toBe(0);
    expect(ledger.totals().hostHoursOff).toBe(0);
  });

  it('subtracts the standby draw the BMC reports for a host that is off', () => {
    const ledger = new EnergyLedger({ maxIntervalSeconds: 7200 });
    const hosts = [host('b', { power: 'off', offByUs: true, watts: 12 })];
    ledger.observe(0, hosts);
    expect(ledger.observe(HOUR_MS, hosts)).toBe((100 - 12) * 3600);
  });

  it("prices the idle draw from the host's own readings once it has five, less the model's dynamic part", () => {
    const ledger = new EnergyLedger({ maxIntervalSeconds: 7200 });
    // The model says 200 W at 50 %; the BMC says 230 W: this host idles at 130 W.
    for (let i = 0; i < 5; i++) ledger.observe(i * 60_000, [host('b', { watts: 230 })]);
    const off = [host('b', { power: 'off', offByUs: true, cpuRatio: null })];
    ledger.observe(HOUR_MS, off);
    expect(ledger.observe(2 * HOUR_MS, off)).toBeCloseTo(130 * 3600, 6);
    expect(ledger.totals().idleMethod).toEqual({ b: 'measured' });
    expect(ledger.totals().measuredKWh).toBeGreaterThan(0);
  });

  it('an interval longer than the limit is a gap (the daemon was stopped) and counts for nothing', () => {
    const ledger = new EnergyLedger({ maxIntervalSeconds: 600 });
    const hosts = [host('b', { power: 'off', offByUs: true })];
    ledger.observe(0, hosts);
    expect(ledger.observe(HOUR_MS, hosts)).toBe(0);
    expect(ledger.totals().gapSeconds).toBe(3600);
    expect(ledger.totals().coveredSeconds).toBe(0);
  });

  it('the states of an interval are those of its first observation: a host powered off counts from the cycle that sees it off', () => {
    const ledger = new EnergyLedger({ maxIntervalSeconds: 7200 });
    ledger.observe(0, [host('b')]);
    expect(ledger.observe(HOUR_MS, [host('b', { power: 'off', offByUs: true })])).toBe(0);
    expect(ledger.observe(2 * HOUR_MS, [host('b', { power: 'off', offByUs: true })])).toBe(100 * 3600);
  });

  it('property: never negative, never more than the idle draw of the hosts kept off, and the totals add up', () => {
    const arbHost = fc.record({
      power: fc.constantFrom('on', 'off', 'unknown'),
      offByUs: fc.boolean(),
      cpuRatio: fc.option(fc.double({ min: -0.5, max: 1.5, noNaN: true })),
      watts: fc.option(fc.double({ min: 0, max: 500, noNaN: true })),
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 7200 }), fc.array(arbHost, { minLength: 3, maxLength: 3 })), { minLength: 2, maxLength: 30 }), (steps) => {
        const ledger = new EnergyLedger({ maxIntervalSeconds: 3600 });
        let t = 0;
        let bound = 0;
        let previous: LedgerHost[] | undefined;
        for (const [dt, hs] of steps) {
          t += dt * 1000;
          const hosts = hs.map((h, i) => host(`h${i}`, h as Partial<LedgerHost>));
          const saved = ledger.observe(t, hosts);
          expect(saved).toBeGreaterThanOrEqual(0);
          if (previous && dt <= 3600) bound += previous.filter((h) => h.power === 'off' && h.offByUs).length * 500 * dt;
          previous = hosts;
          expect(saved).toBeLessThanOrEqual(bound + 1e-6);
        }
        const totals = ledger.totals();
        expect(totals.savedKWh).toBeCloseTo(totals.allHostsOnKWh - totals.actualKWh, 9);
        expect(totals.measuredKWh).toBeLessThanOrEqual(totals.actualKWh + 1e-9);
      }),
    );
  });
});
