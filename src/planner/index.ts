export { planCycle } from './plan-cycle.js';
export { checkPlan } from './check-plan.js';
export * from './types.js';
