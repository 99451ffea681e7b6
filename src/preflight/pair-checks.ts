import { errorMessage } from '../errors.js';
import { compareVersions } from '../drivers/hypervisor/virsh-parsers.js';
import type { HostId } from '../model/ids.js';
import { type CheckResult, fail, pass, skip } from './check-result.js';
import { withDeadline } from './deadline.js';
import type { GuestDisk, HostCheckDeps, HostFacts } from './host-checks.js';

/**
 * Migration prerequisites between hosts, each ordered pair (source -> destination) of the hosts
 * checked. The remote work does not grow with the pairs: each host is asked once to resolve all its
 * peers' names and once whether all its peers' guest disks exist; the pairs are then judged from those
 * answers (judgePair, pure).
 */

/** What one host said about its peers. */
export interface PeerView {
  /** Peer name -> the address it resolves to on this host, or undefined when it does not resolve. */
  readonly resolved?: ReadonlyMap<HostId, string | undefined>;
  readonly resolveProblem?: string;
  /** The paths asked about that do not exist on this host. */
  readonly missing?: ReadonlySet<string>;
  readonly storageProblem?: string;
}

/** `getent hosts` on `host` for every peer name, in one command (names on stdin, never in a shell string). */
export async function resolvePeers(host: HostId, peers: readonly HostId[], deps: HostCheckDeps): Promise<Pick<PeerView, 'resolved' | 'resolveProblem'>> {
  if (peers.length === 0) return { resolved: new Map() };
  const script = `while IFS= read -r n; do a=$(getent hosts "$n" | awk 'NR==1 {print $1}'); printf '%s %s\\n' "$n" "\${a:--}"; done; echo end`;
  try {
    const r = await withDeadline(`getent hosts on ${host}`, deps.timeoutMs, deps.signal, (signal) =>
      deps.runner.run(host, ['sh', '-c', script], { timeoutMs: deps.timeoutMs, signal, stdin: `${peers.join('\n')}\n` }),
    );
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    if (lines.at(-1) !== 'end') return { resolveProblem: `getent hosts on ${host}: incomplete answer (exit ${r.exitCode})` };
    const resolved = new Map<HostId, string | undefined>();
    for (const line of lines.slice(0, -1)) {
      const [name, address] = line.split(' ');
      if (name !== undefined) resolved.set(name, address === undefined || address === '-' ? undefined : address);
    }
    return { resolved };
  } catch (e) {
    return { resolveProblem: `getent hosts on ${host}: ${errorMessage(e)}` };
  }
}

/** Which of `paths` do not exist on `host` (`test -e`), in one command (paths on stdin). */
export async function missingPaths(host: HostId, paths: readonly string[], deps: HostCheckDeps): Promise<Pick<PeerView, 'missing' | 'storageProblem'>> {
  if (paths.length === 0) return { missing: new Set() };
  const script = `while IFS= read -r p; do [ -e "$p" ] || printf '%s\\n' "$p"; done; echo '@@end'`;
  try {
    const r = await withDeadline(`test -e on ${host}`, deps.timeoutMs, deps.signal, (signal) =>
      deps.runner.run(host, ['sh', '-c', script], { timeoutMs: deps.timeoutMs, signal, stdin: `${paths.join('\n')}\n` }),
    );
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    if (lines.at(-1) !== '@@end') return { storageProblem: `test -e on ${host}: incomplete answer (exit ${r.exitCode})` };
    return { missing: new Set(lines.slice(0, -1)) };
  } catch (e) {
    return { storageProblem: `test -e on ${host}: ${errorMessage(e)}` };
  }
}

/** The three pair checks of source -> destination, from what both hosts reported. */
export function judgePair(source: HostFacts, destination: HostFacts, sourceView: PeerView, destinationView: PeerView): CheckResult[] {
  return [judgeResolves(source, destination.host, sourceView), judgeStorage(source, destination, destinationView), judgeVersions(source, destination)];
}

