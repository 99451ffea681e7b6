import { cronMatchesMinute, parseCron } from '../config/cron.js';
import type { HostId, VmId } from '../model/ids.js';
import { RESOURCES, type ResourceVector } from '../model/resources.js';
import type { HostSnapshot, VmSnapshot } from '../model/snapshot.js';
import { CycleDemands, predictedHostUse } from './demand.js';
import { estimateMigrationSeconds, hostWatts, migrationLinkMiBps, migrationCostJoules } from './energy.js';
import type {
  Action,
  HostCooldown,
  HostVerdict,
  KeepReason,
  MigrateAction,
  MigrationPurpose,
  PlanInput,
  PlannerMemory,
  PlanResult,
  PowerOnAction,
} from './types.js';
import { canWake, wakeCandidates } from './wake-candidates.js';
import { compareIds, Workspace } from './workspace.js';

/**
 * Plans one cycle: relieve overloaded hosts, then empty underloaded ones and power them off, within
 * every limit of the policy. Pure and deterministic: no I/O, no clock (time is `input.nowMs`), the
 * same plan for the same input whatever the order of its lists. Every host gets a verdict.
 * `demands` is the cycle's memo of window statistics (CycleDemands.of(input)), to share with
 * checkPlan; without one (or with one made for another time or policy) it makes its own.
 */
export function planCycle(input: PlanInput, demands?: CycleDemands): PlanResult {
  return new CyclePlanner(input, demands !== undefined && demands.isFor(input) ? demands : CycleDemands.of(input)).plan();
}

type HostState = 'active' | 'off' | 'unknown';

const DAY_MS = 24 * 60 * 60 * 1000;

interface DrainCandidate {
  readonly h: number;
  readonly vms: readonly number[];
  readonly memoryMiB: number;
  /** Estimated watts saved per GiB to copy (drainOrder energy-per-gib); Infinity for an empty host. */
  readonly wattsPerGiB: number;
}

class CyclePlanner {
  private readonly ws: Workspace;
  private readonly policy: PlanInput['policy'];
  private readonly now: number;
  private readonly actions: Action[] = [];
  private readonly verdicts = new Map<number, HostVerdict>();
  private readonly state: HostState[];
  /** Hosts that are neither sources nor destinations this cycle (in flight, failed, maintenance...). */
  private readonly frozen: boolean[];
  private readonly managed: boolean[];
  private readonly overloaded: boolean[];
  private readonly underloaded: boolean[];
  private readonly source: boolean[];
  private readonly receives: boolean[];
  private readonly movedVms = new Set<number>();
  private readonly vmsInFlight = new Set<VmId>();
  private readonly hostsInFlight = new Set<HostId>();
  private readonly poweredOffByUs: ReadonlySet<HostId>;
  private readonly needsAttention: ReadonlySet<HostId>;
  private readonly underloadedSince = new Map<HostId, number>();
  private readonly hostCooldowns = new Map<HostId, HostCooldown>();
  private readonly vmCooldowns = new Map<VmId, number>();
  /** Per workspace VM: cooling down (vmCooldowns, kept in step) and migrating now; arrays, not id lookups, on the hot paths. */
  private readonly coolingVm: Uint8Array;
  private readonly flyingVm: Uint8Array;
  private migrationBudget: number;
  private budgetLimited = false;
  /** An overloaded host still above target has VMs that found no room (nor a host to wake): demand is outgrowing the hosts on. */
  private roomShort = false;
  private powerOnIds: (string | undefined)[];
  private nextId = 1;
  private activeCount: number;

  constructor(
    private readonly input: PlanInput,
    demands: CycleDemands,
  ) {
    this.policy = input.policy;
    this.now = input.nowMs;
    this.ws = new Workspace(input.snapshot.hosts, input.snapshot.vms, input.policy, demands);
    const n = this.ws.hosts.length;
    this.state = this.ws.hosts.map((h) => (h.power === 'off' ? 'off' : h.power === 'on' && h.reachable ? 'active' : 'unknown'));
    this.activeCount = this.state.filter((s) => s === 'active').length;
    this.frozen = new Array<boolean>(n).fill(false);
    this.managed = this.ws.hosts.map((h) => !h.excluded && !h.maintenance);
    this.overloaded = new Array<boolean>(n).fill(false);
    this.underloaded = new Array<boolean>(n).fill(false);
    this.source = new Array<boolean>(n).fill(false);
    this.receives = new Array<boolean>(n).fill(false);
    this.powerOnIds = new Array<string | undefined>(n).fill(undefined);
    this.poweredOffByUs = new Set(input.poweredOffByUs);
    this.needsAttention = new Set(input.needsAttention);
    let migrationsInFlight = 0;
    for (const a of input.inFlight) {
      if (a.type === 'migrate') {
        migrationsInFlight++;
        this.vmsInFlight.add(a.vm);
        this.hostsInFlight.add(a.from);
        this.hostsInFlight.add(a.to);
      } else {
        this.hostsInFlight.add(a.host);
      }
    }
    this.migrationBudget = Math.max(0, this.policy.safety.maxMigrationsPerCycle - migrationsInFlight);
    for (const [vm, until] of Object.entries(input.memory.vmCooldownUntilMs)) if (until > this.now) this.vmCooldowns.set(vm, until);
    this.coolingVm = new Uint8Array(this.ws.vms.length);
    this.flyingVm = new Uint8Array(this.ws.vms.length);
    this.ws.vms.forEach((vm, v) => {
      if (this.vmCooldowns.has(vm.id)) this.coolingVm[v] = 1;
      if (this.vmsInFlight.has(vm.id)) this.flyingVm[v] = 1;
    });
    for (const [host, cooldown] of Object.entries(input.memory.hostCooldowns)) if (cooldown.untilMs > this.now) this.hostCooldowns.set(host, cooldown);
  }

