import type { HostId } from '../model/ids.js';
import type { HostSnapshot, VmSnapshot } from '../model/snapshot.js';
import { CycleDemands } from './demand.js';
import { estimateMigrationSeconds, hostWatts } from './energy.js';
import type { Action, MigrateAction, PlanInput } from './types.js';
import { wakeCandidates } from './wake-candidates.js';
import { Workspace } from './workspace.js';

/** A host consolidator powered off that a drain may wake, with the room it adds under the targets. */
export interface DrainWake {
  readonly host: HostId;
  readonly cpu: number;
  readonly memoryMiB: number;
}

/** The figures behind a drain that needs room: what the VMs need against what the hosts on have free. */
export interface DrainRoom {
  /** What the VMs on the drained host need (the planner's estimate), summed. */
  readonly needCpu: number;
  readonly needMemoryMiB: number;
  /** Free under the policy's targets, summed over the hosts on that may receive VMs. */
  readonly freeCpu: number;
  readonly freeMemoryMiB: number;
  readonly activeHosts: number;
  /** Hosts that could be woken, most power-efficient first. */
  readonly wakeable: readonly DrainWake[];
}

export type DrainPlan =
  | { readonly ok: true; readonly actions: readonly Action[]; readonly memoryToMoveMiB: number; readonly estimatedSeconds: number }
  | {
      readonly ok: false;
      readonly reasons: readonly string[];
      /** Set when the drain is refused for want of room. */
      readonly room?: DrainRoom;
      /**
       * Set when every VM is placed once these hosts (the fewest, most efficient first) are on: the
       * caller wakes them and plans again. `actions` is the plan as it would be with them on.
       */
      readonly wake?: { readonly hosts: readonly DrainWake[]; readonly actions: readonly Action[] };
    };

export function planDrain(input: PlanInput, hostId: HostId, options: { readonly powerOff: boolean }): DrainPlan {
  const { policy } = input;
  const ws = new Workspace(input.snapshot.hosts, input.snapshot.vms, policy, CycleDemands.of(input));
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
  const room = roomFor(ws, input, h, order);

  let placed = place(ws, hostId, order, policy);
  const woken: DrainWake[] = [];
  for (const candidate of room.wakeable) {
    if (placed.ok) break;
    woken.push(candidate);
    ws.destinations.add(ws.hostIndex.get(candidate.host) as number);
    placed = place(ws, hostId, order, policy);
  }
  if (!placed.ok) return { ok: false, reasons: noRoomReasons(ws, hostId, room, placed.unplaced), room };
  const actions: Action[] = [...placed.actions];
  if (options.powerOff) {
    actions.push({
      id: `${actions.length + 1}-power-off-${hostId}`,
      type: 'power-off',
      host: hostId,
      estimatedSavingWatts: Math.round(hostWatts(host, 0) * 10) / 10,
      dependsOn: actions.map((a) => a.id),
    });
  }
  if (woken.length > 0) {
    const names = woken.map(describeWake).join(', ');
    return {
      ok: false,
      reasons: [`${needVsFree(hostId, room)}: there is room for every VM once ${names} ${woken.length === 1 ? 'is' : 'are'} woken`],
      room,
      wake: { hosts: woken, actions },
    };
  }
  return { ok: true, actions, memoryToMoveMiB: placed.memoryToMoveMiB, estimatedSeconds: Math.round(placed.estimatedSeconds) };
}

type Placement =
  | { readonly ok: true; readonly actions: readonly MigrateAction[]; readonly memoryToMoveMiB: number; readonly estimatedSeconds: number }
  | { readonly ok: false; readonly unplaced: readonly number[] };

