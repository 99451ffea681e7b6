/**
 * A workload: per-VM utilisation traces on one time grid, whatever their source. This is the general
 * trace every simulation replays: any sample interval, any length, VMs that appear (at `startSample`)
 * and disappear (after their last sample). The PlanetLab and Bitbrains folder loaders and the
 * consolidator trace file (trace-file.ts) all convert to it. Traces stay in percent of the VM's own
 * provisioned CPU or memory; a SimulationSetup turns them into demands in the setup's units.
 */
export type WorkloadFormat = 'planetlab' | 'bitbrains' | 'trace';

/** The shared PlanetLab and Bitbrains folders sample every 300 s (their layout says nothing else). */
export const TRACE_SAMPLE_SECONDS = 300;
/** One day of those folders: the reference setup's length (any length is accepted). */
export const TRACE_SAMPLES_PER_DAY = 288;

export interface WorkloadVm {
  /** Trace file name (PlanetLab), the `vm` column of vms.csv (Bitbrains) or of a trace file. */
  readonly name: string;
  /** CPU use in percent of the VM's provisioned CPU, one value per sample from startSample on. */
  readonly cpuPercent: Float64Array;
  /** Memory use in percent of the VM's provisioned memory (same samples); absent = all of it. */
  readonly memoryPercent?: Float64Array;
  /** Provisioned vCPUs, CPU MHz and memory MiB where the source gives them. */
  readonly cores?: number;
  readonly cpuCapacityMhz?: number;
  readonly memoryCapacityMiB?: number;
  /** Grid index of the VM's first sample (it appears then); 0 when absent. It leaves after its last sample. */
  readonly startSample?: number;
}

export interface Workload {
  readonly format: WorkloadFormat;
  /** The folder or file it was read from. */
  readonly dir: string;
  readonly sampleSeconds: number;
  /** Length of the grid: the end of the VM that ends last, in samples. */
  readonly samples: number;
  /** PlanetLab: sorted by file name (the order that decides VM types in the reference setup). */
  readonly vms: readonly WorkloadVm[];
}

/** The grid length of a set of VMs: where the last one ends. */
export function gridLength(vms: readonly WorkloadVm[]): number {
  let end = 0;
  for (const vm of vms) end = Math.max(end, (vm.startSample ?? 0) + vm.cpuPercent.length);
  return end;
}
