import { isValidHostName } from '../model/ids.js';
import { RESOURCES } from '../model/resources.js';
import { isValidTimeZone, parseCron } from './cron.js';
import type { PolicyPath } from './locate.js';
import type { ResolvedHost } from './resolve.js';
import { isIPv4 } from 'node:net';
import { parseMac } from '../model/mac-address.js';
import { POWER_ON_ONLY_PATHS, type Policy } from './schema.js';

export interface PolicyProblem {
  readonly severity: 'error' | 'warning';
  readonly path: PolicyPath;
  readonly message: string;
}

export interface FileChecks {
  /** undefined when readable, else why not ("does not exist"). */
  isReadable(path: string): Promise<string | undefined>;
  /** false when group or others may read the file. */
  isPrivate(path: string): Promise<boolean>;
  /**
   * The unit whose systemd credential the path is (/run/credentials/UNIT/NAME), when this process is not
   * that unit: such a file exists only while the service runs, so `validate` by hand cannot see it.
   */
  serviceCredentialElsewhere?(path: string): string | undefined;
}

/** Checks that the schema cannot express: relations between values, and the files secrets live in. */
export async function checkSemantics(policy: Policy, hosts: readonly ResolvedHost[], files: FileChecks): Promise<PolicyProblem[]> {
  const problems: PolicyProblem[] = [];
  const error = (path: PolicyPath, message: string) => problems.push({ severity: 'error', path, message });
  const warning = (path: PolicyPath, message: string) => problems.push({ severity: 'warning', path, message });

  checkCron(policy.schedule, ['schedule'], error);
  (['active', 'quiet'] as const).forEach((kind) => policy.windows[kind].forEach((expr, i) => checkCron(expr, ['windows', kind, i], error)));
  policy.power.proofOfBoot.windows.forEach((expr, i) => checkCron(expr, ['power', 'proofOfBoot', 'windows', i], error));
  if (!isValidTimeZone(policy.timeZone)) error(['timeZone'], `unknown time zone "${policy.timeZone}" (use an IANA name such as UTC or Europe/Paris)`);

  for (const resource of RESOURCES) {
    const t = policy.thresholds[resource];
    const base = ['thresholds', resource];
    if (t.underloadRatio >= t.targetRatio) {
      error([...base, 'underloadRatio'], `must be below targetRatio (${t.targetRatio}): a host filled to target would count as underloaded and be emptied again`);
    }
    if (t.targetRatio > t.overloadRatio) {
      error([...base, 'targetRatio'], `must not exceed overloadRatio (${t.overloadRatio}): migrations would create overloaded hosts`);
    }
  }

  const s = policy.safety;
  if (s.minHostsOn > policy.hosts.length) {
    error(['safety', 'minHostsOn'], `is ${s.minHostsOn} but the policy lists only ${policy.hosts.length} host${policy.hosts.length === 1 ? '' : 's'}`);
  }
  if (s.maxConcurrentMigrationsPerHost > s.maxConcurrentMigrations) {
    error(['safety', 'maxConcurrentMigrationsPerHost'], `must not exceed maxConcurrentMigrations (${s.maxConcurrentMigrations})`);
  }

  const firstIndexByName = new Map<string, number>();
  policy.hosts.forEach((host, i) => {
    if (!isValidHostName(host.name)) {
      error(['hosts', i, 'name'], `"${host.name}" is not a valid host name (letters, digits, '-' and '.', as in DNS)`);
    }
    const first = firstIndexByName.get(host.name);
    if (first !== undefined) error(['hosts', i, 'name'], `duplicate host name "${host.name}" (already hosts[${first}])`);
    else firstIndexByName.set(host.name, i);
    const power = { ...policy.hostDefaults.power, ...host.power };
    if (power.idleWatts !== undefined && power.maxWatts !== undefined && power.idleWatts > power.maxWatts) {
      error(['hosts', i, 'power'], `idleWatts (${power.idleWatts}) is above maxWatts (${power.maxWatts})`);
    }
  });

  checkDuplicateAddresses(policy, hosts, error);
  checkPowerChains(policy, hosts, error, warning);

  const simulatedHypervisor = policy.hypervisor.driver === 'simulated';
  const simulatedPower = policy.power.driver === 'simulated';
  if (simulatedHypervisor !== simulatedPower) {
    error(['power', 'driver'], `is ${policy.power.driver} but hypervisor.driver is ${policy.hypervisor.driver}: simulated drivers go together (one simulated datacenter)`);
  }
  policy.hosts.forEach((host, i) => {
    if (simulatedPower && host.bmc?.driver !== undefined) {
      error(['hosts', i, 'bmc', 'driver'], `is ${host.bmc.driver} but power.driver is simulated: the simulated datacenter powers every host`);
    }
  });
  if (simulatedPower && policy.hostDefaults.bmc?.driver !== undefined) {
    error(['hostDefaults', 'bmc', 'driver'], `is ${policy.hostDefaults.bmc.driver} but power.driver is simulated: the simulated datacenter powers every host`);
  }
  if (policy.simulation && !simulatedHypervisor) error(['simulation'], 'only used with the simulated drivers (hypervisor.driver and power.driver: simulated)');

  const groupNames = new Set<string>();
  policy.vmRules.antiAffinity.forEach((group, i) => {
    if (groupNames.has(group.name)) error(['vmRules', 'antiAffinity', i, 'name'], `duplicate anti-affinity group "${group.name}"`);
    groupNames.add(group.name);
  });

  await checkHostFiles(policy, hosts, files, error, warning);
  return problems;
}

