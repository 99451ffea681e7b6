import type { CommandRunner } from '../drivers/exec/command-runner.js';
import type { HypervisorDriver } from '../drivers/hypervisor/hypervisor-driver.js';
import type { PowerPath } from '../drivers/power/power-driver.js';
import type { HostId } from '../model/ids.js';
import { mapBounded } from '../util/map-bounded.js';
import { errorMessage } from '../errors.js';
import { type CheckResult, type FleetCheckReport, fail, skip } from './check-result.js';
import { checkPowerPath, checkSsh, checkVersions, guestDisks, type HostCheckDeps, type HostFacts, type SshEndpoint } from './host-checks.js';
import { judgePair, missingPaths, type PeerView, resolvePeers } from './pair-checks.js';

export interface CheckTarget {
  readonly name: HostId;
  readonly ssh: SshEndpoint;
  /** Takes part in the pair checks (false for an excluded host: consolidator moves nothing to or from it). */
  readonly pairs: boolean;
}

export interface FleetCheckDeps {
  readonly runner: CommandRunner;
  readonly hypervisor: HypervisorDriver;
  readonly powerPaths: (host: HostId) => readonly PowerPath[];
  readonly targets: readonly CheckTarget[];
  /** Hosts checked at once (each host's own checks run one after the other, its BMC beside them). */
  readonly concurrency: number;
  /** Each remote call, at most. */
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  readonly nowMs?: () => number;
}

interface HostPhase {
  readonly facts: HostFacts;
  readonly sshResults: readonly CheckResult[];
}

/**
 * The fleet preflight: read-only checks of every target, then of every ordered pair of the targets
 * that take part in pairs. Never throws for what a host answers: every problem is a result.
 *
 * Bounded: at most `concurrency` hosts are worked on at once, every remote call has `timeoutMs`, and
 * the remote calls per host do not depend on how many hosts there are (one for SSH and the DMI UUID,
 * one for versions, two for the guests and their disks, one per power path and reading, then one to
 * resolve every peer and one to test every peer's disk paths); only the judging is per pair.
 */
export async function runFleetCheck(deps: FleetCheckDeps): Promise<FleetCheckReport> {
  const now = deps.nowMs ?? Date.now;
  const started = now();
  const hostDeps: HostCheckDeps = { runner: deps.runner, hypervisor: deps.hypervisor, timeoutMs: deps.timeoutMs, ...(deps.signal ? { signal: deps.signal } : {}) };

  // Phase 1: each host on its own: SSH (and its DMI UUID), versions, guest disks; BMCs after, once
  // every DMI UUID is known, so a BMC wired to another host can be named.
  const phases = await mapBounded(deps.targets, deps.concurrency, async (target): Promise<HostPhase> => {
    const ssh = await checkSsh(target.name, target.ssh, hostDeps);
    if (ssh.result.result !== 'pass') {
      const facts: HostFacts = { host: target.name, sshOk: false, dmiNote: `ssh to ${target.name} failed, its DMI UUID is unknown`, disksProblem: `ssh to ${target.name} failed` };
      const skipped = [skip({ host: target.name, check: 'libvirt' }, 'ssh failed'), skip({ host: target.name, check: 'qemu' }, 'ssh failed')];
      return { facts, sshResults: [ssh.result, ...skipped] };
    }
    const versions = await checkVersions(target.name, hostDeps);
    const disks = await guestDisks(target.name, hostDeps);
    const facts: HostFacts = {
      host: target.name,
      sshOk: true,
      ...(ssh.dmiUuid !== undefined ? { dmiUuid: ssh.dmiUuid } : {}),
      ...(ssh.dmiNote !== undefined ? { dmiNote: ssh.dmiNote } : {}),
      ...(versions.versions !== undefined ? { versions: versions.versions } : {}),
      ...disks,
    };
    return { facts, sshResults: [ssh.result, ...versions.results] };
  });
  const knownDmi = new Map<string, HostId>();
  for (const p of phases) if (p.facts.dmiUuid !== undefined) knownDmi.set(p.facts.dmiUuid, p.facts.host);
  const powerResults = await mapBounded(phases, deps.concurrency, async (p) => {
    const results: CheckResult[] = [];
    let paths: readonly PowerPath[];
    try {
      paths = deps.powerPaths(p.facts.host);
    } catch (e) {
      return [fail({ host: p.facts.host, check: 'bmc-power' }, `no power path: ${errorMessage(e)}`, `set power.driver and the bmc section of ${p.facts.host} in the policy`)];
    }
    for (const path of paths) results.push(...(await checkPowerPath(p.facts.host, path, p.facts, knownDmi, hostDeps)));
    return results;
  });

  // Phase 2: each pair host asks once about all its peers.
  const paired = phases.map((p) => p.facts).filter((f, i) => deps.targets[i]?.pairs === true);
  const views = await mapBounded(paired, deps.concurrency, async (facts): Promise<PeerView> => {
    if (!facts.sshOk) return {};
    const peers = paired.filter((f) => f.host !== facts.host);
    const paths = [...new Set(peers.flatMap((f) => (f.disks ?? []).map((d) => d.source)))];
    return { ...(await resolvePeers(facts.host, peers.map((f) => f.host), hostDeps)), ...(await missingPaths(facts.host, paths, hostDeps)) };
  });
  const pairResults: CheckResult[] = [];
  paired.forEach((source, i) => {
    paired.forEach((destination, j) => {
      if (i !== j) pairResults.push(...judgePair(source, destination, views[i] ?? {}, views[j] ?? {}));
    });
  });

  const results = phases.flatMap((p, i) => [...p.sshResults, ...(powerResults[i] ?? [])]);
  return { hosts: deps.targets.map((t) => t.name), results: [...results, ...pairResults], durationMs: now() - started };
}