  plan(): PlanResult {
    const activeBefore = this.countActiveAfterPlan();
    this.classify();
    const quiet = this.inAnyWindow(this.policy.windows.quiet);
    if (quiet) {
      this.ws.hosts.forEach((_, h) => {
        if (this.state[h] === 'active' && this.managed[h]) this.keep(h, 'QuietWindow', 'change freeze: a quiet window is in force');
      });
    } else {
      this.fillDestinationIndex();
      this.relieveOverloads();
      this.wakeForMinHostsOn();
      this.consolidate();
    }
    // Last, so that a host woken only to prove it boots never counts as room or as a host on for the
    // decisions above: if its boot fails, nothing else this cycle relied on it.
    this.proveBoots(quiet);
    this.ws.hosts.forEach((_, h) => this.defaultVerdict(h));
    return this.result(activeBefore);
  }

  // ---- classification ------------------------------------------------------------------------

  private classify(): void {
    const { thresholds, consolidation } = this.policy;
    this.ws.hosts.forEach((host, h) => {
      if (this.state[h] !== 'active') return;
      if (!this.managed[h] || this.hostsInFlight.has(host.id) || this.hostCooldowns.get(host.id)?.reason === 'failed') this.frozen[h] = true;
      // A VM with no usage sample yet (CPU use is a delta: the first observation after a start has
      // none) would count as all its vCPUs busy: on a host with overcommitted vCPUs that reads as an
      // overload that is not there. Such a host is left alone until its VMs have been measured.
      const unmeasured = [...(this.ws.vmsOnHost[h] as Set<number>)].find((v) => (this.ws.vms[v] as VmSnapshot).samples.length === 0);
      if (unmeasured !== undefined) {
        this.frozen[h] = true;
        this.keep(h, 'WarmingUp', `no usage sample yet for VM ${(this.ws.vms[unmeasured] as VmSnapshot).id}: left alone until it has been measured`);
        return;
      }
      const use = this.ws.observedUse[h] as ResourceVector;
      let over = false;
      let under = true;
      for (const r of RESOURCES) {
        const ratio = host.capacity[r] > 0 ? use[r] / host.capacity[r] : 0;
        if (ratio > thresholds[r].overloadRatio) over = true;
        if (ratio >= thresholds[r].underloadRatio) under = false;
      }
      if (!over && consolidation.overloadPredictionSeconds > 0) {
        const predicted = predictedHostUse(host, this.policy, this.now, consolidation.overloadPredictionSeconds);
        if (predicted && RESOURCES.some((r) => host.capacity[r] > 0 && predicted[r] / host.capacity[r] > thresholds[r].overloadRatio)) {
          over = true;
          // Relieve it for the load it is heading to, before it gets there.
          this.ws.raiseLoad(h, predicted);
        }
      }
      this.overloaded[h] = over;
      this.underloaded[h] = under;
      if (under && this.managed[h]) this.underloadedSince.set(host.id, this.input.memory.underloadedSinceMs[host.id] ?? this.now);
    });
  }

  private fillDestinationIndex(): void {
    this.ws.hosts.forEach((_, h) => {
      if (this.isDestinationEligible(h)) this.ws.destinations.add(h);
    });
  }

  private isDestinationEligible(h: number): boolean {
    return this.state[h] === 'active' && !this.frozen[h] && !this.overloaded[h] && !this.source[h];
  }

  // ---- overload relief -----------------------------------------------------------------------

  private relieveOverloads(): void {
    const order = this.ws.hosts
      .map((_, h) => h)
      .filter((h) => this.overloaded[h])
      .sort((a, b) => this.excess(b) - this.excess(a) || a - b);
    for (const h of order) {
      if (this.frozen[h]) {
        this.keep(h, this.frozenReason(h), `overloaded (${this.describeUse(h)}) but ${this.frozenText(h)}`);
        continue;
      }
      const candidates = [...(this.ws.vmsOnHost[h] as Set<number>)]
        .filter((v) => this.isMovable(v) && this.helpsRelieve(v, h))
        .sort((a, b) => this.migrationCost(a) - this.migrationCost(b) || this.size(b) - this.size(a) || a - b);
      const before = this.describeUse(h);
      const pending: number[] = [];
      let moved = 0;
      for (const v of candidates) {
        if (this.underTarget(h)) break;
        if (this.migrationBudget <= 0) {
          this.budgetLimited = true;
          break;
        }
        const to = this.ws.bestDestination(v);
        if (to === undefined) {
          pending.push(v);
          continue;
        }
        this.planMigration(v, to, 'relieve-overload', []);
        moved++;
      }
      moved += this.relieveOntoWokenHosts(h, pending);
      if (pending.length > 0 && !this.underTarget(h)) this.roomShort = true;
      this.source[h] = moved > 0;
      if (moved > 0) {
        const rest = this.underTarget(h) ? '' : ', still above target';
        this.setVerdict(h, { outcome: 'relieving', detail: `overloaded (${before}): ${moved} VM(s) moved off${rest}` });
      } else {
        const [reason, why] = this.whyNotRelieved(h, candidates.length);
        this.keep(h, reason, `overloaded (${before}): ${why}`);
      }
    }
  }

