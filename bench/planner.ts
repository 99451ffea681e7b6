/**
 * Planner benchmark: random clusters, one planCycle each, figures printed.
 *   npm run bench:planner              a table
 *   npm run bench:planner -- --json    one JSON object per line
 *   npm run bench:planner -- --sizes 1000x10000,10000x100000 --seed 7 --runs 5
 * Each cluster is planned --runs times (the daemon plans every cycle, so a warm planner is the usual
 * case): planSeconds is the median, coldPlanSeconds the first run (JIT compilation included).
 * Fields: hosts, vms, planSeconds, planCpuSeconds (user + system CPU: steady on a shared machine), peakRssMiB, activeHostsBefore, activeHostsAfter, lowerBoundHosts
 * (max over resources of ceil(total demand / (capacity x target))), gapToLowerBoundPct, migrations.
 */
import { parseArgs } from 'node:util';
import { PolicySchema } from '../src/config/schema.js';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from '../src/model/snapshot.js';
import { planCycle } from '../src/planner/plan-cycle.js';
import type { PlanInput, PlannerPolicy } from '../src/planner/types.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const HOST_CPUS = 64;
const HOST_MEMORY_MIB = 512 * 1024;
const VCPU_CHOICES = [1, 2, 4, 8];
const MEMORY_GIB_CHOICES = [2, 4, 8, 16, 32];

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    sizes: { type: 'string', default: '1000x10000,10000x100000' },
    seed: { type: 'string', default: '42' },
    runs: { type: 'string', default: '3' },
  },
});

/** Small, fast, seedable PRNG (mulberry32): the same clusters on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

/** A thinly spread cluster: VMs placed at random, as years of ad-hoc placement leave them. */
function randomCluster(hostCount: number, vmCount: number, seed: number): ClusterSnapshot {
  const random = rng(seed);
  const hosts: HostSnapshot[] = [];
  for (let i = 0; i < hostCount; i++) {
    hosts.push({
      id: `host-${String(i).padStart(5, '0')}`,
      power: 'on',
      reachable: true,
      capacity: { cpu: HOST_CPUS, memory: HOST_MEMORY_MIB },
      samples: [],
      excluded: false,
      maintenance: false,
      labels: {},
      powerModel: { kind: 'linear', idleWatts: 180, maxWatts: 450 },
      bootSeconds: 180,
    });
  }
  const usedCpu = new Float64Array(hostCount);
  const usedMemory = new Float64Array(hostCount);
  const vms: VmSnapshot[] = [];
  for (let v = 0; v < vmCount; v++) {
    const vcpus = pick(random, VCPU_CHOICES);
    const memoryMiB = pick(random, MEMORY_GIB_CHOICES) * 1024;
    const cpu = vcpus * (0.05 + random() * 0.55);
    let h = Math.floor(random() * hostCount);
    // Random placement that respects physical capacity (not the policy's target).
    for (let tries = 0; tries < hostCount && (usedCpu[h]! + cpu > HOST_CPUS * 0.95 || usedMemory[h]! + memoryMiB > HOST_MEMORY_MIB * 0.95); tries++) {
      h = (h + 1) % hostCount;
    }
    usedCpu[h] = usedCpu[h]! + cpu;
    usedMemory[h] = usedMemory[h]! + memoryMiB;
    vms.push({
      id: `vm-${String(v).padStart(6, '0')}`,
      host: (hosts[h] as HostSnapshot).id,
      state: 'running',
      vcpus,
      memoryMiB,
      samples: [{ atMs: NOW, use: { cpu, memory: memoryMiB } }],
      pinned: false,
      antiAffinityGroups: [],
    });
  }
  return { takenAtMs: NOW, hosts, vms };
}

