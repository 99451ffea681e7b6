import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PolicyInput } from '../../../src/config/schema.js';
import type { HostSnapshot, VmSnapshot } from '../../../src/model/snapshot.js';
import { checkPlan, planCycle } from '../../../src/planner/index.js';
import type { InFlightAction, PlanInput, PlanResult } from '../../../src/planner/types.js';
import { host, NOW, plannerPolicy, snapshot, vm } from '../../helpers/cluster.js';

/** Random clusters and policies: a few hosts in every state, VMs of every kind, tight and loose limits. */
const hostArb = fc.record({
  cpu: fc.constantFrom(8, 16, 32, 64),
  memoryGiB: fc.constantFrom(32, 64, 128, 256),
  power: fc.constantFrom<HostSnapshot['power']>('on', 'on', 'on', 'on', 'on', 'off', 'unknown'),
  excluded: fc.constantFrom(false, false, false, false, true),
  maintenance: fc.constantFrom(false, false, false, false, true),
  reachable: fc.constantFrom(true, true, true, true, true, false),
  underloadedMinutes: fc.option(fc.integer({ min: 0, max: 120 }), { nil: undefined }),
  idleWatts: fc.integer({ min: 50, max: 200 }),
  overheadCpu: fc.option(fc.double({ min: 0, max: 2, noNaN: true }), { nil: undefined }),
});

const vmArb = fc.record({
  hostSlot: fc.nat(),
  cpu: fc.double({ min: 0, max: 12, noNaN: true }),
  memoryGiB: fc.constantFrom(1, 2, 4, 8, 16, 32, 64),
  pinned: fc.constantFrom(false, false, false, false, false, false, true),
  group: fc.constantFrom(undefined, undefined, undefined, 'g1', 'g2'),
  dirty: fc.option(fc.integer({ min: 0, max: 2000 }), { nil: undefined }),
});

const policyArb = fc
  .record({
    cpuUnder: fc.double({ min: 0.05, max: 0.5, noNaN: true }),
    cpuGap: fc.double({ min: 0.05, max: 0.4, noNaN: true }),
    memUnder: fc.double({ min: 0.05, max: 0.5, noNaN: true }),
    memGap: fc.double({ min: 0.05, max: 0.4, noNaN: true }),
    minHostsOn: fc.integer({ min: 0, max: 4 }),
    maxMigrationsPerCycle: fc.integer({ min: 0, max: 30 }),
    maxPowerActionsPerHostPerDay: fc.integer({ min: 0, max: 6 }),
    spareHosts: fc.constantFrom(0, 0, 0, 1),
    reserveRatio: fc.constantFrom(0, 0, 0.1),
    worthItMargin: fc.constantFrom(1, 2, 10),
    bandwidthMiBps: fc.constantFrom(0, 50, 1000),
    underloadedForSeconds: fc.constantFrom(60, 1800),
    proofAfterDays: fc.constantFrom(1, 14),
    proofMaxPerCycle: fc.integer({ min: 1, max: 3 }),
    proofMaxPerDay: fc.integer({ min: 1, max: 3 }),
  })
  .map(
    (p): Partial<PolicyInput> => ({
      thresholds: {
        cpu: { underloadRatio: p.cpuUnder, targetRatio: Math.min(1, p.cpuUnder + p.cpuGap), overloadRatio: Math.min(1, p.cpuUnder + p.cpuGap + 0.1) },
        memory: { underloadRatio: p.memUnder, targetRatio: Math.min(1, p.memUnder + p.memGap), overloadRatio: Math.min(1, p.memUnder + p.memGap + 0.1) },
      },
      safety: {
        minHostsOn: p.minHostsOn,
        maxMigrationsPerCycle: p.maxMigrationsPerCycle,
        maxPowerActionsPerHostPerDay: p.maxPowerActionsPerHostPerDay,
        spareHosts: p.spareHosts,
        reserveRatio: p.reserveRatio,
        hostCooldownSeconds: 3600,
        vmCooldownSeconds: 3600,
      },
      consolidation: { worthItMargin: p.worthItMargin, underloadedForSeconds: p.underloadedForSeconds },
      migration: { bandwidthMiBps: p.bandwidthMiBps },
      power: { driver: 'simulated', proofOfBoot: { afterDays: p.proofAfterDays, maxHostsPerCycle: p.proofMaxPerCycle, maxHostsPerDay: p.proofMaxPerDay } },
    }),
  );

