import type { HostId } from '../model/ids.js';
import type { HostSnapshot } from '../model/snapshot.js';
import type { PlanInput } from './types.js';
import type { Workspace } from './workspace.js';

/** What else may rule a powered-off host out: the caller's view of it this plan. */
export interface WakeContext {
  /** The host is off in the plan so far (a cycle may have woken some already). */
  readonly isOff: (h: number) => boolean;
  /** Hosts with an action still running on them. */
  readonly inFlight: ReadonlySet<HostId>;
}

/**
 * Whether consolidator may power host h on: off, managed (not excluded, not in maintenance), powered
 * off by consolidator itself, not marked for attention, with a known capacity, and within the daily
 * power-action budget.
 */
export function canWake(ws: Workspace, input: PlanInput, h: number, ctx: WakeContext): boolean {
  const host = ws.hosts[h] as HostSnapshot;
  return (
    ctx.isOff(h) &&
    !host.excluded &&
    !host.maintenance &&
    input.poweredOffByUs.includes(host.id) &&
    !input.needsAttention.includes(host.id) &&
    !ctx.inFlight.has(host.id) &&
    host.capacity.cpu > 0 &&
    host.capacity.memory > 0 &&
    (input.powerActionsLast24h[host.id] ?? 0) + 1 <= input.policy.safety.maxPowerActionsPerHostPerDay
  );
}

/** The hosts that may be woken, most power-efficient first (watts per CPU at target; then by id). */
export function wakeCandidates(ws: Workspace, input: PlanInput, ctx: WakeContext): number[] {
  return ws.hosts
    .map((_, h) => h)
    .filter((h) => canWake(ws, input, h, ctx))
    .sort((a, b) => (ws.wattsPerCpu[a] as number) - (ws.wattsPerCpu[b] as number) || a - b);
}
