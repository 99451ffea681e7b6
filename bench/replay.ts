/**
 * The replay benchmark: a week's recording of 100 hosts / 1,000 VMs at 1-minute cycles (synthetic,
 * bench/lib/synthetic-recording.ts, made once into bench/out/) replayed under the planner, as
 * `consolidator simulate --recording` does. Target: under 60 s.
 *
 *   npm run bench:replay [-- --hosts 100 --vms 1000 --days 7 --interval 60 --policy FILE]
 */
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { replayRecording } from '../src/cli/simulate-recording.js';
import { loadPolicyOrThrow } from '../src/config/load.js';
import { PolicySchema, type Policy } from '../src/config/schema.js';
import { REPO_ROOT } from './lib/bench-data.js';
import { writeSyntheticRecording } from './lib/synthetic-recording.js';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '100' },
    vms: { type: 'string', default: '1000' },
    days: { type: 'string', default: '7' },
    interval: { type: 'string', default: '60' },
    policy: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const o = { hosts: Number(values.hosts), vms: Number(values.vms), days: Number(values.days), intervalSeconds: Number(values.interval) };
const dir = join(REPO_ROOT, 'bench', 'out', `recording-${o.hosts}h-${o.vms}vm-${o.days}d-${o.intervalSeconds}s`);
if (!existsSync(dir)) {
  const t0 = performance.now();
  const made = await writeSyntheticRecording(dir, o);
  console.log(`made ${dir}: ${made.cycles} cycles, ${(made.bytes / 1048576).toFixed(1)} MiB gzip'd, in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
const policy: Policy =
  values.policy === undefined
    ? PolicySchema.parse({ version: 1, hosts: [{ name: 'x' }], hypervisor: { driver: 'simulated' }, power: { driver: 'simulated' } })
    : (await loadPolicyOrThrow(values.policy)).policy;
const io = { stdout: process.stdout, stderr: process.stderr, isTty: false };
const started = performance.now();
const cpuBefore = process.cpuUsage();
const { summary, report } = await replayRecording({ dir, policy, policyFile: values.policy, range: {}, json: true, plot: 'none' }, io);
const total = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
// CPU time (all threads) says what the run costs whatever else the machine runs; wall time is the target.
const cpuSeconds = (cpu.user + cpu.system) / 1e6;
const [load1] = loadavg();
const line = `replay of ${summary.cycles} cycles (${o.hosts} hosts, ${o.vms} VMs, ${o.days} days at ${o.intervalSeconds} s): ` +
  `${total.toFixed(1)} s in all (${summary.loadSeconds.toFixed(1)} s reading, ${report.wallSeconds.toFixed(1)} s replaying; ${cpuSeconds.toFixed(1)} s of CPU), ` +
  `${summary.savedPct.toFixed(1)} % saved, ${summary.migrations} migrations; load average ${load1?.toFixed(2)}; target < 60 s: ${total < 60 ? 'ok' : 'MISS'}`;
console.log(line);
if (values.json) console.log(JSON.stringify({ ...o, totalSeconds: total, cpuSeconds, readSeconds: summary.loadSeconds, replaySeconds: report.wallSeconds, savedPct: summary.savedPct, migrations: summary.migrations, allHostsOnMethod: summary.allHostsOnMethod, policyMethod: summary.policyMethod }));
