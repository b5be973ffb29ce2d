import { defineConfig } from 'vitest/config';

/** The cluster test (test/cluster/): several server processes, a load balancer and databases of its own. */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
    reporters: ['default', './test/support/summary-reporter.ts'],
  },
});
