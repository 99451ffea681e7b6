import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/config/schema.js';
import { checkPlan, planCycle } from '../../../src/planner/index.js';
import type { PlanInput, PlanResult } from '../../../src/planner/types.js';
import { host, NOW, planInput, plannerPolicy, snapshot, underloadedFor, vm, type HostSpec } from '../../helpers/cluster.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * h1 and h2 on and busy enough to stay on (nothing to consolidate); the other hosts off, each
 * powered off by consolidator `offDays` ago unless it says otherwise.
 */
function cluster(
  off: { id: string; offDays: number; ours?: boolean; spec?: Partial<HostSpec> }[],
  options: { policy?: Partial<PolicyInput>; extra?: Partial<PlanInput>; startedLast24h?: number } = {},
): PlanInput {
  const hosts = [host({ id: 'h1' }), host({ id: 'h2' }), ...off.map((o) => host({ id: o.id, power: 'off', ...o.spec }))];
  const vms = [vm({ id: 'a', host: 'h1', cpu: 16, memoryMiB: 131_072 }), vm({ id: 'b', host: 'h2', cpu: 16, memoryMiB: 131_072 })];
  return planInput(snapshot(hosts, vms), plannerPolicy({ power: { driver: 'simulated' }, ...options.policy }), {
    poweredOffByUs: off.filter((o) => o.ours !== false).map((o) => o.id),
    proofOfBoot: {
      // The operator's hosts have a date too: being off long is not what makes a host consolidator's.
      poweredOffAtMs: Object.fromEntries(off.map((o) => [o.id, NOW - o.offDays * DAY_MS])),
      startedLast24h: options.startedLast24h ?? 0,
    },
    ...options.extra,
  });
}

function proofs(result: PlanResult): string[] {
  return result.actions.flatMap((a) => (a.type === 'power-on' && a.reason === 'ProofOfBoot' ? [a.host] : []));
}

function verdictOf(result: PlanResult, id: string) {
  return result.verdicts.find((v) => v.host === id);
}