  private whyNotRelieved(h: number, movable: number): [KeepReason, string] {
    if (movable > 0) {
      return this.migrationBudget <= 0 ? ['BudgetExhausted', 'migration budget for this cycle used'] : ['OverloadNotRelieved', 'no host has room, and none can be woken'];
    }
    const vms = [...(this.ws.vmsOnHost[h] as Set<number>)].map((v) => this.ws.vms[v] as VmSnapshot);
    if (vms.some((vm) => this.vmsInFlight.has(vm.id))) return ['ActionInFlight', 'a VM on it is migrating'];
    if (vms.some((vm) => this.vmCooldowns.has(vm.id))) return ['VmCooldown', 'its movable VMs moved recently'];
    if (vms.some((vm) => vm.protected === true)) return ['ProtectedVm', 'its VMs are pinned or protected'];
    if (vms.some((vm) => vm.pinned)) return ['PinnedVm', 'its VMs are pinned'];
    return ['OverloadNotRelieved', 'no VM on it uses the overloaded resource'];
  }

  /** Wakes hosts consolidator powered off, most efficient first, for VMs that found no room. */
  private relieveOntoWokenHosts(h: number, pending: number[]): number {
    let moved = 0;
    while (pending.length > 0 && !this.underTarget(h) && this.migrationBudget > 0) {
      const woken = this.wakeHost('Overload');
      if (woken === undefined) break;
      const still: number[] = [];
      for (const v of pending) {
        if (this.underTarget(h) || this.migrationBudget <= 0) {
          still.push(v);
          continue;
        }
        if (this.ws.fits(v, woken)) {
          this.planMigration(v, woken, 'relieve-overload', []);
          moved++;
        } else {
          still.push(v);
        }
      }
      if (still.length === pending.length) break;
      pending.splice(0, pending.length, ...still);
    }
    return moved;
  }

  private wakeForMinHostsOn(): void {
    while (this.countActiveAfterPlan() < this.policy.safety.minHostsOn) {
      if (this.wakeHost('MinHostsOn') === undefined) break;
    }
  }

  /** Plans a power-on of the most efficient host that consolidator powered off; returns it. */
  private wakeHost(reason: PowerOnAction['reason']): number | undefined {
    const candidates = wakeCandidates(this.ws, this.input, { isOff: (x) => this.state[x] === 'off', inFlight: this.hostsInFlight });
    const h = candidates[0];
    if (h === undefined) return undefined;
    const host = this.ws.hosts[h] as HostSnapshot;
    const id = this.newId('power-on', host.id);
    this.actions.push({ id, type: 'power-on', host: host.id, reason, expectedReadyAtMs: this.now + host.bootSeconds * 1000, dependsOn: [] });
    this.powerOnIds[h] = id;
    this.setState(h, 'active');
    this.hostCooldowns.set(host.id, { untilMs: this.now + this.policy.safety.hostCooldownSeconds * 1000, reason: 'woken' });
    this.setVerdict(h, { outcome: 'powering-on', detail: reason === 'Overload' ? 'woken: overloaded hosts need room' : `woken: fewer than ${this.policy.safety.minHostsOn} hosts on` });
    this.ws.destinations.add(h);
    return h;
  }

  // ---- proof of boot -------------------------------------------------------------------------

