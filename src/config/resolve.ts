import { resolve as resolvePath } from 'node:path';
import type { PowerModel } from '../model/snapshot.js';
import { DEFAULTS } from './defaults.js';
import type { Policy, PowerDriverName, PowerPathName } from './schema.js';

export interface ResolvedSsh {
  readonly address: string;
  readonly port: number;
  readonly user: string;
  readonly keyFile?: string;
  readonly knownHostsFile?: string;
  /** Where keyFile / knownHostsFile were written in the policy, for error positions. */
  readonly keyFileFrom?: readonly (string | number)[];
  readonly knownHostsFileFrom?: readonly (string | number)[];
}

/** How a Redfish BMC's HTTPS certificate is checked (bmc.redfish, hostDefaults merged key by key). */
export interface ResolvedRedfish {
  readonly caFile?: string;
  readonly caFileFrom?: readonly (string | number)[];
  /** Lower-case hex without colons. */
  readonly certificateSha256?: string;
  readonly insecureSkipVerify: boolean;
  readonly systemId?: string;
}

export interface ResolvedBmc {
  /** The power driver of this host: bmc.driver, else power.driver. */
  readonly driver: PowerDriverName;
  readonly address?: string;
  /** bmc.port, else the driver's standard port (623 for IPMI, 443 for Redfish). */
  readonly port: number;
  /**
   * The port each protocol uses: bmc.port for the host's own driver, the standard port for the other
   * (a chain such as [redfish, ipmitool] reaches one BMC on 443 and 623).
   */
  readonly ipmiPort: number;
  readonly redfishPort: number;
  readonly user?: string;
  readonly passwordFile?: string;
  readonly passwordFileFrom?: readonly (string | number)[];
  readonly redfish: ResolvedRedfish;
}

export interface ResolvedWol {
  /** As written in the policy (checked by the policy's semantics: six hex pairs). */
  readonly mac: string;
  readonly broadcast?: string;
  readonly port: number;
  readonly interface?: string;
}

/** A host with hostDefaults applied: what drivers and the snapshot builder use. */
export interface ResolvedHost {
  readonly name: string;
  readonly index: number;
  readonly exclude: boolean;
  readonly labels: Readonly<Record<string, string>>;
  readonly ssh: ResolvedSsh;
  readonly bmc: ResolvedBmc;
  /** Wake-on-LAN settings, when the host has a wol.mac. */
  readonly wol?: ResolvedWol;
  /**
   * The power paths of the host, in order: hosts[].power.chain, else hostDefaults.power.chain, else
   * power.chain, else [bmc.driver, else power.driver]. Empty with the simulated drivers (one simulated datacenter).
   */
  readonly powerChain: readonly PowerPathName[];
  /** Where powerChain comes from in the policy, for error positions. */
  readonly powerChainFrom: readonly (string | number)[];
  readonly powerModel: PowerModel;
  readonly bootSeconds: number;
  readonly reserve: { readonly cpus: number; readonly memoryMiB: number };
}

const IPMI_PORT = 623;
const HTTPS_PORT = 443;

/**
 * Applies hostDefaults to every host. Relative file paths are read from `baseDir` (the policy file's
 * folder), so a policy and its secrets can live together in /etc/consolidator.
 */
