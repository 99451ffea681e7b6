import type { AttentionState } from './power-attention.js';
import { EnergyLedger, ledgerHostsOfRecorded } from './energy-ledger.js';
import type { HistoryEntry } from './persisted-state.js';
import { scanRecording, type RecordedCycle, type RecordingRange } from './recording.js';

/** What consolidator did over a period, from its recording (energy, power cycles) and its history (failures). */
export interface SavingsReport {
  /** The period asked for (ISO 8601), null where open. */
  readonly from: string | null;
  readonly to: string | null;
  /** The recorded cycles in it. */
  readonly firstCycleAt: string | null;
  readonly lastCycleAt: string | null;
  readonly cycles: number;
  readonly cyclesByMode: { readonly enforce: number; readonly 'dry-run': number };
  readonly coveredHours: number;
  /** Time between recorded cycles too far apart to count (the daemon was stopped). */
  readonly gapHours: number;
  readonly energy: {
    readonly allHostsOnKWh: number;
    readonly actualKWh: number;
    readonly savedKWh: number;
    readonly savedPct: number;
    readonly savedKWhPerDay: number;
    /** Share of actualKWh from BMC readings, %; the rest from the power model. */
    readonly measuredPct: number;
    /** Hosts kept off whose idle draw came from their own readings, and those for which the model gave it. */
    readonly idleMeasured: readonly string[];
    readonly idleModel: readonly string[];
  };
  readonly hostHoursOff: number;
  /** Migrations consolidator made (ok), and VMs seen on another host than the cycle before (anyone's), with their memory. */
  readonly migrations: number;
  readonly vmMoves: number;
  readonly movedGiB: number;
  /** Per host: power-offs and power-ons by consolidator, seen in the recording. */
  readonly powerCycles: readonly { readonly host: string; readonly powerOffs: number; readonly powerOns: number }[];
  /** Failed actions in the period, by error code (from the history, which keeps the newest 1000 entries). */
  readonly failures: Readonly<Record<string, number>>;
  /** Power actions that failed in the period: each one put its host under attention. */
  readonly attentionEvents: readonly { readonly at: string; readonly host: string; readonly type: string; readonly code: string; readonly reason: string }[];
  /** Hosts that need an operator now. */
  readonly attentionNow: readonly { readonly host: string; readonly reason: string; readonly since: string }[];
  /** The oldest history entry: failures before it are not known. */
  readonly historySince: string | null;
  readonly method: string;
  readonly warnings: readonly string[];
}

export interface SavingsInputs {
  /** stateDirectory/recording. */
  readonly recordingDir: string;
  readonly history: readonly HistoryEntry[];
  readonly attention: AttentionState;
  readonly range: RecordingRange;
}

export const SAVINGS_METHOD =
  'Against every host on. Between two recorded cycles each host stays as the first saw it. A host on draws its BMC reading, else its power model at its CPU use; ' +
  'a host consolidator powered off draws its BMC standby reading (0 without one) and, with every host on, its idle draw: from its own readings while on ' +
  '(less the model\'s dynamic part) once it has 5, else the model at 0 % CPU. Hosts off by an operator or unknown count the same on both sides. ' +
  'Cycles more than 3 intervals apart are a gap and count for nothing.';

/** Cycles further apart than this many typical intervals are a gap. */
const GAP_INTERVALS = 3;
const MIN_GAP_SECONDS = 60;
const PERCENT = 100;
const MIB_PER_GIB = 1024;