  /**
   * Wakes hosts consolidator has kept off for power.proofOfBoot.afterDays (longest off first, within
   * the per-cycle and per-day limits, only in an active window and never in a quiet one), so a host
   * that no longer boots is found before demand needs it. A woken host is left on: it is not emptied
   * again before max(minOnSeconds, hostCooldownSeconds). Only hosts canWake allows: ones consolidator
   * powered off itself, managed, not marked for attention, within their power budget.
   */
  private proveBoots(quiet: boolean): void {
    const config = this.policy.power?.proofOfBoot;
    const input = this.input.proofOfBoot;
    if (!config?.enabled || !input) return;
    const afterMs = config.afterDays * DAY_MS;
    const ctx = { isOff: (x: number) => this.state[x] === 'off', inFlight: this.hostsInFlight };
    const due = this.ws.hosts
      .map((host, h) => ({ h, offSinceMs: input.poweredOffAtMs[host.id] }))
      .filter((d): d is { h: number; offSinceMs: number } => d.offSinceMs !== undefined && this.now - d.offSinceMs >= afterMs && canWake(this.ws, this.input, d.h, ctx))
      .sort((a, b) => a.offSinceMs - b.offSinceMs || a.h - b.h);
    if (due.length === 0) return;
    const offFor = (d: { offSinceMs: number }) => `off for ${fmtDuration(this.now - d.offSinceMs)} (due after ${fmtDuration(afterMs)})`;
    const waiting = (why: string) => {
      for (const d of due) this.keep(d.h, 'PoweredOff', `powered off by consolidator, ${offFor(d)}: a proof of boot is due, ${why}`);
    };
    if (quiet) return waiting('not in a quiet window');
    const windows = config.windows.length > 0 ? config.windows : this.policy.windows.active;
    if (windows.length > 0 && !this.inAnyWindow(windows)) return waiting(`outside every ${config.windows.length > 0 ? 'power.proofOfBoot.windows' : 'windows.active'} window`);
    const room = Math.min(config.maxHostsPerCycle, config.maxHostsPerDay - input.startedLast24h);
    if (room <= 0) return waiting(`${input.startedLast24h} already started in 24 h (maxHostsPerDay ${config.maxHostsPerDay})`);
    const minOnMs = Math.max(config.minOnSeconds, this.policy.safety.hostCooldownSeconds) * 1000;
    for (const d of due.slice(0, room)) {
      const host = this.ws.hosts[d.h] as HostSnapshot;
      this.actions.push({ id: this.newId('power-on', host.id), type: 'power-on', host: host.id, reason: 'ProofOfBoot', expectedReadyAtMs: this.now + host.bootSeconds * 1000, dependsOn: [] });
      this.setState(d.h, 'active');
      this.hostCooldowns.set(host.id, { untilMs: this.now + minOnMs, reason: 'woken' });
      this.setVerdict(d.h, { outcome: 'powering-on', detail: `proof of boot: ${offFor(d)}; left on at least ${fmtDuration(minOnMs)}` });
    }
    waiting(`waiting for its turn (maxHostsPerCycle ${config.maxHostsPerCycle}, maxHostsPerDay ${config.maxHostsPerDay}; longest off first)`);
  }

  // ---- consolidation -------------------------------------------------------------------------

  private consolidate(): void {
    const { consolidation } = this.policy;
    const candidates = this.drainCandidates();
    if (candidates.length === 0) return;
    const gate = this.consolidationGate();
    if (gate) {
      for (const c of candidates) this.keep(c.h, gate.reason, gate.detail);
      return;
    }
    for (const c of candidates) {
      const host = this.ws.hosts[c.h] as HostSnapshot;
      if (this.receives[c.h]) {
        this.keep(c.h, 'ReceivesVms', `underloaded (${this.describeUse(c.h)}) but receives VMs this cycle`);
        continue;
      }
      const blocked = this.drainBlocker(c);
      if (blocked) {
        this.keep(c.h, blocked.reason, blocked.detail);
        continue;
      }
      this.tryDrain(c, host, consolidation.worthItHorizonSeconds);
    }
  }

  /** Underloaded long enough, in the policy's drainOrder: most watts saved per GiB copied, or fewest VMs; then least memory to move, least loaded. */
  private drainCandidates(): DrainCandidate[] {
    const waitMs = this.policy.consolidation.underloadedForSeconds * 1000;
    const byEnergy = this.policy.consolidation.drainOrder === 'energy-per-gib';
    const marginalWattsPerCpu = byEnergy ? this.cheapestMarginalWattsPerCpu() : 0;
    const out: DrainCandidate[] = [];
    this.ws.hosts.forEach((host, h) => {
      if (this.state[h] !== 'active' || !this.underloaded[h] || !this.managed[h] || this.source[h] || this.verdicts.has(h)) return;
      const wokenFor = this.input.wokenForMaintenance?.[host.id];
      if (wokenFor !== undefined) {
        this.keep(h, 'WokenForMaintenance', `underloaded (${this.describeUse(h)}) but woken to make room for the maintenance of ${wokenFor}: kept on until ${wokenFor} is undrained`);
        return;
      }
      const since = this.underloadedSince.get(host.id) ?? this.now;
      if (this.now - since < waitMs) {
        const minutes = Math.round((this.now - since) / 60_000);
        this.keep(h, 'NotUnderloadedLongEnough', `underloaded (${this.describeUse(h)}) for ${minutes} min of the ${Math.round(waitMs / 60_000)} min required`);
        return;
      }
      const vms = [...(this.ws.vmsOnHost[h] as Set<number>)].sort((a, b) => a - b);
      const memoryMiB = vms.reduce((sum, v) => sum + (this.ws.vms[v] as VmSnapshot).memoryMiB, 0);
      out.push({ h, vms, memoryMiB, wattsPerGiB: byEnergy ? this.drainWattsPerGiB(h, vms, marginalWattsPerCpu) : 0 });
    });
    return out.sort(
      (a, b) =>
        (byEnergy ? b.wattsPerGiB - a.wattsPerGiB || 0 : 0) ||
        a.vms.length - b.vms.length ||
        a.memoryMiB - b.memoryMiB ||
        this.wattsPerCpu(b.h) - this.wattsPerCpu(a.h) ||
        (this.ws.loadCpu[a.h] as number) - (this.ws.loadCpu[b.h] as number) ||
        a.h - b.h,
    );
  }

