import { appendFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { RECORDING_FORMAT, RECORDING_VERSION, recordingFileName, utcDay } from '../../src/state/recording.js';

export interface SyntheticRecordingOptions {
  readonly hosts: number;
  readonly vms: number;
  readonly days: number;
  readonly intervalSeconds: number;
  readonly startMs?: number;
  readonly seed?: number;
}

const DAY_SECONDS = 86_400;
const HOST_CPUS = 64;
const HOST_MEMORY_MIB = 512 * 1024;
const VM_VCPUS = [2, 4, 4, 8] as const;
const VM_MEMORY_MIB = [4096, 8192, 16384, 32768] as const;
/** Cycles per gzip member, as the daemon's writer batches them. */
const CYCLES_PER_MEMBER = 60;

/**
 * Writes a deterministic recording in the daemon's format, for benchmarks: `hosts` hosts of 64 CPUs /
 * 512 GiB (linear 150-350 W), `vms` VMs of 2-8 vCPUs placed round-robin, each with a daily cycle of
 * CPU use (its own base load and phase, peaking around midday) and steady memory; one VM in twenty
 * appears on the second day and leaves on the second-to-last. Every host is on (a dry run).
 */
export async function writeSyntheticRecording(dir: string, o: SyntheticRecordingOptions): Promise<{ cycles: number; bytes: number }> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  let state = o.seed ?? 42;
  const random = () => {
    state = (state * 16807) % 2147483647;
    return state / 2147483647;
  };
  const startMs = o.startMs ?? Date.UTC(2026, 0, 5);
  const hostNames = Array.from({ length: o.hosts }, (_, i) => `host-${String(i + 1).padStart(3, '0')}`);
  const header = JSON.stringify({
    format: RECORDING_FORMAT,
    version: RECORDING_VERSION,
    hosts: Object.fromEntries(hostNames.map((h) => [h, { powerModel: { kind: 'linear', idleWatts: 150, maxWatts: 350 }, bootSeconds: 180 }])),
  });
  const vms = Array.from({ length: o.vms }, (_, i) => ({
    name: `vm-${String(i + 1).padStart(4, '0')}`,
    host: i % o.hosts,
    vcpus: VM_VCPUS[i % VM_VCPUS.length] as number,
    memoryMiB: VM_MEMORY_MIB[(i >> 2) % VM_MEMORY_MIB.length] as number,
    base: 0.05 + 0.35 * random(),
    phase: (random() - 0.5) * 0.25,
    memoryShare: 0.4 + 0.4 * random(),
    churn: i % 20 === 19,
  }));
  const cycles = Math.floor((o.days * DAY_SECONDS) / o.intervalSeconds);
  let bytes = 0;
  let chunk = '';
  let chunkDay = '';
  let wroteHeader = new Set<string>();
  const flush = async () => {
    if (chunk === '') return;
    const member = gzipSync(chunk);
    bytes += member.length;
    await appendFile(join(dir, recordingFileName(chunkDay)), member);
    chunk = '';
  };
  for (let c = 0; c < cycles; c++) {
    const t = startMs + c * o.intervalSeconds * 1000;
    const day = utcDay(t);
    if (day !== chunkDay || c % CYCLES_PER_MEMBER === 0) {
      await flush();
      chunkDay = day;
    }
    if (!wroteHeader.has(day)) {
      chunk += `${header}\n`;
      wroteHeader = new Set([...wroteHeader, day]);
    }
    const dayFraction = (c * o.intervalSeconds) / DAY_SECONDS;
    const used = new Float64Array(o.hosts);
    const usedMemory = new Float64Array(o.hosts);
    const vmTuples: unknown[] = [];
    for (const vm of vms) {
      if (vm.churn && (dayFraction < 1 || dayFraction >= o.days - 1)) continue;
      const diurnal = 0.5 - 0.5 * Math.cos(2 * Math.PI * (dayFraction + vm.phase));
      const cpu = Math.round(vm.vcpus * Math.min(1, vm.base * (0.3 + 1.4 * diurnal) + 0.02 * random()) * 1000) / 1000;
      const memory = Math.round(vm.memoryMiB * vm.memoryShare);
      used[vm.host] = (used[vm.host] ?? 0) + cpu;
      usedMemory[vm.host] = (usedMemory[vm.host] ?? 0) + memory;
      vmTuples.push([vm.name, vm.host, vm.vcpus, vm.memoryMiB, cpu, memory]);
    }
    const hostTuples = hostNames.map((h, i) => [h, 'on', 1, HOST_CPUS, HOST_MEMORY_MIB, Math.round(((used[i] ?? 0) + 0.5) * 1000) / 1000, Math.round((usedMemory[i] ?? 0) + 4096), null]);
    chunk += `${JSON.stringify({ t, mode: 'dry-run', hosts: hostTuples, vms: vmTuples, acted: { migrations: 0, powerOffs: 0, powerOns: 0 } })}\n`;
  }
  await flush();
  return { cycles, bytes };
}
