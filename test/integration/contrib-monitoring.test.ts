import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePort } from '../helpers/free-port.js';
import {
  allPanels,
  dashboardQueries,
  expressionProblems,
  exportedMetricNames,
  metricNames,
  promqlOfVariableQuery,
  substituteVariables,
  variableValues,
  type Dashboard,
  type DashboardPanel,
  type DashboardQuery,
  type Evaluation,
} from '../helpers/monitoring-checks.js';
import { PROMETHEUS_POLL, startPrometheus, type RunningPrometheus } from '../helpers/prometheus.js';
import { waitFor } from '../helpers/wait-for.js';

/**
 * The monitoring files in contrib/: the Prometheus alerting rules (`promtool check rules`, and
 * `promtool test rules` with a case where each alert fires and one where it does not) and the Grafana
 * dashboard (its data source variable, a panel for each thing it must show). Then the built daemon on
 * the demo datacenter, scraped by a real Prometheus on loopback: every dashboard and rule expression,
 * Grafana's variables substituted, is sent to Prometheus' query API (a parse error is a 400) and may
 * name only metrics the daemon's own /metrics exports. Last, the daemon is stopped with hosts powered
 * off, and the "down with hosts off" rule sees it while the "no leader" one stays quiet.
 */

const PROMTOOL = '/usr/bin/promtool';
const RULES_DIR = 'contrib/prometheus';
const RULES = `${RULES_DIR}/consolidator-rules.yaml`;
const RULE_TESTS = `${RULES_DIR}/consolidator-rules.test.yaml`;
const DASHBOARD = 'contrib/grafana/consolidator.json';
const PROVISIONING = 'contrib/grafana/provisioning/dashboards.yaml';
const DEMO_TIMEOUT_MS = 90_000;
const STOP_TIMEOUT_MS = 20_000;
const SCRAPES_BEFORE_CHECKS = 3;
/** The values Grafana's query variables take in the check: the test's scrape job, every controller. */
const QUERY_VARIABLES = { job: 'consolidator', instance: '.*' } as const;

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function run(command: string, args: readonly string[], cwd?: string): Promise<{ code: number; output: string }> {
  return new Promise((done) => {
    execFile(command, args, { cwd }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      done({ code, output: stdout + stderr });
    });
  });
}

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

async function alertRules(): Promise<AlertRule[]> {
  const file = parse(await readFile(RULES, 'utf8')) as { groups: { rules: AlertRule[] }[] };
  return file.groups.flatMap((g) => g.rules);
}

async function dashboard(): Promise<Dashboard & Record<string, unknown>> {
  return JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard & Record<string, unknown>;
}

describe('the Prometheus alerting rules under promtool', () => {
  it('pass `promtool check rules`', async () => {
    const result = await run(PROMTOOL, ['check', 'rules', RULES]);
    expect(result.output).toContain('SUCCESS: 7 rules found');
    expect(result.code).toBe(0);
  });

  it('have a unit test where each alert fires and one where it does not, and pass `promtool test rules`', async () => {
    const tests = parse(await readFile(RULE_TESTS, 'utf8')) as { tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[] };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test ?? []);
    for (const rule of await alertRules()) {
      const own = cases.filter((c) => c.alertname === rule.alert);
      expect({ alert: rule.alert, fires: own.some((c) => (c.exp_alerts ?? []).length > 0) }).toEqual({ alert: rule.alert, fires: true });
      expect({ alert: rule.alert, quiet: own.some((c) => (c.exp_alerts ?? []).length === 0) }).toEqual({ alert: rule.alert, quiet: true });
    }
    const result = await run(PROMTOOL, ['test', 'rules', 'consolidator-rules.test.yaml'], RULES_DIR);
    expect(result.output).toContain('SUCCESS');
    expect(result.code).toBe(0);
  });

  it('each alert waits (`for`), has a severity and says what it is about and what to do', async () => {
    for (const rule of await alertRules()) {
      expect(rule.for, rule.alert).toMatch(/^\d+[mh]$/);
      expect(['critical', 'warning'], rule.alert).toContain(rule.labels?.['severity']);
      expect(rule.annotations?.['summary'], rule.alert).toMatch(/\{\{ \$labels\.(instance|host|job) \}\}/);
      expect(rule.annotations?.['description'], rule.alert).toContain('What to do:');
    }
  });

  it('fail when a rule is broken or a unit test expects what does not happen (the checks bite)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'consolidator-rules-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const rules = await readFile(RULES, 'utf8');
    await writeFile(join(dir, 'broken.yaml'), rules.replace('max by (job) (consolidator_leader) == 0', 'max by (job) (consolidator_leader == 0'));
    const broken = await run(PROMTOOL, ['check', 'rules', join(dir, 'broken.yaml')]);
    expect(broken.code).not.toBe(0);
    expect(broken.output).toMatch(/unclosed left parenthesis|unexpected/);

    // The same unit tests against rules whose "no leader" alert fires for a controller that leads.
    await writeFile(join(dir, 'consolidator-rules.yaml'), rules.replace('max by (job) (consolidator_leader) == 0', 'max by (job) (consolidator_leader) >= 0'));
    await writeFile(join(dir, 'tests.yaml'), await readFile(RULE_TESTS, 'utf8'));
    const wrong = await run(PROMTOOL, ['test', 'rules', 'tests.yaml'], dir);
    expect(wrong.code).not.toBe(0);
    expect(wrong.output).toContain('a single controller that is up (no HA) does not fire');
  });
});

