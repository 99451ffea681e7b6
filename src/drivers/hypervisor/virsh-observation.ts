import { ConsolidatorError, type ErrorDetails } from '../../errors.js';
import type { HostId } from '../../model/ids.js';
import {
  parseDomstatsRaw,
  parseMeminfo,
  parseProcStat,
  parseUptimeSeconds,
  parseUuidNameList,
  parseVirshVersion,
  SECTION_MARKER,
  splitSections,
  type DomainStats,
  type Meminfo,
  type ProcStat,
  type Versions,
} from './virsh-parsers.js';

/**
 * The remote scripts that read a libvirt host, and the pure functions that turn their output into
 * data or a ConsolidatorError. The rule they share: a failed libvirt query never reads as "no guests".
 * Every virsh call reports its own exit status and its own stderr in its own section, so a connection
 * lost in the middle (libvirtd restarting, a socket-activated daemon timing out) is seen as the failure
 * it is, and the one legitimate failure (a domain without consolidator metadata) stays distinguishable.
 */

/** XML namespace of consolidator's libvirt metadata (`<consolidator:pinned/>`). */
export const METADATA_NAMESPACE = 'https://consolidator.dev/xmlns/1';

/** Where Linux shows the host's SMBIOS system UUID (the one a BMC reports). */
export const PRODUCT_UUID_PATH = '/sys/class/dmi/id/product_uuid';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UUID_NAME_LINE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\s+\S/;
const METADATA_ABSENT = /^error: metadata not found\b/;

/**
 * Runs `virsh ARGS` with its stdout going to the script's stdout as it comes, and its stderr and exit
 * status each printed afterwards in a section of their own (`stderr NAME`, `exit NAME`).
 */
function virshCall(name: string, args: string): string {
  const m = SECTION_MARKER;
  return [
    `{ err=$(virsh ${args} 2>&1 >&3 3>&-); status=$?; } 3>&1`,
    `echo '${m} stderr ${name}'; [ -n "$err" ] && printf '%s\\n' "$err"`,
    `echo '${m} exit ${name}'; echo "$status"`,
  ].join('\n');
}

/**
 * One command per host per observation: /proc/stat, /proc/meminfo, /proc/uptime, the DMI system UUID,
 * the domain list, then ONE virsh process for the versions and `domstats --raw`, then one for every
 * listed domain's metadata. The second and third run only when the list succeeded. Domain UUIDs come
 * from virsh itself and are hexadecimal (the sed keeps nothing else), so they are safe inside virsh's
 * command line.
 */
export function observeScript(readPinnedMetadata: boolean): string {
  const m = SECTION_MARKER;
  const metadata = readPinnedMetadata
    ? [
        `  cmds=''`,
        `  for u in $(printf '%s\\n' "$list" | sed -n 's/^\\([0-9a-f-]\\{36\\}\\) .*$/\\1/p'); do cmds="$cmds echo ${m} metadata $u; metadata $u --uri ${METADATA_NAMESPACE};"; done`,
        `  if [ -n "$cmds" ]; then`,
        virshCall('metadata', `"$cmds echo ${m} metadata-end"`).replace(/^/gm, '    '),
        '  fi',
      ]
    : [];
  return [
    `echo '${m} stat'; cat /proc/stat`,
    `echo '${m} meminfo'; cat /proc/meminfo`,
    `echo '${m} uptime'; cat /proc/uptime`,
    `echo '${m} sysuuid'; cat ${PRODUCT_UUID_PATH} 2>/dev/null`,
    // The list's stderr goes with its stdout: its lines are `UUID NAME`, an error line is not.
    'list=$(virsh list --all --uuid --name 2>&1); status=$?',
    `echo '${m} domains'; printf '%s\\n' "$list"`,
    `echo '${m} exit list'; echo "$status"`,
    'if [ "$status" -eq 0 ]; then',
    `  echo '${m} version'`,
    virshCall('batch', `"version --daemon; echo ${m} domstats; domstats --raw; echo ${m} batch-end"`).replace(/^/gm, '  '),
    ...metadata,
    'fi',
    `echo '${m} end'`,
  ].join('\n');
}

