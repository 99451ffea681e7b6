/**
 * The record of proofs of boot (power.proofOfBoot): per host, the last one and how it ended. Plain JSON
 * data the state store persists, and pure functions over it for the planner, status and metrics.
 */
import type { HostId } from '../model/ids.js';
import { DAY_MS } from './power-record.js';

export interface ProofOfBootEntry {
  /** When the power-on started (ms since the epoch, the daemon's clock). */
  readonly atMs: number;
  /** ok: the hypervisor answered within power.bootTimeoutSeconds; failed: it did not, or the power-on failed. */
  readonly result: 'ok' | 'failed';
  /** From the power-on to the hypervisor answering (or to the failure). */
  readonly durationMs: number;
  /** The error code of a failed one. */
  readonly code?: string;
}

/** The last proof of boot of each host. */
export type ProofOfBootRecord = Readonly<Record<HostId, ProofOfBootEntry>>;

/** Proofs of boot started in the 24 h before `nowMs`, failed ones too: power.proofOfBoot.maxHostsPerDay. */
export function proofsStartedInLast24h(record: ProofOfBootRecord, nowMs: number): number {
  return Object.values(record).filter((e) => e.atMs > nowMs - DAY_MS && e.atMs <= nowMs).length;
}

/**
 * How long the host that consolidator has kept off the longest has been off, in ms (0 when none): a host
 * off since then has not booted since, so past afterDays its proof of boot is overdue.
 */
export function longestOffMs(poweredOffAtMs: Readonly<Record<HostId, number>>, nowMs: number): number {
  return Object.values(poweredOffAtMs).reduce((longest, atMs) => Math.max(longest, nowMs - atMs), 0);
}
