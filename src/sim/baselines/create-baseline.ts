import { ConsolidatorError } from '../../errors.js';
import type { SimulationPolicy } from '../simulation-policy.js';
import { NO_ACTIONS } from '../simulation-policy.js';
import { CLOUDSIM } from '../cloudsim-setup.js';
import { createCloudSimMigrationPolicy } from './cloudsim-migration-policy.js';

/** The reference algorithms of Beloglazov & Buyya (CCPE 2012), with the parameters of CloudSim's examples. */
export const BASELINE_NAMES = ['npa', 'dvfs', 'thr-mmt', 'lr-mmt'] as const;
export type BaselineName = (typeof BASELINE_NAMES)[number];

/** THR-MMT-0.8 (E/planetlab/ThrMmt.java). */
export const THR_THRESHOLD = 0.8;
/** LR-MMT-1.2 (E/planetlab/LrMmt.java), with the THR-0.7 fallback of E/RunnerAbstract.java. */
export const LR_SAFETY = 1.2;
export const LR_FALLBACK_THRESHOLD = 0.7;

/**
 * npa: no power management, every host at maximum power all day, first-fit placement.
 * dvfs: first-fit placement, no migrations; idle hosts cost nothing in the CloudSim setup.
 * thr-mmt: static 80 % threshold, minimum migration time selection, PABFD.
 * lr-mmt: local regression over 10 samples with safety 1.2, MMT, PABFD.
 */
export function createBaseline(name: string): SimulationPolicy {
  switch (name) {
    case 'npa':
      return { name: 'NPA', initialPlacement: 'first-fit', energyAccounting: 'max-power', decide: () => NO_ACTIONS };
    case 'dvfs':
      return { name: 'DVFS', initialPlacement: 'first-fit', decide: () => NO_ACTIONS };
    case 'thr-mmt':
      return createCloudSimMigrationPolicy(`THR-MMT-${THR_THRESHOLD}`, { kind: 'thr', threshold: THR_THRESHOLD });
    case 'lr-mmt':
      return createCloudSimMigrationPolicy(`LR-MMT-${LR_SAFETY}`, {
        kind: 'lr',
        safety: LR_SAFETY,
        fallbackThreshold: LR_FALLBACK_THRESHOLD,
        intervalSeconds: CLOUDSIM.schedulingIntervalSeconds,
        migrationMiBps: CLOUDSIM.hostBwKbps / CLOUDSIM.migrationBwDivisor,
      });
    default:
      throw new ConsolidatorError('USAGE', `unknown baseline ${JSON.stringify(name)}; valid: ${BASELINE_NAMES.join(', ')}`);
  }
}
