import type { AttentionReason } from '../model/reasons.js';
import { hostsNeedingAttention, type PowerAttention } from './power-attention.js';
import { powerActionsLast24hByHost, type PowerRecorder } from './power-record.js';
import type { HostId } from '../model/ids.js';
import type { ResourceVector } from '../model/resources.js';
import type { Logger } from '../observability/logger.js';
import type { Action, PlannerMemory, ProofOfBootInput } from '../planner/types.js';
import { proofsStartedInLast24h, type ProofOfBootEntry, type ProofOfBootRecord } from './proof-of-boot.js';
import { HISTORY_LIMIT, type HistoryEntry, type InFlightStep, type PersistedState } from './persisted-state.js';
import type { StateStore } from './state-store.js';

/**
 * The daemon's memory, in one place: what the planner remembers, which hosts consolidator powered off,
 * hosts in maintenance, the power record and attention list (held by the power supervisor), history,
 * and the plan under way. Every change that matters after a crash is saved before the next step.
 */
export class StateKeeper {
  private planner: PlannerMemory;
  private poweredOff: Record<HostId, { atMs: number }>;
  private maintenance: Record<HostId, { sinceMs: number }>;
  private wokenFor: Record<HostId, { forHost: HostId; atMs: number }>;
  private capacity: Record<HostId, ResourceVector>;
  private systemUuids: Record<HostId, string>;
  private proofs: Record<HostId, ProofOfBootEntry>;
  private history: HistoryEntry[];
  private inFlight: PersistedState['inFlight'];
  private readonly log: Logger;

  constructor(
    private readonly store: StateStore,
    initial: PersistedState,
    private readonly deps: { readonly recorder: PowerRecorder; readonly attention: PowerAttention; readonly logger: Logger; readonly nowMs: () => number },
  ) {
    this.planner = initial.planner;
    this.poweredOff = { ...initial.poweredOffByUs };
    this.maintenance = { ...initial.maintenance };
    this.wokenFor = { ...initial.wokenForMaintenance };
    this.capacity = { ...initial.hostCapacity };
    this.systemUuids = { ...initial.hostSystemUuid };
    this.proofs = { ...initial.proofOfBoot };
    this.history = [...initial.history];
    this.inFlight = initial.inFlight;
    this.log = deps.logger.child({ component: 'state' });
  }

  get state(): PersistedState {
    return {
      version: 1,
      savedAtMs: this.deps.nowMs(),
      planner: this.planner,
      poweredOffByUs: this.poweredOff,
      powerRecord: this.deps.recorder.record,
      attention: this.deps.attention.state,
      maintenance: this.maintenance,
      wokenForMaintenance: this.wokenFor,
      hostCapacity: this.capacity,
      hostSystemUuid: this.systemUuids,
      proofOfBoot: this.proofs,
      history: this.history,
      ...(this.inFlight ? { inFlight: this.inFlight } : {}),
    };
  }

  save(): Promise<void> {
    return this.store.save(this.state);
  }

  get plannerMemory(): PlannerMemory {
    return this.planner;
  }

  setPlannerMemory(memory: PlannerMemory): void {
    this.planner = memory;
  }

  /** A step failed on this host: no drain from or move onto it until the cooldown ends. */
  coolDown(host: HostId, seconds: number): void {
    this.planner = {
      ...this.planner,
      hostCooldowns: { ...this.planner.hostCooldowns, [host]: { untilMs: this.deps.nowMs() + seconds * 1000, reason: 'failed' } },
    };
  }

  markAttention(host: HostId, reason: AttentionReason, error: unknown): void {
    this.deps.attention.mark(host, reason, this.deps.nowMs(), error);
  }

  /** Hosts marked for an operator, sorted. */
  hostsNeedingAttention(): HostId[] {
    return hostsNeedingAttention(this.deps.attention.state);
  }

  /** An operator has looked at the host: automatic power actions may touch it again. */
  clearAttention(host: HostId): void {
    this.deps.attention.clear(host);
  }

  poweredOffByUs(): HostId[] {
    return Object.keys(this.poweredOff).sort();
  }

  wasPoweredOffByUs(host: HostId): boolean {
    return this.poweredOff[host] !== undefined;
  }

  /** The daemon's clock. */
  nowMs(): number {
    return this.deps.nowMs();
  }

  /** When consolidator powered each of its hosts off. */
  poweredOffAtMs(): Record<HostId, number> {
    return Object.fromEntries(Object.entries(this.poweredOff).map(([host, p]) => [host, p.atMs]));
  }

  /** What the planner needs to plan proofs of boot. */
  proofOfBootInput(): ProofOfBootInput {
    return { poweredOffAtMs: this.poweredOffAtMs(), startedLast24h: proofsStartedInLast24h(this.proofs, this.deps.nowMs()) };
  }

  /** The last proof of boot of each host. */
  proofsOfBoot(): ProofOfBootRecord {
    return this.proofs;
  }

  /**
   * How a proof of boot ended: kept as the host's last one, and logged (a failure at error level: the
   * host does not boot, and the power path has marked it for attention).
   */
  recordProofOfBoot(host: HostId, ended: Omit<ProofOfBootEntry, 'atMs'>): void {
    const entry: ProofOfBootEntry = { atMs: this.deps.nowMs() - ended.durationMs, ...ended };
    this.proofs = { ...this.proofs, [host]: entry };
    const fields = { host, durationMs: entry.durationMs, ...(entry.code !== undefined ? { errorCode: entry.code } : {}) };
    if (entry.result === 'ok') this.log.info('proof of boot passed', fields);
    else this.log.error('proof of boot failed: the host did not boot', { ...fields, attention: this.deps.attention.get(host)?.reason });
  }

