import { ConsolidatorError, errorMessage } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { Compare, EtcdClient, KeyValue, Operation } from './etcd-client.js';

/** One term of leadership: the lease it rests on and the create revision of the leader key it made. */
export interface LeaderTerm {
  readonly leaseId: string;
  readonly createRevision: number;
}

/** What the daemon asks about leadership, and how it fences what it does (a port: HA or not). */
export interface LeaderGate {
  readonly name: string;
  /** True while this controller holds the leader key and its lease is valid on the local monotonic clock. */
  isLeader(): boolean;
  /** The leader as last seen (this controller's name when it leads); undefined when none is known. */
  leaderName(): string | undefined;
  /**
   * Runs `ops` in one etcd transaction that first checks that the leader key still has this term's
   * create revision and lease. Resolves only if it did (and the lease is still valid locally after
   * the answer); throws NOT_LEADER otherwise (and steps down), ETCD_UNAVAILABLE when etcd does not answer.
   */
  fence(ops: readonly Operation[], signal?: AbortSignal): Promise<void>;
  /** Whether etcd answered lately, and why not. */
  etcdHealth(): { readonly ok: boolean; readonly reason?: string };
}

export interface ElectionEvents {
  onElected(term: LeaderTerm): void;
  onDeposed(reason: string): void;
  /** The leader seen changed (another controller, this one, or none). */
  onLeaderSeen?(name: string | undefined): void;
  onEtcdHealth?(ok: boolean, reason?: string): void;
}

export interface LeaderElectionOptions {
  readonly client: EtcdClient;
  /** Key prefix, e.g. "/consolidator/": the leader key is PREFIX + "leader". */
  readonly prefix: string;
  readonly name: string;
  readonly ttlSeconds: number;
  readonly logger: Logger;
  /** Where elections and step-downs are reported; also settable later with listen(). */
  readonly events?: ElectionEvents;
  /** Monotonic milliseconds (performance.now): never wall time, which may jump. */
  readonly monotonicMs?: () => number;
  readonly wallMs?: () => number;
  /** How long before etcd would expire the lease this controller stops believing it leads (default TTL/5, at least 1 s). */
  readonly marginMs?: number;
  /** How often a follower tries to take the leader key (default 1 s, at most TTL/3). */
  readonly campaignIntervalMs?: number;
  /** Scheduling, injectable so a model test can drive time by hand. */
  readonly setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

interface Lease {
  readonly id: string;
  /** Until when (monotonic) the lease is surely alive in etcd: the last successful renewal's send time + TTL - margin. */
  validUntilMs: number;
}

export const LEADER_KEY = 'leader';

export function leaderKey(prefix: string): string {
  return `${prefix}${LEADER_KEY}`;
}

/** The compares that make a transaction a fenced one: the leader key is still this term's. */
export function fenceCompares(prefix: string, term: LeaderTerm): Compare[] {
  const key = leaderKey(prefix);
  return [
    { key, target: 'create', equals: term.createRevision },
    { key, target: 'lease', equals: term.leaseId },
  ];
}

/**
 * Leader election on one etcd key bound to a lease, with no client-library election underneath:
 * - a follower keeps a lease alive and tries, every campaign interval, a transaction that creates the
 *   leader key with it only if the key does not exist (create revision 0); the one that succeeds leads
 *   and remembers the key's create revision: its term;
 * - the leader renews the lease every TTL/3 and stops believing it leads, on its own monotonic clock,
 *   a margin before etcd could expire it (a renewal counts from when it was sent), so a paused or cut
 *   off leader gives up before anyone else can be elected;
 * - whatever it believes, every act goes through fence(): a transaction that compares the key's
 *   create revision and lease with its term. A resumed stale leader's compare fails (the key expired
 *   and another created it anew), and it steps down having started nothing.
 */
export class LeaderElection implements LeaderGate {
  readonly name: string;
  private lease: Lease | undefined;
  private term: LeaderTerm | undefined;
  private seenLeader: string | undefined;
  private running = false;
  private timer: { cancel(): void } | undefined;
  private expiryTimer: { cancel(): void } | undefined;
  private ticking: Promise<void> | undefined;
  private etcdOk = true;
  private etcdReason: string | undefined;
  private lastEtcdOkMs: number;
  private readonly log: Logger;
  private readonly mono: () => number;
  private readonly wall: () => number;
  private readonly ttlMs: number;
  private readonly marginMs: number;
  private readonly renewMs: number;
  private readonly campaignMs: number;
  private readonly setTimer: (fn: () => void, ms: number) => { cancel(): void };
  private readonly key: string;
  private events: ElectionEvents | undefined;

