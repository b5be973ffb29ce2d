import { defineConfig } from 'vitest/config';

/**
 * Files that change the process they run in for whatever runs after them, or need one of their own:
 * - the browser flows: they set `process.env` for the service they start, and drive Chromium;
 * - tracing: OpenTelemetry's tracer provider, propagator and context manager are process-wide, and
 *   these files install them (tracing, send-tracing, content-redaction, service-parts) or check that
 *   nothing did (tracing-off);
 * - service-parts also counts the handles and the process metrics a service leaves behind, which only
 *   a fresh process tells apart from another file's.
 */
const ownProcess = [
  'test/browser/**/*.test.ts',
  'test/telemetry/tracing.test.ts',
  'test/telemetry/tracing-off.test.ts',
  'test/outbound/send-tracing.test.ts',
  'test/e2e/content-redaction.test.ts',
  'test/e2e/service-parts.test.ts',
];

const include = ['test/**/*.test.ts', 'src/**/*.test.ts'];
// Run on its own by `npm run test:cluster` (it needs the machine to itself).
const exclude = ['test/cluster/**', '**/node_modules/**'];

export default defineConfig({
  test: {
    // include and exclude are each project's (a project that extends this config would add to them).
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Two cores: two workers in all (both projects draw from the same two), each with its own PGlite
    // template and Postgres schemas.
    maxWorkers: 2,
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          // Most files leave the process as they found it: they run one after another in the same worker
          // process, which then loads tsx, Fastify, PGlite and the service's modules once instead of once
          // per file. On two cores the whole run took 637-642 s so, against 871 s with a process per file.
          name: 'shared-process',
          include,
          exclude: [...exclude, ...ownProcess],
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'own-process',
          include: ownProcess,
          exclude,
          isolate: true,
        },
      },
    ],
  },
});
