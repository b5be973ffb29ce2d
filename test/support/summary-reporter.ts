import type { Reporter, TestModule } from 'vitest/node';

/**
 * Prints one plain closing line, "N passed, N failed, N skipped", that any CI log reader understands,
 * and before it the number of hostile-input cases the fuzz properties ran (their tests record it).
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
    if (fuzzCases > 0) process.stdout.write(`\nfuzz: ${fuzzCases} hostile-input cases run\n`);
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
