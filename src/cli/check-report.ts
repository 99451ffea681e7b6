import { type CheckResult, type FleetCheckReport, isFleetHealthy } from '../preflight/check-result.js';
import { table } from './table.js';

/** Names the shape of `consolidator check --json`; a change that breaks a reader gets a new number. */
export const CHECK_REPORT_FORMAT = 'consolidator-check/1';

export interface CheckReportJson {
  readonly format: typeof CHECK_REPORT_FORMAT;
  readonly ok: boolean;
  readonly hosts: readonly string[];
  readonly durationMs: number;
  readonly counts: { readonly pass: number; readonly fail: number; readonly skip: number };
  readonly results: readonly CheckResult[];
}

export function checkReportJson(report: FleetCheckReport): CheckReportJson {
  return { format: CHECK_REPORT_FORMAT, ok: isFleetHealthy(report), hosts: report.hosts, durationMs: report.durationMs, counts: countResults(report), results: report.results };
}

function countResults(report: FleetCheckReport): CheckReportJson['counts'] {
  const count = (outcome: CheckResult['result']) => report.results.filter((r) => r.result === outcome).length;
  return { pass: count('pass'), fail: count('fail'), skip: count('skip') };
}

/** One row per result (`HOST -> PEER` for pair checks), then each failure with its fix, then the counts. */
export function formatCheckReport(report: FleetCheckReport): string {
  const rows = report.results.map((r) => [
    r.peer !== undefined ? `${r.host} -> ${r.peer}` : r.host,
    r.path !== undefined ? `${r.check} (${r.path})` : r.check,
    r.result === 'fail' ? 'FAIL' : r.result,
    r.detail,
  ]);
  const lines = [table(['HOST', 'CHECK', 'RESULT', 'DETAIL'], rows).trimEnd()];
  const failures = report.results.filter((r) => r.result === 'fail');
  if (failures.length > 0) {
    lines.push('', `${failures.length} problem${failures.length === 1 ? '' : 's'}:`);
    failures.forEach((r, i) => {
      const subject = r.peer !== undefined ? `${r.host} -> ${r.peer}` : r.host;
      lines.push(`${i + 1}. ${subject} ${r.check}${r.path !== undefined ? ` (${r.path})` : ''}: ${r.detail}`, `   fix: ${r.fix ?? '-'}`);
    });
  }
  const c = countResults(report);
  const pairs = report.results.filter((r) => r.check === 'peer-resolves').length;
  lines.push(
    '',
    `${c.pass} passed, ${c.fail} failed, ${c.skip} skipped: ${report.hosts.length} host${report.hosts.length === 1 ? '' : 's'}, ${pairs} pair${pairs === 1 ? '' : 's'}, in ${(report.durationMs / 1000).toFixed(1)} s`,
  );
  return `${lines.join('\n')}\n`;
}
