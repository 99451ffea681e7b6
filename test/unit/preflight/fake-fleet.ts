import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandRunner, ExecResult, RunOptions } from '../../../src/drivers/exec/command-runner.js';
import type { DomainInfo, HypervisorDriver } from '../../../src/drivers/hypervisor/hypervisor-driver.js';
import type { PowerDriver, PowerPath } from '../../../src/drivers/power/power-driver.js';
import { ConsolidatorError } from '../../../src/errors.js';
import type { HostId } from '../../../src/model/ids.js';
import type { PowerState } from '../../../src/model/snapshot.js';
import type { CheckTarget } from '../../../src/preflight/fleet-check.js';

export const fixture = (name: string) => readFileSync(join(import.meta.dirname, '../../fixtures/virsh', name), 'utf8');
const MARKER = '@@consolidator';
export const uuidOf = (n: number) => `d31d0000-0000-4000-8000-${String(n).padStart(12, '0')}`;

/** One fake host: what it answers over SSH, its guests, and its BMC. */
export interface FakeHost {
  name: HostId;
  /** Thrown by every command (an SSH failure). */
  sshError?: ConsolidatorError;
  dmi?: string | undefined;
  version: ExecResult;
  /** Running guests and their `domblklist --details` output. */
  guests: Record<string, string>;
  /** Names this host resolves, to an address. */
  resolves: Record<string, string>;
  /** Paths that exist on this host. */
  files: Set<string>;
  power: PowerState | ConsolidatorError;
  watts?: number;
  bmcUuid?: string | undefined;
  /** Never answers a status query (ignores its signal). */
  bmcHangs?: boolean;
}

export function fakeHost(n: number, overrides: Partial<FakeHost> = {}): FakeHost {
  return {
    name: `h${n}`,
    dmi: `${uuidOf(n)}\n`,
    version: { stdout: fixture('version-daemon.txt'), stderr: '', exitCode: 0 },
    guests: {},
    resolves: { h1: '10.0.0.1', h2: '10.0.0.2', h3: '10.0.0.3' },
    files: new Set(),
    power: 'on',
    watts: 180,
    bmcUuid: uuidOf(n),
    ...overrides,
  };
}

/**
 * A CommandRunner that plays each host's answers to the commands the checks send (the shell scripts
 * are interpreted by what they contain; the integration test runs the real ones), and records them.
 */
export class FakeFleetRunner implements CommandRunner {
  readonly calls: { host: string; argv: readonly string[]; stdin?: string }[] = [];
  constructor(private readonly hosts: ReadonlyMap<HostId, FakeHost>) {}

  async run(host: HostId, argv: readonly string[], options: RunOptions): Promise<ExecResult> {
    this.calls.push({ host, argv, ...(options.stdin !== undefined ? { stdin: options.stdin } : {}) });
    const h = this.hosts.get(host);
    if (!h) throw new ConsolidatorError('SSH_CONNECT', `no such host ${host}`);
    if (h.sshError) throw h.sshError;
    const ok = (stdout: string): ExecResult => ({ stdout, stderr: '', exitCode: 0 });
    if (argv[0] === 'cat' && argv[1] === '/sys/class/dmi/id/product_uuid') {
      return h.dmi === undefined ? { stdout: '', stderr: 'cat: /sys/class/dmi/id/product_uuid: No such file or directory\n', exitCode: 1 } : ok(h.dmi);
    }
    if (argv[0] === 'virsh' && argv.includes('version')) return h.version;
    const script = argv[0] === 'sh' && argv[1] === '-c' ? (argv[2] ?? '') : '';
    if (script.includes('domblklist')) {
      const out = argv.slice(4).map((g) => {
        const text = h.guests[g];
        return text === undefined ? `${MARKER} failed ${g}\nerror: failed to get domain '${g}'` : `${MARKER} blk ${g}\n${text}`;
      });
      return ok(`${[...out, `${MARKER} end`].join('\n')}\n`);
    }
    const lines = (options.stdin ?? '').split('\n').filter((l) => l !== '');
    if (script.includes('getent')) return ok(`${[...lines.map((n) => `${n} ${h.resolves[n] ?? '-'}`), 'end'].join('\n')}\n`);
    if (script.includes('[ -e')) return ok(`${[...lines.filter((p) => !h.files.has(p)), '@@end'].join('\n')}\n`);
    throw new Error(`the fake does not know ${JSON.stringify(argv)}`);
  }
  async close(): Promise<void> {}
}

/** listDomains from the fake hosts' guests (all running); the rest of the port is not used by the check. */
export class FakeFleetHypervisor implements HypervisorDriver {
  constructor(private readonly hosts: ReadonlyMap<HostId, FakeHost>) {}
  async listDomains(host: HostId): Promise<readonly DomainInfo[]> {
    const h = this.hosts.get(host);
    if (!h || h.sshError) throw h?.sshError ?? new ConsolidatorError('SSH_CONNECT', `no such host ${host}`);
    return Object.keys(h.guests).map((name) => ({ name, state: 'running', vcpus: 1, memoryMiB: 512, pinnedByMetadata: false }));
  }
  inspect(): never {
    throw new Error('not used by the check');
  }
  residentGuests(): never {
    throw new Error('not used by the check');
  }
  preflight(): never {
    throw new Error('not used by the check');
  }
  migrate(): never {
    throw new Error('not used by the check');
  }
  abortMigration(): never {
    throw new Error('not used by the check');
  }
}

/** A BMC per fake host; records every call, so a test can assert nothing but reads reached it. */
export class FakeFleetPower implements PowerDriver {
  readonly calls: string[] = [];
  constructor(private readonly hosts: ReadonlyMap<HostId, FakeHost>) {}
  private bmc(host: HostId): FakeHost {
    const h = this.hosts.get(host);
    if (!h) throw new Error(`no BMC for ${host}`);
    return h;
  }
  async status(host: HostId): Promise<PowerState> {
    this.calls.push(`status ${host}`);
    const h = this.bmc(host);
    if (h.bmcHangs) return new Promise<PowerState>(() => undefined);
    if (h.power instanceof ConsolidatorError) throw h.power;
    return h.power;
  }
  async powerReadingWatts(host: HostId): Promise<number | undefined> {
    this.calls.push(`reading ${host}`);
    return this.bmc(host).watts;
  }
  async systemUuid(host: HostId): Promise<string | undefined> {
    this.calls.push(`uuid ${host}`);
    return this.bmc(host).bmcUuid;
  }
  async powerOn(host: HostId): Promise<void> {
    this.calls.push(`on ${host}`);
  }
  async powerOff(host: HostId): Promise<void> {
    this.calls.push(`off ${host}`);
  }
}

export function fakeFleet(hosts: readonly FakeHost[]) {
  const byName = new Map(hosts.map((h) => [h.name, h]));
  const runner = new FakeFleetRunner(byName);
  const hypervisor = new FakeFleetHypervisor(byName);
  const power = new FakeFleetPower(byName);
  const powerPaths = (): readonly PowerPath[] => [{ path: 'ipmitool', driver: power }];
  const targets: CheckTarget[] = hosts.map((h, i) => ({ name: h.name, ssh: { address: `10.0.0.${i + 1}`, port: 22, user: 'root', knownHostsFile: '/etc/consolidator/known_hosts' }, pairs: true }));
  return { runner, hypervisor, power, powerPaths, targets, byName };
}