/** What one observation read, checked: every virsh call succeeded and list and domstats agree. */
export interface ObservationOutput {
  readonly stat: ProcStat;
  readonly meminfo: Meminfo;
  readonly uptimeSeconds: number;
  /** From /sys/class/dmi/id/product_uuid, lower-case; undefined when absent or not a UUID. */
  readonly systemUuid?: string;
  /** `virsh list --all --uuid --name`: domain UUID -> name. */
  readonly listed: ReadonlyMap<string, string>;
  readonly domstats: readonly DomainStats[];
  readonly versions: Versions;
  /**
   * Per listed domain UUID, the text of its consolidator metadata, or undefined when it has none;
   * undefined as a whole when metadata was not read.
   */
  readonly metadataByUuid?: ReadonlyMap<string, string | undefined>;
}

/**
 * Parses observeScript's stdout (with the SSH command's exit status and stderr, for messages). Throws
 * COMMAND_FAILED when any virsh call failed (non-zero exit, an `error:` line, a missing end marker) and
 * OBSERVATION_INCONSISTENT when a domain `virsh list` named is missing from domstats. A domain in
 * domstats but not in the list (it appeared in between) is fine.
 */
export function parseObservation(host: HostId, r: { readonly stdout: string; readonly stderr: string; readonly exitCode: number | null }, readPinnedMetadata: boolean): ObservationOutput {
  const sections = splitSections(r.stdout);
  const fail = (what: string, why: string, details: ErrorDetails = {}): ConsolidatorError =>
    new ConsolidatorError('COMMAND_FAILED', `observing ${host} failed: ${what}: ${why}`, { details: { host, failed: what, ...details } });
  if (r.exitCode !== 0 || !sections.has('end')) {
    throw fail('observation script', `${r.exitCode === 0 ? 'ended early' : `exit ${r.exitCode ?? 'by signal'}`}${stderrSummary(r.stderr)}`, { exitCode: r.exitCode ?? 'signal' });
  }

  // virsh list: exit 0, and nothing but `UUID NAME` lines.
  const listText = sections.get('domains') ?? '';
  const listStatus = sections.get('exit list')?.trim();
  const odd = listText.split('\n').filter((l) => l.trim() !== '' && !UUID_NAME_LINE.test(l));
  if (listStatus !== '0' || odd.length > 0) {
    const reasons = [...(listStatus !== '0' ? [statusText(listStatus)] : []), ...odd.map((l) => l.replace(/^error: /, ''))];
    throw fail('virsh list', reasons.join('; '), { exitStatus: listStatus ?? 'missing' });
  }
  const listed = parseUuidNameList(listText);

  // The batch: exit 0, no error line, every marker printed.
  checkVirshCall(sections, 'batch', ['domstats', 'batch-end'], fail, 'virsh version; domstats', () => false);
  const domstats = parseDomstatsRaw(sections.get('domstats') ?? '');
  const reported = new Set(domstats.map((d) => d.name));
  const missing = [...listed.values()].filter((name) => !reported.has(name));
  if (missing.length > 0) {
    throw new ConsolidatorError(
      'OBSERVATION_INCONSISTENT',
      `observing ${host} failed: virsh list named ${missing.join(', ')} but domstats did not report ${missing.length === 1 ? 'it' : 'them'} (listed: ${[...listed.values()].join(', ')}; domstats: ${[...reported].join(', ') || 'none'})`,
      { details: { host, failed: 'virsh list vs domstats', missing: missing.join(',') } },
    );
  }

  const metadataByUuid = readPinnedMetadata ? metadataOf(sections, listed, fail) : undefined;
  const systemUuid = parseProductUuid(sections.get('sysuuid') ?? '');
  return {
    stat: parseProcStat(sections.get('stat') ?? ''),
    meminfo: parseMeminfo(sections.get('meminfo') ?? ''),
    uptimeSeconds: parseUptimeSeconds(sections.get('uptime') ?? ''),
    ...(systemUuid !== undefined ? { systemUuid } : {}),
    listed,
    domstats,
    versions: parseVirshVersion(sections.get('version') ?? ''),
    ...(metadataByUuid !== undefined ? { metadataByUuid } : {}),
  };
}

