import { defineConfig } from 'vitest/config';

// The projects run one after another: unit (files in parallel, on as many workers as vitest gives),
// then integration, then e2e (each one file at a time). An explicit groupOrder for each: vitest puts a
// project with fileParallelism off and the default groupOrder (0) in a group of its own that runs
// after every other, so integration would otherwise run last, after e2e.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          environment: 'node',
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        // The real daemon on the real lab: runs alone, after the other projects, on the 2 cores.
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          testTimeout: 240_000,
          hookTimeout: 180_000,
          fileParallelism: false,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