  markPoweredOff(host: HostId): void {
    this.poweredOff = { ...this.poweredOff, [host]: { atMs: this.deps.nowMs() } };
  }

  /** The host is on again (we woke it, or someone did): it is no longer ours to wake. */
  forgetPoweredOff(host: HostId): void {
    if (this.poweredOff[host] === undefined) return;
    const next = { ...this.poweredOff };
    delete next[host];
    this.poweredOff = next;
  }

  inMaintenance(): Set<HostId> {
    return new Set(Object.keys(this.maintenance));
  }

  isInMaintenance(host: HostId): boolean {
    return this.maintenance[host] !== undefined;
  }

  setMaintenance(host: HostId, on: boolean): void {
    const next = { ...this.maintenance };
    if (on) next[host] = { sinceMs: this.deps.nowMs() };
    else delete next[host];
    this.maintenance = next;
  }

  /** A drain of `forHost` woke `host` to make room: no cycle empties it while `forHost` is in maintenance. */
  markWokenForMaintenance(host: HostId, forHost: HostId): void {
    this.wokenFor = { ...this.wokenFor, [host]: { forHost, atMs: this.deps.nowMs() } };
  }

  /** Hosts woken for a maintenance still under way, with the host drained. */
  wokenForMaintenance(): Record<HostId, HostId> {
    return Object.fromEntries(Object.entries(this.wokenFor).flatMap(([host, w]) => (this.maintenance[w.forHost] !== undefined ? [[host, w.forHost]] : [])));
  }

  /** `forHost` is back in service: the hosts woken for its maintenance may be emptied again. */
  forgetWokenFor(forHost: HostId): HostId[] {
    const released = Object.keys(this.wokenFor).filter((host) => this.wokenFor[host]?.forHost === forHost);
    if (released.length === 0) return [];
    const next = { ...this.wokenFor };
    for (const host of released) delete next[host];
    this.wokenFor = next;
    return released.sort();
  }

  knownCapacity(): Readonly<Record<HostId, ResourceVector>> {
    return this.capacity;
  }

  /** The system UUID a host last reported, if it ever did. */
  systemUuidOf(host: HostId): string | undefined {
    return this.systemUuids[host];
  }

  /** What an observation learnt about the hosts that answered: their capacity and system UUID. */
  rememberHosts(observed: { readonly capacities: Readonly<Record<HostId, ResourceVector>>; readonly systemUuids: Readonly<Record<HostId, string>> }): void {
    this.capacity = { ...this.capacity, ...observed.capacities };
    this.systemUuids = { ...this.systemUuids, ...observed.systemUuids };
  }

  powerActionsLast24h(): Record<HostId, number> {
    return powerActionsLast24hByHost(this.deps.recorder.record, this.deps.nowMs());
  }

  recentHistory(limit: number): readonly HistoryEntry[] {
    return this.history.slice(-limit);
  }

  /**
   * How a step ended, into history: the one place a history entry is made, for a cycle's steps (live
   * or dry-run), an operator's drain, and steps a restart interrupted.
   */
  recordOutcome(cycle: string, step: StepRef, outcome: StepEnd): void {
    this.addHistory({
      atMs: this.deps.nowMs(),
      cycle,
      actionId: step.id,
      type: step.type,
      subject: step.vm ?? step.host ?? '?',
      ...(step.from !== undefined ? { from: step.from } : {}),
      ...(step.to !== undefined ? { to: step.to } : {}),
      result: outcome.result,
      ...(outcome.detail !== undefined ? { reason: outcome.detail } : {}),
      ...(outcome.code !== undefined ? { code: outcome.code } : {}),
      ...(outcome.durationMs !== undefined ? { durationMs: outcome.durationMs } : {}),
    });
  }

  private addHistory(entry: HistoryEntry): void {
    this.history.push(entry);
    if (this.history.length > HISTORY_LIMIT) this.history.splice(0, this.history.length - HISTORY_LIMIT);
  }

  get interrupted(): PersistedState['inFlight'] {
    return this.inFlight;
  }

  beginPlan(cycle: string, actions: readonly Action[]): void {
    this.inFlight = { cycle, startedAtMs: this.deps.nowMs(), steps: actions.map((a) => ({ ...stepOf(a), status: 'pending' as const })) };
  }

  stepChanged(id: string, status: InFlightStep['status']): void {
    if (!this.inFlight) return;
    this.inFlight = { ...this.inFlight, steps: this.inFlight.steps.map((s) => (s.id === id ? { ...s, status } : s)) };
  }

  endPlan(): void {
    this.inFlight = undefined;
  }
}

/** A step as history names it: a planned action, or a step of an interrupted plan. */
export type StepRef = Omit<InFlightStep, 'status'>;

export interface StepEnd {
  readonly result: HistoryEntry['result'];
  readonly detail?: string;
  /** SkipReason or ErrorCode. */
  readonly code?: string;
  readonly durationMs?: number;
}

export function stepOf(a: Action): StepRef {
  if (a.type === 'migrate') return { id: a.id, type: a.type, vm: a.vm, from: a.from, to: a.to };
  return { id: a.id, type: a.type, host: a.host };
}
