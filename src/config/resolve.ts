import { resolve as resolvePath } from 'node:path';
import type { PowerModel } from '../model/snapshot.js';
import { DEFAULTS } from './defaults.js';
import type { Policy, PowerPathName } from './schema.js';

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

export interface ResolvedBmc {
  readonly address?: string;
  readonly port: number;
  readonly user?: string;
  readonly passwordFile?: string;
  readonly passwordFileFrom?: readonly (string | number)[];
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
   * power.chain, else [power.driver]. Empty with the simulated drivers (one simulated datacenter).
   */
  readonly powerChain: readonly PowerPathName[];
  /** Where powerChain comes from in the policy, for error positions. */
  readonly powerChainFrom: readonly (string | number)[];
  readonly powerModel: PowerModel;
  readonly bootSeconds: number;
  readonly reserve: { readonly cpus: number; readonly memoryMiB: number };
}

const IPMI_PORT = 623;

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
    const resolvedBmc: ResolvedBmc = {
      port: bmc.port ?? IPMI_PORT,
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
    const chain = resolveChain(policy, host.power?.chain, d.power?.chain, index);
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
): { paths: readonly PowerPathName[]; from: readonly (string | number)[] } {
  if (own !== undefined) return { paths: own, from: ['hosts', index, 'power', 'chain'] };
  if (defaults !== undefined) return { paths: defaults, from: ['hostDefaults', 'power', 'chain'] };
  if (policy.power.chain !== undefined) return { paths: policy.power.chain, from: ['power', 'chain'] };
  const driver = policy.power.driver;
  return { paths: driver === 'simulated' ? [] : [driver], from: ['power', 'driver'] };
}