export function resolveHosts(policy: Policy, baseDir: string): ResolvedHost[] {
  const d = policy.hostDefaults;
  const file = (p: string) => resolvePath(baseDir, p);
  return policy.hosts.map((host, index) => {
    const ssh = { ...d.ssh, ...host.ssh };
    const bmc = { ...d.bmc, ...host.bmc };
    const power = { ...d.power, ...host.power };
    const from = (section: 'ssh' | 'bmc', key: string): (string | number)[] =>
      (host[section] as Record<string, unknown> | undefined)?.[key] !== undefined ? ['hosts', index, section, key] : ['hostDefaults', section, key];
    const resolvedSsh: ResolvedSsh = {
      address: ssh.address ?? host.name,
      port: ssh.port ?? DEFAULTS.host.sshPort,
      user: ssh.user ?? DEFAULTS.host.sshUser,
      ...(ssh.keyFile !== undefined ? { keyFile: file(ssh.keyFile), keyFileFrom: from('ssh', 'keyFile') } : {}),
      ...(ssh.knownHostsFile !== undefined ? { knownHostsFile: file(ssh.knownHostsFile), knownHostsFileFrom: from('ssh', 'knownHostsFile') } : {}),
    };
    const driver: PowerDriverName = bmc.driver ?? policy.power.driver;
    const redfish = { ...d.bmc?.redfish, ...host.bmc?.redfish };
    const redfishFrom = (key: string): (string | number)[] =>
      host.bmc?.redfish?.[key as keyof typeof redfish] !== undefined ? ['hosts', index, 'bmc', 'redfish', key] : ['hostDefaults', 'bmc', 'redfish', key];
    const resolvedRedfish: ResolvedRedfish = {
      insecureSkipVerify: redfish.insecureSkipVerify ?? false,
      ...(redfish.caFile !== undefined ? { caFile: file(redfish.caFile), caFileFrom: redfishFrom('caFile') } : {}),
      ...(redfish.certificateSha256 !== undefined ? { certificateSha256: redfish.certificateSha256.replaceAll(':', '').toLowerCase() } : {}),
      ...(redfish.systemId !== undefined ? { systemId: redfish.systemId } : {}),
    };
    const resolvedBmc: ResolvedBmc = {
      driver,
      port: bmc.port ?? (driver === 'redfish' ? HTTPS_PORT : IPMI_PORT),
      ipmiPort: driver === 'ipmitool' ? (bmc.port ?? IPMI_PORT) : IPMI_PORT,
      redfishPort: driver === 'redfish' ? (bmc.port ?? HTTPS_PORT) : HTTPS_PORT,
      redfish: resolvedRedfish,
      ...(bmc.address !== undefined ? { address: bmc.address } : {}),
      ...(bmc.user !== undefined ? { user: bmc.user } : {}),
      ...(bmc.passwordFile !== undefined ? { passwordFile: file(bmc.passwordFile), passwordFileFrom: from('bmc', 'passwordFile') } : {}),
    };
    const wol = { ...d.wol, ...host.wol };
    const resolvedWol: ResolvedWol | undefined =
      wol.mac === undefined
        ? undefined
        : {
            mac: wol.mac,
            port: wol.port ?? DEFAULTS.host.wolPort,
            ...(wol.broadcast !== undefined ? { broadcast: wol.broadcast } : {}),
            ...(wol.interface !== undefined ? { interface: wol.interface } : {}),
          };
    const driverFrom = host.bmc?.driver !== undefined ? ['hosts', index, 'bmc', 'driver'] : d.bmc?.driver !== undefined ? ['hostDefaults', 'bmc', 'driver'] : ['power', 'driver'];
    const chain = resolveChain(policy, host.power?.chain, d.power?.chain, index, { driver, from: driverFrom });
    const powerModel: PowerModel = power.curveWatts
      ? { kind: 'curve', wattsAtTenths: power.curveWatts }
      : { kind: 'linear', idleWatts: power.idleWatts ?? DEFAULTS.host.idleWatts, maxWatts: power.maxWatts ?? DEFAULTS.host.maxWatts };
    return {
      name: host.name,
      index,
      exclude: host.exclude,
      labels: { ...d.labels, ...host.labels },
      ssh: resolvedSsh,
      bmc: resolvedBmc,
      ...(resolvedWol !== undefined ? { wol: resolvedWol } : {}),
      powerChain: chain.paths,
      powerChainFrom: chain.from,
      powerModel,
      bootSeconds: power.bootSeconds ?? policy.power.expectedBootSeconds,
      reserve: { cpus: host.reserve?.cpus ?? d.reserve?.cpus ?? 0, memoryMiB: host.reserve?.memoryMiB ?? d.reserve?.memoryMiB ?? 0 },
    };
  });
}

function resolveChain(
  policy: Policy,
  own: readonly PowerPathName[] | undefined,
  defaults: readonly PowerPathName[] | undefined,
  index: number,
  single: { readonly driver: PowerDriverName; readonly from: readonly (string | number)[] },
): { paths: readonly PowerPathName[]; from: readonly (string | number)[] } {
  if (own !== undefined) return { paths: own, from: ['hosts', index, 'power', 'chain'] };
  if (defaults !== undefined) return { paths: defaults, from: ['hostDefaults', 'power', 'chain'] };
  if (policy.power.chain !== undefined) return { paths: policy.power.chain, from: ['power', 'chain'] };
  // No chain: the host's one driver (bmc.driver, else power.driver).
  return { paths: single.driver === 'simulated' || policy.power.driver === 'simulated' ? [] : [single.driver], from: single.from };
}