/** Places every VM, largest first, best fit; all or nothing (a failed attempt leaves the workspace as it was). */
function place(ws: Workspace, hostId: HostId, order: readonly number[], policy: PlanInput['policy']): Placement {
  const h = ws.hostIndex.get(hostId) as number;
  const actions: MigrateAction[] = [];
  const unplaced: number[] = [];
  const moved: number[] = [];
  let memoryToMoveMiB = 0;
  let estimatedSeconds = 0;
  for (const v of order) {
    const vm = ws.vms[v] as VmSnapshot;
    const to = ws.bestDestination(v);
    if (to === undefined) {
      unplaced.push(v);
      continue;
    }
    ws.move(v, to);
    moved.push(v);
    const seconds = estimateMigrationSeconds(vm, policy);
    actions.push({
      id: `${actions.length + 1}-migrate-${vm.id}`,
      type: 'migrate',
      vm: vm.id,
      from: hostId,
      to: (ws.hosts[to] as HostSnapshot).id,
      purpose: 'drain',
      memoryMiB: vm.memoryMiB,
      estimatedSeconds: Math.round(seconds * 10) / 10,
      dependsOn: [],
    });
    memoryToMoveMiB += vm.memoryMiB;
    estimatedSeconds += seconds;
  }
  if (unplaced.length === 0) return { ok: true, actions, memoryToMoveMiB, estimatedSeconds };
  for (const v of moved.reverse()) ws.move(v, h);
  return { ok: false, unplaced };
}

function roomFor(ws: Workspace, input: PlanInput, h: number, vms: readonly number[]): DrainRoom {
  let needCpu = 0;
  let needMemoryMiB = 0;
  for (const v of vms) {
    needCpu += ws.demandCpu[v] as number;
    needMemoryMiB += ws.demandMemory[v] as number;
  }
  let freeCpu = 0;
  let freeMemoryMiB = 0;
  let activeHosts = 0;
  ws.hosts.forEach((_, i) => {
    if (!ws.destinations.has(i)) return;
    activeHosts++;
    freeCpu += Math.max(0, ws.roomCpu(i));
    freeMemoryMiB += Math.max(0, ws.roomMemory(i));
  });
  const inFlight = new Set(input.inFlight.flatMap((a) => (a.type === 'migrate' ? [a.from, a.to] : [a.host])));
  const wakeable = wakeCandidates(ws, input, { isOff: (i) => i !== h && (ws.hosts[i] as HostSnapshot).power === 'off', inFlight }).map((i) => ({
    host: (ws.hosts[i] as HostSnapshot).id,
    cpu: Math.max(0, ws.roomCpu(i)),
    memoryMiB: Math.max(0, ws.roomMemory(i)),
  }));
  return { needCpu, needMemoryMiB, freeCpu, freeMemoryMiB, activeHosts, wakeable };
}

/**
 * Why the VMs do not fit, in figures. VMs are named only when the sums would allow it (one too large
 * for any single host, or kept apart by anti-affinity): when the hosts are simply full, every VM
 * "fitting nowhere" says nothing.
 */
function noRoomReasons(ws: Workspace, hostId: HostId, room: DrainRoom, unplaced: readonly number[]): string[] {
  const reasons = [needVsFree(hostId, room)];
  const wakeableCpu = room.wakeable.reduce((sum, w) => sum + w.cpu, 0);
  const wakeableMemory = room.wakeable.reduce((sum, w) => sum + w.memoryMiB, 0);
  const enoughInSum = room.needCpu <= room.freeCpu + wakeableCpu && room.needMemoryMiB <= room.freeMemoryMiB + wakeableMemory;
  if (room.wakeable.length === 0) reasons.push('no host consolidator powered off can be woken to make room');
  else reasons.push(`waking every host consolidator powered off (${room.wakeable.map(describeWake).join(', ')}) would still not make room`);
  if (enoughInSum) {
    for (const v of unplaced) {
      const vm = ws.vms[v] as VmSnapshot;
      reasons.push(`VM ${vm.id} (${(ws.demandCpu[v] as number).toFixed(2)} cpu, ${Math.round(ws.demandMemory[v] as number)} MiB) fits on no other host under the policy's targets`);
    }
  }
  return reasons;
}

function needVsFree(hostId: HostId, room: DrainRoom): string {
  return (
    `the VMs on ${hostId} need ${room.needCpu.toFixed(2)} CPU and ${Math.round(room.needMemoryMiB)} MiB; ` +
    `the ${room.activeHosts} host(s) on that may receive them have ${room.freeCpu.toFixed(2)} CPU and ${Math.round(room.freeMemoryMiB)} MiB free under the targets`
  );
}

export function describeWake(w: DrainWake): string {
  return `${w.host} (+${w.cpu.toFixed(2)} CPU, +${Math.round(w.memoryMiB)} MiB)`;
}