const inputArb = fc
  .record({
    hosts: fc.array(hostArb, { minLength: 1, maxLength: 10 }),
    vms: fc.array(vmArb, { maxLength: 40 }),
    policy: policyArb,
    oursMask: fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }),
    powerCounts: fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 10, maxLength: 10 }),
    inFlightVm: fc.option(fc.nat(), { nil: undefined }),
    offDays: fc.array(fc.integer({ min: 0, max: 60 }).map((halfDays) => halfDays / 2), { minLength: 10, maxLength: 10 }),
    proofsToday: fc.constantFrom(0, 0, 0, 1, 3),
  })
  .map(({ hosts, vms, policy, oursMask, powerCounts, inFlightVm, offDays, proofsToday }): PlanInput => {
    const hostSnaps = hosts.map((h, i) =>
      host({
        id: `h${String(i).padStart(2, '0')}`,
        cpu: h.cpu,
        memoryMiB: h.memoryGiB * 1024,
        power: h.power,
        reachable: h.power === 'on' ? h.reachable : false,
        excluded: h.excluded,
        maintenance: h.maintenance,
        powerModel: { kind: 'linear', idleWatts: h.idleWatts, maxWatts: h.idleWatts + 200 },
      }),
    );
    const onHosts = hostSnaps.filter((h) => h.power === 'on');
    const vmSnaps: VmSnapshot[] = onHosts.length === 0 ? [] : vms.map((v, i) => {
      const home = onHosts[v.hostSlot % onHosts.length] as HostSnapshot;
      return vm({
        id: `vm${String(i).padStart(3, '0')}`,
        host: home.id,
        cpu: Math.min(v.cpu, home.capacity.cpu),
        memoryMiB: Math.min(v.memoryGiB * 1024, home.capacity.memory / 2),
        pinned: v.pinned,
        ...(v.group ? { groups: [v.group] } : {}),
        ...(v.dirty !== undefined ? { dirtyRateMiBps: v.dirty } : {}),
      });
    });
    // Host-level samples for some hosts: their VMs plus some overhead.
    const withOverhead = hostSnaps.map((h, i) => {
      const overhead = hosts[i]?.overheadCpu;
      if (overhead === undefined || h.power !== 'on') return h;
      const mine = vmSnaps.filter((v) => v.host === h.id);
      const cpu = mine.reduce((s, v) => s + (v.samples[0]?.use.cpu ?? 0), 0) + overhead;
      const memory = mine.reduce((s, v) => s + v.memoryMiB, 0);
      return { ...h, samples: [{ atMs: NOW, use: { cpu, memory } }] };
    });
    const underloadedSinceMs: Record<string, number> = {};
    hosts.forEach((h, i) => {
      if (h.underloadedMinutes !== undefined) underloadedSinceMs[(withOverhead[i] as HostSnapshot).id] = NOW - h.underloadedMinutes * 60_000;
    });
    const inFlight: InFlightAction[] = [];
    if (inFlightVm !== undefined && vmSnaps.length > 0 && onHosts.length > 1) {
      const moving = vmSnaps[inFlightVm % vmSnaps.length] as VmSnapshot;
      const other = onHosts.find((h) => h.id !== moving.host) as HostSnapshot;
      inFlight.push({ type: 'migrate', vm: moving.id, from: moving.host, to: other.id });
    }
    return {
      snapshot: snapshot(withOverhead, vmSnaps),
      policy: plannerPolicy(policy),
      memory: { underloadedSinceMs, hostCooldowns: {}, vmCooldownUntilMs: {} },
      inFlight,
      poweredOffByUs: withOverhead.filter((h, i) => h.power === 'off' && oursMask[i]).map((h) => h.id),
      powerActionsLast24h: Object.fromEntries(withOverhead.map((h, i) => [h.id, powerCounts[i] ?? 0])),
      needsAttention: [],
      // Every host that is off has a date here, the operator's too: only poweredOffByUs may make one ours.
      proofOfBoot: {
        poweredOffAtMs: Object.fromEntries(withOverhead.flatMap((h, i) => (h.power === 'off' ? [[h.id, NOW - (offDays[i] ?? 0) * DAY_MS]] : []))),
        startedLast24h: proofsToday,
      },
      nowMs: NOW,
    };
  });