describe('the metric-name checker (no Prometheus needed)', () => {
  it('finds the metric names of an expression, and only them', () => {
    expect(metricNames('sum by (state) (consolidator_hosts{job=~"$job", state="on"})')).toEqual(['consolidator_hosts']);
    expect(metricNames('histogram_quantile(0.9, sum by (phase, le) (rate(consolidator_cycle_duration_seconds_bucket[5m])))')).toEqual([
      'consolidator_cycle_duration_seconds_bucket',
    ]);
    expect(metricNames('a_total / on (instance) group_left (version) b_info offset 5m > bool 3.6e6')).toEqual(['a_total', 'b_info']);
    expect(metricNames('count(up == 0) or vector(0)')).toEqual(['up']);
    expect(metricNames('time() - max(ts_seconds > 0) unless ignoring (le) c')).toEqual(['c', 'ts_seconds']);
    expect(metricNames('{__name__="named_by_matcher", x="sum(y)"}')).toEqual(['named_by_matcher']);
    expect(metricNames('label_replace(foo, "dst", "$1 bar", "src", "(.*)")')).toEqual(['foo']);
    expect(metricNames('sum without (host) (rate(x_total[1h:5m]))')).toEqual(['x_total']);
  });

  it('reports a misspelled metric, and a variable left without a value', async () => {
    const exported = new Set(['consolidator_hosts', 'consolidator_cycles_total']);
    const evaluate = (): Promise<Evaluation> => Promise.resolve({ ok: true });
    const queries: DashboardQuery[] = [
      { where: 'good', expr: 'sum by (state) (consolidator_hosts{job=~"$job"})' },
      { where: 'misspelled', expr: 'sum(rate(consolidator_cycle_total[$__rate_interval]))' },
      { where: 'unknown variable', expr: 'consolidator_hosts{instance=~"$nope"}' },
    ];
    expect(await expressionProblems(queries, { values: { job: 'consolidator', __rate_interval: '1m' }, exported, evaluate })).toEqual([
      'misspelled: names consolidator_cycle_total, which the daemon does not export',
      'unknown variable: no value for Grafana variable $nope in: consolidator_hosts{instance=~"$nope"}',
    ]);
  });

  it('substitutes Grafana variables in every spelling, and reads the PromQL inside variable queries', () => {
    const values = { job: 'consolidator', window: '1h', __rate_interval: '1m' };
    expect(substituteVariables('rate(x{job="$job"}[$window]) + rate(y{job="${job}"}[${__rate_interval}]) + z{job="${job:regex}"} + [[job]]', values)).toBe(
      'rate(x{job="consolidator"}[1h]) + rate(y{job="consolidator"}[1m]) + z{job="consolidator"} + consolidator',
    );
    expect(promqlOfVariableQuery('label_values(consolidator_info{job=~"$job"}, instance)')).toBe('consolidator_info{job=~"$job"}');
    expect(promqlOfVariableQuery('label_values(job)')).toBeUndefined();
    expect(promqlOfVariableQuery('query_result(max by (job) (consolidator_info))')).toBe('max by (job) (consolidator_info)');
  });

  it("walks the dashboard's rows, collapsed ones included, and its variables", async () => {
    const queries = dashboardQueries(await dashboard());
    expect(queries.some((q) => q.where.startsWith('panel "Leader by controller"'))).toBe(true);
    expect(queries.find((q) => q.where === 'variable instance')?.expr).toBe('consolidator_info{job=~"$job"}');
  });
});

