import type { HostId, VmId } from './ids.js';
import { EPSILON, RESOURCES, type ResourceVector } from './resources.js';
import type { ClusterSnapshot, HostSnapshot, VmSnapshot } from './snapshot.js';

/** The action shapes simulate understands (the planner's actions satisfy them). */
export type SimAction =
  | { readonly id: string; readonly type: 'migrate'; readonly vm: VmId; readonly from: HostId; readonly to: HostId; readonly dependsOn: readonly string[] }
  | { readonly id: string; readonly type: 'power-off' | 'power-on'; readonly host: HostId; readonly dependsOn: readonly string[] };

export const INVARIANTS = [
  'action-order',
  'unique-ids',
  'vm-location',
  'vm-moves-once',
  'source-usable',
  'source-and-destination',
  'destination-usable',
  'woken-before-use',
  'pinned-moved',
  'protected-moved',
  'power-off-protected',
  'anti-affinity',
  'destination-over-target',
  'power-off-not-empty',
  'power-off-before-migrations',
  'power-off-unmanaged',
  'power-on-not-ours',
  'min-hosts-on',
  'migration-cap',
  'power-budget',
  'vm-exactly-once',
] as const;
export type Invariant = (typeof INVARIANTS)[number];

export interface Violation {
  readonly invariant: Invariant;
  readonly message: string;
  readonly actionId?: string;
}

export interface SimulationLimits {
  /** Share of capacity no destination may exceed, per resource. */
  readonly targetRatio: ResourceVector;
  readonly minHostsOn: number;
  readonly maxMigrations: number;
  readonly maxPowerActionsPerHostPerDay: number;
  readonly powerActionsLast24h: Readonly<Record<HostId, number>>;
  readonly poweredOffByUs: readonly HostId[];
  /** Actions still running from before this plan: their VMs are moving, their hosts are busy. */
  readonly inFlight?: readonly SimInFlight[];
  /** Hosts that failed to power on: never powered off or on automatically. */
  readonly needsAttention?: readonly HostId[];
}

export type SimInFlight =
  | { readonly type: 'migrate'; readonly vm: VmId; readonly from: HostId; readonly to: HostId }
  | { readonly type: 'power-off' | 'power-on'; readonly host: HostId };

/** How much a VM needs and a host uses, as the planner estimated them (so both agree on "fits"). */
export interface DemandEstimates {
  vmDemand(vm: VmSnapshot): ResourceVector;
  /** Host-level use from observation, or undefined when only the VMs' sum is known. */
  hostUse(host: HostSnapshot): ResourceVector | undefined;
  /**
   * What these VMs need together on one host, when that is not the sum of their vmDemand (the
   * planner's peak-of-sum predictors); absent: the sum.
   */
  vmsDemand?(vms: readonly VmSnapshot[]): ResourceVector;
}

export interface SimulationOutcome {
  /**
   * The cluster after the plan. Hosts whose VMs changed lose their host-level samples (they described
   * the old set); their use is then the sum of their VMs'.
   */
  readonly postState: ClusterSnapshot;
  readonly violations: readonly Violation[];
}

/**
 * Applies a plan to a snapshot, in the plan's order, and checks every safety invariant along the
 * way and on the result. The snapshot is not modified. A plan with any violation must not run.
 */