const DAY_MS = 24 * 60 * 60 * 1000;

const RUNS = 1000;
const TIMEOUT_MS = 120_000;

/** Hosts known to be on: powered on and answering. */
function countOn(input: PlanInput): number {
  return input.snapshot.hosts.filter((h) => h.power === 'on' && h.reachable).length;
}

/** The plan relieved (or tried to relieve) an overloaded host. */
function reliefPlanned(result: PlanResult): boolean {
  return result.verdicts.some((v) => v.outcome === 'relieving' || v.reason === 'OverloadNotRelieved' || v.outcome === 'powering-on');
}

describe('planner invariants (fast-check, random clusters and policies)', () => {
  it('every plan passes every invariant in simulation', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const result = planCycle(input);
        expect(checkPlan(input, result.actions).violations).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  }, TIMEOUT_MS);

  it('every host gets exactly one verdict, and kept hosts a reason', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const result = planCycle(input);
        expect(result.verdicts.map((v) => v.host).sort()).toEqual(input.snapshot.hosts.map((h) => h.id).sort());
        for (const v of result.verdicts) if (v.outcome === 'kept-on' || v.outcome === 'stays-off') expect(v.reason).toBeDefined();
      }),
      { numRuns: RUNS },
    );
  }, TIMEOUT_MS);

  it('never touches excluded, maintenance, unreachable or operator-powered-off hosts', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const result = planCycle(input);
        const untouchable = new Set(
          input.snapshot.hosts
            .filter((h) => h.excluded || h.maintenance || h.power === 'unknown' || (h.power === 'on' && !h.reachable) || (h.power === 'off' && !input.poweredOffByUs.includes(h.id)))
            .map((h) => h.id),
        );
        for (const a of result.actions) {
          const touched = a.type === 'migrate' ? [a.from, a.to] : [a.host];
          for (const h of touched) expect(untouchable.has(h), `${a.id} touches ${h}`).toBe(false);
        }
      }),
      { numRuns: RUNS },
    );
  }, TIMEOUT_MS);

  it('a proof of boot wakes only a managed host consolidator powered off afterDays ago, within the limits', () => {
    let proofs = 0;
    fc.assert(
      fc.property(inputArb, (input) => {
        const result = planCycle(input);
        const config = input.policy.power?.proofOfBoot;
        const woken = result.actions.filter((a) => a.type === 'power-on' && a.reason === 'ProofOfBoot');
        proofs += woken.length;
        expect(woken.length).toBeLessThanOrEqual(Math.max(0, Math.min(config?.maxHostsPerCycle ?? 0, (config?.maxHostsPerDay ?? 0) - (input.proofOfBoot?.startedLast24h ?? 0))));
        for (const a of woken) {
          if (a.type !== 'power-on') continue;
          const h = input.snapshot.hosts.find((x) => x.id === a.host);
          expect(h?.power, a.host).toBe('off');
          expect(input.poweredOffByUs, `${a.host} was not powered off by consolidator`).toContain(a.host);
          expect(h?.excluded || h?.maintenance).toBe(false);
          expect(input.powerActionsLast24h[a.host] ?? 0).toBeLessThan(input.policy.safety.maxPowerActionsPerHostPerDay);
          expect(NOW - (input.proofOfBoot?.poweredOffAtMs[a.host] ?? NOW)).toBeGreaterThanOrEqual((config?.afterDays ?? 0) * DAY_MS);
        }
      }),
      { numRuns: RUNS },
    );
    // The property is about something: random clusters do plan proofs of boot (test/unit/planner/proof-of-boot.test.ts has a denser one).
    expect(proofs).toBeGreaterThan(0);
  }, TIMEOUT_MS);

  it('is deterministic: the same plan whatever the order of its input lists', () => {
    fc.assert(
      fc.property(inputArb, fc.integer(), (input, seed) => {
        const shuffled: PlanInput = {
          ...input,
          snapshot: { ...input.snapshot, hosts: shuffle(input.snapshot.hosts, seed), vms: shuffle(input.snapshot.vms, seed + 1) },
          poweredOffByUs: shuffle(input.poweredOffByUs, seed + 2),
        };
        const a = planCycle(input);
        const b = planCycle(shuffled);
        expect(b.actions).toEqual(a.actions);
        expect(b.verdicts).toEqual(a.verdicts);
        expect(b.memory).toEqual(a.memory);
      }),
      { numRuns: RUNS / 2 },
    );
  }, TIMEOUT_MS);

  // Relief can legitimately chain (host A relieved now, B relieved onto the emptied A next cycle), so
  // the fixpoint is asserted for consolidation plans: nothing overloaded, no cap reached.
  it('re-planning the post-state of a consolidation plan plans no further migrations', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const first = planCycle(input);
        fc.pre(!first.summary.budgetLimited && input.inFlight.length === 0 && !reliefPlanned(first));
        const { postState } = checkPlan(input, first.actions);
        const powerCounts = { ...input.powerActionsLast24h };
        for (const a of first.actions) if (a.type !== 'migrate') powerCounts[a.host] = (powerCounts[a.host] ?? 0) + 1;
        const woken = first.actions.filter((a) => a.type === 'power-on').map((a) => (a.type === 'power-on' ? a.host : ''));
        const offed = first.actions.filter((a) => a.type === 'power-off').map((a) => (a.type === 'power-off' ? a.host : ''));
        const second = planCycle({
          ...input,
          snapshot: postState,
          memory: first.memory,
          powerActionsLast24h: powerCounts,
          poweredOffByUs: [...input.poweredOffByUs.filter((h) => !woken.includes(h)), ...offed],
        });
        expect(second.actions.filter((a) => a.type === 'migrate')).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  }, TIMEOUT_MS);

  it('a consolidation plan never increases the number of powered-on hosts', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const result = planCycle(input);
        const overloaded = result.verdicts.some((v) => v.outcome === 'relieving' || v.reason === 'OverloadNotRelieved');
        fc.pre(!overloaded && countOn(input) >= input.policy.safety.minHostsOn);
        // A proof of boot is not consolidation: it wakes a host only to show that it still boots.
        const proofs = result.actions.filter((a) => a.type === 'power-on' && a.reason === 'ProofOfBoot').length;
        expect(result.actions.filter((a) => a.type === 'power-on' && a.reason !== 'ProofOfBoot')).toEqual([]);
        expect(result.summary.activeHostsAfter - proofs).toBeLessThanOrEqual(result.summary.activeHostsBefore);
      }),
      { numRuns: RUNS },
    );
  }, TIMEOUT_MS);

  it('moves no VM that is pinned, in flight or cooling down, and no VM twice', () => {
    fc.assert(
      fc.property(inputArb, (input) => {
        const first = planCycle(input);
        const movedFirst = new Set(first.actions.flatMap((a) => (a.type === 'migrate' ? [a.vm] : [])));
        const flying = new Set(input.inFlight.flatMap((a) => (a.type === 'migrate' ? [a.vm] : [])));
        for (const a of first.actions) {
          if (a.type !== 'migrate') continue;
          expect(flying.has(a.vm)).toBe(false);
          expect(input.snapshot.vms.find((v) => v.id === a.vm)?.pinned).toBe(false);
        }
        // Same snapshot, remembered cooldowns: nothing that just moved moves again.
        const again = planCycle({ ...input, memory: first.memory });
        for (const a of again.actions) if (a.type === 'migrate') expect(movedFirst.has(a.vm)).toBe(false);
      }),
      { numRuns: RUNS / 2 },
    );
  }, TIMEOUT_MS);
});

function shuffle<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0 || 1;
  for (let i = out.length - 1; i > 0; i--) {
    state = (state * 1_103_515_245 + 12_345) >>> 0;
    const j = state % (i + 1);
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

