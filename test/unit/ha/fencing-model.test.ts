import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LeaderElection, type LeaderTerm } from '../../../src/ha/leader-election.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { FakeEtcd, type FakeEtcdClient } from '../../helpers/fake-etcd.js';

const PREFIX = '/c/';
const TTL_SECONDS = 15;
const CONTROLLERS = 3;

interface Controller {
  readonly name: string;
  readonly election: LeaderElection;
  readonly client: FakeEtcdClient;
  paused: boolean;
}

/** A step a controller was allowed to start: its fence resolved. */
interface Start {
  readonly controller: string;
  readonly term: number;
  readonly atMs: number;
}

type Command =
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'tick' | 'act' | 'pause' | 'resume' | 'hold' | 'deliver' | 'cut' | 'heal'; readonly who: number };

const command: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 9_000 }).map((ms) => ({ kind: 'advance', ms }) as const) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: CONTROLLERS - 1 }).map((who) => ({ kind: 'tick', who }) as const) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: CONTROLLERS - 1 }).map((who) => ({ kind: 'act', who }) as const) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom('pause', 'resume', 'hold', 'deliver', 'cut', 'heal') , fc.integer({ min: 0, max: CONTROLLERS - 1 }))
      .map(([kind, who]) => ({ kind, who }) as Command),
  },
);

const flush = async () => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

/**
 * Runs one interleaving: controllers renew, campaign and act (fence) in any order; time moves in
 * jumps longer than the TTL; a controller pauses (it neither renews nor acts, its clock runs on) and
 * resumes; its requests are held in the network and delivered later, or cut. Returns every step
 * start and what etcd accepted.
 */
async function run(commands: readonly Command[]) {
  const etcd = new FakeEtcd();
  const controllers: Controller[] = [];
  for (let i = 0; i < CONTROLLERS; i++) {
    const client = etcd.client();
    const election = new LeaderElection({
      client,
      prefix: PREFIX,
      name: `c${i}`,
      ttlSeconds: TTL_SECONDS,
      logger: silentLogger,
      events: { onElected: () => undefined, onDeposed: () => undefined },
      monotonicMs: () => etcd.nowMs,
      wallMs: () => etcd.nowMs,
      // Driven by hand: tick() is called by the commands.
      setTimer: () => ({ cancel: () => undefined }),
    });
    election.start();
    controllers.push({ name: `c${i}`, election, client, paused: false });
  }
  const starts: Start[] = [];
  const leadersAtOnce: number[] = [];
  let seq = 0;
  for (const c of commands) {
    if (c.kind === 'advance') {
      etcd.advance(c.ms);
    } else {
      const ctl = controllers[c.who] as Controller;
      switch (c.kind) {
        case 'tick':
          if (!ctl.paused) void ctl.election.tick();
          break;
        case 'act': {
          if (ctl.paused) break;
          const term: LeaderTerm | undefined = ctl.election.currentTerm;
          const n = ++seq;
          ctl.election
            .fence([{ put: { key: `${PREFIX}step`, value: JSON.stringify({ controller: ctl.name, term: term?.createRevision, n }) } }])
            .then(
              () => starts.push({ controller: ctl.name, term: term?.createRevision ?? -1, atMs: etcd.nowMs }),
              () => undefined,
            );
          break;
        }
        case 'pause':
          ctl.paused = true;
          break;
        case 'resume':
          ctl.paused = false;
          break;
        case 'hold':
          ctl.client.hold = true;
          break;
        case 'deliver':
          ctl.client.hold = false;
          ctl.client.deliver();
          break;
        case 'cut':
          ctl.client.cut = true;
          break;
        case 'heal':
          ctl.client.cut = false;
          break;
      }
    }
    await flush();
    leadersAtOnce.push(controllers.filter((x) => x.election.isLeader()).length);
  }
  // Whatever is still held arrives at the end, after a long time.
  etcd.advance(60_000);
  for (const ctl of controllers) {
    ctl.client.hold = false;
    ctl.client.deliver();
  }
  await flush();
  const accepted = etcd.log.filter((w) => w.key === `${PREFIX}step` && w.value !== undefined).map((w) => JSON.parse(w.value as string) as { controller: string; term: number });
  return { starts, accepted, leadersAtOnce };
}