function benchPolicy(): PlannerPolicy {
  return PolicySchema.parse({
    version: 1,
    hypervisor: { driver: 'simulated' },
    power: { driver: 'simulated' },
    hosts: [{ name: 'placeholder' }],
    thresholds: {
      cpu: { underloadRatio: 0.5, targetRatio: 0.8, overloadRatio: 0.95 },
      memory: { underloadRatio: 0.5, targetRatio: 0.85, overloadRatio: 0.95 },
    },
    safety: { minHostsOn: 1, maxMigrationsPerCycle: 1_000_000, maxPowerActionsPerHostPerDay: 4 },
    consolidation: { underloadedForSeconds: 1800 },
  });
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function lowerBound(cluster: ClusterSnapshot, policy: PlannerPolicy): number {
  let cpu = 0;
  let memory = 0;
  for (const vm of cluster.vms) {
    cpu += vm.samples[0]?.use.cpu ?? 0;
    memory += vm.samples[0]?.use.memory ?? 0;
  }
  return Math.max(
    Math.ceil(cpu / (HOST_CPUS * policy.thresholds.cpu.targetRatio)),
    Math.ceil(memory / (HOST_MEMORY_MIB * policy.thresholds.memory.targetRatio)),
  );
}

interface Row {
  hosts: number;
  vms: number;
  planSeconds: number;
  coldPlanSeconds: number;
  /** CPU time the plan took (user + system): the figure that does not depend on what else runs. */
  planCpuSeconds: number;
  peakRssMiB: number;
  activeHostsBefore: number;
  activeHostsAfter: number;
  lowerBoundHosts: number;
  gapToLowerBoundPct: number;
  migrations: number;
}

function run(hostCount: number, vmCount: number, seed: number): Row {
  const cluster = randomCluster(hostCount, vmCount, seed);
  const policy = benchPolicy();
  const input: PlanInput = {
    snapshot: cluster,
    policy,
    memory: { underloadedSinceMs: Object.fromEntries(cluster.hosts.map((h) => [h.id, NOW - 3_600_000])), hostCooldowns: {}, vmCooldownUntilMs: {} },
    inFlight: [],
    poweredOffByUs: [],
    powerActionsLast24h: {},
    needsAttention: [],
    nowMs: NOW,
  };
  let peakRss = process.memoryUsage().rss;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 5);
  const runs = Math.max(1, Number(values.runs) || 1);
  const wall: number[] = [];
  const cpuTimes: number[] = [];
  const coldStarted = process.hrtime.bigint();
  let result = planCycle(input);
  const coldPlanSeconds = Number(process.hrtime.bigint() - coldStarted) / 1e9;
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    const cpuStarted = process.cpuUsage();
    result = planCycle(input);
    wall.push(Number(process.hrtime.bigint() - started) / 1e9);
    const cpu = process.cpuUsage(cpuStarted);
    cpuTimes.push((cpu.user + cpu.system) / 1e6);
  }
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  const lb = lowerBound(cluster, policy);
  return {
    hosts: hostCount,
    vms: vmCount,
    planSeconds: round3(median(wall)),
    coldPlanSeconds: round3(coldPlanSeconds),
    planCpuSeconds: round3(median(cpuTimes)),
    peakRssMiB: Math.round(peakRss / 1048576),
    activeHostsBefore: result.summary.activeHostsBefore,
    activeHostsAfter: result.summary.activeHostsAfter,
    lowerBoundHosts: lb,
    gapToLowerBoundPct: Math.round(((result.summary.activeHostsAfter - lb) / lb) * 1000) / 10,
    migrations: result.summary.migrations,
  };
}

const seed = Number(values.seed);
const rows: Row[] = [];
for (const size of (values.sizes ?? '').split(',')) {
  const [h, v] = size.split('x').map(Number);
  if (!h || !v) throw new Error(`--sizes takes HOSTSxVMS pairs, got "${size}"`);
  const row = run(h, v, seed);
  rows.push(row);
  if (values.json) console.log(JSON.stringify(row));
}
if (!values.json) {
  const header = ['hosts', 'vms', 'plan s (median)', 'first plan s', 'plan CPU s', 'peak RSS MiB', 'active before', 'active after', 'lower bound', 'gap %', 'migrations'];
  console.log(header.join('\t'));
  for (const r of rows) {
    console.log([r.hosts, r.vms, r.planSeconds, r.coldPlanSeconds, r.planCpuSeconds, r.peakRssMiB, r.activeHostsBefore, r.activeHostsAfter, r.lowerBoundHosts, r.gapToLowerBoundPct, r.migrations].join('\t'));
  }
}
