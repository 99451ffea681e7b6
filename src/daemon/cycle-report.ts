import type { ActionOutcome } from '../actuator/actuator.js';
import type { ConsolidatorError } from '../errors.js';
import type { HostId } from '../model/ids.js';
import type { Violation } from '../model/simulate.js';
import type { ClusterSnapshot } from '../model/snapshot.js';
import type { CyclePhase } from '../observability/metrics.js';
import type { PlanResult } from '../planner/types.js';

/** What one cycle saw, planned and did: the record phase, /status and the tests read it. */
export interface CycleReport {
  readonly cycle: string;
  readonly startedAtMs: number;
  readonly result: 'ok' | 'failed';
  readonly error?: ConsolidatorError;
  readonly phaseSeconds: Partial<Record<CyclePhase, number>>;
  readonly snapshot?: ClusterSnapshot;
  readonly plan?: PlanResult;
  readonly violations: readonly Violation[];
  readonly outcomes: readonly ActionOutcome[];
  readonly unreachable: ReadonlyMap<HostId, string>;
  readonly dryRun: boolean;
}
