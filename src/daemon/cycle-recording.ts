import type { LoadedPolicy } from '../config/load.js';
import { errorMessage } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { ClusterSnapshot } from '../model/snapshot.js';
import type { Logger } from '../observability/logger.js';
import type { ConsolidatorMetrics } from '../observability/metrics.js';
import { RECORDING_FORMAT, RECORDING_VERSION, type RecordedHost, type RecordedHostInfo, type RecordedVm } from '../state/recording.js';
import { RecordingWriter } from '../state/recording-writer.js';
import type { CycleReport } from './cycle-report.js';

export interface CycleRecordingDeps {
  /** The recording folder (stateDirectory/recording). */
  readonly dir: string;
  readonly logger: Logger;
  readonly metrics: ConsolidatorMetrics;
  /** The BMC's power reading where it has one (PowerDriver.powerReadingWatts of the current drivers). */
  readonly readWatts?: (host: HostId, signal: AbortSignal) => Promise<number | undefined>;
  /** The hosts that are off because consolidator powered them off, now. */
  readonly poweredOffByUs: () => readonly HostId[];
}

/** BMC readings taken at once, and how long the recording waits for them. */
const WATTS_CONCURRENCY = 8;
const WATTS_TIMEOUT_MS = 5_000;
/** CPU use is recorded to a thousandth of a core, memory to the MiB: the file stays small. */
const ROUND = 1000;

/**
 * The daemon's recording (src/state/recording.ts has the format): record() runs in the cycle's record
 * phase and only builds the cycle's line and queues it; BMC readings and the gzip'd append happen
 * after the cycle, off its path. It never throws and never fails a cycle: every failure is a warning
 * and counts in consolidator_recording_errors_total. A BMC that has no power reading is not asked
 * again until the daemon restarts.
 */
export class CycleRecording {
  private readonly deps: CycleRecordingDeps;
  private readonly writer: RecordingWriter;
  private readonly log: Logger;
  private readonly noReading = new Set<HostId>();
  private latest: ReadonlyMap<HostId, number> = new Map();
  private tail: Promise<void> = Promise.resolve();

  constructor(deps: CycleRecordingDeps, loaded: LoadedPolicy) {
    this.deps = deps;
    this.log = deps.logger.child({ component: 'recording' });
    this.writer = new RecordingWriter({
      dir: deps.dir,
      limits: loaded.policy.recording,
      onError: (what, e) => {
        this.deps.metrics.recordingErrorsTotal.inc();
        this.log.warn(`recording: ${what} failed`, { dir: deps.dir, detail: errorMessage(e) });
      },
    });
  }

  /** Queues the cycle's observation. */
  record(report: CycleReport, loaded: LoadedPolicy): void {
    try {
      if (!loaded.policy.recording.enabled || report.snapshot === undefined) return;
      this.writer.setLimits(loaded.policy.recording);
      const snapshot = report.snapshot;
      const header = JSON.stringify({ format: RECORDING_FORMAT, version: RECORDING_VERSION, hosts: hostInfo(loaded) });
      const ok = (type: string) => report.outcomes.filter((o) => o.action.type === type && o.result === 'ok').length;
      const acted = { migrations: ok('migrate'), powerOffs: ok('power-off'), powerOns: ok('power-on') };
      const mode = loaded.policy.mode;
      const byUs = new Set(this.deps.poweredOffByUs());
      this.tail = this.tail
        .then(async () => {
          const watts = await this.readWatts(snapshot);
          this.latest = watts;
          const line = JSON.stringify({ t: snapshot.takenAtMs, mode, ...tuples(snapshot, watts, byUs), acted });
          this.writer.append(snapshot.takenAtMs, line, header);
          this.deps.metrics.recordingBytes.set(this.writer.sizeBytes);
        })
        .catch((e: unknown) => this.fail('record', e));
    } catch (e) {
      this.fail('record', e);
    }
  }

  /** The BMC readings of the last recorded cycle (a cycle behind the one being recorded). */
  latestWatts(): ReadonlyMap<HostId, number> {
    return this.latest;
  }

  /** Resolves once everything recorded so far is on disk (stop, tests). */
  async flush(): Promise<void> {
    await this.tail;
    await this.writer.flush();
    this.deps.metrics.recordingBytes.set(this.writer.sizeBytes);
  }

  private fail(what: string, e: unknown): void {
    this.deps.metrics.recordingErrorsTotal.inc();
    this.log.warn(`recording: ${what} failed`, { detail: errorMessage(e) });
  }

  private async readWatts(snapshot: ClusterSnapshot): Promise<Map<HostId, number>> {
    const out = new Map<HostId, number>();
    const read = this.deps.readWatts;
    if (read === undefined) return out;
    // An off host's BMC still answers with its standby draw (what powering it off did not save).
    const hosts = snapshot.hosts.filter((h) => ((h.power === 'on' && h.reachable) || h.power === 'off') && !this.noReading.has(h.id));
    const signal = AbortSignal.timeout(WATTS_TIMEOUT_MS);
    let next = 0;
    const worker = async () => {
      for (let i = next++; i < hosts.length; i = next++) {
        const { id: host, power } = hosts[i] as (typeof hosts)[number];
        try {
          const watts = await read(host, signal);
          // Only a host that is on proves its BMC has no reading at all; some report none while off.
          if (watts === undefined) {
            if (power === 'on') this.noReading.add(host);
          } else out.set(host, watts);
        } catch {
          // A reading that fails is left out of this cycle's line; the next cycle asks again.
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(WATTS_CONCURRENCY, hosts.length) }, worker));
    return out;
  }
}

function hostInfo(loaded: LoadedPolicy): Record<string, RecordedHostInfo> {
  const out: Record<string, RecordedHostInfo> = {};
  for (const h of loaded.hosts) out[h.name] = { powerModel: h.powerModel, bootSeconds: h.bootSeconds };
  return out;
}

function round(x: number): number {
  return Math.round(x * ROUND) / ROUND;
}

/** The snapshot as the recording's host and VM tuples. */
export function tuples(
  snapshot: ClusterSnapshot,
  watts: ReadonlyMap<HostId, number> = new Map(),
  offByUs: ReadonlySet<HostId> = new Set(),
): { hosts: RecordedHost[]; vms: RecordedVm[]; byUs: number[] } {
  const index = new Map<HostId, number>();
  const byUs: number[] = [];
  const hosts: RecordedHost[] = snapshot.hosts.map((h, i) => {
    index.set(h.id, i);
    if (h.power === 'off' && offByUs.has(h.id)) byUs.push(i);
    const last = h.samples[h.samples.length - 1];
    return [h.id, h.power, h.reachable ? 1 : 0, h.capacity.cpu, h.capacity.memory, last ? round(last.use.cpu) : null, last ? Math.round(last.use.memory) : null, watts.get(h.id) ?? null];
  });
  const vms: RecordedVm[] = [];
  for (const vm of snapshot.vms) {
    const host = index.get(vm.host);
    if (host === undefined) continue;
    const last = vm.samples[vm.samples.length - 1];
    vms.push([vm.id, host, vm.vcpus, vm.memoryMiB, last ? round(last.use.cpu) : null, last ? Math.round(last.use.memory) : null]);
  }
  return { hosts, vms, byUs };
}