type Fail = (what: string, why: string, details?: ErrorDetails) => ConsolidatorError;

/** A virshCall section set: exit 0, the expected markers present, no `error:` line but the tolerated ones. */
function checkVirshCall(sections: ReadonlyMap<string, string>, name: string, markers: readonly string[], fail: Fail, what: string, tolerated: (line: string) => boolean): string[] {
  const status = sections.get(`exit ${name}`)?.trim();
  const errors = (sections.get(`stderr ${name}`) ?? '').split('\n').filter((l) => l.startsWith('error:'));
  const bad = errors.filter((l) => !tolerated(l));
  const absent = markers.filter((mk) => !sections.has(mk));
  if (status !== '0' || bad.length > 0 || absent.length > 0) {
    const reasons = [
      ...(status !== '0' ? [statusText(status)] : []),
      ...bad.map((l) => l.replace(/^error: /, '')),
      ...(absent.length > 0 && bad.length === 0 ? [`no ${absent.join(', ')} section`] : []),
    ];
    throw fail(what, reasons.join('; '), { exitStatus: status ?? 'missing' });
  }
  return errors;
}

/** The metadata batch: each listed domain has its section; empty sections match "metadata not found" errors one for one. */
function metadataOf(sections: ReadonlyMap<string, string>, listed: ReadonlyMap<string, string>, fail: Fail): Map<string, string | undefined> {
  const byUuid = new Map<string, string | undefined>();
  if (listed.size === 0) return byUuid;
  const markers = [...[...listed.keys()].map((u) => `metadata ${u}`), 'metadata-end'];
  const absentErrors = checkVirshCall(sections, 'metadata', markers, fail, 'virsh metadata', (l) => METADATA_ABSENT.test(l)).length;
  let empty = 0;
  for (const uuid of listed.keys()) {
    const text = sections.get(`metadata ${uuid}`) ?? '';
    if (text.trim() === '') empty++;
    byUuid.set(uuid, text.trim() === '' ? undefined : text);
  }
  if (empty !== absentErrors) {
    throw fail('virsh metadata', `${empty} domain(s) printed no metadata but virsh reported ${absentErrors} "metadata not found"`);
  }
  return byUuid;
}

/** /sys/class/dmi/id/product_uuid's content, lower-case; undefined unless it is one UUID. */
export function parseProductUuid(text: string): string | undefined {
  const value = text.trim().toLowerCase();
  return UUID.test(value) ? value : undefined;
}

// ---------------------------------------------------------------------------------------------
// Resident guests: the check just before a power-off.

/**
 * Two independent views of what runs on the host. (1) libvirt: `virsh list --all` with states.
 * (2) the host itself: QEMU processes in this host's network namespace (`pgrep -a qemu` matches the
 * process name: qemu-system-*, qemu-kvm; a guest is a QEMU with `-name`; the namespace
 * filter keeps the lab's hosts, which share one PID namespace, apart, and changes nothing on a real
 * host, where libvirt starts QEMU in the host's own network namespace), plus libvirt's run-state
 * directory (/run/libvirt/qemu/NAME.xml and NAME.pid, which libvirtd writes for each active domain,
 * with whether the pid is alive).
 */
