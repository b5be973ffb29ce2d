import type { Reporter, TestModule } from 'vitest/node';

/**
 * Prints one plain closing line, "N passed, N failed, N skipped", that any CI log reader understands,
 * and before it the number of hostile-input cases the fuzz properties ran (their tests record it) and the
 * slowest files (the suite must stay well inside its time budget on a 2-core machine: these are where
 * time goes first).
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    let fuzzCases = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        fuzzCases += test.meta().fuzzCases ?? 0;
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      if (module.state() === 'failed' && [...module.children.allTests()].length === 0) failed++;
    }
    const slowest = testModules
      .map((module) => ({ file: module.relativeModuleId, seconds: module.diagnostic().duration / 1000 }))
      .sort((a, b) => b.seconds - a.seconds)
      .slice(0, 12);
    if (slowest.length > 0)
      process.stdout.write(`\nslowest files (tests and hooks):\n${slowest.map((s) => `  ${s.seconds.toFixed(1).padStart(6)} s  ${s.file}`).join('\n')}\n`);
    if (fuzzCases > 0) process.stdout.write(`\nfuzz: ${fuzzCases} hostile-input cases run\n`);
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