/**
 * Two hosts must not share an SSH endpoint (address and port, as resolved: the address defaults to the
 * host name) nor a BMC (address and port): the daemon would observe one machine as two, and powering
 * one host off would power off the other. Each duplicate is reported at the later host, naming both.
 */
function checkDuplicateAddresses(policy: Policy, hosts: readonly ResolvedHost[], error: (path: PolicyPath, message: string) => void): void {
  const endpoint = (address: string, port: number) => {
    const bare = address.trim().toLowerCase().replace(/^\[(.*)\]$/, '$1');
    return bare.includes(':') ? `[${bare}]:${port}` : `${bare}:${port}`;
  };
  const written = (i: number, section: 'ssh' | 'bmc'): PolicyPath =>
    policy.hosts[i]?.[section]?.address !== undefined ? ['hosts', i, section, 'address'] : ['hosts', i];
  const firstSsh = new Map<string, ResolvedHost>();
  const firstBmc = new Map<string, ResolvedHost>();
  const names = new Set<string>();
  for (const host of hosts) {
    if (names.has(host.name)) continue; // a duplicate name is reported as such, not again as its default address
    names.add(host.name);
    const ssh = endpoint(host.ssh.address, host.ssh.port);
    const sshOwner = firstSsh.get(ssh);
    if (sshOwner === undefined) firstSsh.set(ssh, host);
    else {
      error(
        written(host.index, 'ssh'),
        `host "${host.name}" has the same ssh address ${ssh} as host "${sshOwner.name}" (hosts[${sshOwner.index}]): each host needs its own`,
      );
    }
    if (host.bmc.address === undefined) continue;
    // Each protocol the host's chain speaks (the host's own driver when the chain is not set). One
    // Redfish service may manage several systems (a multi-node chassis): the system id is part of it.
    const systemId = host.bmc.redfish.systemId;
    const protocols = host.powerChain.length > 0 ? host.powerChain.filter((p) => p === 'ipmitool' || p === 'redfish') : [host.bmc.driver];
    for (const protocol of new Set(protocols)) {
      const bmc =
        protocol === 'redfish'
          ? `https://${endpoint(host.bmc.address, host.bmc.redfishPort)}${systemId === undefined ? '' : ` (system ${systemId})`}`
          : endpoint(host.bmc.address, host.bmc.ipmiPort);
      const bmcOwner = firstBmc.get(bmc);
      if (bmcOwner === undefined) firstBmc.set(bmc, host);
      else if (bmcOwner !== host) {
        const what = protocol === 'redfish' ? 'Redfish service' : 'BMC';
        error(
          written(host.index, 'bmc'),
          `host "${host.name}" has the same ${what} ${bmc} as host "${bmcOwner.name}" (hosts[${bmcOwner.index}]): powering one off would power off the other`,
        );
      }
    }
  }
}