/** What the dashboard must show, each as a pattern one of a panel's expressions matches. */
const REQUIRED_PANELS: readonly { what: string; expr: RegExp }[] = [
  { what: 'hosts on/off/unknown over time', expr: /sum by \(state\) \(consolidator_hosts\{/ },
  { what: 'watts saved', expr: /consolidator_estimated_power_saved_watts/ },
  { what: 'energy saved', expr: /increase\(consolidator_energy_saved_kwh_total/ },
  { what: 'migration rate', expr: /rate\(consolidator_actions_executed_total\{[^}]*type="migrate"/ },
  { what: 'migration duration', expr: /histogram_quantile\([^,]+, sum by \(le\) \(rate\(consolidator_migration_duration_seconds_bucket/ },
  { what: 'migration failures', expr: /consolidator_action_failures_total\{[^}]*type="migrate"/ },
  { what: 'power actions', expr: /consolidator_power_actions_total/ },
  { what: 'cycle duration by phase', expr: /sum by \(phase, le\) \(rate\(consolidator_cycle_duration_seconds_bucket/ },
  { what: 'hosts kept by reason', expr: /sum by \(reason\) \(consolidator_hosts_kept/ },
  { what: 'hosts needing attention', expr: /consolidator_hosts_needing_attention/ },
  { what: 'leader', expr: /consolidator_leader/ },
];

describe('the Grafana dashboard (no Prometheus needed)', () => {
  it('is provisionable as it is: a data source variable of type prometheus, no __inputs, a uid', async () => {
    const d = await dashboard();
    expect(d['__inputs']).toBeUndefined();
    expect(d['uid']).toBe('consolidator');
    expect(d['schemaVersion']).toBeGreaterThanOrEqual(36);
    const variables = d.templating?.list ?? [];
    const datasource = variables.filter((v) => v.type === 'datasource');
    expect(datasource).toEqual([expect.objectContaining({ name: 'datasource', query: 'prometheus' })]);
  });

  it('comes with a file-provisioning example that Grafana can read', async () => {
    const provisioning = parse(await readFile(PROVISIONING, 'utf8')) as { apiVersion: number; providers: { type: string; options: { path: string } }[] };
    expect(provisioning.apiVersion).toBe(1);
    expect(provisioning.providers).toEqual([expect.objectContaining({ type: 'file', options: expect.objectContaining({ path: expect.stringMatching(/^\//) }) })]);
  });

  it('takes every panel, target and query variable from the data source variable', async () => {
    const d = await dashboard();
    const wrong: string[] = [];
    const uses = (ds: DashboardPanel['datasource'] | undefined) => ds?.type === 'prometheus' && ds.uid === '${datasource}';
    for (const panel of allPanels(d.panels).filter((p) => p.type !== 'row')) {
      if (!uses(panel.datasource)) wrong.push(`panel "${panel.title}"`);
      for (const t of panel.targets ?? []) if (!uses(t.datasource)) wrong.push(`panel "${panel.title}" target ${t.refId}`);
      if ((panel.targets ?? []).length === 0) wrong.push(`panel "${panel.title}" has no query`);
    }
    for (const v of (d.templating?.list ?? []).filter((x) => x.type === 'query')) if (!uses(v.datasource)) wrong.push(`variable ${v.name}`);
    expect(wrong).toEqual([]);
  });

  it('has a panel for each thing it must show, and unique panel ids', async () => {
    const d = await dashboard();
    const panels = allPanels(d.panels).filter((p) => p.type !== 'row');
    const missing = REQUIRED_PANELS.filter((r) => !panels.some((p) => (p.targets ?? []).some((t) => r.expr.test(t.expr ?? '')))).map((r) => r.what);
    expect(missing).toEqual([]);
    const ids = allPanels(d.panels).map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

interface DemoDaemon {
  readonly child: ChildProcess;
  readonly url: string;
  readonly output: () => string;
}

/** The built daemon on config/demo.yaml (its port and socket the test's own), faster: a cycle a second. */
async function startDemoDaemon(): Promise<DemoDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'consolidator-monitoring-'));
  const port = await freePort();
  const policy = (await readFile('config/demo.yaml', 'utf8'))
    .replace('listen: 127.0.0.1:9464', `listen: 127.0.0.1:${port}`)
    .replace('socket: /tmp/consolidator-demo.sock', `socket: ${join(dir, 'control.sock')}`)
    .replace('workload: demo-workload', `workload: ${resolve('config/demo-workload')}`)
    .replace('speedup: 300', 'speedup: 600')
    .replace('schedule: "*/2 * * * * *"', 'schedule: "* * * * * *"')
    .replace('format: pretty', 'format: json');
  if (!policy.includes(`127.0.0.1:${port}`)) throw new Error('config/demo.yaml no longer has the metrics.listen line this expects');
  await writeFile(join(dir, 'demo.yaml'), policy);
  const child = spawn('node', ['dist/main.js', 'run', '--policy', join(dir, 'demo.yaml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });
  return { child, url: `http://127.0.0.1:${port}`, output: () => output };
}

interface QueryAnswer {
  status: string;
  errorType?: string;
  error?: string;
  data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
}

async function instant(prometheus: RunningPrometheus, promql: string): Promise<QueryAnswer> {
  const response = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await response.json()) as QueryAnswer;
  if (response.status !== 200 && body.status === 'success') throw new Error(`HTTP ${response.status} with a success body for ${promql}`);
  return body;
}

function evaluator(prometheus: RunningPrometheus): (promql: string) => Promise<Evaluation> {
  return async (promql) => {
    const answer = await instant(prometheus, promql);
    return answer.status === 'success' ? { ok: true } : { ok: false, error: `${answer.errorType}: ${answer.error}` };
  };
}

async function results(prometheus: RunningPrometheus, promql: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const answer = await instant(prometheus, promql);
  if (answer.status !== 'success') throw new Error(`${promql}: ${answer.errorType}: ${answer.error}`);
  return (answer.data?.result ?? []).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

function exitOf(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((done) => child.once('exit', done));
}

describe('the dashboard and the rules against the demo daemon, scraped by a real Prometheus', () => {
  let daemon: DemoDaemon;
  let prometheus: RunningPrometheus;
  let exported: Set<string>;
  let values: Record<string, string>;

  beforeAll(async () => {
    daemon = await startDemoDaemon();
    prometheus = await startPrometheus(daemon.url.replace('http://', ''));
    cleanups.push(() => prometheus.stop());
    // Until the demo has migrated VMs and powered hosts off, and Prometheus has seen it in a few
    // scrapes (a rate needs two samples).
    await waitFor('migrations and powered-off hosts in Prometheus', { timeoutMs: DEMO_TIMEOUT_MS, ...PROMETHEUS_POLL }, async () => {
      if (daemon.child.exitCode !== null) throw new Error(`the demo daemon exited ${daemon.child.exitCode}:\n${daemon.output()}`);
      const off = await results(prometheus, 'consolidator_hosts_powered_off_by_consolidator > 0');
      const migrated = await results(prometheus, 'consolidator_migration_duration_seconds_count > 0');
      const scrapes = await results(prometheus, `count_over_time(up[1m]) >= ${SCRAPES_BEFORE_CHECKS}`);
      return off.length > 0 && migrated.length > 0 && scrapes.length > 0 ? true : undefined;
    });
    exported = exportedMetricNames(await (await fetch(`${daemon.url}/metrics`)).text());
    values = variableValues(await dashboard(), QUERY_VARIABLES);
  });

  it('every dashboard expression, variables substituted, parses in Prometheus and names only metrics the daemon exports', async () => {
    expect(exported.has('consolidator_hosts')).toBe(true);
    expect(exported.has('consolidator_migration_duration_seconds_bucket')).toBe(true);
    const queries = dashboardQueries(await dashboard());
    expect(queries.length).toBeGreaterThan(30);
    expect(await expressionProblems(queries, { values, exported, evaluate: evaluator(prometheus) })).toEqual([]);
  });

  it("shows the demo's figures in the panels that matter (its selectors match the scrape's labels)", async () => {
    const queries = dashboardQueries(await dashboard());
    const empty: string[] = [];
    for (const r of REQUIRED_PANELS.filter((x) => !['migration failures', 'hosts needing attention'].includes(x.what))) {
      const own = queries.filter((q) => r.expr.test(q.expr));
      const answers = await Promise.all(own.map((q) => results(prometheus, substituteVariables(q.expr, values))));
      if (!answers.some((a) => a.length > 0)) empty.push(r.what);
    }
    expect(empty).toEqual([]);
    const states = await results(prometheus, substituteVariables('sum by (state) (consolidator_hosts{job=~"$job", instance=~"$instance"})', values));
    expect(states.map((s) => s.metric['state']).sort()).toEqual(['maintenance', 'off', 'on', 'unknown']);
  });

  it('reports a misspelled metric and a broken expression in a doctored dashboard (negative control)', async () => {
    const text = await readFile(DASHBOARD, 'utf8');
    const doctored = JSON.parse(
      text
        .replace('sum by (state) (consolidator_hosts{', 'sum by (state) (consolidator_host{')
        .replace('sum by (reason) (consolidator_hosts_kept{job=~\\"$job\\", instance=~\\"$instance\\"}) > 0', 'sum by (reason) (consolidator_hosts_kept{job=~\\"$job\\"} > 0'),
    ) as Dashboard;
    const problems = await expressionProblems(dashboardQueries(doctored), { values, exported, evaluate: evaluator(prometheus) });
    expect(problems).toEqual([
      'panel "Hosts on / off / unknown / in maintenance" target A: names consolidator_host, which the daemon does not export',
      expect.stringMatching(/^panel "Hosts kept as they are, by reason" target A: Prometheus rejects .*: bad_data: .*parenthes/),
    ]);
  });

  it('every rule expression parses in Prometheus and names only metrics the daemon exports (and up)', async () => {
    const queries = (await alertRules()).map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }));
    expect(await expressionProblems(queries, { values: {}, exported, evaluate: evaluator(prometheus) })).toEqual([]);
  });

  it('once the daemon stops with hosts powered off, "down with hosts off" holds and "no leader" does not (single controller)', async () => {
    const rules = new Map((await alertRules()).map((r) => [r.alert, r.expr]));
    const downWithHostsOff = rules.get('ConsolidatorDownWithHostsOff') as string;
    const noLeader = rules.get('ConsolidatorNoLeader') as string;
    // While it runs: it leads, and it is up.
    expect(await results(prometheus, 'consolidator_leader')).toEqual([{ metric: expect.objectContaining({ job: 'consolidator' }), value: 1 }]);
    expect(await results(prometheus, noLeader)).toEqual([]);
    expect(await results(prometheus, downWithHostsOff)).toEqual([]);

    daemon.child.kill('SIGTERM');
    await Promise.race([exitOf(daemon.child), new Promise((done) => setTimeout(done, STOP_TIMEOUT_MS))]);
    expect(daemon.child.exitCode).toBe(0);
    const down = await waitFor('the down-with-hosts-off rule to hold', { timeoutMs: 15_000, ...PROMETHEUS_POLL }, async () => {
      const r = await results(prometheus, downWithHostsOff);
      return r.length > 0 ? r : undefined;
    });
    const target = daemon.url.replace('http://', '');
    expect(down).toEqual([{ metric: expect.objectContaining({ job: 'consolidator', instance: target }), value: expect.any(Number) }]);
    expect(down[0]?.value).toBeGreaterThan(0);
    // The daemon's own series are stale: Prometheus no longer returns them at all.
    expect(await results(prometheus, 'consolidator_leader')).toEqual([]);
    expect(await results(prometheus, noLeader)).toEqual([]);
  });
});
