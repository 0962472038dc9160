// Prints one plain closing line, "tests: N passed, N failed, N skipped", after vitest's own report, and under it
// each error thrown outside a test (an unhandled rejection, say), short, so that the last lines of a CI log name it.
export default class SummaryReporter {
  onTestRunEnd(testModules, unhandledErrors = []) {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const m of testModules) {
      for (const t of m.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
      if (m.state() === 'failed' && [...m.children.allTests()].length === 0) failed++;
    }
    process.stdout.write(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
    for (const e of unhandledErrors) {
      const where = e?.VITEST_TEST_PATH ?? e?.testPath ?? '';
      const stack = String(e?.stack ?? e?.stacks?.map((s) => `${s.file}:${s.line}`).join('\n') ?? '').split('\n').slice(0, 8).join('\n');
      process.stdout.write(`unhandled error${where ? ` (while ${where} ran)` : ''}: ${e?.name ?? 'Error'}: ${e?.message ?? e}\n${stack}\n`);
    }
  }
}
