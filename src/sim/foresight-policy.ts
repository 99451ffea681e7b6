import type { ClusterSnapshot, HostSnapshot, UsageSample, VmSnapshot } from '../model/snapshot.js';
import type { SimulationInput, SimulationPolicy } from './simulation-policy.js';
import type { SimulationSetup } from './simulation-setup.js';
import { demandFractionAt } from './trace-demand.js';

/**
 * Perfect foresight: a benchmark instrument, not a policy anyone can run. At each decision the
 * wrapped policy is shown, instead of each VM's past, its real CPU demand over the next
 * `lookaheadSeconds` (read from the setup's traces at the trace's own spacing), labelled as the
 * last `lookaheadSeconds` of its window; each host's samples become the sum of its VMs' futures
 * (plus what it used beyond its VMs at its latest sample). Every predictor, whatever its statistic,
 * then predicts from the future it is about to face, so the result bounds what a better predictor of
 * the past could give the same planner and thresholds. Memory is not foreseen: every sample carries
 * the latest memory use. The lookahead must fit in the policy's shortest window of samples, or its
 * far end would fall out of the window and be ignored.
 */
export function withForesight(inner: SimulationPolicy, setup: Pick<SimulationSetup, 'vms' | 'sampleSeconds'>, lookaheadSeconds: number): SimulationPolicy {
  if (!(lookaheadSeconds >= setup.sampleSeconds)) throw new RangeError(`foresight: lookahead ${lookaheadSeconds} s is shorter than one trace sample (${setup.sampleSeconds} s)`);
  if (inner.historySeconds !== undefined && lookaheadSeconds > inner.historySeconds) {
    throw new RangeError(`foresight: lookahead ${lookaheadSeconds} s is longer than the ${inner.historySeconds} s of samples the policy reads`);
  }
  const traces = new Map(setup.vms.map((vm) => [vm.id, vm]));
  const points = Math.round(lookaheadSeconds / setup.sampleSeconds) + 1;
  return {
    ...inner,
    name: `${inner.name}, foresight ${Math.round(lookaheadSeconds / 60)} min`,
    decide: (input: SimulationInput) => inner.decide({ ...input, snapshot: foreseen(input.snapshot, input.nowMs) }),
  };

  function foreseen(snapshot: ClusterSnapshot, nowMs: number): ClusterSnapshot {
    const nowSeconds = nowMs / 1000;
    const stepMs = setup.sampleSeconds * 1000;
    const labelMs = (i: number) => nowMs - (points - 1 - i) * stepMs;
    const hostFutures = new Map<string, { readonly cpu: Float64Array; latestOfVms: number }>();
    const vms = snapshot.vms.map((vm): VmSnapshot => {
      const spec = traces.get(vm.id);
      if (spec === undefined) return vm;
      const future = hostFutures.get(vm.host) ?? { cpu: new Float64Array(points), latestOfVms: 0 };
      hostFutures.set(vm.host, future);
      future.latestOfVms += latestOf(vm.samples)?.use.cpu ?? 0;
      const memory = latestOf(vm.samples)?.use.memory ?? 0;
      const samples: UsageSample[] = [];
      for (let i = 0; i < points; i++) {
        const cpu = demandFractionAt(spec.cpuTrace, nowSeconds + i * setup.sampleSeconds, setup.sampleSeconds) * spec.cpu;
        future.cpu[i] = (future.cpu[i] as number) + cpu;
        samples.push({ atMs: labelMs(i), use: { cpu, memory } });
      }
      return { ...vm, samples };
    });
    const hosts = snapshot.hosts.map((host): HostSnapshot => {
      const latest = latestOf(host.samples);
      if (latest === undefined) return host;
      const future = hostFutures.get(host.id);
      const beyondVms = Math.max(0, latest.use.cpu - (future?.latestOfVms ?? 0));
      const samples: UsageSample[] = [];
      for (let i = 0; i < points; i++) samples.push({ atMs: labelMs(i), use: { cpu: (future?.cpu[i] ?? 0) + beyondVms, memory: latest.use.memory } });
      return { ...host, samples };
    });
    return { ...snapshot, hosts, vms };
  }
}

function latestOf(samples: readonly UsageSample[]): UsageSample | undefined {
  return samples[samples.length - 1];
}
