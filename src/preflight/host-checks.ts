import { errorMessage, isConsolidatorError } from '../errors.js';
import type { CommandRunner } from '../drivers/exec/command-runner.js';
import type { HypervisorDriver } from '../drivers/hypervisor/hypervisor-driver.js';
import { PRODUCT_UUID_PATH, parseProductUuid } from '../drivers/hypervisor/virsh-observation.js';
import { classifyVirshError, isInactive, parseDomblklist, parseVirshVersion, SECTION_MARKER, splitSections, virshErrorLine } from '../drivers/hypervisor/virsh-parsers.js';
import type { PowerPath } from '../drivers/power/power-driver.js';
import type { HostId, VmId } from '../model/ids.js';
import { type CheckResult, fail, pass, skip } from './check-result.js';
import { withDeadline } from './deadline.js';

/** Where and as whom the host is reached over SSH, for messages and fixes. */
export interface SshEndpoint {
  readonly address: string;
  readonly port: number;
  readonly user: string;
  /** undefined: the runner's default (~/.ssh/known_hosts). */
  readonly knownHostsFile?: string;
}

/** What the per-host phase learnt, for the pair checks. */
export interface HostFacts {
  readonly host: HostId;
  readonly sshOk: boolean;
  /** The host's DMI system UUID; undefined when unknown (see dmiNote). */
  readonly dmiUuid?: string;
  readonly dmiNote?: string;
  readonly versions?: { readonly libvirt: string; readonly qemu?: string };
  /** Disks of the guests that run (or are paused) here; undefined when they could not be read (see disksProblem). */
  readonly disks?: readonly GuestDisk[];
  readonly disksProblem?: string;
  /** Running guests with a disk a peer cannot be asked about (a pool volume): the migration preflight refuses them. */
  readonly uncheckableDisks?: readonly GuestDisk[];
  readonly runningGuests?: number;
}

export interface GuestDisk {
  readonly guest: VmId;
  readonly target: string;
  readonly type: string;
  /** A path for file, block and dir disks; the volume name for others. */
  readonly source: string;
}

export interface HostCheckDeps {
  readonly runner: CommandRunner;
  readonly hypervisor: HypervisorDriver;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
}

const SYSTEM_URI = 'qemu:///system';
/** A version as libvirt prints it (9.0.0, 8.0.0-rc1 is not one: distributions print the upstream number). */
const VERSION = /^\d+(\.\d+)*$/;

/**
 * SSH: the host answers and its key is in known_hosts. The command it runs reads the DMI system UUID
 * (for the identity checks): whatever that read exits with, the connection and the key were good.
 */
export async function checkSsh(host: HostId, ssh: SshEndpoint, deps: HostCheckDeps): Promise<{ result: CheckResult; dmiUuid?: string; dmiNote?: string }> {
  const base = { host, check: 'ssh' as const };
  const where = `${ssh.user}@${ssh.address}:${ssh.port}`;
  try {
    const r = await withDeadline(`ssh to ${host}`, deps.timeoutMs, deps.signal, (signal) =>
      deps.runner.run(host, ['cat', PRODUCT_UUID_PATH], { timeoutMs: deps.timeoutMs, signal }),
    );
    const dmiUuid = r.exitCode === 0 ? parseProductUuid(r.stdout) : undefined;
    const dmiNote =
      dmiUuid !== undefined
        ? undefined
        : r.exitCode === 0
          ? `${PRODUCT_UUID_PATH} on ${host} holds no UUID`
          : `${host} shows no ${PRODUCT_UUID_PATH} to ${ssh.user} (${firstLine(r.stderr) || `exit ${r.exitCode}`})`;
    return { result: pass(base, `${where}, host key verified`), ...(dmiUuid !== undefined ? { dmiUuid } : {}), ...(dmiNote !== undefined ? { dmiNote } : {}) };
  } catch (e) {
    return { result: fail(base, errorMessage(e), sshFix(host, ssh, e)) };
  }
}