/** Builds the report in one read of the recording, never holding it in memory. */
export async function buildSavingsReport(inputs: SavingsInputs): Promise<SavingsReport> {
  const ledger = new EnergyLedger();
  const tally = new CycleTally();
  // Each cycle is priced with the power models of the header in force when it was recorded.
  const scan = await scanRecording(
    inputs.recordingDir,
    (c, info) => {
      ledger.observe(c.t, ledgerHostsOfRecorded(c, info));
      tally.add(c);
    },
    inputs.range,
  );
  const typicalSeconds = ledger.typicalIntervalSeconds() ?? MIN_GAP_SECONDS;
  const totals = ledger.totals(Math.max(MIN_GAP_SECONDS, GAP_INTERVALS * typicalSeconds));
  const days = totals.coveredSeconds / 86_400;
  const inRange = (ms: number) => (inputs.range.fromMs === undefined || ms >= inputs.range.fromMs) && (inputs.range.toMs === undefined || ms < inputs.range.toMs);
  const history = inputs.history.filter((h) => inRange(h.atMs));
  const failures: Record<string, number> = {};
  for (const h of history) if (h.result === 'failed') failures[h.code ?? 'UNKNOWN'] = (failures[h.code ?? 'UNKNOWN'] ?? 0) + 1;
  const idle = Object.entries(totals.idleMethod);
  return {
    from: iso(inputs.range.fromMs),
    to: iso(inputs.range.toMs),
    firstCycleAt: iso(tally.firstMs),
    lastCycleAt: iso(tally.lastMs),
    cycles: tally.cycles,
    cyclesByMode: { enforce: tally.enforce, 'dry-run': tally.dryRun },
    coveredHours: totals.coveredSeconds / 3600,
    gapHours: totals.gapSeconds / 3600,
    energy: {
      allHostsOnKWh: totals.allHostsOnKWh,
      actualKWh: totals.actualKWh,
      savedKWh: totals.savedKWh,
      savedPct: totals.allHostsOnKWh > 0 ? (totals.savedKWh / totals.allHostsOnKWh) * PERCENT : 0,
      savedKWhPerDay: days > 0 ? totals.savedKWh / days : 0,
      measuredPct: totals.actualKWh > 0 ? (totals.measuredKWh / totals.actualKWh) * PERCENT : 0,
      idleMeasured: idle.filter(([, m]) => m === 'measured').map(([h]) => h).sort(),
      idleModel: idle.filter(([, m]) => m === 'model').map(([h]) => h).sort(),
    },
    hostHoursOff: totals.hostHoursOff,
    migrations: tally.migrations,
    vmMoves: tally.vmMoves,
    movedGiB: tally.movedMiB / MIB_PER_GIB,
    powerCycles: [...tally.perHost].map(([host, c]) => ({ host, ...c })).sort((a, b) => a.host.localeCompare(b.host)),
    failures,
    attentionEvents: history
      .filter((h) => h.result === 'failed' && h.type !== 'migrate')
      .map((h) => ({ at: new Date(h.atMs).toISOString(), host: h.subject, type: h.type, code: h.code ?? 'UNKNOWN', reason: h.reason ?? '' })),
    attentionNow: Object.entries(inputs.attention.hosts)
      .map(([host, e]) => ({ host, reason: e.reason, since: new Date(e.sinceMs).toISOString() }))
      .sort((a, b) => a.host.localeCompare(b.host)),
    historySince: iso(inputs.history[0]?.atMs),
    method: SAVINGS_METHOD,
    warnings: scan.warnings,
  };
}

/** Counts over the recorded cycles: modes, migrations, VM moves, power transitions by consolidator. */
class CycleTally {
  cycles = 0;
  enforce = 0;
  dryRun = 0;
  migrations = 0;
  vmMoves = 0;
  movedMiB = 0;
  firstMs: number | undefined;
  lastMs: number | undefined;
  readonly perHost = new Map<string, { powerOffs: number; powerOns: number }>();
  private previous: { readonly vmHost: Map<string, string>; readonly power: Map<string, { on: boolean; offByUs: boolean }> } | undefined;

  add(c: RecordedCycle): void {
    this.cycles++;
    if (c.mode === 'enforce') this.enforce++;
    else this.dryRun++;
    this.firstMs ??= c.t;
    this.lastMs = c.t;
    this.migrations += c.acted.migrations;
    const byUs = new Set(c.byUs ?? []);
    const power = new Map(c.hosts.map(([name, state], i) => [name, { on: state === 'on', offByUs: state === 'off' && byUs.has(i) }]));
    const vmHost = new Map<string, string>();
    for (const [vm, hostIndex, , memoryMiB] of c.vms) {
      const host = c.hosts[hostIndex]?.[0];
      if (host === undefined) continue;
      vmHost.set(vm, host);
      const before = this.previous?.vmHost.get(vm);
      if (before !== undefined && before !== host) {
        this.vmMoves++;
        this.movedMiB += memoryMiB;
      }
    }
    for (const [host, now] of power) {
      const before = this.previous?.power.get(host);
      if (before === undefined) continue;
      const counts = this.perHost.get(host) ?? { powerOffs: 0, powerOns: 0 };
      if (before.on && now.offByUs) counts.powerOffs++;
      else if (before.offByUs && now.on) counts.powerOns++;
      else continue;
      this.perHost.set(host, counts);
    }
    this.previous = { vmHost, power };
  }
}

function iso(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}
