/**
 * A workload: per-VM utilisation traces on a fixed grid, as read from a folder. Traces stay in the
 * units of the source (percent of the VM's own provisioned CPU or memory); a SimulationSetup turns
 * them into demands in the setup's CPU and memory units.
 */
export type WorkloadFormat = 'planetlab' | 'bitbrains';

/** Both shared traces sample every 300 s for one day. */
export const TRACE_SAMPLE_SECONDS = 300;
export const TRACE_SAMPLES_PER_DAY = 288;

export interface WorkloadVm {
  /** Trace file name (PlanetLab) or the `vm` column of vms.csv (Bitbrains). */
  readonly name: string;
  /** CPU use in percent of the VM's provisioned CPU, one value per sample. */
  readonly cpuPercent: Float64Array;
  /** Memory use in percent of the VM's provisioned memory (Bitbrains only). */
  readonly memoryPercent?: Float64Array;
  /** Provisioned vCPUs, CPU MHz and memory MiB (Bitbrains only, from vms.csv). */
  readonly cores?: number;
  readonly cpuCapacityMhz?: number;
  readonly memoryCapacityMiB?: number;
}

export interface Workload {
  readonly format: WorkloadFormat;
  readonly dir: string;
  readonly sampleSeconds: number;
  readonly samplesPerVm: number;
  /** PlanetLab: sorted by file name (the order that decides VM types in the reference setup). */
  readonly vms: readonly WorkloadVm[];
}