  /**
   * What emptying h saves per GiB its migrations copy: its draw now, less what its load costs on
   * the most efficient hosts, over the memory to move (inflated by the dirty rate where known: the
   * copy a migration really makes). Cheap, wasteful hosts first; an empty host is free.
   */
  private drainWattsPerGiB(h: number, vms: readonly number[], marginalWattsPerCpu: number): number {
    if (vms.length === 0) return Number.POSITIVE_INFINITY;
    const load = this.ws.loadCpu[h] as number;
    const savingWatts = hostWatts(this.ws.hosts[h] as HostSnapshot, load) - load * marginalWattsPerCpu;
    const link = migrationLinkMiBps(this.policy);
    let copiedMiB = 0;
    for (const v of vms) copiedMiB += estimateMigrationSeconds(this.ws.vms[v] as VmSnapshot, this.policy) * link;
    return savingWatts / Math.max(copiedMiB / 1024, 1 / 1024);
  }

  /** Watts per CPU a load adds on the most efficient active host (from idle to the CPU target). */
  private cheapestMarginalWattsPerCpu(): number {
    const target = this.policy.thresholds.cpu.targetRatio;
    let best = Number.POSITIVE_INFINITY;
    this.ws.hosts.forEach((host, h) => {
      if (this.state[h] !== 'active' || host.capacity.cpu <= 0) return;
      const perCpu = (hostWatts(host, host.capacity.cpu * target) - hostWatts(host, 0)) / (host.capacity.cpu * target);
      if (perCpu < best) best = perCpu;
    });
    return Number.isFinite(best) ? best : 0;
  }

  /** A reason no host may be emptied this cycle, if there is one. */
  private consolidationGate(): { reason: KeepReason; detail: string } | undefined {
    if (!this.policy.consolidation.enabled) return { reason: 'ConsolidationDisabled', detail: 'consolidation.enabled is false' };
    if (this.policy.windows.active.length > 0 && !this.inAnyWindow(this.policy.windows.active)) {
      return { reason: 'OutsideActiveWindow', detail: 'outside every active window' };
    }
    // An overloaded host whose VMs cannot move (cooling down, pinned, migrating) says nothing about room; one whose VMs found none does.
    if (this.actions.some((a) => a.type === 'power-on') || this.roomShort) {
      return { reason: 'NoRoomForVms', detail: 'demand is rising: overloaded hosts still need room, nothing is powered off' };
    }
    return undefined;
  }

  private drainBlocker(c: DrainCandidate): { reason: KeepReason; detail: string } | undefined {
    const host = this.ws.hosts[c.h] as HostSnapshot;
    const use = this.describeUse(c.h);
    if (this.frozen[c.h]) return { reason: this.frozenReason(c.h), detail: `underloaded (${use}) but ${this.frozenText(c.h)}` };
    const cooldown = this.hostCooldowns.get(host.id);
    if (cooldown) return { reason: 'Cooldown', detail: `underloaded (${use}) but ${cooldown.reason} recently; left alone until ${new Date(cooldown.untilMs).toISOString()}` };
    if (this.needsAttention.has(host.id)) return { reason: 'NeedsAttention', detail: 'marked for an operator (a failed power-on or boot, a BMC identity mismatch, or guests at a hard power-off: see consolidator status); never powered off automatically until cleared' };
    const guarded = c.vms.find((v) => (this.ws.vms[v] as VmSnapshot).protected === true);
    if (guarded !== undefined) {
      return { reason: 'ProtectedVm', detail: `underloaded (${use}) but it runs ${(this.ws.vms[guarded] as VmSnapshot).id}, a protected VM: its host is never emptied or powered off` };
    }
    const pinned = c.vms.find((v) => (this.ws.vms[v] as VmSnapshot).pinned);
    if (pinned !== undefined) return { reason: 'PinnedVm', detail: `underloaded (${use}) but VM ${(this.ws.vms[pinned] as VmSnapshot).id} is pinned` };
    const cooling = c.vms.find((v) => this.coolingVm[v] === 1);
    if (cooling !== undefined) return { reason: 'VmCooldown', detail: `underloaded (${use}) but VM ${(this.ws.vms[cooling] as VmSnapshot).id} moved recently` };
    const flying = c.vms.find((v) => this.flyingVm[v] === 1);
    if (flying !== undefined) return { reason: 'ActionInFlight', detail: `VM ${(this.ws.vms[flying] as VmSnapshot).id} is migrating` };
    if ((this.input.powerActionsLast24h[host.id] ?? 0) + 2 > this.policy.safety.maxPowerActionsPerHostPerDay) {
      return { reason: 'PowerBudgetExhausted', detail: `${this.input.powerActionsLast24h[host.id] ?? 0} power actions in 24 h: no room to power it off and on again` };
    }
    if (this.countActiveAfterPlan() - 1 < this.policy.safety.minHostsOn) {
      return { reason: 'MinHostsOn', detail: `underloaded (${use}) but only ${this.countActiveAfterPlan()} hosts would stay on (minHostsOn ${this.policy.safety.minHostsOn})` };
    }
    if (c.vms.length > this.migrationBudget) {
      this.budgetLimited = true;
      return { reason: 'BudgetExhausted', detail: `needs ${c.vms.length} migrations, ${this.migrationBudget} left this cycle` };
    }
    return undefined;
  }

