/**
 * The recorder's cost against a cycle's: 100 hosts / 1,000 VMs (the replay benchmark's cluster, its
 * first day), one cycle a simulated minute. Per cycle it measures the CPU time (all threads, so the
 * gzip in libuv's pool counts) of the planner's work, planCycle + checkPlan, and of the recording:
 * CycleRecording.record and its write, awaited before the next cycle as the daemon's minute between
 * cycles allows (each cycle is its own gzip member and append, the daemon's worst case). A real cycle
 * also waits for SSH, virsh and the BMCs, so the planner's time is a lower bound on a cycle's and the
 * ratio printed an upper bound on what the recorder adds. With --observe-ms (the warm pass that
 * bench/lab-observe.ts prints: real sshd, libvirtd and QEMU), it also prints the share of a cycle's
 * time: observation plus planning, a lower bound on a cycle of 100 hosts. Target: under 5 %.
 *
 *   npm run bench:recorder [-- --cycles 300 --observe-ms 386]
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { stringify } from 'yaml';
import { loadPolicyText } from '../src/config/load.js';
import { CycleRecording } from '../src/daemon/cycle-recording.js';
import type { CycleReport } from '../src/daemon/cycle-report.js';
import { createLogger } from '../src/observability/logger.js';
import { ConsolidatorMetrics } from '../src/observability/metrics.js';
import { checkPlan, CycleDemands, planCycle } from '../src/planner/index.js';
import { EMPTY_MEMORY, type PlanInput } from '../src/planner/types.js';
import { buildRecordingSetup } from '../src/sim/recording-setup.js';
import { SimulatedDatacenter } from '../src/sim/simulated-datacenter.js';
import { REPO_ROOT } from './lib/bench-data.js';
import { writeSyntheticRecording } from './lib/synthetic-recording.js';

const { values } = parseArgs({ options: { cycles: { type: 'string', default: '300' }, 'observe-ms': { type: 'string' } } });
const cycles = Number(values.cycles);
// A warm observation pass over real hosts, as bench/lab-observe.ts measures it on this machine: a cycle
// observes its hosts before it plans (16 at a time), so it takes at least that plus the planning.
const observeMs = values['observe-ms'] === undefined ? undefined : Number(values['observe-ms']);
const o = { hosts: 100, vms: 1000, days: 1, intervalSeconds: 60 };
const source = join(REPO_ROOT, 'bench', 'out', `recording-${o.hosts}h-${o.vms}vm-${o.days}d-${o.intervalSeconds}s`);
if (!existsSync(source)) await writeSyntheticRecording(source, o);
const replay = await buildRecordingSetup(source, { migrationMiBps: 1000 });
const datacenter = new SimulatedDatacenter(replay.setup, { historyLength: 31, epochMs: replay.startMs });
datacenter.placeInitial('as-specified');

const yaml = stringify({
  version: 1,
  mode: 'dry-run',
  hypervisor: { driver: 'simulated' },
  power: { driver: 'simulated' },
  hosts: replay.setup.hosts.map((h) => ({ name: h.id })),
});
const loaded = await loadPolicyText(yaml, 'bench-recorder.yaml');
if (!loaded.ok) throw new Error(loaded.issues.map((i) => i.message).join('\n'));
const policy = loaded.value.policy;
const dir = await mkdtemp(join(tmpdir(), 'consolidator-bench-recorder-'));
const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
const recording = new CycleRecording(
  { dir, logger: createLogger({ level: 'error', format: 'json', stream: quiet }), metrics: new ConsolidatorMetrics({ registry: new Registry() }), poweredOffByUs: () => [] },
  loaded.value,
);

const cpuMs = (f: () => void) => {
  const before = process.cpuUsage();
  f();
  const d = process.cpuUsage(before);
  return (d.user + d.system) / 1000;
};
let planMs = 0;
let recordMs = 0;
for (let k = 1; k <= cycles; k++) {
  datacenter.advanceTo(k * o.intervalSeconds);
  datacenter.recordSamples();
  const snapshot = datacenter.snapshot();
  const input: PlanInput = { snapshot, policy, memory: EMPTY_MEMORY, inFlight: [], poweredOffByUs: [], powerActionsLast24h: {}, needsAttention: [], nowMs: datacenter.nowMs };
  let report: CycleReport | undefined;
  planMs += cpuMs(() => {
    const demands = CycleDemands.of(input);
    const plan = planCycle(input, demands);
    const violations = checkPlan(input, plan.actions, { demands }).violations;
    report = { cycle: `c${k}`, startedAtMs: datacenter.nowMs, result: 'ok', phaseSeconds: {}, snapshot, plan, violations, outcomes: [], unreachable: new Map(), dryRun: true };
  });
  const before = process.cpuUsage();
  recording.record(report as CycleReport, loaded.value);
  await recording.flush();
  const d = process.cpuUsage(before);
  recordMs += (d.user + d.system) / 1000;
}
await rm(dir, { recursive: true, force: true });
const ratio = recordMs / planMs;
console.log(
  `recorder, ${o.hosts} hosts / ${o.vms} VMs, ${cycles} cycles: ${(recordMs / cycles).toFixed(2)} ms CPU per cycle recording, ` +
    `${(planMs / cycles).toFixed(2)} ms CPU per cycle planning and checking: the recorder adds ${(ratio * 100).toFixed(1)} % ` +
    `(at most: a real cycle also waits for its hosts); target < 5 %: ${ratio < 0.05 ? 'ok' : 'MISS'}`,
);
if (observeMs !== undefined) {
  const cycleMs = observeMs + planMs / cycles;
  const share = recordMs / cycles / cycleMs;
  console.log(
    `against a cycle of at least ${cycleMs.toFixed(0)} ms (a warm observation pass of ${observeMs} ms, bench/lab-observe.ts, plus the planning): ` +
      `the recorder adds ${(share * 100).toFixed(2)} % of a cycle's time; target < 5 %: ${share < 0.05 ? 'ok' : 'MISS'}`,
  );
}
