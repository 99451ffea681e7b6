import type { HostId } from '../model/ids.js';
import type { ConsolidatorMetrics, CyclePhase } from '../observability/metrics.js';
import type { KeepReason } from '../planner/types.js';
import type { CycleReport } from './cycle-report.js';
import type { ResolvedHost } from '../config/resolve.js';
import type { Policy } from '../config/schema.js';
import { DAY_MS } from '../state/power-record.js';
import { longestOffMs } from '../state/proof-of-boot.js';
import type { StateKeeper } from '../state/state-keeper.js';
import { ledgerHostsOfSnapshot, type EnergyLedger } from '../state/energy-ledger.js';

type ProofOfBootPolicy = Policy['power']['proofOfBoot'];

/**
 * Turns a cycle's report into metric values. The ledger prices the energy saved between this cycle's
 * observation and the last one's, with the BMC readings the recording took last (none without it).
 */
export function recordCycleMetrics(
  metrics: ConsolidatorMetrics,
  report: CycleReport,
  deps: { keeper: StateKeeper; hosts: readonly ResolvedHost[]; proofOfBoot: ProofOfBootPolicy; realNowMs: number; ledger: EnergyLedger; watts: ReadonlyMap<HostId, number> },
): void {
  metrics.setDryRun(report.dryRun);
  for (const [phase, seconds] of Object.entries(report.phaseSeconds)) metrics.observeCyclePhaseSeconds(phase as CyclePhase, seconds);
  metrics.recordCycle(report.result, deps.realNowMs);
  if (report.error) metrics.countError(report.error);

  const snapshot = report.snapshot;
  if (snapshot) {
    const maintenance = deps.keeper.inMaintenance();
    const states = { on: 0, off: 0, unknown: 0, maintenance: 0 };
    const rows: { host: string; cpu: number; memory: number }[] = [];
    for (const h of snapshot.hosts) {
      if (maintenance.has(h.id)) states.maintenance++;
      else if (h.power === 'on' && h.reachable) states.on++;
      else if (h.power === 'off') states.off++;
      else states.unknown++;
      const last = h.samples[h.samples.length - 1];
      if (last && h.capacity.cpu > 0 && h.capacity.memory > 0) rows.push({ host: h.id, cpu: last.use.cpu / h.capacity.cpu, memory: last.use.memory / h.capacity.memory });
    }
    metrics.setHostStates(states);
    metrics.setHostUtilisation(rows);
  }

  if (report.plan) {
    const kept: Partial<Record<KeepReason, number>> = {};
    for (const v of report.plan.verdicts) if (v.reason) kept[v.reason] = (kept[v.reason] ?? 0) + 1;
    metrics.setKeptHosts(kept);
    for (const a of report.plan.actions) metrics.countPlannedActions(a.type);
  }
  for (const o of report.outcomes) {
    metrics.countExecutedAction(o.action.type, o.result);
    if (o.action.type === 'migrate' && o.result === 'ok') metrics.observeMigrationSeconds(o.durationMs / 1000);
    if (o.action.type !== 'migrate' && (o.result === 'ok' || o.result === 'failed')) {
      metrics.countPowerAction(o.action.type === 'power-on' ? 'on' : 'off', o.result);
    }
    if (o.result === 'failed') {
      metrics.countFailedAction(o.action.type, o.errorCode);
      metrics.errorsTotal.inc({ code: o.errorCode });
    }
    if (o.result === 'skipped') metrics.countSkippedAction(o.action.type, o.reason);
    if (o.action.type === 'power-on' && o.action.reason === 'ProofOfBoot') metrics.countProofOfBoot(o.result === 'failed' && o.errorCode === 'ABORTED' ? 'aborted' : o.result);
  }

  const offByUs = deps.keeper.poweredOffByUs();
  metrics.setHostsPoweredOffByConsolidator(offByUs.length);
  if (snapshot) {
    metrics.addEnergySavedJoules(deps.ledger.observe(snapshot.takenAtMs, ledgerHostsOfSnapshot(snapshot, new Set(offByUs), deps.watts)));
    metrics.setPowerSavedWatts(deps.ledger.savingWattsNow());
  }
  recordProofOfBootState(metrics, deps.keeper, deps.proofOfBoot, deps.hosts);
  metrics.setHostsNeedingAttention(Object.entries(deps.keeper.state.attention.hosts).map(([host, entry]) => ({ host, reason: entry.reason })));
}

/** The proof-of-boot gauges, from the saved state (each cycle, and at start). */
export function recordProofOfBootState(metrics: ConsolidatorMetrics, keeper: StateKeeper, policy: ProofOfBootPolicy, hosts: readonly ResolvedHost[]): void {
  // Hosts of the policy only: one removed from it keeps its entry in the state, not its series.
  const known = new Set(hosts.map((h) => h.name));
  const lastSuccessMs = Object.fromEntries(
    Object.entries(keeper.proofsOfBoot())
      .filter(([host, e]) => e.result === 'ok' && known.has(host))
      .map(([host, e]) => [host, e.atMs]),
  );
  const offAt = keeper.poweredOffAtMs();
  const nowMs = keeper.nowMs();
  // Hosts that will never be proven are not due: marked for attention (their own alert), in
  // maintenance, excluded, or gone from the policy.
  const attention = new Set(keeper.hostsNeedingAttention());
  const managed = new Set(hosts.filter((h) => !h.exclude && !keeper.isInMaintenance(h.name)).map((h) => h.name));
  const due = policy.enabled
    ? Object.entries(offAt).filter(([host, atMs]) => nowMs - atMs >= policy.afterDays * DAY_MS && !attention.has(host) && managed.has(host)).length
    : 0;
  metrics.setProofOfBootState({ lastSuccessMs, longestOffMs: longestOffMs(offAt, nowMs), dueHosts: due });
}