  private tryDrain(c: DrainCandidate, host: HostSnapshot, horizonSeconds: number): void {
    const use = this.describeUse(c.h);
    this.ws.destinations.remove(c.h);
    const wattsBefore = hostWatts(host, this.ws.loadCpu[c.h] as number);
    // Largest first (first-fit decreasing): big VMs find room while there is most of it.
    const order = [...c.vms].sort((a, b) => this.size(b) - this.size(a) || a - b);
    const placed: { v: number; to: number }[] = [];
    let failed: number | undefined;
    const destLoadBefore = new Map<number, number>();
    for (const v of order) {
      const to = this.ws.bestDestination(v);
      if (to === undefined) {
        failed = v;
        break;
      }
      if (!destLoadBefore.has(to)) destLoadBefore.set(to, this.ws.loadCpu[to] as number);
      placed.push({ v, to });
      this.ws.move(v, to);
    }
    const rollback = () => {
      for (let i = placed.length - 1; i >= 0; i--) this.ws.move((placed[i] as { v: number }).v, c.h);
      this.ws.destinations.add(c.h);
    };
    if (failed !== undefined) {
      rollback();
      const vm = this.ws.vms[failed] as VmSnapshot;
      this.keep(c.h, 'NoRoomForVms', `underloaded (${use}) but VM ${vm.id} (${fmtVm(this.ws, failed)}) fits on no other host under target`);
      return;
    }
    const spare = this.spareCapacityShortfall(c.h);
    if (spare) {
      rollback();
      this.keep(c.h, 'SpareCapacity', `emptying it would leave too little spare ${spare}`);
      return;
    }
    let destinationWatts = 0;
    for (const [to, loadBefore] of destLoadBefore) {
      const dest = this.ws.hosts[to] as HostSnapshot;
      destinationWatts += hostWatts(dest, this.ws.loadCpu[to] as number) - hostWatts(dest, loadBefore);
    }
    const savingWatts = wattsBefore - destinationWatts;
    const migrationSeconds = c.vms.reduce((sum, v) => sum + estimateMigrationSeconds(this.ws.vms[v] as VmSnapshot, this.policy), 0);
    const savedJoules = savingWatts * horizonSeconds;
    const costJoules = migrationCostJoules(migrationSeconds, this.policy);
    if (savingWatts <= 0 || savedJoules < this.policy.consolidation.worthItMargin * costJoules) {
      rollback();
      this.keep(
        c.h,
        'NotWorthIt',
        `emptying it saves ~${Math.round(savingWatts)} W (${kwh(savedJoules)} over ${Math.round(horizonSeconds / 60)} min), ` +
          `less than ${this.policy.consolidation.worthItMargin}x the ~${kwh(costJoules)} its ${c.vms.length} migration(s) cost`,
      );
      return;
    }
    // Commit: the moves are already in the workspace; record them as actions.
    const migrationIds = placed.map(({ v, to }) => this.recordMigration(v, c.h, to, 'consolidate', []));
    this.source[c.h] = true;
    this.setState(c.h, 'off');
    this.actions.push({ id: this.newId('power-off', host.id), type: 'power-off', host: host.id, estimatedSavingWatts: round(savingWatts), dependsOn: migrationIds });
    this.hostCooldowns.set(host.id, { untilMs: this.now + this.policy.safety.hostCooldownSeconds * 1000, reason: 'drained' });
    this.underloadedSince.delete(host.id);
    const destinations = [...new Set(placed.map((p) => (this.ws.hosts[p.to] as HostSnapshot).id))].sort(compareIds);
    this.setVerdict(c.h, {
      outcome: 'draining',
      detail:
        c.vms.length === 0
          ? `underloaded (${use}) and empty: powered off, saves ~${Math.round(savingWatts)} W`
          : `underloaded (${use}): ${c.vms.length} VM(s), ${c.memoryMiB} MiB, to ${destinations.join(', ')}; saves ~${Math.round(savingWatts)} W`,
    });
  }

  /**
   * After removing host `without`, the hosts left on must keep room for the policy's spare hosts and
   * reserve on every resource; returns what falls short, if anything.
   */
  private spareCapacityShortfall(without: number): string | undefined {
    const { spareHosts, reserveRatio } = this.policy.safety;
    if (spareHosts === 0 && reserveRatio === 0) return undefined;
    let freeCpu = 0;
    let freeMemory = 0;
    let capCpu = 0;
    let capMemory = 0;
    const largestCpu: number[] = [];
    const largestMemory: number[] = [];
    this.ws.hosts.forEach((host, h) => {
      if (h === without || this.state[h] !== 'active' || !this.managed[h]) return;
      freeCpu += this.ws.roomCpu(h);
      freeMemory += this.ws.roomMemory(h);
      capCpu += host.capacity.cpu;
      capMemory += host.capacity.memory;
      largestCpu.push(this.ws.limitCpu[h] as number);
      largestMemory.push(this.ws.limitMemory[h] as number);
    });
    const topSum = (values: number[]) =>
      values
        .sort((a, b) => b - a)
        .slice(0, spareHosts)
        .reduce((a, b) => a + b, 0);
    const needCpu = topSum(largestCpu) + reserveRatio * capCpu;
    const needMemory = topSum(largestMemory) + reserveRatio * capMemory;
    if (freeCpu < needCpu) return `CPU: ${freeCpu.toFixed(1)} cores free, ${needCpu.toFixed(1)} needed`;
    if (freeMemory < needMemory) return `memory: ${Math.round(freeMemory)} MiB free, ${Math.round(needMemory)} MiB needed`;
    return undefined;
  }

