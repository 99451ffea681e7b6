import type {
  DomainInfo,
  HostObservation,
  HypervisorDriver,
  MigrateOptions,
  MigrationProgress,
  MigrationResult,
  PreflightResult,
} from '../drivers/hypervisor/hypervisor-driver.js';
import { ConsolidatorError } from '../errors.js';
import type { HostId, VmId } from '../model/ids.js';
import type { HostView } from './datacenter-views.js';
import type { SimulatedDatacenter } from './simulated-datacenter.js';
import type { SimulatedMigration } from './simulated-migration.js';

const MS_PER_SECOND = 1000;
const SIMULATED_VERSION = 'simulated';

/**
 * The hypervisor port over a SimulatedDatacenter. A migration really moves the VM, once the caller has
 * advanced the datacenter's clock past its duration; migrate() resolves then. A powered-off, booting
 * or vanished host refuses inspection as an unreachable host would. Scripted faults: see
 * SimulatedDatacenter.faults (failNextMigration, vanishHost).
 */
export class SimulatedHypervisor implements HypervisorDriver {
  private readonly datacenter: SimulatedDatacenter;

  constructor(deps: { readonly datacenter: SimulatedDatacenter }) {
    this.datacenter = deps.datacenter;
  }

  inspect(host: HostId, signal: AbortSignal): Promise<HostObservation> {
    return settle(() => {
      const view = this.reachableHost(host, signal);
      return {
        host,
        atMs: this.datacenter.nowMs,
        capacity: { cpu: view.spec.cpu, memory: view.spec.memoryMiB },
        cpuCores: view.cpuUsed,
        memoryUsedMiB: view.memoryUsedMiB,
        domains: domainsOf(view),
        versions: { libvirt: SIMULATED_VERSION, qemu: SIMULATED_VERSION },
      };
    });
  }

  listDomains(host: HostId, signal: AbortSignal): Promise<readonly DomainInfo[]> {
    return settle(() => domainsOf(this.reachableHost(host, signal)));
  }

  /** The datacenter's own truth: every VM on the host, including one migrating in or out. */
  residentGuests(host: HostId, signal: AbortSignal): Promise<readonly VmId[]> {
    return settle(() => this.reachableHost(host, signal).vms.map((vm) => vm.id));
  }


  preflight(vm: VmId, from: HostId, to: HostId, signal: AbortSignal): Promise<PreflightResult> {
    return settle(() => {
      throwIfAborted(signal);
      const problems: string[] = [];
      if (this.datacenter.vmHost(vm) !== from) problems.push(`${vm} does not run on ${from}`);
      const target = this.datacenter.hostView(to);
      if (target === undefined) problems.push(`no host ${to}`);
      else if (target.vanished) problems.push(`${to} is unreachable`);
      else if (target.power !== 'on') problems.push(`${to} is ${target.power === 'off' ? 'powered off' : 'booting'}`);
      if (from === to) problems.push('source and destination are the same host');
      return { ok: problems.length === 0, problems };
    });
  }

  migrate(
    vm: VmId,
    from: HostId,
    to: HostId,
    options: MigrateOptions,
    signal: AbortSignal,
    onProgress?: (progress: MigrationProgress) => void,
  ): Promise<MigrationResult> {
    return new Promise<MigrationResult>((resolve, reject) => {
      if (signal.aborted) {
        reject(aborted(`migration of ${vm}`));
        return;
      }
      const scripted = this.datacenter.takeMigrationFailure();
      if (scripted !== undefined) {
        reject(new ConsolidatorError('MIGRATION_FAILED', `migration of ${vm} from ${from} to ${to} failed: ${scripted}`, { details: { vm, from, to } }));
        return;
      }
      if (this.datacenter.hostView(from)?.vanished === true) {
        reject(new ConsolidatorError('MIGRATION_FAILED', `migration of ${vm}: ${from} is unreachable`, { details: { vm, from, to } }));
        return;
      }
      const onAbort = (): void => {
        this.datacenter.cancelMigration(vm, 'aborted');
      };
      const cleanup = (): void => signal.removeEventListener('abort', onAbort);
      const reason = this.datacenter.startMigration(vm, from, to, {
        bandwidthMiBps: options.bandwidthMiBps,
        listener: {
          done: (m: SimulatedMigration) => {
            cleanup();
            onProgress?.({ vm, elapsedMs: durationMs(m), phase: 'precopy', dataRemainingMiB: 0 });
            resolve({ durationMs: durationMs(m), state: 'running' });
          },
          cancelled: (_m: SimulatedMigration, why: string) => {
            cleanup();
            if (why === 'aborted') reject(aborted(`migration of ${vm}`));
            else if (why === 'timeout') {
              reject(new ConsolidatorError('MIGRATION_TIMEOUT', `migration of ${vm} to ${to} timed out after ${options.timeoutMs} ms`, { details: { vm, from, to } }));
            } else reject(new ConsolidatorError('MIGRATION_FAILED', `migration of ${vm} to ${to} failed: ${why}`, { details: { vm, from, to } }));
          },
        },
      });
      this.datacenter.settle();
      if (reason !== undefined) {
        reject(new ConsolidatorError('MIGRATION_FAILED', `migration of ${vm} from ${from} to ${to} refused: ${reason}`, { details: { vm, from, to, reason } }));
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      if (options.timeoutMs > 0) {
        this.datacenter.scheduleTimer(this.datacenter.nowSeconds + options.timeoutMs / MS_PER_SECOND, () => {
          this.datacenter.cancelMigration(vm, 'timeout');
        });
      }
      onProgress?.({ vm, elapsedMs: 0, phase: 'precopy' });
    });
  }

  abortMigration(vm: VmId, _from: HostId, signal: AbortSignal): Promise<void> {
    return settle(() => {
      throwIfAborted(signal);
      this.datacenter.cancelMigration(vm, 'aborted');
    });
  }

  private reachableHost(host: HostId, signal: AbortSignal): HostView {
    throwIfAborted(signal);
    const view = this.datacenter.hostView(host);
    if (view === undefined) {
      throw new ConsolidatorError('SSH_CONNECT', `cannot reach ${host}: no such simulated host`, { details: { host } });
    }
    if (view.vanished || view.power !== 'on') {
      const state = view.vanished ? 'unreachable' : view.power === 'off' ? 'powered off' : 'booting';
      throw new ConsolidatorError('SSH_CONNECT', `cannot reach ${host}: host is ${state}`, { details: { host, state } });
    }
    return view;
  }
}

function domainsOf(view: HostView): DomainInfo[] {
  return view.vms.map((vm) => ({
    name: vm.id,
    // libvirt shows a domain migrating in as paused on its destination.
    state: vm.incoming ? 'paused' : 'running',
    vcpus: vm.spec.vcpus,
    memoryMiB: vm.spec.memoryMiB,
    cpuCores: vm.incoming ? 0 : vm.cpuUsed,
    pinnedByMetadata: false,
  }));
}

function durationMs(m: SimulatedMigration): number {
  return (m.endsAtSeconds - m.startedAtSeconds) * MS_PER_SECOND;
}

export function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw aborted('simulated call');
}

function aborted(what: string): ConsolidatorError {
  return new ConsolidatorError('ABORTED', `${what} aborted`);
}

/** Runs a synchronous body as an async port call (errors become rejections). */
export async function settle<T>(body: () => T): Promise<T> {
  return body();
}