/**
 * Each host's power chain: no path twice, at least one path that reads the state (wol alone can
 * neither power off nor tell whether the host is on), and the settings each path needs; wol.mac and
 * wol.broadcast well-formed, and no MAC shared by two hosts (waking one would wake the other).
 */
function checkPowerChains(
  policy: Policy,
  hosts: readonly ResolvedHost[],
  error: (path: PolicyPath, message: string) => void,
  warning: (path: PolicyPath, message: string) => void,
): void {
  if (policy.power.driver === 'simulated') {
    const written: PolicyPath | undefined = policy.power.chain !== undefined ? ['power', 'chain'] : policy.hostDefaults.power?.chain !== undefined ? ['hostDefaults', 'power', 'chain'] : undefined;
    if (written) error(written, 'is for real power paths: the simulated drivers have one (power.driver: simulated)');
    policy.hosts.forEach((h, i) => {
      if (h.power?.chain !== undefined) error(['hosts', i, 'power', 'chain'], 'is for real power paths: the simulated drivers have one (power.driver: simulated)');
    });
    return;
  }
  if (policy.hostDefaults.wol?.mac !== undefined) error(['hostDefaults', 'wol', 'mac'], 'a MAC address belongs to one host: set wol.mac on each host');
  const macOwners = new Map<string, ResolvedHost>();
  const reported = new Set<string>();
  const once = (path: PolicyPath, message: string) => {
    const key = `${path.join('.')}\u0000${message}`;
    if (reported.has(key)) return;
    reported.add(key);
    error(path, message);
  };
  for (const host of hosts) {
    const chainAt = [...host.powerChainFrom] as PolicyPath;
    const chain = host.powerChain;
    const twice = chain.filter((p, i) => chain.indexOf(p) !== i);
    if (twice.length > 0) once(chainAt, `lists ${[...new Set(twice)].join(', ')} twice (host "${host.name}")`);
    if (!chain.some((p) => !POWER_ON_ONLY_PATHS.includes(p))) {
      once(chainAt, `host "${host.name}" has no power path that reads the power state (${chain.join(', ')} only powers on): add one such as ipmitool, to power it off and to tell whether it is on`);
    }
    const wolAt = (key: string): PolicyPath => (policy.hosts[host.index]?.wol?.[key as 'mac'] !== undefined ? ['hosts', host.index, 'wol', key] : ['hostDefaults', 'wol', key]);
    if (chain.includes('wol') && host.wol === undefined) {
      error(['hosts', host.index], `host "${host.name}" has wol in its power chain but no wol.mac (the MAC of the NIC that wakes it)`);
    }
    if (host.wol !== undefined) {
      const mac = parseMac(host.wol.mac);
      if (!mac.ok) error(wolAt('mac'), `host "${host.name}" wol.mac "${host.wol.mac}" ${mac.problem}`);
      else {
        const key = mac.bytes.toString('hex');
        const owner = macOwners.get(key);
        if (owner === undefined) macOwners.set(key, host);
        else error(wolAt('mac'), `host "${host.name}" has the same wol.mac as host "${owner.name}" (hosts[${owner.index}]): waking one would wake the other`);
      }
      if (host.wol.broadcast !== undefined && !isIPv4(host.wol.broadcast)) {
        once(wolAt('broadcast'), `host "${host.name}" wol.broadcast "${host.wol.broadcast}" is not an IPv4 address (magic packets are IPv4 broadcasts, e.g. 10.0.0.255)`);
      }
      if (!chain.includes('wol') && policy.hosts[host.index]?.wol?.mac !== undefined) {
        warning(['hosts', host.index, 'wol'], `host "${host.name}" has wol settings but wol is not in its power chain (${chain.join(', ')}): they are not used`);
      }
    }
  }
}