  // ---- shared steps --------------------------------------------------------------------------

  private planMigration(v: number, to: number, purpose: MigrationPurpose, dependsOn: string[]): string {
    const from = this.ws.vmHost[v] as number;
    this.ws.move(v, to);
    return this.recordMigration(v, from, to, purpose, dependsOn);
  }

  /** Records a move already applied to the workspace as an action. */
  private recordMigration(v: number, from: number, to: number, purpose: MigrationPurpose, dependsOn: string[]): string {
    const vm = this.ws.vms[v] as VmSnapshot;
    const fromId = (this.ws.hosts[from] as HostSnapshot).id;
    // Onto a host woken this cycle: only once it is up.
    const wokenBy = this.powerOnIds[to];
    const deps = wokenBy !== undefined && !dependsOn.includes(wokenBy) ? [...dependsOn, wokenBy] : dependsOn;
    const toId = (this.ws.hosts[to] as HostSnapshot).id;
    const id = this.newId('migrate', vm.id);
    const action: MigrateAction = {
      id,
      type: 'migrate',
      vm: vm.id,
      from: fromId,
      to: toId,
      purpose,
      memoryMiB: vm.memoryMiB,
      estimatedSeconds: round(estimateMigrationSeconds(vm, this.policy)),
      dependsOn: deps,
    };
    this.actions.push(action);
    this.movedVms.add(v);
    this.migrationBudget--;
    this.receives[to] = true;
    this.underloadedSince.delete(toId);
    this.vmCooldowns.set(vm.id, this.now + this.policy.safety.vmCooldownSeconds * 1000);
    this.coolingVm[v] = 1;
    return id;
  }

  private isMovable(v: number): boolean {
    const vm = this.ws.vms[v] as VmSnapshot;
    return !vm.pinned && !this.movedVms.has(v) && this.coolingVm[v] !== 1 && this.flyingVm[v] !== 1;
  }

  /** Moving v lowers a resource on which h is above target. */
  private helpsRelieve(v: number, h: number): boolean {
    return (
      ((this.ws.demandCpu[v] as number) > 0 && this.ws.roomCpu(h) < 0) || ((this.ws.demandMemory[v] as number) > 0 && this.ws.roomMemory(h) < 0)
    );
  }

  private underTarget(h: number): boolean {
    return this.ws.roomCpu(h) >= 0 && this.ws.roomMemory(h) >= 0;
  }

  /** How far above its overload ratio a host is, as the worst share of capacity. */
  private excess(h: number): number {
    const u = this.ws.utilisation(h);
    return Math.max(u.cpu - this.policy.thresholds.cpu.overloadRatio, u.memory - this.policy.thresholds.memory.overloadRatio);
  }

  /** Migration cost rank: memory to copy, inflated by the dirty rate where known. */
  private migrationCost(v: number): number {
    return estimateMigrationSeconds(this.ws.vms[v] as VmSnapshot, this.policy);
  }

  /** A VM's size as its largest share of an average destination's limit. */
  private size(v: number): number {
    const host = this.ws.hosts[this.ws.vmHost[v] as number] as HostSnapshot;
    const lc = host.capacity.cpu * this.policy.thresholds.cpu.targetRatio;
    const lm = host.capacity.memory * this.policy.thresholds.memory.targetRatio;
    return Math.max(lc > 0 ? (this.ws.demandCpu[v] as number) / lc : 0, lm > 0 ? (this.ws.demandMemory[v] as number) / lm : 0);
  }

  private wattsPerCpu(h: number): number {
    return this.ws.wattsPerCpu[h] as number;
  }

  /**
   * Hosts known to be on after the actions planned so far. Hosts whose state is unknown do not count:
   * minHostsOn must hold even if they are in fact down.
   */
  private countActiveAfterPlan(): number {
    return this.activeCount;
  }

  private setState(h: number, state: HostState): void {
    if (this.state[h] === 'active') this.activeCount--;
    if (state === 'active') this.activeCount++;
    this.state[h] = state;
  }

  private inAnyWindow(expressions: readonly string[]): boolean {
    return expressions.some((e) => {
      const parsed = parseCron(e);
      return parsed.ok && cronMatchesMinute(parsed.value, this.now, this.policy.timeZone);
    });
  }

  private frozenReason(h: number): KeepReason {
    const host = this.ws.hosts[h] as HostSnapshot;
    if (host.excluded) return 'Excluded';
    if (host.maintenance) return 'Maintenance';
    if (this.hostsInFlight.has(host.id)) return 'ActionInFlight';
    return 'Cooldown';
  }

  private frozenText(h: number): string {
    const reason = this.frozenReason(h);
    return {
      Excluded: 'excluded by the policy',
      Maintenance: 'in maintenance',
      ActionInFlight: 'an action on it is still running',
    }[reason as string] ?? 'an action on it failed recently';
  }

  // ---- verdicts and result -------------------------------------------------------------------

