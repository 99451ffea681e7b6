// Prints the suite's closing line, "N passed, N failed[, N skipped]", from vitest's JSON report.
import { readFileSync } from 'node:fs';

interface VitestJsonReport {
  numPassedTests?: number;
  numFailedTests?: number;
  numPendingTests?: number;
  numTodoTests?: number;
  numFailedTestSuites?: number;
}

const file = process.argv[2] ?? 'test-results/vitest.json';
let report: VitestJsonReport;
try {
  report = JSON.parse(readFileSync(file, 'utf8')) as VitestJsonReport;
} catch (e) {
  console.log(`0 passed, 1 failed (no test report at ${file}: ${(e as Error).message})`);
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
// A file that fails to load has no failed test but a failed suite: count it, so it cannot pass unseen.
const failed = (report.numFailedTests ?? 0) + (report.numFailedTests === 0 ? (report.numFailedTestSuites ?? 0) : 0);
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
if (passed + failed === 0) {
  console.log('0 passed, 1 failed (no test ran)');
  process.exit(1);
}
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