function sshFix(host: HostId, ssh: SshEndpoint, e: unknown): string {
  const code = isConsolidatorError(e) ? e.code : undefined;
  const details = isConsolidatorError(e) ? e.details : {};
  const file = typeof details['knownHostsFile'] === 'string' ? details['knownHostsFile'] : (ssh.knownHostsFile ?? '~/.ssh/known_hosts');
  const type = keyscanType(typeof details['keyType'] === 'string' ? details['keyType'] : undefined);
  const keyscan = `ssh-keyscan -p ${ssh.port} -t ${type} ${ssh.address}`;
  const fingerprint = typeof details['fingerprint'] === 'string' ? details['fingerprint'] : 'the fingerprint above';
  const console = `ssh-keygen -lf /etc/ssh/ssh_host_${type}_key.pub on ${host}'s console`;
  if (code === 'SSH_HOST_KEY') {
    switch (details['verdict']) {
      case 'unknown':
        return `add the key to known_hosts once verified: ${keyscan} | ssh-keygen -lf - must print ${fingerprint}, as ${console} does; then ${keyscan} >> ${file}`;
      case 'changed':
        return `if ${host} was reinstalled, check that ${console} prints ${fingerprint}, then ssh-keygen -R ${ssh.port === 22 ? ssh.address : `'[${ssh.address}]:${ssh.port}'`} -f ${file} and ${keyscan} >> ${file}; if it was not, do not connect: someone may be in the middle`;
      case 'revoked':
        return `the key is revoked in ${file}: give ${host} a new host key and add that one (${keyscan} >> ${file}, verified as ${console})`;
      default:
        return `make ${file} readable by this user, with a line for ${ssh.address} (${keyscan}, verified as ${console})`;
    }
  }
  if (code === 'SSH_AUTH') return `let ${ssh.user} log in on ${host} with the policy's key (ssh.keyFile): add its public key to ~${ssh.user}/.ssh/authorized_keys there`;
  return `check that sshd runs on ${host} and that ${ssh.address}:${ssh.port} is reachable from here (nc -vz ${ssh.address} ${ssh.port})`;
}

/** ssh-keyscan's -t name for a key type as the SSH protocol writes it. */
function keyscanType(keyType: string | undefined): string {
  if (keyType === undefined) return 'ed25519';
  if (keyType.startsWith('ecdsa-')) return 'ecdsa';
  return keyType.replace(/^ssh-/, '');
}

/** libvirt and QEMU versions, from `virsh version --daemon` against the host's system libvirt. */
export async function checkVersions(host: HostId, deps: HostCheckDeps): Promise<{ results: CheckResult[]; versions?: HostFacts['versions'] }> {
  const libvirt = { host, check: 'libvirt' as const };
  const qemu = { host, check: 'qemu' as const };
  const libvirtdFix = `start libvirtd on ${host} (systemctl start libvirtd) and let the SSH user use ${SYSTEM_URI} (root, or group libvirt)`;
  let text: string;
  try {
    const r = await withDeadline(`virsh version on ${host}`, deps.timeoutMs, deps.signal, (signal) =>
      deps.runner.run(host, ['virsh', '-c', SYSTEM_URI, 'version', '--daemon'], { timeoutMs: deps.timeoutMs, signal }),
    );
    if (r.exitCode !== 0) {
      return { results: [fail(libvirt, `virsh version failed: ${virshErrorLine(r.stderr) || `exit ${r.exitCode}`}`, libvirtdFix), skip(qemu, 'libvirt did not answer')] };
    }
    text = r.stdout;
  } catch (e) {
    return { results: [fail(libvirt, `virsh version: ${errorMessage(e)}`, libvirtdFix), skip(qemu, 'libvirt did not answer')] };
  }
  const parsed = parseVirshVersion(text);
  if (parsed.libvirt === undefined || !VERSION.test(parsed.libvirt)) {
    const seen = parsed.libvirt ?? (firstLine(text) || 'nothing');
    return {
      results: [
        fail(libvirt, `virsh version printed no libvirt version (expected "Running against daemon: X.Y.Z", got ${JSON.stringify(seen)})`, `run virsh -c ${SYSTEM_URI} version --daemon on ${host}: a libvirt too old or a wrapper in the way`),
        skip(qemu, 'libvirt version unknown'),
      ],
    };
  }
  const results = [pass(libvirt, `libvirt ${parsed.libvirt}`)];
  if (parsed.qemu === undefined || !VERSION.test(parsed.qemu)) {
    const seen = parsed.qemu === undefined ? 'no "Running hypervisor: QEMU X.Y.Z" line' : `QEMU version ${JSON.stringify(parsed.qemu)}`;
    results.push(fail(qemu, `libvirt on ${host} reports ${seen}`, `install QEMU on ${host} (apt install qemu-system-x86) and restart libvirtd`));
    return { results, versions: { libvirt: parsed.libvirt } };
  }
  results.push(pass(qemu, `QEMU ${parsed.qemu}`));
  return { results, versions: { libvirt: parsed.libvirt, qemu: parsed.qemu } };
}