function judgeResolves(source: HostFacts, peer: HostId, view: PeerView): CheckResult {
  const base = { host: source.host, check: 'peer-resolves' as const, peer };
  if (!source.sshOk) return skip(base, `ssh to ${source.host} failed`);
  if (view.resolveProblem !== undefined) return fail(base, view.resolveProblem, `run getent hosts ${peer} on ${source.host} by hand`);
  const address = view.resolved?.get(peer);
  if (address === undefined) {
    return fail(
      base,
      `${peer} does not resolve on ${source.host} (getent hosts ${peer})`,
      `add ${peer} to DNS or to /etc/hosts on ${source.host}: libvirt there migrates to qemu+ssh://${peer}/system`,
    );
  }
  return pass(base, `${peer} resolves to ${address} on ${source.host}`);
}

function judgeStorage(source: HostFacts, destination: HostFacts, view: PeerView): CheckResult {
  const base = { host: source.host, check: 'peer-storage' as const, peer: destination.host };
  if (!source.sshOk) return skip(base, `ssh to ${source.host} failed`);
  if (source.disks === undefined) return fail(base, source.disksProblem ?? `the guests of ${source.host} are unknown`, `run virsh list and virsh domblklist on ${source.host} by hand`);
  const uncheckable = source.uncheckableDisks ?? [];
  if (source.disks.length === 0 && uncheckable.length === 0) {
    return pass(base, source.runningGuests === 0 ? `no guest runs on ${source.host}` : `the guests on ${source.host} have no local disk`);
  }
  if (!destination.sshOk) return skip(base, `ssh to ${destination.host} failed`);
  if (view.storageProblem !== undefined) return fail(base, view.storageProblem, `run test -e on ${destination.host} by hand`);
  const missing = source.disks.filter((d) => view.missing?.has(d.source) === true);
  const problems = [
    ...missing.map((d) => `${describeDisk(d)} is missing`),
    ...uncheckable.map((d) => `${describeDisk(d)} is a ${d.type} disk, not checkable`),
  ];
  if (problems.length > 0) {
    return fail(
      base,
      `${destination.host} does not see ${problems.length} disk(s) of the guests on ${source.host}: ${problems.join('; ')}`,
      `put guest disks on storage every host mounts at the same path (NFS, a cluster file system, shared block devices), or pin these guests to ${source.host}`,
    );
  }
  const guests = new Set(source.disks.map((d) => d.guest)).size;
  return pass(base, `all ${source.disks.length} disk(s) of ${guests} running guest(s) on ${source.host} exist on ${destination.host}`);
}

function describeDisk(d: GuestDisk): string {
  return `${d.guest} ${d.target} ${d.source}`;
}

/** The rule the migration preflight applies: the destination is not older than the source, libvirt and QEMU. */
function judgeVersions(source: HostFacts, destination: HostFacts): CheckResult {
  const base = { host: source.host, check: 'peer-versions' as const, peer: destination.host };
  const from = source.versions;
  const to = destination.versions;
  if (from === undefined || to === undefined) return skip(base, `the libvirt version of ${from === undefined ? source.host : destination.host} is unknown`);
  const older: string[] = [];
  if (compareVersions(to.libvirt, from.libvirt) < 0) older.push(`libvirt ${to.libvirt} < ${from.libvirt}`);
  if (from.qemu !== undefined && to.qemu !== undefined && compareVersions(to.qemu, from.qemu) < 0) older.push(`QEMU ${to.qemu} < ${from.qemu}`);
  const describe = (v: NonNullable<HostFacts['versions']>) => `libvirt ${v.libvirt}${v.qemu !== undefined ? `, QEMU ${v.qemu}` : ''}`;
  if (older.length > 0) {
    return fail(
      base,
      `${destination.host} is older than ${source.host} (${older.join(', ')}): the migration preflight refuses ${source.host} -> ${destination.host}`,
      `upgrade ${destination.host} to at least ${describe(from)} (upgrade destinations first; a newer host can take guests, not give them to older ones)`,
    );
  }
  if (describe(to) === describe(from)) return pass(base, `${describe(to)} on both`);
  return pass(base, `${destination.host} (${describe(to)}) is not older than ${source.host} (${describe(from)})`);
}
