import { PolicySchema, type PolicyInput } from '../../src/config/schema.js';
import type { ResourceVector } from '../../src/model/resources.js';
import type { ClusterSnapshot, HostSnapshot, PowerModel, VmSnapshot } from '../../src/model/snapshot.js';
import type { PlanInput, PlannerMemory, PlannerPolicy } from '../../src/planner/types.js';
import { EMPTY_MEMORY } from '../../src/planner/types.js';

export const NOW = Date.parse('2026-11-26T12:00:00Z');

/** A planner policy from partial policy YAML-shaped input, with every default filled in. */
export function plannerPolicy(overrides: Partial<PolicyInput> = {}): PlannerPolicy {
  return PolicySchema.parse({ version: 1, hosts: [{ name: 'placeholder' }], hypervisor: { driver: 'simulated' }, power: { driver: 'simulated' }, ...overrides });
}

export interface HostSpec {
  id: string;
  cpu?: number;
  memoryMiB?: number;
  power?: HostSnapshot['power'];
  reachable?: boolean;
  /** Host-level use (one sample at NOW); omitted = the sum of its VMs. */
  use?: ResourceVector;
  excluded?: boolean;
  maintenance?: boolean;
  powerModel?: PowerModel;
  bootSeconds?: number;
}

export function host(spec: HostSpec): HostSnapshot {
  return {
    id: spec.id,
    power: spec.power ?? 'on',
    reachable: spec.reachable ?? (spec.power ?? 'on') === 'on',
    capacity: { cpu: spec.cpu ?? 32, memory: spec.memoryMiB ?? 262_144 },
    samples: spec.use ? [{ atMs: NOW, use: spec.use }] : [],
    excluded: spec.excluded ?? false,
    maintenance: spec.maintenance ?? false,
    labels: {},
    powerModel: spec.powerModel ?? { kind: 'linear', idleWatts: 150, maxWatts: 350 },
    bootSeconds: spec.bootSeconds ?? 180,
  };
}

export interface VmSpec {
  id: string;
  host: string;
  /** CPU in use (cores) and memory in use (MiB), one sample at NOW. */
  cpu: number;
  memoryMiB: number;
  vcpus?: number;
  pinned?: boolean;
  /** The controller's own VM or its infrastructure: pinned, its host never emptied. */
  protected?: boolean;
  groups?: string[];
  dirtyRateMiBps?: number;
  state?: VmSnapshot['state'];
  /** No usage sample yet (the first observation after a start). */
  unmeasured?: boolean;
}

export function vm(spec: VmSpec): VmSnapshot {
  return {
    id: spec.id,
    host: spec.host,
    state: spec.state ?? 'running',
    vcpus: spec.vcpus ?? Math.max(1, Math.ceil(spec.cpu)),
    memoryMiB: spec.memoryMiB,
    samples: spec.unmeasured ? [] : [{ atMs: NOW, use: { cpu: spec.cpu, memory: spec.memoryMiB } }],
    pinned: (spec.pinned ?? false) || spec.protected === true,
    antiAffinityGroups: spec.groups ?? [],
    ...(spec.protected === true ? { protected: true } : {}),
    ...(spec.dirtyRateMiBps !== undefined ? { dirtyRateMiBps: spec.dirtyRateMiBps } : {}),
  };
}

export function snapshot(hosts: HostSnapshot[], vms: VmSnapshot[]): ClusterSnapshot {
  return { takenAtMs: NOW, hosts, vms };
}

/** Memory in which these hosts have been underloaded for `minutes`. */
export function underloadedFor(minutes: number, hostIds: string[]): PlannerMemory {
  return { ...EMPTY_MEMORY, underloadedSinceMs: Object.fromEntries(hostIds.map((h) => [h, NOW - minutes * 60_000])) };
}

export function planInput(s: ClusterSnapshot, policy: PlannerPolicy, extra: Partial<PlanInput> = {}): PlanInput {
  return {
    snapshot: s,
    policy,
    memory: EMPTY_MEMORY,
    inFlight: [],
    poweredOffByUs: [],
    powerActionsLast24h: {},
    needsAttention: [],
    nowMs: NOW,
    ...extra,
  };
}