export function residentGuestsScript(): string {
  const m = SECTION_MARKER;
  return [
    'out=$(virsh list --all 2>&1); status=$?',
    `echo '${m} list'; printf '%s\\n' "$out"`,
    `echo '${m} exit list'; echo "$status"`,
    // A run-state directory that exists but cannot be listed hides guests: the check fails.
    `if [ -d /run/libvirt/qemu ] && ! ls /run/libvirt/qemu >/dev/null 2>&1; then echo '${m} runstate-unreadable'; fi`,
    `echo '${m} runstate'`,
    'for f in /run/libvirt/qemu/*.xml /run/libvirt/qemu/*.pid; do',
    '  [ -f "$f" ] || continue',
    '  b=${f##*/}',
    // libvirtd's own pid file, beside the domains' ones.
    '  [ "$b" = driver.pid ] && [ ! -e /run/libvirt/qemu/driver.xml ] && continue',
    '  case $b in',
    '    *.xml) printf \'xml %s\\n\' "${b%.xml}" ;;',
    '    *.pid) p=$(cat "$f" 2>/dev/null); if [ -n "$p" ] && [ -d "/proc/$p" ]; then a=alive; else a=dead; fi; printf \'pid %s %s %s\\n\' "${b%.pid}" "${p:--}" "$a" ;;',
    '  esac',
    'done',
    'procs=$(pgrep -a qemu); status=$?',
    'me=$(readlink /proc/$$/ns/net 2>/dev/null)',
    `echo '${m} qemu'`,
    // A process is left out only when its network namespace is known to be another one: a link that
    // cannot be read (another user's process) counts it in.
    'printf \'%s\\n\' "$procs" | while IFS= read -r line; do',
    '  p=${line%% *}',
    '  [ -n "$p" ] || continue',
    '  ns=$(readlink "/proc/$p/ns/net" 2>/dev/null)',
    '  if [ -z "$me" ] || [ -z "$ns" ] || [ "$ns" = "$me" ]; then printf \'%s\\n\' "$line"; fi',
    'done',
    // pgrep: 0 found, 1 none, anything else failed.
    `echo '${m} exit qemu'; echo "$status"`,
    `echo '${m} end'`,
  ].join('\n');
}

/** One guest as the host itself shows it: a QEMU process and/or libvirt's run-state entries. */
interface HostSideGuest {
  qemuPid?: string;
  runStateXml?: boolean;
  runStatePid?: { readonly pid: string; readonly alive: boolean };
}

/**
 * The names of the guests that are not shut off, when libvirt and the host agree; otherwise
 * GUEST_COUNT_UNCERTAIN naming both lists. Also GUEST_COUNT_UNCERTAIN when either view failed.
 */