/**
 * The disks of the guests that run on `host` (running or paused: the ones a drain would move), from
 * the hypervisor's domain list and one `virsh domblklist --details` per guest, in one command.
 */
export async function guestDisks(host: HostId, deps: HostCheckDeps): Promise<Pick<HostFacts, 'disks' | 'disksProblem' | 'uncheckableDisks' | 'runningGuests'>> {
  try {
    const domains = await withDeadline(`the guests of ${host}`, deps.timeoutMs, deps.signal, (signal) => deps.hypervisor.listDomains(host, signal));
    const running = domains.filter((d) => !isInactive(d.state)).map((d) => d.name);
    if (running.length === 0) return { disks: [], uncheckableDisks: [], runningGuests: 0 };
    const m = SECTION_MARKER;
    const script = [
      'for d; do',
      `  if out=$(virsh -c ${SYSTEM_URI} domblklist --details "$d" 2>&1); then echo "${m} blk $d"; else echo "${m} failed $d"; fi`,
      `  printf '%s\\n' "$out"`,
      'done',
      `echo '${m} end'`,
    ].join('\n');
    const r = await withDeadline(`virsh domblklist on ${host}`, deps.timeoutMs, deps.signal, (signal) =>
      deps.runner.run(host, ['sh', '-c', script, 'sh', ...running], { timeoutMs: deps.timeoutMs, signal }),
    );
    const sections = splitSections(r.stdout);
    if (!sections.has('end')) return { disksProblem: `virsh domblklist on ${host}: incomplete answer (${firstLine(r.stderr) || `exit ${r.exitCode}`})` };
    const disks: GuestDisk[] = [];
    const uncheckable: GuestDisk[] = [];
    let guests = 0;
    for (const guest of running) {
      const failed = sections.get(`failed ${guest}`);
      // A guest that left between the list and domblklist (migrated, stopped) has nothing to check.
      if (failed !== undefined && classifyVirshError(failed) === 'no-domain') continue;
      if (failed !== undefined) return { disksProblem: `virsh domblklist ${guest} on ${host}: ${virshErrorLine(failed) || 'failed'}` };
      guests++;
      for (const d of parseDomblklist(sections.get(`blk ${guest}`) ?? '')) {
        if (d.source === undefined || d.type === 'network') continue;
        const disk = { guest, target: d.target, type: d.type, source: d.source };
        if (d.type === 'file' || d.type === 'block' || d.type === 'dir') disks.push(disk);
        else uncheckable.push(disk);
      }
    }
    return { disks, uncheckableDisks: uncheckable, runningGuests: guests };
  } catch (e) {
    return { disksProblem: `the guests of ${host}: ${errorMessage(e)}` };
  }
}

/**
 * One power path: the BMC answers a power-state query; its power reading when the driver offers one;
 * its system UUID against the host's own DMI UUID (`knownDmi` names the hosts each DMI UUID belongs to,
 * so a BMC wired to another machine is named). Reads only: nothing is switched.
 */