describe('proof of boot (planner)', () => {
  it('wakes a host consolidator has kept off longer than afterDays, and leaves it on for minOnSeconds', () => {
    const input = cluster([{ id: 'h3', offDays: 15 }]);
    const result = planCycle(input);
    expect(result.actions).toEqual([{ id: '1-power-on-h3', type: 'power-on', host: 'h3', reason: 'ProofOfBoot', expectedReadyAtMs: NOW + 180_000, dependsOn: [] }]);
    expect(verdictOf(result, 'h3')).toMatchObject({ outcome: 'powering-on' });
    expect(verdictOf(result, 'h3')?.detail).toBe('proof of boot: off for 15.0 days (due after 14.0 days); left on at least 60 min');
    // Not emptied again before max(minOnSeconds, hostCooldownSeconds): the defaults are both an hour.
    expect(result.memory.hostCooldowns['h3']).toEqual({ untilMs: NOW + 3_600_000, reason: 'woken' });
    expect(checkPlan(input, result.actions).violations).toEqual([]);
  });

  it('leaves alone a host off for less than afterDays', () => {
    const result = planCycle(cluster([{ id: 'h3', offDays: 13.9 }]));
    expect(result.actions).toEqual([]);
    expect(verdictOf(result, 'h3')).toMatchObject({ outcome: 'stays-off', reason: 'PoweredOff' });
  });

  it('never wakes a host an operator powered off, however long it has been off', () => {
    const result = planCycle(cluster([{ id: 'h3', offDays: 400, ours: false }]));
    expect(result.actions).toEqual([]);
    expect(verdictOf(result, 'h3')).toMatchObject({ outcome: 'stays-off', reason: 'PoweredOffByOperator' });
  });

  it('never wakes an excluded host, one in maintenance, or one marked for attention', () => {
    const input = cluster(
      [
        { id: 'h3', offDays: 30, spec: { excluded: true } },
        { id: 'h4', offDays: 30, spec: { maintenance: true } },
        { id: 'h5', offDays: 30 },
      ],
      { extra: { needsAttention: ['h5'] } },
    );
    expect(planCycle(input).actions).toEqual([]);
  });

  it('never in a quiet window; the host says why it waits', () => {
    const result = planCycle(cluster([{ id: 'h3', offDays: 15 }], { policy: { windows: { quiet: ['* 12 * * *'] } } }));
    expect(result.actions).toEqual([]);
    expect(verdictOf(result, 'h3')).toMatchObject({ outcome: 'stays-off', reason: 'PoweredOff' });
    expect(verdictOf(result, 'h3')?.detail).toContain('a proof of boot is due, not in a quiet window');
  });

  it('only in an active window: windows.active, or power.proofOfBoot.windows instead when set', () => {
    // NOW is 12:00 UTC.
    const outside = planCycle(cluster([{ id: 'h3', offDays: 15 }], { policy: { windows: { active: ['* 1-5 * * *'] } } }));
    expect(outside.actions).toEqual([]);
    expect(verdictOf(outside, 'h3')?.detail).toContain('outside every windows.active window');
    expect(proofs(planCycle(cluster([{ id: 'h3', offDays: 15 }], { policy: { windows: { active: ['* 10-13 * * *'] } } })))).toEqual(['h3']);
    // Its own windows win over windows.active, both ways.
    const ownWindow = { power: { driver: 'simulated' as const, proofOfBoot: { windows: ['* 12 * * 1-5'] } }, windows: { active: ['* 1-5 * * *'] } };
    expect(proofs(planCycle(cluster([{ id: 'h3', offDays: 15 }], { policy: ownWindow })))).toEqual(['h3']);
    const notOwn = { power: { driver: 'simulated' as const, proofOfBoot: { windows: ['* 9 * * *'] } }, windows: { active: ['* 12 * * *'] } };
    const waits = planCycle(cluster([{ id: 'h3', offDays: 15 }], { policy: notOwn }));
    expect(waits.actions).toEqual([]);
    expect(verdictOf(waits, 'h3')?.detail).toContain('outside every power.proofOfBoot.windows window');
  });

  it('at most maxHostsPerCycle, the longest off first, and no more than maxHostsPerDay in 24 h', () => {
    const off = [
      { id: 'h3', offDays: 20 },
      { id: 'h4', offDays: 40 },
      { id: 'h5', offDays: 30 },
    ];
    expect(proofs(planCycle(cluster(off)))).toEqual(['h4']);
    const two = { power: { driver: 'simulated' as const, proofOfBoot: { maxHostsPerCycle: 2, maxHostsPerDay: 3 } } };
    const result = planCycle(cluster(off, { policy: two }));
    expect(proofs(result)).toEqual(['h4', 'h5']);
    expect(verdictOf(result, 'h3')?.detail).toContain('waiting for its turn');
    // Two of the three a day already started: one more.
    expect(proofs(planCycle(cluster(off, { policy: two, startedLast24h: 2 })))).toEqual(['h4']);
    const none = planCycle(cluster(off, { policy: two, startedLast24h: 3 }));
    expect(none.actions).toEqual([]);
    expect(verdictOf(none, 'h4')?.detail).toContain('3 already started in 24 h (maxHostsPerDay 3)');
  });

  it('counts against the per-host power budget', () => {
    const input = cluster([{ id: 'h3', offDays: 15 }], { policy: { safety: { maxPowerActionsPerHostPerDay: 2 } }, extra: { powerActionsLast24h: { h3: 2 } } });
    expect(planCycle(input).actions).toEqual([]);
  });

  it('is off when power.proofOfBoot.enabled is false, and without the proof-of-boot input (a simulation, a drain)', () => {
    expect(planCycle(cluster([{ id: 'h3', offDays: 15 }], { policy: { power: { driver: 'simulated', proofOfBoot: { enabled: false } } } })).actions).toEqual([]);
    const { proofOfBoot: _, ...withoutInput } = cluster([{ id: 'h3', offDays: 15 }]);
    expect(planCycle(withoutInput).actions).toEqual([]);
  });

  it('does not hold consolidation back, and the woken host is no destination that cycle', () => {
    // h2 is idle and may be emptied onto h1; h3 is due a proof of boot.
    const hosts = [host({ id: 'h1' }), host({ id: 'h2' }), host({ id: 'h3', power: 'off' })];
    const vms = [vm({ id: 'a', host: 'h1', cpu: 4, memoryMiB: 16_384 }), vm({ id: 'b', host: 'h2', cpu: 1, memoryMiB: 4096 })];
    const input = planInput(snapshot(hosts, vms), plannerPolicy({ power: { driver: 'simulated' }, safety: { minHostsOn: 1 } }), {
      memory: underloadedFor(60, ['h1', 'h2']),
      poweredOffByUs: ['h3'],
      proofOfBoot: { poweredOffAtMs: { h3: NOW - 20 * DAY_MS }, startedLast24h: 0 },
    });
    const result = planCycle(input);
    const described = result.actions.map((a) => (a.type === 'migrate' ? `migrate ${a.vm} ${a.from}->${a.to}` : `${a.type} ${a.host}`));
    expect(described).toEqual(['migrate b h2->h1', 'power-off h2', 'power-on h3']);
    expect(checkPlan(input, result.actions).violations).toEqual([]);
  });

  it('the next cycle does not empty the host it woke: it stays on for minOnSeconds', () => {
    const policy = { power: { driver: 'simulated' as const, proofOfBoot: { minOnSeconds: 7200 } }, safety: { hostCooldownSeconds: 600 } };
    const first = planCycle(cluster([{ id: 'h3', offDays: 15 }], { policy }));
    expect(first.memory.hostCooldowns['h3']?.untilMs).toBe(NOW + 7_200_000);
    // An hour later h3 is up, empty and has been underloaded since it came up.
    const hosts = [host({ id: 'h1' }), host({ id: 'h2' }), host({ id: 'h3', use: { cpu: 0.1, memory: 1024 } })];
    const vms = [vm({ id: 'a', host: 'h1', cpu: 16, memoryMiB: 131_072 }), vm({ id: 'b', host: 'h2', cpu: 16, memoryMiB: 131_072 })];
    const later = NOW + 3_600_000;
    const next = planCycle({
      ...planInput(snapshot(hosts, vms), plannerPolicy(policy), { memory: { ...first.memory, underloadedSinceMs: { h3: NOW } } }),
      nowMs: later,
    });
    expect(next.actions).toEqual([]);
    expect(verdictOf(next, 'h3')).toMatchObject({ outcome: 'kept-on', reason: 'Cooldown' });
  });

  it('property: only a managed host consolidator powered off, off for afterDays, within the limits', () => {
    const offArb = fc.record({
      ours: fc.boolean(),
      // Half days from 0 to 60 (fc.double crowds near 0).
      offDays: fc.integer({ min: 0, max: 120 }).map((halfDays) => halfDays / 2),
      excluded: fc.constantFrom(false, false, false, true),
      maintenance: fc.constantFrom(false, false, false, true),
      attention: fc.constantFrom(false, false, false, true),
      powerActions: fc.integer({ min: 0, max: 4 }),
    });
    let woken = 0;
    fc.assert(
      fc.property(
        fc.array(offArb, { minLength: 1, maxLength: 8 }),
        fc.record({ afterDays: fc.constantFrom(0.5, 14, 30), maxHostsPerCycle: fc.integer({ min: 1, max: 4 }), maxHostsPerDay: fc.integer({ min: 1, max: 4 }) }),
        fc.integer({ min: 0, max: 4 }),
        fc.boolean(),
        (off, config, startedLast24h, quiet) => {
          const ids = off.map((_, i) => `h${i + 3}`);
          const input = cluster(
            off.map((o, i) => ({ id: ids[i] as string, offDays: o.offDays, ours: o.ours, spec: { excluded: o.excluded, maintenance: o.maintenance } })),
            {
              policy: { power: { driver: 'simulated', proofOfBoot: config }, windows: { quiet: quiet ? ['* * * * *'] : [] } },
              startedLast24h,
              extra: {
                needsAttention: ids.filter((_, i) => off[i]?.attention),
                powerActionsLast24h: Object.fromEntries(ids.map((id, i) => [id, off[i]?.powerActions ?? 0])),
              },
            },
          );
          const result = planCycle(input);
          const proven = proofs(result);
          woken += proven.length;
          expect(result.actions.length).toBe(proven.length);
          expect(proven.length).toBeLessThanOrEqual(quiet ? 0 : Math.max(0, Math.min(config.maxHostsPerCycle, config.maxHostsPerDay - startedLast24h)));
          for (const h of proven) {
            const o = off[ids.indexOf(h)];
            expect(o?.ours, `${h} was powered off by an operator`).toBe(true);
            expect(o?.excluded || o?.maintenance || o?.attention).toBe(false);
            expect(o?.offDays).toBeGreaterThanOrEqual(config.afterDays);
            expect((o?.powerActions ?? 0) + 1).toBeLessThanOrEqual(input.policy.safety.maxPowerActionsPerHostPerDay);
          }
          expect(checkPlan(input, result.actions).violations).toEqual([]);
        },
      ),
      { numRuns: 500 },
    );
    expect(woken).toBeGreaterThan(30);
  }, 60_000);
});