  constructor(private readonly o: LeaderElectionOptions) {
    this.name = o.name;
    this.log = o.logger.child({ component: 'ha' });
    this.mono = o.monotonicMs ?? (() => performance.now());
    this.wall = o.wallMs ?? Date.now;
    this.ttlMs = o.ttlSeconds * 1000;
    this.marginMs = o.marginMs ?? Math.max(1000, this.ttlMs / 5);
    this.renewMs = this.ttlMs / 3;
    this.campaignMs = o.campaignIntervalMs ?? Math.min(1000, this.renewMs);
    this.setTimer =
      o.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        return { cancel: () => clearTimeout(t) };
      });
    this.key = leaderKey(o.prefix);
    this.events = o.events;
    this.lastEtcdOkMs = this.mono();
  }

  /** The current term, while this controller leads. */
  get currentTerm(): LeaderTerm | undefined {
    return this.isLeader() ? this.term : undefined;
  }

  isLeader(): boolean {
    return this.term !== undefined && this.lease !== undefined && this.mono() < this.lease.validUntilMs;
  }

  leaderName(): string | undefined {
    return this.isLeader() ? this.name : this.seenLeader;
  }

  etcdHealth(): { ok: boolean; reason?: string } {
    return this.etcdOk ? { ok: true } : { ok: false, reason: this.etcdReason ?? 'etcd does not answer' };
  }

  listen(events: ElectionEvents): void {
    this.events = events;
  }

  /** Gives up leadership now (the daemon could not take over, e.g. its state did not load). */
  resign(reason: string): void {
    this.stepDown(reason);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops campaigning; a leader revokes its lease so that another takes over at once. */
  async stop(): Promise<void> {
    this.running = false;
    this.timer?.cancel();
    this.expiryTimer?.cancel();
    await this.ticking;
    const lease = this.lease;
    const wasLeader = this.term !== undefined;
    this.lease = undefined;
    if (this.term) this.stepDown('the controller is stopping');
    if (lease) {
      await this.o.client.revoke(lease.id).catch((e: unknown) => this.log.warn('lease not revoked at stop: it expires by itself', { err: e, leader: wasLeader }));
    }
  }

  async fence(ops: readonly Operation[], signal?: AbortSignal): Promise<void> {
    const term = this.term;
    if (!term || !this.isLeader()) throw this.notLeader('this controller does not lead');
    let answer;
    try {
      answer = await this.o.client.txn({ compare: fenceCompares(this.o.prefix, term), success: ops, failure: [{ range: { key: this.key } }] }, signal);
    } catch (e) {
      this.noteEtcd(false, errorMessage(e));
      throw e;
    }
    this.noteEtcd(true);
    if (!answer.succeeded) {
      const holder = this.holderOf(answer.responses[0]?.kvs?.[0]);
      this.seen(holder);
      if (this.term === term) this.stepDown(`the leader key is no longer this controller's (${holder ?? 'no one'} leads now)`);
      throw this.notLeader(holder === undefined ? 'the leader key is gone' : `${holder} leads`);
    }
    // The answer may come after the lease could have expired (a pause while it was in flight).
    if (this.term !== term || !this.isLeader()) throw this.notLeader('the lease ran out while the fenced request was in flight');
  }

  private notLeader(why: string): ConsolidatorError {
    return new ConsolidatorError('NOT_LEADER', `not the leader: ${why}; nothing started`, { details: { controller: this.name, ...(this.seenLeader !== undefined ? { leader: this.seenLeader } : {}) } });
  }

  private schedule(ms: number): void {
    if (!this.running) return;
    this.timer?.cancel();
    this.timer = this.setTimer(() => {
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        this.schedule(this.term ? this.renewMs : this.lease ? this.campaignMs : Math.min(this.campaignMs, 1000));
      });
    }, ms);
  }

  /** One step of the loop: renew (or get) the lease; a follower then campaigns. Never throws. */
  async tick(): Promise<void> {
    try {
      this.checkExpiry();
      await this.renew();
      if (!this.term && this.lease && this.running) await this.campaign(this.lease);
    } catch (e) {
      this.noteEtcd(false, errorMessage(e));
      this.checkExpiry();
    }
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (!lease) {
      // etcd starts the lease's TTL when it receives the request: counted from the send, the local
      // validity ends first.
      const sentAt = this.mono();
      const granted = await this.o.client.grant(this.o.ttlSeconds);
      this.lease = { id: granted.id, validUntilMs: sentAt + granted.ttlSeconds * 1000 - this.marginMs };
      this.noteEtcd(true);
      return;
    }
    const sentAt = this.mono();
    const ttl = await this.o.client.keepAlive(lease.id);
    this.noteEtcd(true);
    if (this.lease !== lease) return;
    if (ttl <= 0) {
      this.lease = undefined;
      if (this.term) this.stepDown('the lease expired in etcd');
      return;
    }
    lease.validUntilMs = Math.max(lease.validUntilMs, sentAt + ttl * 1000 - this.marginMs);
    this.armExpiry();
  }

  private async campaign(lease: Lease): Promise<void> {
    const value = JSON.stringify({ name: this.name, sinceMs: this.wall() });
    const answer = await this.o.client.txn({
      compare: [{ key: this.key, target: 'create', equals: 0 }],
      success: [{ put: { key: this.key, value, lease: lease.id } }],
      failure: [{ range: { key: this.key } }],
    });
    this.noteEtcd(true);
    if (this.lease !== lease || !this.running) return;
    const existing = answer.responses[0]?.kvs?.[0];
    // A retried request whose first attempt did create the key: it is ours.
    const term = answer.succeeded ? { leaseId: lease.id, createRevision: answer.revision } : existing?.lease === lease.id ? { leaseId: lease.id, createRevision: existing.createRevision } : undefined;
    if (!term) {
      this.seen(this.holderOf(existing));
      return;
    }
    if (this.mono() >= lease.validUntilMs) return;
    this.term = term;
    this.seen(this.name);
    this.armExpiry();
    this.log.info('elected leader', { controller: this.name, term: term.createRevision });
    this.events?.onElected(term);
  }

  private armExpiry(): void {
    this.expiryTimer?.cancel();
    if (!this.term || !this.lease) return;
    this.expiryTimer = this.setTimer(() => this.checkExpiry(), Math.max(0, this.lease.validUntilMs - this.mono()));
  }

  /** A leader whose lease is no longer surely alive steps down, whether or not etcd answers. */
  private checkExpiry(): void {
    if (this.lease && this.mono() >= this.lease.validUntilMs) {
      const wasLeader = this.term !== undefined;
      // Renewals stopped succeeding: take a new lease rather than trust this one again.
      this.lease = undefined;
      if (wasLeader) this.stepDown(`no lease renewal succeeded within the TTL less its margin (${(this.ttlMs - this.marginMs) / 1000} s)${this.etcdOk ? '' : `: ${this.etcdReason ?? 'etcd does not answer'}`}`);
    }
  }

  private stepDown(reason: string): void {
    const term = this.term;
    if (!term) return;
    this.term = undefined;
    this.expiryTimer?.cancel();
    if (this.seenLeader === this.name) this.seen(undefined);
    this.log.warn('no longer the leader: nothing new starts', { controller: this.name, term: term.createRevision, reason });
    // Our lease, if etcd still has it, holds the key for nobody: revoke it so the next leader needn't wait.
    const lease = this.lease;
    if (lease && lease.id === term.leaseId) {
      this.lease = undefined;
      void this.o.client.revoke(lease.id).catch(() => undefined);
    }
    this.events?.onDeposed(reason);
  }

  private holderOf(kv: KeyValue | undefined): string | undefined {
    if (!kv) return undefined;
    try {
      const value = JSON.parse(kv.value) as { name?: unknown };
      return typeof value.name === 'string' ? value.name : undefined;
    } catch {
      return undefined;
    }
  }

  private seen(name: string | undefined): void {
    if (name === this.seenLeader) return;
    this.seenLeader = name;
    this.events?.onLeaderSeen?.(name);
  }

  private noteEtcd(ok: boolean, reason?: string): void {
    if (ok) {
      this.lastEtcdOkMs = this.mono();
      if (!this.etcdOk) this.log.info('etcd answers again', { controller: this.name });
      this.etcdOk = true;
      this.etcdReason = undefined;
      this.events?.onEtcdHealth?.(true);
      return;
    }
    // One failed request is a blip; etcd is "not ok" once nothing has succeeded for a renewal interval.
    if (this.mono() - this.lastEtcdOkMs < this.renewMs) return;
    const why = reason ?? 'etcd does not answer';
    if (this.etcdOk || this.etcdReason !== why) this.log.error('etcd does not answer: a leader stops acting once its lease runs out', { controller: this.name, reason: why });
    this.etcdOk = false;
    this.etcdReason = why;
    this.events?.onEtcdHealth?.(false, why);
  }
}
