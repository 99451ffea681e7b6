import type { Policy } from '../config/schema.js';
import { matchesAnyGlob } from './glob.js';

/** What the policy's vmRules say about a VM, by its name. */
export interface VmRuleFlags {
  /** Listed in vmRules.pinned or vmRules.protected: never moved. */
  readonly pinned: boolean;
  /** Listed in vmRules.protected: never moved, and its host never emptied or powered off. */
  readonly protected: boolean;
  readonly antiAffinityGroups: readonly string[];
}

/**
 * The policy's rules for one VM name: what the observer marks in each cycle's snapshot, and what a
 * replay of a recording marks, so both plan under the same rules. (The observer adds what only a live
 * host shows: the daemon's own VM, a guest that cannot migrate, libvirt metadata.)
 */
export function vmRuleFlags(name: string, rules: Policy['vmRules']): VmRuleFlags {
  const isProtected = matchesAnyGlob(name, rules.protected);
  return {
    pinned: isProtected || matchesAnyGlob(name, rules.pinned),
    protected: isProtected,
    antiAffinityGroups: rules.antiAffinity.filter((g) => matchesAnyGlob(name, g.vms)).map((g) => g.name),
  };
}
