import { Registry, register as globalRegistry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ConsolidatorError } from '../../../src/errors.js';
import { ACTION_RESULTS } from '../../../src/model/reasons.js';
import { ACTION_TYPES, ConsolidatorMetrics, THRESHOLDS, UTILISATION_RESOURCES } from '../../../src/observability/metrics.js';
import { KEEP_REASONS } from '../../../src/planner/types.js';
import type { KeepReason } from '../../../src/planner/types.js';

function setup() {
  const registry = new Registry();
  const metrics = new ConsolidatorMetrics({ registry, version: '0.1.0' });
  return { registry, metrics };
}

/** The value of one series, looked up by its labels (undefined when the series does not exist). */
async function valueOf(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  const found = values.find((v) => {
    const keys = Object.keys(v.labels);
    return keys.length === Object.keys(labels).length && keys.every((k) => String(v.labels[k]) === labels[k]);
  });
  return found?.value;
}

async function seriesOf(registry: Registry, name: string): Promise<Record<string, string | number | undefined>[]> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  return (await metric.get()).values.map((v) => ({ ...v.labels }));
}

describe('ConsolidatorMetrics', () => {
  it('registers on the registry it is given, never on the global one', async () => {
    const { registry } = setup();
    const text = await registry.metrics();
    expect(text).toContain('# TYPE consolidator_hosts gauge');
    expect(text).toContain('consolidator_info{version="0.1.0"} 1');
    expect(globalRegistry.getSingleMetric('consolidator_hosts')).toBeUndefined();
    // A second instance on another registry does not clash (no shared state).
    expect(() => setup()).not.toThrow();
  });

  it('names every metric under consolidator_ with base-unit suffixes (kWh for the energy saved, as it is billed)', async () => {
    const { registry } = setup();
    const names = (await registry.getMetricsAsJSON()).map((m) => m.name).sort();
    expect(names).toEqual(
      [
        'consolidator_action_failures_total',
        'consolidator_actions_executed_total',
        'consolidator_actions_planned_total',
        'consolidator_actions_skipped_total',
        'consolidator_cycle_duration_seconds',
        'consolidator_cycles_total',
        'consolidator_dry_run',
        'consolidator_errors_total',
        'consolidator_energy_saved_kwh_total',
        'consolidator_estimated_power_saved_watts',
        'consolidator_host_utilisation_ratio',
        'consolidator_hosts',
        'consolidator_hosts_kept',
        'consolidator_hosts_needing_attention',
        'consolidator_hosts_powered_off_by_consolidator',
        'consolidator_info',
        'consolidator_last_successful_cycle_timestamp_seconds',
        'consolidator_leader',
        'consolidator_migration_duration_seconds',
        'consolidator_policy_threshold_ratio',
        'consolidator_power_actions_total',
        'consolidator_proof_of_boot_due_hosts',
        'consolidator_proof_of_boot_last_success_timestamp_seconds',
        'consolidator_proof_of_boot_longest_off_seconds',
        'consolidator_proof_of_boot_total',
        'consolidator_recording_bytes',
        'consolidator_recording_errors_total',
      ].sort(),
    );
  });

  it('counts proofs of boot by outcome from the closed list, and replaces the per-host proof gauge', async () => {
    const { registry, metrics } = setup();
    expect(await valueOf(registry, 'consolidator_proof_of_boot_total', { outcome: 'failed' })).toBe(0);
    metrics.countProofOfBoot('failed');
    expect(await valueOf(registry, 'consolidator_proof_of_boot_total', { outcome: 'failed' })).toBe(1);
    expect(() => metrics.countProofOfBoot('maybe' as never)).toThrow();
    metrics.setProofOfBootState({ lastSuccessMs: { h1: 1_000_000, h2: 2_000_000 }, longestOffMs: 86_400_000, dueHosts: 0 });
    metrics.setProofOfBootState({ lastSuccessMs: { h2: 3_000_000 }, longestOffMs: 172_800_000, dueHosts: 2 });
    expect(await valueOf(registry, 'consolidator_proof_of_boot_last_success_timestamp_seconds', { host: 'h2' })).toBe(3000);
    expect(await valueOf(registry, 'consolidator_proof_of_boot_last_success_timestamp_seconds', { host: 'h1' })).toBeUndefined();
    expect(await valueOf(registry, 'consolidator_proof_of_boot_longest_off_seconds')).toBe(172_800);
    expect(await valueOf(registry, 'consolidator_proof_of_boot_due_hosts')).toBe(2);
  });

  it('labels skipped and failed actions from the closed lists only', async () => {
    const { registry, metrics } = setup();
    metrics.countSkippedAction('power-off', 'GuestsPresent');
    metrics.countFailedAction('migrate', 'MIGRATION_TIMEOUT');
    expect(await valueOf(registry, 'consolidator_actions_skipped_total', { type: 'power-off', reason: 'GuestsPresent' })).toBe(1);
    expect(await valueOf(registry, 'consolidator_action_failures_total', { type: 'migrate', code: 'MIGRATION_TIMEOUT' })).toBe(1);
    expect(() => metrics.countSkippedAction('power-off', 'it still runs vm-1' as never)).toThrow();
    expect(() => metrics.countFailedAction('migrate', 'EBADTHING' as never)).toThrow();
  });

  it('starts every host state at 0 and sets all four at once', async () => {
    const { registry, metrics } = setup();
    expect(await valueOf(registry, 'consolidator_hosts', { state: 'on' })).toBe(0);
    metrics.setHostStates({ on: 7, off: 3, unknown: 1, maintenance: 2 });
    expect(await valueOf(registry, 'consolidator_hosts', { state: 'on' })).toBe(7);
    expect(await valueOf(registry, 'consolidator_hosts', { state: 'off' })).toBe(3);
    expect(await valueOf(registry, 'consolidator_hosts', { state: 'unknown' })).toBe(1);
    expect(await valueOf(registry, 'consolidator_hosts', { state: 'maintenance' })).toBe(2);
  });

  it('rejects impossible host counts without changing any state', async () => {
    const { registry, metrics } = setup();
    metrics.setHostStates({ on: 1, off: 1, unknown: 1, maintenance: 1 });
    expect(() => metrics.setHostStates({ on: 2, off: 2, unknown: -1, maintenance: 0 })).toThrow(ConsolidatorError);
    expect(() => metrics.setHostStates({ on: 1.5, off: 0, unknown: 0, maintenance: 0 })).toThrow(/integer/);
    expect(await valueOf(registry, 'consolidator_hosts', { state: 'on' })).toBe(1);
  });

  it('replaces host utilisation, so hosts that disappeared vanish', async () => {
    const { registry, metrics } = setup();
    metrics.setHostUtilisation([
      { host: 'kvm-01', cpu: 0.25, memory: 0.5 },
      { host: 'kvm-02', cpu: 0.1, memory: 0.2 },
    ]);
    expect(await valueOf(registry, 'consolidator_host_utilisation_ratio', { host: 'kvm-02', resource: 'memory' })).toBe(0.2);
    metrics.setHostUtilisation([{ host: 'kvm-01', cpu: 0.3, memory: 0.6 }]);
    expect(await seriesOf(registry, 'consolidator_host_utilisation_ratio')).toEqual([
      { host: 'kvm-01', resource: 'cpu' },
      { host: 'kvm-01', resource: 'memory' },
    ]);
    expect(await valueOf(registry, 'consolidator_host_utilisation_ratio', { host: 'kvm-01', resource: 'cpu' })).toBe(0.3);
  });

  it('refuses odd host names and bad ratios, keeping the previous series', async () => {
    const { registry, metrics } = setup();
    metrics.setHostUtilisation([{ host: 'kvm-01', cpu: 0.3, memory: 0.6 }]);
    expect(() => metrics.setHostUtilisation([{ host: 'kvm 01; rm -rf', cpu: 0.1, memory: 0.1 }])).toThrow(/label host/);
    expect(() => metrics.setHostUtilisation([{ host: 'kvm-02', cpu: Number.NaN, memory: 0.1 }])).toThrow(ConsolidatorError);
    expect(() => metrics.setHostUtilisation([{ host: 'kvm-02', cpu: -0.1, memory: 0.1 }])).toThrow(ConsolidatorError);
    expect(await seriesOf(registry, 'consolidator_host_utilisation_ratio')).toHaveLength(2);
  });

  it('exports every keep reason, resetting the ones a later plan no longer gives', async () => {
    const { registry, metrics } = setup();
    expect(await seriesOf(registry, 'consolidator_hosts_kept')).toHaveLength(KEEP_REASONS.length);
    metrics.setKeptHosts({ PinnedVm: 2, NoRoomForVms: 5 });
    expect(await valueOf(registry, 'consolidator_hosts_kept', { reason: 'PinnedVm' })).toBe(2);
    expect(await valueOf(registry, 'consolidator_hosts_kept', { reason: 'NoRoomForVms' })).toBe(5);
    metrics.setKeptHosts({ Cooldown: 1 });
    expect(await valueOf(registry, 'consolidator_hosts_kept', { reason: 'PinnedVm' })).toBe(0);
    expect(await valueOf(registry, 'consolidator_hosts_kept', { reason: 'Cooldown' })).toBe(1);
  });

  it('throws on a keep reason outside the closed list', () => {
    const { metrics } = setup();
    const bogus = { NotAReason: 1 } as unknown as Partial<Record<KeepReason, number>>;
    expect(() => metrics.setKeptHosts(bogus)).toThrow(/label reason has an unexpected value: "NotAReason"/);
  });

  it('replaces the hosts needing attention', async () => {
    const { registry, metrics } = setup();
    metrics.setHostsNeedingAttention([
      { host: 'kvm-01', reason: 'BootTimeout' },
      { host: 'kvm-02', reason: 'PowerOnFailed' },
    ]);
    expect(await valueOf(registry, 'consolidator_hosts_needing_attention', { host: 'kvm-02', reason: 'PowerOnFailed' })).toBe(1);
    metrics.setHostsNeedingAttention([]);
    expect(await seriesOf(registry, 'consolidator_hosts_needing_attention')).toEqual([]);
    const bogus = [{ host: 'kvm-01', reason: 'password=hunter2' }] as unknown as Parameters<typeof metrics.setHostsNeedingAttention>[0];
    expect(() => metrics.setHostsNeedingAttention(bogus)).toThrow(ConsolidatorError);
  });

  it('counts planned and executed actions and validates their labels', async () => {
    const { registry, metrics } = setup();
    expect(await valueOf(registry, 'consolidator_actions_planned_total', { type: 'migrate' })).toBe(0);
    metrics.countPlannedActions('migrate', 3);
    metrics.countPlannedActions('power-off');
    metrics.countExecutedAction('migrate', 'ok');
    metrics.countExecutedAction('migrate', 'ok');
    metrics.countExecutedAction('power-off', 'dry-run');
    expect(await valueOf(registry, 'consolidator_actions_planned_total', { type: 'migrate' })).toBe(3);
    expect(await valueOf(registry, 'consolidator_actions_planned_total', { type: 'power-off' })).toBe(1);
    expect(await valueOf(registry, 'consolidator_actions_executed_total', { type: 'migrate', result: 'ok' })).toBe(2);
    expect(await valueOf(registry, 'consolidator_actions_executed_total', { type: 'power-off', result: 'dry-run' })).toBe(1);
    expect(() => metrics.countExecutedAction('reboot' as 'migrate', 'ok')).toThrow(/label type/);
    expect(() => metrics.countExecutedAction('migrate', 'maybe' as 'ok')).toThrow(/label result/);
    expect(() => metrics.countPlannedActions('migrate', -1)).toThrow(ConsolidatorError);
  });

  it('observes migration and cycle-phase durations into histograms', async () => {
    const { registry, metrics } = setup();
    metrics.observeMigrationSeconds(42);
    metrics.observeCyclePhaseSeconds('plan', 0.02);
    metrics.observeCyclePhaseSeconds('total', 3);
    const text = await registry.metrics();
    expect(text).toContain('consolidator_migration_duration_seconds_bucket{le="30"} 0');
    expect(text).toContain('consolidator_migration_duration_seconds_bucket{le="60"} 1');
    expect(text).toContain('consolidator_migration_duration_seconds_bucket{le="1800"} 1');
    expect(text).toContain('consolidator_migration_duration_seconds_sum 42');
    expect(text).toContain('consolidator_cycle_duration_seconds_bucket{le="0.025",phase="plan"} 1');
    expect(text).toContain('consolidator_cycle_duration_seconds_count{phase="total"} 1');
    expect(() => metrics.observeCyclePhaseSeconds('lunch' as 'plan', 1)).toThrow(/label phase/);
    expect(() => metrics.observeMigrationSeconds(-1)).toThrow(ConsolidatorError);
  });

  it('counts power actions by action and result', async () => {
    const { registry, metrics } = setup();
    metrics.countPowerAction('off', 'ok');
    metrics.countPowerAction('on', 'failed');
    expect(await valueOf(registry, 'consolidator_power_actions_total', { action: 'off', result: 'ok' })).toBe(1);
    expect(await valueOf(registry, 'consolidator_power_actions_total', { action: 'on', result: 'failed' })).toBe(1);
    expect(() => metrics.countPowerAction('cycle' as 'on', 'ok')).toThrow(/label action/);
  });

  it('records cycles; only an ok one moves the last-successful timestamp', async () => {
    const { registry, metrics } = setup();
    expect(await valueOf(registry, 'consolidator_cycles_total', { result: 'failed' })).toBe(0);
    metrics.recordCycle('ok', 1_700_000_000_500);
    metrics.recordCycle('failed', 1_700_000_300_000);
    expect(await valueOf(registry, 'consolidator_last_successful_cycle_timestamp_seconds')).toBe(1_700_000_000.5);
    expect(await valueOf(registry, 'consolidator_cycles_total', { result: 'ok' })).toBe(1);
    expect(await valueOf(registry, 'consolidator_cycles_total', { result: 'failed' })).toBe(1);
    expect(() => metrics.recordCycle('partial' as 'ok', 0)).toThrow(/label result/);
  });

  it('tracks power saved and accumulates energy in kWh', async () => {
    const { registry, metrics } = setup();
    metrics.setPowerSavedWatts(450);
    metrics.addEnergySavedJoules(450 * 300);
    metrics.addEnergySavedJoules(300 * 60);
    expect(await valueOf(registry, 'consolidator_estimated_power_saved_watts')).toBe(450);
    expect(await valueOf(registry, 'consolidator_energy_saved_kwh_total')).toBeCloseTo((450 * 300 + 300 * 60) / 3_600_000, 12);
    expect(() => metrics.addEnergySavedJoules(-5)).toThrow(ConsolidatorError);
    expect(() => metrics.setPowerSavedWatts(Number.POSITIVE_INFINITY)).toThrow(ConsolidatorError);
  });

  it('counts errors by their code, and anything that is not a ConsolidatorError as INTERNAL', async () => {
    const { registry, metrics } = setup();
    expect(metrics.countError(new ConsolidatorError('MIGRATION_TIMEOUT', 'too slow'))).toBe('MIGRATION_TIMEOUT');
    expect(metrics.countError(new Error('boom'))).toBe('INTERNAL');
    expect(metrics.countError('a string')).toBe('INTERNAL');
    expect(await valueOf(registry, 'consolidator_errors_total', { code: 'MIGRATION_TIMEOUT' })).toBe(1);
    expect(await valueOf(registry, 'consolidator_errors_total', { code: 'INTERNAL' })).toBe(2);
    // The message never becomes a label.
    expect(await registry.metrics()).not.toContain('too slow');
  });

  it('exports the dry-run flag and the version', async () => {
    const { registry, metrics } = setup();
    expect(await valueOf(registry, 'consolidator_dry_run')).toBe(0);
    metrics.setDryRun(true);
    expect(await valueOf(registry, 'consolidator_dry_run')).toBe(1);
    metrics.setDryRun(false);
    expect(await valueOf(registry, 'consolidator_dry_run')).toBe(0);
    expect(await valueOf(registry, 'consolidator_info', { version: '0.1.0' })).toBe(1);
    expect(() => new ConsolidatorMetrics({ registry: new Registry(), version: 'v1 "quoted"' })).toThrow(/label version/);
  });

  it('starts the action and power outcome counters at 0, so the first failure shows in increase()', async () => {
    const { registry } = setup();
    const executed = await seriesOf(registry, 'consolidator_actions_executed_total');
    expect(executed).toHaveLength(ACTION_TYPES.length * ACTION_RESULTS.length);
    expect(await valueOf(registry, 'consolidator_actions_executed_total', { type: 'migrate', result: 'failed' })).toBe(0);
    expect(await valueOf(registry, 'consolidator_power_actions_total', { action: 'on', result: 'failed' })).toBe(0);
    expect(await seriesOf(registry, 'consolidator_power_actions_total')).toHaveLength(4);
  });

  it('exports the hosts consolidator powered off, as a count', async () => {
    const { registry, metrics } = setup();
    expect(await valueOf(registry, 'consolidator_hosts_powered_off_by_consolidator')).toBe(0);
    metrics.setHostsPoweredOffByConsolidator(3);
    expect(await valueOf(registry, 'consolidator_hosts_powered_off_by_consolidator')).toBe(3);
    expect(() => metrics.setHostsPoweredOffByConsolidator(-1)).toThrow(ConsolidatorError);
    expect(() => metrics.setHostsPoweredOffByConsolidator(1.5)).toThrow(/integer/);
    expect(await valueOf(registry, 'consolidator_hosts_powered_off_by_consolidator')).toBe(3);
  });

  it("exports the policy's thresholds per resource, replaced as a whole on a reload", async () => {
    const { registry, metrics } = setup();
    expect(await seriesOf(registry, 'consolidator_policy_threshold_ratio')).toEqual([]);
    metrics.setThresholds({
      cpu: { underloadRatio: 0.25, targetRatio: 0.7, overloadRatio: 0.9 },
      memory: { underloadRatio: 0.3, targetRatio: 0.8, overloadRatio: 0.92 },
    });
    expect(await seriesOf(registry, 'consolidator_policy_threshold_ratio')).toHaveLength(UTILISATION_RESOURCES.length * THRESHOLDS.length);
    expect(await valueOf(registry, 'consolidator_policy_threshold_ratio', { resource: 'cpu', threshold: 'overload' })).toBe(0.9);
    expect(await valueOf(registry, 'consolidator_policy_threshold_ratio', { resource: 'memory', threshold: 'target' })).toBe(0.8);
    metrics.setThresholds({
      cpu: { underloadRatio: 0.2, targetRatio: 0.6, overloadRatio: 0.85 },
      memory: { underloadRatio: 0.3, targetRatio: 0.8, overloadRatio: 0.95 },
    });
    expect(await valueOf(registry, 'consolidator_policy_threshold_ratio', { resource: 'cpu', threshold: 'overload' })).toBe(0.85);
    // A bad value changes nothing (all or nothing).
    expect(() =>
      metrics.setThresholds({ cpu: { underloadRatio: 0.2, targetRatio: 0.6, overloadRatio: 0.5 }, memory: { underloadRatio: 0.3, targetRatio: Number.NaN, overloadRatio: 0.95 } }),
    ).toThrow(/thresholds\.memory\.targetRatio/);
    expect(await valueOf(registry, 'consolidator_policy_threshold_ratio', { resource: 'cpu', threshold: 'overload' })).toBe(0.85);
  });

  it('reads not leading until told it leads', async () => {
    const { registry, metrics } = setup();
    expect(await valueOf(registry, 'consolidator_leader')).toBe(0);
    metrics.setLeader(true);
    expect(await valueOf(registry, 'consolidator_leader')).toBe(1);
    metrics.setLeader(false);
    expect(await valueOf(registry, 'consolidator_leader')).toBe(0);
    expect(await registry.metrics()).toContain('# HELP consolidator_leader 1 on the controller that leads');
  });
});
