/**
 * Demand at time t from a trace sampled every `sampleSeconds`: the sample itself on the grid, else the
 * straight line between the two samples around t, computed exactly as CloudSim's
 * UtilizationModelPlanetLabInMemory.getUtilization does (so results match it to the last bit).
 * Times past the end read the last sample.
 */
export function demandFractionAt(trace: Float64Array, t: number, sampleSeconds: number): number {
  const last = trace.length - 1;
  if (t % sampleSeconds === 0) return trace[Math.min(last, Math.trunc(t) / Math.trunc(sampleSeconds))] ?? 0;
  const index1 = Math.floor(t / sampleSeconds);
  const index2 = Math.ceil(t / sampleSeconds);
  if (index2 > last) return trace[last] ?? 0;
  const u1 = trace[index1] ?? 0;
  const u2 = trace[index2] ?? 0;
  const delta = (u2 - u1) / ((index2 - index1) * sampleSeconds);
  return u1 + delta * (t - index1 * sampleSeconds);
}
