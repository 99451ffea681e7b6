import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { MigrateOptions, MigrationProgress } from '../../src/drivers/hypervisor/hypervisor-driver.js';
import { isConsolidatorError } from '../../src/errors.js';
import { Lab } from '../lab/lab.js';
import { labDrivers, MIGRATE_DEFAULTS, never } from '../lab/lab-drivers.js';
import { pause } from '../helpers/wait-for.js';

/**
 * A guest that never stops dirtying memory (test/lab/dirty-rom.ts: an option ROM looping over 4 MiB
 * of RAM, one write per page, as fast as the vCPU goes) under a 1 MiB/s cap: every pre-copy pass
 * finds the whole region dirty again (4 MiB, far above what 300 ms of downtime at 1 MiB/s allows),
 * so plain pre-copy never converges. Each non-convergence policy must then do what it says.
 */
const REGION_MIB = 4;
const CAP_MIBPS = 1;
const DEADLINE_MS = 6_000;
const DIRTY: MigrateOptions = { ...MIGRATE_DEFAULTS, bandwidthMiBps: CAP_MIBPS, convergenceDeadlineMs: DEADLINE_MS, timeoutMs: 60_000 };

describe('non-converging migrations (a guest that keeps dirtying memory, 1 MiB/s cap)', () => {
  let lab: Lab;
  let drivers: ReturnType<typeof labDrivers>;
  let rom: string;
  const h = (n: number) => lab.host(n).name;
  const guests: string[] = [];

  beforeAll(async () => {
    lab = await Lab.start({ hosts: 2 });
    rom = await lab.writeDirtyRom('dirty', { regionStartMiB: 2, regionMiB: REGION_MIB, delayLoops: 1 });
    drivers = labDrivers(lab);
  });

  afterEach(async () => {
    // A dirtying guest keeps a whole core busy: never leave one behind.
    for (const g of guests.splice(0)) await lab.removeGuest(g);
  });

  afterAll(async () => {
    await drivers?.runner.close();
    await lab?.down();
  });

  async function dirtyGuest(name: string) {
    guests.push(name);
    await lab.startGuest(1, { name, memoryMiB: 64, optionRom: rom });
    // The ROM runs: the first dirtied dword counts up.
    const read = async () => Number.parseInt(/0x([0-9a-f]+)/.exec(await lab.virsh(1, ['qemu-monitor-command', name, '--hmp', 'xp /1wx 0x200000']))?.[1] ?? '0', 16);
    const first = await read();
    await pause(200);
    expect(await read()).toBeGreaterThan(first);
  }

  it('abort: pre-copy keeps going round; at the deadline the migration is aborted and the VM runs on the source', async () => {
    await dirtyGuest('nc-abort');
    const progress: MigrationProgress[] = [];
    // A longer deadline here: the first pass alone sends the 4 MiB region at 1 MiB/s, and this test
    // wants to see later passes find it dirty again.
    const options: MigrateOptions = { ...DIRTY, nonConvergence: 'abort', convergenceDeadlineMs: 2 * DEADLINE_MS };
    const error = await drivers.hypervisor.migrate('nc-abort', h(1), h(2), options, never(), (p) => progress.push(p)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isConsolidatorError(error, 'MIGRATION_FAILED')).toBe(true);
    expect((error as Error).message).toMatch(/did not converge within 12000 ms, aborted per policy/);
    expect((error as Error).message).toContain(`VM is running`);
    // More than one pass, and every later pass found MiBs dirty again: it was not converging.
    const seen = JSON.stringify(progress.map((p) => [p.iteration, p.dataRemainingMiB]));
    const later = progress.filter((p) => (p.iteration ?? 0) >= 2);
    expect(later.length, seen).toBeGreaterThan(0);
    expect(Math.max(...later.map((p) => p.dataRemainingMiB ?? 0)), seen).toBeGreaterThan(1);
    expect((await lab.domains(1)).get('nc-abort')).toBe('running');
    expect((await lab.domains(2)).has('nc-abort')).toBe(false);
  });

  it('pause: at the deadline the guest is paused, the migration finishes offline, and it runs again on the destination', async () => {
    await dirtyGuest('nc-pause');
    const progress: MigrationProgress[] = [];
    const result = await drivers.hypervisor.migrate('nc-pause', h(1), h(2), { ...DIRTY, nonConvergence: 'pause' }, never(), (p) => progress.push(p));
    expect(result).toMatchObject({ state: 'running', nonConvergenceApplied: 'pause' });
    expect(result.durationMs).toBeGreaterThan(DEADLINE_MS);
    expect(progress.some((p) => p.phase === 'paused')).toBe(true);
    expect((await lab.domains(2)).get('nc-pause')).toBe('running');
    expect((await lab.domains(1)).has('nc-pause')).toBe(false);
    guests.push('nc-pause');
  });

  it('postcopy: at the deadline the migration switches to post-copy and completes', async () => {
    await dirtyGuest('nc-postcopy');
    const result = await drivers.hypervisor.migrate('nc-postcopy', h(1), h(2), { ...DIRTY, nonConvergence: 'postcopy' }, never());
    expect(result).toMatchObject({ state: 'running', nonConvergenceApplied: 'postcopy' });
    expect(result.durationMs).toBeGreaterThan(DEADLINE_MS);
    expect(drivers.logger.count('migration switched to post-copy', { vm: 'nc-postcopy' })).toBe(1);
    expect((await lab.domains(2)).get('nc-postcopy')).toBe('running');
    expect((await lab.domains(1)).has('nc-postcopy')).toBe(false);
    // The guest still runs its loop on the destination after post-copy.
    const read = async () => Number.parseInt(/0x([0-9a-f]+)/.exec(await lab.virsh(2, ['qemu-monitor-command', 'nc-postcopy', '--hmp', 'xp /1wx 0x200000']))?.[1] ?? '0', 16);
    const first = await read();
    await pause(200);
    expect(await read()).toBeGreaterThan(first);
    guests.push('nc-postcopy');
  });

  it('auto-converge: QEMU throttles the guest more and more; when that is not enough, the timeout aborts and the VM stays on the source', async () => {
    await dirtyGuest('nc-auto');
    const progress: MigrationProgress[] = [];
    const error = await drivers.hypervisor
      .migrate('nc-auto', h(1), h(2), { ...DIRTY, nonConvergence: 'auto-converge', timeoutMs: 20_000 }, never(), (p) => progress.push(p))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const throttles = progress.map((p) => p.autoConvergeThrottlePercent ?? 0);
    expect(Math.max(...throttles)).toBeGreaterThanOrEqual(20);
    // This guest dirties its whole region within any slice of CPU it gets, so even a 99 % throttle
    // cannot make it converge: the timeout is what ends the migration.
    expect(isConsolidatorError(error, 'MIGRATION_TIMEOUT')).toBe(true);
    expect((error as Error).message).toMatch(/auto-converge throttled the guest up to \d+ %/);
    expect((await lab.domains(1)).get('nc-auto')).toBe('running');
    expect((await lab.domains(2)).has('nc-auto')).toBe(false);
  });
});
