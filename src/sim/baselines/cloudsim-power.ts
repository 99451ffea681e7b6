import { ConsolidatorError } from '../../errors.js';
import type { PowerModel } from '../../model/snapshot.js';
import { powerAt } from '../../model/snapshot.js';

const TENTHS = 10;
const PERCENT = 100;

/**
 * Watts at a utilisation, computed as CloudSim's PowerModelSpecPower.getPower does (same operations,
 * so PABFD's comparisons of power differences tie and order exactly as in CloudSim). A utilisation
 * outside [0, 1] is an error there (CloudSim exits); here it throws INTERNAL.
 */
export function cloudSimPower(model: PowerModel, utilisation: number): number {
  if (model.kind !== 'curve' || model.wattsAtTenths.length !== TENTHS + 1) return powerAt(model, utilisation);
  if (utilisation < 0 || utilisation > 1) {
    throw new ConsolidatorError('INTERNAL', `utilisation ${utilisation} outside [0, 1] in a power estimate`);
  }
  const watts = model.wattsAtTenths;
  if (utilisation % 0.1 === 0) return watts[Math.trunc(utilisation * TENTHS)] ?? 0;
  const low = Math.floor(utilisation * TENTHS);
  const high = Math.ceil(utilisation * TENTHS);
  const power1 = watts[low] ?? 0;
  const power2 = watts[high] ?? 0;
  const delta = (power2 - power1) / TENTHS;
  return power1 + delta * (utilisation - low / TENTHS) * PERCENT;
}