export function simulatePlan(snapshot: ClusterSnapshot, actions: readonly SimAction[], estimates: DemandEstimates, limits: SimulationLimits): SimulationOutcome {
  const violations: Violation[] = [];
  const fail = (invariant: Invariant, message: string, actionId?: string) =>
    violations.push(actionId === undefined ? { invariant, message } : { invariant, message, actionId });

  const hosts = new Map(snapshot.hosts.map((h) => [h.id, h]));
  const power = new Map(snapshot.hosts.map((h) => [h.id, h.power]));
  const vmById = new Map(snapshot.vms.map((vm) => [vm.id, vm]));
  const location = new Map(snapshot.vms.map((vm) => [vm.id, vm.host]));
  const ours = new Set(limits.poweredOffByUs);
  const seen = new Set<string>();
  const moved = new Set<VmId>();
  const sources = new Set<HostId>();
  const destinations = new Set<HostId>();
  const wokenBy = new Map<HostId, string>();
  const migrationsOff = new Map<HostId, string[]>();
  const powerActions = new Map<HostId, number>();
  let migrations = 0;
  const arriving = new Map<HostId, VmId[]>();
  const busy = new Set<HostId>(limits.needsAttention ?? []);
  const poweringInFlight = new Set<HostId>();
  for (const a of limits.inFlight ?? []) {
    if (a.type === 'migrate') {
      moved.add(a.vm);
      arriving.set(a.to, [...(arriving.get(a.to) ?? []), a.vm]);
    } else {
      busy.add(a.host);
      poweringInFlight.add(a.host);
    }
  }
  const groupMembers = new Map<string, VmId[]>();
  for (const vm of snapshot.vms) for (const g of vm.antiAffinityGroups) groupMembers.set(g, [...(groupMembers.get(g) ?? []), vm.id]);

  for (const action of actions) {
    if (seen.has(action.id)) fail('unique-ids', `action id ${action.id} is used twice`, action.id);
    for (const dep of action.dependsOn) {
      if (!seen.has(dep)) fail('action-order', `${action.id} depends on ${dep}, which does not come before it`, action.id);
    }
    seen.add(action.id);

    if (action.type === 'migrate') {
      migrations++;
      const vm = vmById.get(action.vm);
      const at = location.get(action.vm);
      if (!vm || at === undefined) {
        fail('vm-location', `VM ${action.vm} does not exist`, action.id);
        continue;
      }
      if (at !== action.from) fail('vm-location', `VM ${action.vm} is on ${at}, not on ${action.from}, when ${action.id} runs`, action.id);
      if (moved.has(action.vm)) fail('vm-moves-once', `VM ${action.vm} moves more than once`, action.id);
      const source = hosts.get(action.from);
      if (at === action.from && source && (power.get(action.from) !== 'on' || !source.reachable || source.excluded || source.maintenance)) {
        const why = [power.get(action.from) !== 'on' ? power.get(action.from) : '', source.reachable ? '' : 'unreachable', source.excluded ? 'excluded' : '', source.maintenance ? 'maintenance' : ''];
        fail('source-usable', `${action.from} may not send VMs (${why.filter((w) => w !== '').join(', ')})`, action.id);
      }
      if (vm.pinned) fail('pinned-moved', `pinned VM ${action.vm} is moved`, action.id);
      if (vm.protected === true) fail('protected-moved', `protected VM ${action.vm} is moved`, action.id);
      const dest = hosts.get(action.to);
      if (!dest || power.get(action.to) !== 'on' || (!dest.reachable && !wokenBy.has(action.to)) || dest.excluded || dest.maintenance || poweringInFlight.has(action.to) || action.to === action.from) {
        fail('destination-usable', `${action.to} cannot receive VMs (${dest ? `${power.get(action.to)}${dest.excluded ? ', excluded' : ''}${dest.maintenance ? ', maintenance' : ''}` : 'unknown host'})`, action.id);
      }
      const woken = wokenBy.get(action.to);
      if (woken !== undefined && !action.dependsOn.includes(woken)) fail('woken-before-use', `${action.id} moves onto ${action.to} without waiting for its power-on ${woken}`, action.id);
      for (const group of vm.antiAffinityGroups) {
        for (const other of groupMembers.get(group) ?? []) {
          if (other !== vm.id && location.get(other) === action.to) fail('anti-affinity', `VM ${vm.id} joins ${other} (group ${group}) on ${action.to}`, action.id);
        }
      }
      location.set(action.vm, action.to);
      moved.add(action.vm);
      sources.add(action.from);
      destinations.add(action.to);
      migrationsOff.set(action.from, [...(migrationsOff.get(action.from) ?? []), action.id]);
    } else if (action.type === 'power-off') {
      const host = hosts.get(action.host);
      // An unreachable host's VMs are unknown: it is not known to be empty (woken in this plan: it has none).
      const unanswered = host !== undefined && !host.reachable && !wokenBy.has(action.host);
      if (!host || power.get(action.host) !== 'on' || unanswered || host.excluded || host.maintenance || busy.has(action.host)) {
        fail('power-off-unmanaged', `${action.host} may not be powered off (${host ? power.get(action.host) : 'unknown host'}${unanswered ? ', unreachable' : ''}${host?.excluded ? ', excluded' : ''}${host?.maintenance ? ', maintenance' : ''}${busy.has(action.host) ? ', needs attention or a power action in flight' : ''})`, action.id);
      }
      const guarded = snapshot.vms.filter((vm) => vm.protected === true && vm.host === action.host).map((vm) => vm.id);
      if (guarded.length > 0) fail('power-off-protected', `${action.host} ran protected ${guarded.sort().join(', ')} and is powered off`, action.id);
      // A VM on its way here by a migration still in flight is a resident too.
      const residents = [...new Set([...location].filter(([, h]) => h === action.host).map(([vm]) => vm).concat(arriving.get(action.host) ?? []))];
      if (residents.length > 0) fail('power-off-not-empty', `${action.host} still holds ${residents.sort().join(', ')} when it is powered off`, action.id);
      for (const m of migrationsOff.get(action.host) ?? []) {
        if (!action.dependsOn.includes(m)) fail('power-off-before-migrations', `power-off of ${action.host} does not wait for ${m}`, action.id);
      }
      power.set(action.host, 'off');
      powerActions.set(action.host, (powerActions.get(action.host) ?? 0) + 1);
    } else {
      const host = hosts.get(action.host);
      if (!host || power.get(action.host) !== 'off' || !ours.has(action.host) || host.excluded || host.maintenance || busy.has(action.host)) {
        fail('power-on-not-ours', `${action.host} may not be powered on automatically`, action.id);
      }
      power.set(action.host, 'on');
      wokenBy.set(action.host, action.id);
      powerActions.set(action.host, (powerActions.get(action.host) ?? 0) + 1);
    }
  }

  for (const h of sources) if (destinations.has(h)) fail('source-and-destination', `${h} both sends and receives VMs`);
  if (migrations > limits.maxMigrations) fail('migration-cap', `${migrations} migrations, above the cap of ${limits.maxMigrations}`);
  for (const [h, count] of powerActions) {
    const total = (limits.powerActionsLast24h[h] ?? 0) + count;
    if (total > limits.maxPowerActionsPerHostPerDay) fail('power-budget', `${h} would see ${total} power actions in 24 h (limit ${limits.maxPowerActionsPerHostPerDay})`);
  }
  const onBefore = snapshot.hosts.filter((h) => h.power === 'on').length;
  const onAfter = [...power.values()].filter((p) => p === 'on').length;
  if (onAfter < limits.minHostsOn && onAfter < onBefore) fail('min-hosts-on', `${onAfter} hosts on after the plan, minHostsOn is ${limits.minHostsOn}`);

  const postVms = snapshot.vms.map((vm) => (location.get(vm.id) === vm.host ? vm : { ...vm, host: location.get(vm.id) as HostId }));
  const counts = new Map<VmId, number>();
  for (const vm of postVms) counts.set(vm.id, (counts.get(vm.id) ?? 0) + 1);
  for (const [vm, n] of counts) if (n !== 1) fail('vm-exactly-once', `VM ${vm} appears ${n} times`);
  for (const vm of postVms) {
    if (power.get(vm.host) !== 'on' && snapshot.vms.find((v) => v.id === vm.id)?.host !== vm.host) {
      fail('vm-exactly-once', `VM ${vm.id} ends on ${vm.host}, which is not on`);
    }
  }

  const changed = new Set([...sources, ...destinations]);
  for (const h of destinations) {
    const host = hosts.get(h);
    if (!host) continue;
    const load = loadAfter(host, snapshot.vms, postVms, estimates);
    for (const r of RESOURCES) {
      if (load[r] > host.capacity[r] * limits.targetRatio[r] + EPSILON) {
        fail('destination-over-target', `${h} ends at ${((load[r] / host.capacity[r]) * 100).toFixed(1)}% ${r}, above the target of ${(limits.targetRatio[r] * 100).toFixed(0)}%`);
      }
    }
  }

  const postHosts = snapshot.hosts.map((h) => {
    const p = power.get(h.id) ?? h.power;
    if (p === h.power && !changed.has(h.id)) return h;
    return { ...h, power: p, reachable: p === 'on' ? true : h.reachable, samples: changed.has(h.id) || p !== h.power ? [] : h.samples };
  });
  return { postState: { takenAtMs: snapshot.takenAtMs, hosts: postHosts, vms: postVms }, violations };
}

/** A host's load after the plan: what it used besides its VMs, plus the VMs it ends with. */
function loadAfter(host: HostSnapshot, vmsBefore: readonly VmSnapshot[], vmsAfter: readonly VmSnapshot[], estimates: DemandEstimates): ResourceVector {
  const sumOn = (vms: readonly VmSnapshot[]) => {
    if (estimates.vmsDemand) return estimates.vmsDemand(vms.filter((vm) => vm.host === host.id));
    const total = { cpu: 0, memory: 0 };
    for (const vm of vms) {
      if (vm.host !== host.id) continue;
      const d = estimates.vmDemand(vm);
      total.cpu += d.cpu;
      total.memory += d.memory;
    }
    return total;
  };
  const before = sumOn(vmsBefore);
  const after = sumOn(vmsAfter);
  const observed = estimates.hostUse(host);
  const overhead = observed ? { cpu: Math.max(0, observed.cpu - before.cpu), memory: Math.max(0, observed.memory - before.memory) } : { cpu: 0, memory: 0 };
  return { cpu: after.cpu + overhead.cpu, memory: after.memory + overhead.memory };
}
