import type { HostId } from '../model/ids.js';
import type { HostSnapshot, VmSnapshot } from '../model/snapshot.js';
import { estimateMigrationSeconds, hostWatts } from './energy.js';
import type { Action, MigrateAction, PlanInput } from './types.js';
import { Workspace } from './workspace.js';

export type DrainPlan =
  | { readonly ok: true; readonly actions: readonly Action[]; readonly memoryToMoveMiB: number; readonly estimatedSeconds: number }
  | { readonly ok: false; readonly reasons: readonly string[] };

/**
 * Plans the evacuation of one host for maintenance, with the same placement and safety rules as a
 * cycle: every VM placed under target on a host that may receive it (anti-affinity respected, no
 * excluded, maintenance, unreachable or failed host), largest first, best fit. All or nothing: a
 * plan, or every reason it cannot be done. Pure.
 */
export function planDrain(input: PlanInput, hostId: HostId, options: { readonly powerOff: boolean }): DrainPlan {
  const { policy } = input;
  const ws = new Workspace(input.snapshot.hosts, input.snapshot.vms, policy, input.nowMs);
  const h = ws.hostIndex.get(hostId);
  if (h === undefined) return { ok: false, reasons: [`no host named ${hostId} in the policy`] };
  const host = ws.hosts[h] as HostSnapshot;
  const reasons: string[] = [];
  if (host.power === 'off') reasons.push(`${hostId} is powered off: nothing to move`);
  else if (host.power !== 'on' || !host.reachable) reasons.push(`${hostId} does not answer: its VMs cannot be moved from here`);
  if (host.excluded) reasons.push(`${hostId} is excluded by the policy (exclude: true): consolidator never touches it`);
  const inFlight = new Set(input.inFlight.flatMap((a) => (a.type === 'migrate' ? [a.vm] : [])));
  const vms = [...(ws.vmsOnHost[h] as Set<number>)];
  for (const v of vms) {
    const vm = ws.vms[v] as VmSnapshot;
    if (vm.protected === true) reasons.push(`VM ${vm.id} is protected (the controller's own VM, or vmRules.protected): its host is never emptied`);
    else if (vm.pinned) reasons.push(`VM ${vm.id} is pinned (by a vmRules.pinned rule, libvirt metadata, or its state): move it by hand or unpin it`);
    if (inFlight.has(vm.id)) reasons.push(`VM ${vm.id} is migrating right now`);
  }
  const active = ws.hosts.filter((x) => x.power === 'on' && x.reachable).length;
  if (options.powerOff && active - 1 < policy.safety.minHostsOn) {
    reasons.push(`powering ${hostId} off would leave ${active - 1} hosts on, below minHostsOn (${policy.safety.minHostsOn})`);
  }
  if (reasons.length > 0) return { ok: false, reasons };

  const failed = new Set(Object.entries(input.memory.hostCooldowns).filter(([, c]) => c.reason === 'failed' && c.untilMs > input.nowMs).map(([id]) => id));
  ws.hosts.forEach((candidate, i) => {
    const usable = i !== h && candidate.power === 'on' && candidate.reachable && !candidate.excluded && !candidate.maintenance && !failed.has(candidate.id);
    if (usable) ws.destinations.add(i);
  });
  const size = (v: number) => Math.max((ws.demandCpu[v] as number) / Math.max(1e-9, ws.limitCpu[h] as number), (ws.demandMemory[v] as number) / Math.max(1e-9, ws.limitMemory[h] as number));
  const order = vms.sort((a, b) => size(b) - size(a) || a - b);
  const actions: Action[] = [];
  let memoryToMoveMiB = 0;
  let estimatedSeconds = 0;
  for (const v of order) {
    const vm = ws.vms[v] as VmSnapshot;
    const to = ws.bestDestination(v);
    if (to === undefined) {
      reasons.push(`VM ${vm.id} (${(ws.demandCpu[v] as number).toFixed(2)} cpu, ${Math.round(ws.demandMemory[v] as number)} MiB) fits on no other host under the policy's targets`);
      continue;
    }
    ws.move(v, to);
    const seconds = estimateMigrationSeconds(vm, policy);
    const action: MigrateAction = {
      id: `${actions.length + 1}-migrate-${vm.id}`,
      type: 'migrate',
      vm: vm.id,
      from: hostId,
      to: (ws.hosts[to] as HostSnapshot).id,
      purpose: 'drain',
      memoryMiB: vm.memoryMiB,
      estimatedSeconds: Math.round(seconds * 10) / 10,
      dependsOn: [],
    };
    actions.push(action);
    memoryToMoveMiB += vm.memoryMiB;
    estimatedSeconds += seconds;
  }
  if (reasons.length > 0) return { ok: false, reasons };
  if (options.powerOff) {
    actions.push({
      id: `${actions.length + 1}-power-off-${hostId}`,
      type: 'power-off',
      host: hostId,
      estimatedSavingWatts: Math.round(hostWatts(host, 0) * 10) / 10,
      dependsOn: actions.map((a) => a.id),
    });
  }
  return { ok: true, actions, memoryToMoveMiB, estimatedSeconds: Math.round(estimatedSeconds) };
}