export function parseResidentGuests(host: HostId, r: { readonly stdout: string; readonly stderr: string; readonly exitCode: number | null }): string[] {
  const sections = splitSections(r.stdout);
  const uncertain = (why: string, details: ErrorDetails = {}): ConsolidatorError =>
    new ConsolidatorError('GUEST_COUNT_UNCERTAIN', `cannot tell which guests run on ${host}: ${why}`, { details: { host, ...details } });
  if (r.exitCode !== 0 || !sections.has('end')) {
    throw uncertain(`the check ${r.exitCode === 0 ? 'ended early' : `exited ${r.exitCode ?? 'by signal'}`}${stderrSummary(r.stderr)}`, { failed: 'script' });
  }  if (sections.has('runstate-unreadable')) throw uncertain('libvirt\'s run-state directory /run/libvirt/qemu cannot be read by the SSH user', { failed: 'runstate' });

  const listStatus = sections.get('exit list')?.trim();
  const listText = sections.get('list') ?? '';
  if (listStatus !== '0' || /^error:/m.test(listText)) {
    const errors = listText.split('\n').filter((l) => l.startsWith('error:')).map((l) => l.replace(/^error: /, ''));
    throw uncertain(`virsh list --all failed (${statusText(listStatus)}${errors.length > 0 ? `: ${errors.join('; ')}` : ''})`, { failed: 'virsh list' });
  }
  const libvirt = parseVirshListAll(listText, (line) => uncertain(`unreadable virsh list line ${JSON.stringify(line)}`, { failed: 'virsh list' }));
  const qemuStatus = sections.get('exit qemu')?.trim();
  if (qemuStatus !== '0' && qemuStatus !== '1') throw uncertain(`pgrep -a qemu failed (${statusText(qemuStatus)})`, { failed: 'pgrep' });

  const hostSide = new Map<string, HostSideGuest>();
  const entry = (name: string): HostSideGuest => {
    let e = hostSide.get(name);
    if (!e) hostSide.set(name, (e = {}));
    return e;
  };
  for (const line of (sections.get('runstate') ?? '').split('\n')) {
    const xml = /^xml (\S+)$/.exec(line);
    const pid = /^pid (\S+) (\S+) (alive|dead)$/.exec(line);
    if (xml?.[1]) entry(xml[1]).runStateXml = true;
    else if (pid?.[1] && pid[2] && pid[3]) entry(pid[1]).runStatePid = { pid: pid[2], alive: pid[3] === 'alive' };
  }
  for (const line of (sections.get('qemu') ?? '').split('\n')) {
    const m = /^(\d+)\s+(.*)$/.exec(line);
    if (!m?.[1] || m[2] === undefined) continue;
    const name = qemuGuestName(m[2]);
    // Other QEMU tools (qemu-img, qemu-nbd, ...) run no guest.
    if (name !== undefined) entry(name).qemuPid = m[1];
  }

  const resident = [...libvirt].filter(([, state]) => state !== 'shut off').map(([name]) => name).sort();
  const seen = [...hostSide.keys()].sort();
  const stale = seen.filter((n) => {
    const e = hostSide.get(n);
    return e?.runStatePid !== undefined && !e.runStatePid.alive;
  });
  const agree = stale.length === 0 && resident.length === seen.length && resident.every((n, i) => n === seen[i]);
  if (!agree) {
    const evidence = seen.map((n) => `${n} (${describeHostSide(hostSide.get(n) ?? {})})`);
    throw uncertain(
      `libvirt and the host disagree: virsh list --all shows ${resident.length > 0 ? resident.map((n) => `${n} (${libvirt.get(n)})`).join(', ') : 'no guest'} not shut off; the host shows ${evidence.length > 0 ? evidence.join(', ') : 'no QEMU process and no run-state entry'}`,
      { failed: 'sources disagree', libvirt: resident.join(','), hostSide: seen.join(',') },
    );
  }
  return resident;
}

function describeHostSide(e: HostSideGuest): string {
  const parts: string[] = [];
  parts.push(e.qemuPid !== undefined ? `QEMU pid ${e.qemuPid}` : 'no QEMU process');
  if (e.runStateXml) parts.push('run-state xml');
  if (e.runStatePid) parts.push(`run-state pid ${e.runStatePid.pid} ${e.runStatePid.alive ? 'alive' : 'dead'}`);
  return parts.join(', ');
}

/** The guest name of a QEMU command line: `-name guest=NAME,...` (libvirt since 1.3) or `-name NAME`. */
export function qemuGuestName(commandLine: string): string | undefined {
  const m = /(?:^|\s)-name\s+(?:guest=)?((?:[^,\s]|,,)+)/.exec(commandLine);
  return m?.[1]?.replace(/,,/g, ',');
}

/** `virsh list --all` as a table: name -> state as virsh prints it (`running`, `shut off`, ...). */
export function parseVirshListAll(text: string, unreadable: (line: string) => Error): Map<string, string> {
  const byName = new Map<string, string>();
  const lines = text.split('\n');
  const ruler = lines.findIndex((l) => /^-{5,}/.test(l.trim()));
  if (ruler < 0) throw unreadable(lines.find((l) => l.trim() !== '') ?? '');
  for (const line of lines.slice(ruler + 1)) {
    if (line.trim() === '') continue;
    const m = /^\s*(\d+|-)\s+(\S+)\s+(\S.*?)\s*$/.exec(line);
    if (!m?.[2] || !m[3]) throw unreadable(line);
    byName.set(m[2], m[3]);
  }
  return byName;
}

function statusText(status: string | undefined): string {
  return status === undefined ? 'no exit status (did not run)' : `exit ${status}`;
}

function stderrSummary(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  const errors = lines.filter((l) => l.startsWith('error:'));
  const shown = (errors.length > 0 ? errors : lines).slice(0, 3).map((l) => l.replace(/^error: /, ''));
  return shown.length > 0 ? `: ${shown.join('; ')}` : '';
}