describe('fencing (model)', () => {
  it('never lets two terms act at overlapping times, and a stale leader never starts a step', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 5, maxLength: 80 }), async (commands) => {
        const { starts, accepted, leadersAtOnce } = await run(commands);
        // At no moment do two controllers believe they lead.
        expect(Math.max(0, ...leadersAtOnce)).toBeLessThanOrEqual(1);
        // Every start was made under a known term, and each term belongs to one controller.
        const owner = new Map<number, string>();
        for (const s of starts) {
          expect(s.term).toBeGreaterThan(0);
          if (owner.has(s.term)) expect(owner.get(s.term)).toBe(s.controller);
          owner.set(s.term, s.controller);
        }
        // Terms act one after another in time: every start of an older term comes strictly before
        // every start of a newer one (a resumed stale leader would break this).
        const terms = [...new Set(starts.map((s) => s.term))].sort((a, b) => a - b);
        for (let i = 1; i < terms.length; i++) {
          const lastOfOlder = Math.max(...starts.filter((s) => s.term === terms[i - 1]).map((s) => s.atMs));
          const firstOfNewer = Math.min(...starts.filter((s) => s.term === terms[i]).map((s) => s.atMs));
          expect(lastOfOlder).toBeLessThan(firstOfNewer);
        }
        // What etcd accepted is in term order too: no record of an older term after a newer one.
        for (let i = 1; i < accepted.length; i++) expect((accepted[i] as { term: number }).term).toBeGreaterThanOrEqual((accepted[i - 1] as { term: number }).term);
      }),
      { numRuns: 300 },
    );
  });

  it('a leader paused past its TTL resumes, sees the other lead, and starts nothing', async () => {
    const { starts } = await run([
      { kind: 'tick', who: 0 },
      { kind: 'tick', who: 0 },
      { kind: 'act', who: 0 },
      // Its fence request is in flight when it stops.
      { kind: 'hold', who: 0 },
      { kind: 'act', who: 0 },
      { kind: 'pause', who: 0 },
      { kind: 'advance', ms: 16_000 },
      { kind: 'tick', who: 1 },
      { kind: 'tick', who: 1 },
      { kind: 'act', who: 1 },
      { kind: 'resume', who: 0 },
      { kind: 'deliver', who: 0 },
      { kind: 'act', who: 0 },
      { kind: 'tick', who: 0 },
      { kind: 'act', who: 0 },
    ]);
    expect(starts.map((s) => s.controller)).toEqual(['c0', 'c1']);
  });

  it('a request applied by etcd whose answer comes after the lease ran out does not start the step', async () => {
    const etcd = new FakeEtcd();
    const client = etcd.client();
    const election = new LeaderElection({
      client,
      prefix: PREFIX,
      name: 'a',
      ttlSeconds: TTL_SECONDS,
      logger: silentLogger,
      events: { onElected: () => undefined, onDeposed: () => undefined },
      monotonicMs: () => etcd.nowMs,
      setTimer: () => ({ cancel: () => undefined }),
    });
    election.start();
    await election.tick();
    await election.tick();
    expect(election.isLeader()).toBe(true);
    // The fake applies the request when it is delivered; the clock moves past the TTL in between.
    client.hold = true;
    const fenced = election.fence([{ put: { key: `${PREFIX}step`, value: 'x' } }]);
    etcd.nowMs += 14_000; // before etcd's expiry, after the local validity (TTL - margin)
    client.hold = false;
    client.deliver();
    await expect(fenced).rejects.toMatchObject({ code: 'NOT_LEADER' });
  });
});