export async function checkPowerPath(
  host: HostId,
  power: PowerPath,
  facts: { readonly dmiUuid?: string; readonly dmiNote?: string },
  knownDmi: ReadonlyMap<string, HostId>,
  deps: Pick<HostCheckDeps, 'timeoutMs' | 'signal'>,
): Promise<CheckResult[]> {
  const { path, driver } = power;
  const at = (check: 'bmc-power' | 'bmc-reading' | 'bmc-identity') => ({ host, check, path });
  const bmcFix = (e: unknown) =>
    isConsolidatorError(e) && e.code === 'BMC_AUTH'
      ? `check the BMC user and password file of ${host} in the policy (bmc.user, bmc.passwordFile) against the BMC's accounts`
      : `check the BMC address and port of ${host} in the policy, that the BMC answers from here, and that its ${path} interface is enabled`;
  let state: string;
  try {
    state = await withDeadline(`the power state of ${host} (${path})`, deps.timeoutMs, deps.signal, (signal) => driver.status(host, signal));
  } catch (e) {
    const why = `the BMC did not answer: ${errorMessage(e)}`;
    return [fail(at('bmc-power'), why, bmcFix(e)), skip(at('bmc-reading'), 'the BMC did not answer'), skip(at('bmc-identity'), 'the BMC did not answer')];
  }
  const results: CheckResult[] = [];
  if (state === 'unknown') results.push(fail(at('bmc-power'), 'the BMC answered but cannot tell the power state', `look at the BMC of ${host} (its web interface or event log): a BMC that does not know the power state cannot be trusted to switch it`));
  else results.push(pass(at('bmc-power'), `power ${state}`));

  if (driver.powerReadingWatts === undefined) {
    results.push(skip(at('bmc-reading'), `the ${path} driver reads no power`));
  } else {
    const read = driver.powerReadingWatts.bind(driver);
    try {
      const watts = await withDeadline(`the power reading of ${host} (${path})`, deps.timeoutMs, deps.signal, (signal) => read(host, signal));
      results.push(watts === undefined ? skip(at('bmc-reading'), 'the BMC offers no power reading') : pass(at('bmc-reading'), `${Math.round(watts)} W`));
    } catch (e) {
      results.push(fail(at('bmc-reading'), `power reading failed: ${errorMessage(e)}`, bmcFix(e)));
    }
  }

  if (driver.systemUuid === undefined) {
    results.push(skip(at('bmc-identity'), `the ${path} driver reads no system UUID: identity not verifiable`));
    return results;
  }
  const readUuid = driver.systemUuid.bind(driver);
  let bmcUuid: string | undefined;
  try {
    bmcUuid = await withDeadline(`the system UUID of ${host}'s BMC (${path})`, deps.timeoutMs, deps.signal, (signal) => readUuid(host, signal));
  } catch (e) {
    results.push(fail(at('bmc-identity'), `the BMC's system UUID could not be read: ${errorMessage(e)}`, bmcFix(e)));
    return results;
  }
  if (bmcUuid === undefined) {
    results.push(skip(at('bmc-identity'), 'the BMC reports no system UUID: identity not verifiable (power actions go on with a warning)'));
  } else if (facts.dmiUuid === undefined) {
    results.push(skip(at('bmc-identity'), `BMC UUID ${bmcUuid}; ${facts.dmiNote ?? `the DMI UUID of ${host} is unknown`}: nothing to compare`));
  } else if (bmcUuid.toLowerCase() === facts.dmiUuid) {
    results.push(pass(at('bmc-identity'), `system UUID ${bmcUuid} = DMI UUID of ${host}`));
  } else {
    const owner = knownDmi.get(bmcUuid.toLowerCase());
    results.push(
      fail(
        at('bmc-identity'),
        `the BMC reports system UUID ${bmcUuid}, ${host} itself ${facts.dmiUuid}${owner !== undefined ? `: that BMC belongs to ${owner}` : ': it belongs to another machine'}`,
        `correct the BMC address of ${host} in the policy (bmc.address)${owner !== undefined ? `: it is ${owner}'s` : ''}; consolidator refuses power actions through it until then`,
      ),
    );
  }
  return results;
}

function firstLine(text: string): string {
  return (text.split('\n').find((l) => l.trim() !== '') ?? '').trim();
}
