/**
 * Validates the simulator against the published CloudSim 3.0.3 figures
 * (the data folder's README.md, from ../shared/data): NPA exactly, DVFS within 2 %, THR-MMT-0.8 energy and migrations
 * within 5 % per day; LR-MMT-1.2 is reported against the reference too.
 *
 *   npx tsx bench/validate-sim.ts [--data DIR (default: the planetlab folder of bench/data, see npm run bench:data)] [--days 20110303,...] [--baselines npa,dvfs,thr-mmt,lr-mmt] [--json]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { benchDataDir } from './lib/bench-data.js';
import { createBaseline } from '../src/sim/baselines/create-baseline.js';
import { buildCloudSimSetup } from '../src/sim/cloudsim-setup.js';
import { runSimulation, type SimulationReport } from '../src/sim/run-simulation.js';
import { loadWorkload } from '../src/sim/workload/load-workload.js';

interface Reference {
  readonly npaKWh: number;
  readonly dvfsKWh: number;
  readonly thr: { readonly kWh: number; readonly migrations: number; readonly slatahPct?: number; readonly slavPct?: number };
  readonly lr: { readonly kWh: number; readonly migrations: number; readonly slatahPct?: number; readonly slavPct?: number };
}

/** The data folder's README.md, "Reference results, re-run with CloudSim 3.0.3 on these inputs". */
const REFERENCE: Readonly<Record<string, Reference>> = {
  '20110303': {
    npaKWh: 2410.8,
    dvfsKWh: 802.75,
    thr: { kWh: 192.62, migrations: 26711, slatahPct: 4.91, slavPct: 0.00318 },
    lr: { kWh: 163.48, migrations: 27859, slatahPct: 5.86, slavPct: 0.00464 },
  },
  '20110306': { npaKWh: 2410.8, dvfsKWh: 625.53, thr: { kWh: 144.74, migrations: 20908 }, lr: { kWh: 123.28, migrations: 20878 } },
  '20110309': { npaKWh: 2410.8, dvfsKWh: 704.93, thr: { kWh: 165.27, migrations: 23475 }, lr: { kWh: 142.09, migrations: 24959 } },
};

const TOLERANCE = { dvfs: 0.02, thr: 0.05 } as const;
const ROUND_KWH = 10;

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    days: { type: 'string', default: Object.keys(REFERENCE).join(',') },
    baselines: { type: 'string', default: 'npa,dvfs,thr-mmt,lr-mmt' },
    json: { type: 'boolean', default: false },
  },
});

const days = (values.days ?? '').split(',').filter((d) => d !== '');
const baselines = (values.baselines ?? '').split(',').filter((b) => b !== '');
const results: { day: string; baseline: string; report: SimulationReport; verdict: string }[] = [];
let failures = 0;

for (const day of days) {
  const workload = await loadWorkload(join(values.data ?? join(benchDataDir(), 'planetlab'), day));
  const setup = buildCloudSimSetup(workload);
  for (const baseline of baselines) {
    const report = runSimulation(setup, createBaseline(baseline));
    const verdict = judge(day, baseline, report);
    if (verdict.startsWith('FAIL')) failures++;
    results.push({ day, baseline, report, verdict });
    if (!values.json) printRow(day, report, verdict);
  }
}

if (values.json) {
  console.log(JSON.stringify(results.map(({ day, baseline, report, verdict }) => ({ day, baseline, verdict, ...withoutSeries(report) }))));
} else {
  console.log(`\n${failures === 0 ? 'all checks passed' : `${failures} check(s) failed`}`);
}
process.exitCode = failures === 0 ? 0 : 1;

function judge(day: string, baseline: string, r: SimulationReport): string {
  const ref = REFERENCE[day];
  if (ref === undefined) return 'no reference';
  switch (baseline) {
    case 'npa': {
      const ok = Math.round(r.energyKWh * ROUND_KWH) / ROUND_KWH === ref.npaKWh;
      return `${ok ? 'ok' : 'FAIL'} (ref ${ref.npaKWh} kWh, exact to 0.1)`;
    }
    case 'dvfs': {
      const e = relative(r.energyKWh, ref.dvfsKWh);
      return `${Math.abs(e) <= TOLERANCE.dvfs ? 'ok' : 'FAIL'} (ref ${ref.dvfsKWh} kWh, ${pct(e)})`;
    }
    case 'thr-mmt': {
      const e = relative(r.energyKWh, ref.thr.kWh);
      const m = relative(r.migrations, ref.thr.migrations);
      const ok = Math.abs(e) <= TOLERANCE.thr && Math.abs(m) <= TOLERANCE.thr;
      return `${ok ? 'ok' : 'FAIL'} (ref ${ref.thr.kWh} kWh ${pct(e)}, ${ref.thr.migrations} migr ${pct(m)}${slaRef(ref.thr)})`;
    }
    case 'lr-mmt': {
      const e = relative(r.energyKWh, ref.lr.kWh);
      const m = relative(r.migrations, ref.lr.migrations);
      return `info (ref ${ref.lr.kWh} kWh ${pct(e)}, ${ref.lr.migrations} migr ${pct(m)}${slaRef(ref.lr)})`;
    }
    default:
      return 'no reference';
  }
}

function slaRef(ref: { readonly slatahPct?: number; readonly slavPct?: number }): string {
  return ref.slatahPct === undefined ? '' : `; ref SLATAH ${ref.slatahPct} %, SLAV ${ref.slavPct} %`;
}

function printRow(day: string, r: SimulationReport, verdict: string): void {
  console.log(
    [
      day,
      r.policy.padEnd(12),
      `${r.energyKWh.toFixed(2).padStart(8)} kWh`,
      `${String(r.migrations).padStart(6)} migr`,
      `SLATAH ${r.slatahPct.toFixed(2)} %`,
      `PDM ${r.pdmPct.toFixed(3)} %`,
      `SLAV ${r.slavPct.toFixed(5)} %`,
      `ESV ${r.esv.toExponential(3)}`,
      `overall ${r.overallSlaViolationPct.toFixed(2)} %`,
      `alive ${r.vmsAliveAtEnd}/${r.vms}`,
      `${r.wallSeconds.toFixed(1)} s`,
      verdict,
    ].join('  '),
  );
}

function relative(ours: number, ref: number): number {
  return (ours - ref) / ref;
}

function pct(x: number): string {
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(2)} %`;
}

function withoutSeries(r: SimulationReport): Omit<SimulationReport, 'series'> {
  const { series: _series, ...rest } = r;
  return rest;
}
