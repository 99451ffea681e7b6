export { planCycle } from './plan-cycle.js';
export { checkPlan, type CheckOptions } from './check-plan.js';
export { CycleDemands } from './demand.js';
export * from './types.js';