  private keep(h: number, reason: KeepReason, detail: string): void {
    if (this.verdicts.has(h)) return;
    const outcome = this.state[h] === 'off' ? 'stays-off' : 'kept-on';
    this.verdicts.set(h, { host: (this.ws.hosts[h] as HostSnapshot).id, outcome, reason, detail, ...this.figures(h) });
  }

  private setVerdict(h: number, v: Pick<HostVerdict, 'outcome' | 'detail'>): void {
    this.verdicts.set(h, { host: (this.ws.hosts[h] as HostSnapshot).id, ...v, ...this.figures(h) });
  }

  /** A verdict's figures: use after the plan, use as observed, and whether it is overloaded. */
  private figures(h: number): Pick<HostVerdict, 'utilisation' | 'observed' | 'overloaded'> {
    const host = this.ws.hosts[h] as HostSnapshot;
    const use = this.ws.observedUse[h] as ResourceVector;
    const share = (x: number, cap: number) => (cap > 0 ? x / cap : 0);
    return {
      utilisation: this.ws.utilisation(h),
      observed: { cpu: share(use.cpu, host.capacity.cpu), memory: share(use.memory, host.capacity.memory) },
      overloaded: this.overloaded[h] === true,
    };
  }

  private defaultVerdict(h: number): void {
    if (this.verdicts.has(h)) return;
    const host = this.ws.hosts[h] as HostSnapshot;
    if (host.maintenance) return this.keep(h, 'Maintenance', `in maintenance${this.state[h] === 'off' ? ' and off' : ''}: never touched`);
    if (this.state[h] === 'off') {
      if (this.poweredOffByUs.has(host.id)) this.keep(h, 'PoweredOff', 'powered off by consolidator; woken when demand needs it');
      else this.keep(h, 'PoweredOffByOperator', 'powered off by someone else: never powered on automatically');
      return;
    }
    if (this.state[h] === 'unknown') {
      this.keep(h, 'Unreachable', host.power === 'unknown' ? 'power state unknown' : 'the hypervisor did not answer this cycle');
      return;
    }
    if (host.excluded) return this.keep(h, 'Excluded', 'excluded by the policy: observed only');
    if (this.receives[h]) return this.keep(h, 'ReceivesVms', `receives VMs this cycle (${this.describeUse(h)} after)`);
    this.keep(h, 'NotUnderloaded', `${this.describeUse(h)}: not below the underload ratios`);
  }

  private describeUse(h: number): string {
    const host = this.ws.hosts[h] as HostSnapshot;
    const use = this.ws.observedUse[h] as ResourceVector;
    const pct = (x: number, cap: number) => (cap > 0 ? `${Math.round((x / cap) * 100)}%` : 'n/a');
    return `cpu ${pct(use.cpu, host.capacity.cpu)}, memory ${pct(use.memory, host.capacity.memory)}`;
  }

  private newId(kind: string, subject: string): string {
    return `${this.nextId++}-${kind}-${subject}`;
  }

  private result(activeBefore: number): PlanResult {
    const verdicts = this.ws.hosts.map((_, h) => this.verdicts.get(h) as HostVerdict);
    const memory: PlannerMemory = {
      underloadedSinceMs: recordOf(this.underloadedSince),
      hostCooldowns: recordOf(this.hostCooldowns),
      vmCooldownUntilMs: recordOf(this.vmCooldowns),
    };
    let migrations = 0;
    let powerOffs = 0;
    let powerOns = 0;
    let saving = 0;
    let memoryToMove = 0;
    for (const a of this.actions) {
      if (a.type === 'migrate') {
        migrations++;
        memoryToMove += a.memoryMiB;
      } else if (a.type === 'power-off') {
        powerOffs++;
        saving += a.estimatedSavingWatts;
      } else {
        powerOns++;
      }
    }
    return {
      actions: this.actions,
      verdicts,
      memory,
      summary: {
        activeHostsBefore: activeBefore,
        activeHostsAfter: activeBefore - powerOffs + powerOns,
        migrations,
        powerOffs,
        powerOns,
        estimatedSavingWatts: round(saving),
        memoryToMoveMiB: memoryToMove,
        budgetLimited: this.budgetLimited,
      },
      statistics: { cpu: this.policy.thresholds.cpu.statistic, memory: this.policy.thresholds.memory.statistic },
    };
  }
}

/**
 * A plain object from a map. Keys come in the order the planner met them, which depends only on the
 * (sorted) input, so the same input gives the same memory.
 */
function recordOf<T>(map: ReadonlyMap<string, T>): Record<string, T> {
  return Object.fromEntries(map);
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** A duration in the unit that reads best: days, hours, minutes or seconds. */
function fmtDuration(ms: number): string {
  if (ms >= 2 * DAY_MS) return `${(ms / DAY_MS).toFixed(1)} days`;
  if (ms >= 2 * 3_600_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  if (ms >= 2 * 60_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 1000)} s`;
}

function kwh(joules: number): string {
  return `${(joules / 3.6e6).toFixed(3)} kWh`;
}

function fmtVm(ws: Workspace, v: number): string {
  return `${(ws.demandCpu[v] as number).toFixed(2)} cpu, ${Math.round(ws.demandMemory[v] as number)} MiB`;
}