async function checkHostFiles(
  policy: Policy,
  hosts: readonly ResolvedHost[],
  files: FileChecks,
  error: (path: PolicyPath, message: string) => void,
  warning: (path: PolicyPath, message: string) => void,
): Promise<void> {
  const checked = new Set<string>();
  const checkFile = async (file: string, at: PolicyPath, secret: boolean) => {
    const key = `${file}\u0000${at.join('.')}`;
    if (checked.has(key)) return;
    checked.add(key);
    const problem = await files.isReadable(file);
    const unit = problem === 'does not exist' ? files.serviceCredentialElsewhere?.(file) : undefined;
    if (unit !== undefined) {
      warning(at, `${file} is a credential of ${unit}: it exists only while that service runs (systemd copies it from its LoadCredential= source), so it is checked when the daemon starts`);
      return;
    }
    if (problem !== undefined) {
      error(at, `${file} ${problem}`);
      return;
    }
    if (secret && !(await files.isPrivate(file))) warning(at, `${file} can be read by group or others; chmod 600 it`);
  };

  const needsSsh = policy.hypervisor.driver === 'virsh';
  for (const host of hosts) {
    const bmcPaths = host.powerChain.filter((p) => p === 'ipmitool' || p === 'redfish');
    const needsBmc = bmcPaths.length > 0;
    const usesRedfish = bmcPaths.includes('redfish');
    const at: PolicyPath = ['hosts', host.index];
    if (needsSsh) {
      if (host.ssh.keyFile === undefined) error(at, `host "${host.name}" has no ssh.keyFile (set it on the host or in hostDefaults.ssh)`);
      if (host.ssh.knownHostsFile === undefined) {
        error(at, `host "${host.name}" has no ssh.knownHostsFile: host keys are always verified (set it on the host or in hostDefaults.ssh)`);
      }
    }
    if (needsBmc && !host.exclude) {
      const missing = (['address', 'user', 'passwordFile'] as const).filter((k) => host.bmc[k] === undefined);
      if (missing.length > 0) {
        error(at, `host "${host.name}" has no bmc.${missing.join(', bmc.')} (its power chain has ${bmcPaths.join(' and ')}; set them on the host or in hostDefaults.bmc)`);
      }
    }
    if (usesRedfish && !host.exclude) checkRedfishTls(host, error, warning);
    if (usesRedfish && host.bmc.redfish.caFile !== undefined && host.bmc.redfish.caFileFrom) {
      await checkFile(host.bmc.redfish.caFile, host.bmc.redfish.caFileFrom, false);
    }
    if (host.ssh.keyFile !== undefined && host.ssh.keyFileFrom) await checkFile(host.ssh.keyFile, host.ssh.keyFileFrom, true);
    if (host.ssh.knownHostsFile !== undefined && host.ssh.knownHostsFileFrom) {
      await checkFile(host.ssh.knownHostsFile, host.ssh.knownHostsFileFrom, false);
    }
    if (host.bmc.passwordFile !== undefined && host.bmc.passwordFileFrom) await checkFile(host.bmc.passwordFile, host.bmc.passwordFileFrom, true);
  }
}

/** A Redfish BMC is reached over HTTPS whose certificate is verified, unless the policy says in so many words not to. */
function checkRedfishTls(host: ResolvedHost, error: (path: PolicyPath, message: string) => void, warning: (path: PolicyPath, message: string) => void): void {
  const tls = host.bmc.redfish;
  const at: PolicyPath = ['hosts', host.index];
  const verified = tls.caFile !== undefined || tls.certificateSha256 !== undefined;
  if (tls.insecureSkipVerify && verified) {
    error(at, `host "${host.name}" sets bmc.redfish.insecureSkipVerify together with caFile or certificateSha256: choose verification or none`);
  } else if (tls.insecureSkipVerify) {
    warning(at, `host "${host.name}": bmc.redfish.insecureSkipVerify is true: the BMC certificate is not verified and its password can be read by anyone on the path`);
  } else if (!verified) {
    error(
      at,
      `host "${host.name}" has no bmc.redfish.caFile nor bmc.redfish.certificateSha256: the BMC's HTTPS certificate is always verified (or set bmc.redfish.insecureSkipVerify: true, on the host or in hostDefaults.bmc)`,
    );
  }
}

function checkCron(expr: string, path: PolicyPath, error: (path: PolicyPath, message: string) => void): void {
  const parsed = parseCron(expr);
  if (!parsed.ok) error(path, `"${expr}" is not a valid cron expression: ${parsed.error}`);
}
