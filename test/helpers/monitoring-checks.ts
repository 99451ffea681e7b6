/**
 * Checks for the monitoring files in contrib/ (the Grafana dashboard, the Prometheus rules): every
 * PromQL expression they hold, with Grafana's variables substituted, must parse in a real Prometheus
 * and name only metrics the daemon exports. The walking, substitution and name extraction live here,
 * apart from any Prometheus, so that a test can show each of them rejecting bad input.
 */

/** A panel as far as the checks read it; rows hold their panels in `panels` when collapsed. */
export interface DashboardPanel {
  readonly id?: number;
  readonly type?: string;
  readonly title?: string;
  readonly datasource?: { readonly type?: string; readonly uid?: string } | null;
  readonly targets?: readonly { readonly expr?: string; readonly refId?: string; readonly datasource?: { readonly type?: string; readonly uid?: string } }[];
  readonly panels?: readonly DashboardPanel[];
}

export interface DashboardVariable {
  readonly name: string;
  readonly type: string;
  readonly query?: string | { readonly query?: string };
  readonly datasource?: { readonly type?: string; readonly uid?: string };
  readonly current?: { readonly value?: string | readonly string[] };
}

export interface Dashboard {
  readonly panels?: readonly DashboardPanel[];
  readonly templating?: { readonly list?: readonly DashboardVariable[] };
}

/** One PromQL expression of a dashboard and where it comes from (for messages). */
export interface DashboardQuery {
  readonly where: string;
  readonly expr: string;
}

/** Every panel, those inside rows (collapsed rows nest theirs) included; rows themselves too. */
export function allPanels(panels: readonly DashboardPanel[] = []): DashboardPanel[] {
  return panels.flatMap((p) => [p, ...allPanels(p.panels ?? [])]);
}

/**
 * Every PromQL expression: each target of each panel, and the selector inside each query variable's
 * `label_values(SELECTOR, label)` or `query_result(EXPR)` (Grafana functions around PromQL).
 */
export function dashboardQueries(dashboard: Dashboard): DashboardQuery[] {
  const fromPanels = allPanels(dashboard.panels).flatMap((panel) =>
    (panel.targets ?? []).filter((t) => t.expr !== undefined).map((t) => ({ where: `panel "${panel.title ?? panel.id}" target ${t.refId ?? '?'}`, expr: t.expr as string })),
  );
  const fromVariables = (dashboard.templating?.list ?? [])
    .filter((v) => v.type === 'query')
    .flatMap((v) => {
      const text = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
      const expr = promqlOfVariableQuery(text);
      return expr === undefined ? [] : [{ where: `variable ${v.name}`, expr }];
    });
  return [...fromPanels, ...fromVariables];
}

/** The PromQL inside a Prometheus variable query; undefined for label_values(label) and metrics(regex), which hold none. */
export function promqlOfVariableQuery(query: string): string | undefined {
  const text = query.trim();
  const labelValues = /^label_values\(\s*(.+),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$/s.exec(text);
  if (labelValues) return labelValues[1];
  if (/^label_values\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$/.test(text) || /^label_names\(/.test(text) || /^metrics\(/.test(text)) return undefined;
  const queryResult = /^query_result\((.+)\)$/s.exec(text);
  if (queryResult) return queryResult[1];
  return text;
}

/** Values for Grafana's built-in variables, as Grafana would substitute them on a 1-hour range. */
export const GRAFANA_BUILTINS: Readonly<Record<string, string>> = {
  __rate_interval: '1m',
  __interval: '15s',
  __interval_ms: '15000',
  __range: '1h',
  __range_s: '3600',
  __range_ms: '3600000',
};

const VARIABLE = /\$\{([A-Za-z0-9_]+)(?::[A-Za-z]+)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)(?::[A-Za-z]+)?\]\]/g;

/** Replaces $var, ${var}, ${var:format} and [[var]] with `values`; a variable with no value throws (never left in). */
export function substituteVariables(expr: string, values: Readonly<Record<string, string>>): string {
  return expr.replace(VARIABLE, (whole, a?: string, b?: string, c?: string) => {
    const name = (a ?? b ?? c) as string;
    const value = values[name];
    if (value === undefined) throw new Error(`no value for Grafana variable ${whole} in: ${expr}`);
    return value;
  });
}

/** The values a dashboard's own variables take in a check: custom/interval ones their current value, query ones from `given`. */
export function variableValues(dashboard: Dashboard, given: Readonly<Record<string, string>>): Record<string, string> {
  const values: Record<string, string> = { ...GRAFANA_BUILTINS };
  for (const v of dashboard.templating?.list ?? []) {
    if (given[v.name] !== undefined) values[v.name] = given[v.name] as string;
    else if (v.type === 'custom' || v.type === 'interval' || v.type === 'constant') {
      const current = v.current?.value;
      const value = Array.isArray(current) ? current[0] : current;
      if (typeof value === 'string') values[v.name] = value;
    }
  }
  return values;
}

const AGGREGATIONS = ['sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio'];
/** Words followed by a parenthesised list of label names, not of expressions. */
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set([...AGGREGATIONS, ...LABEL_LISTS, 'offset', 'bool', 'and', 'or', 'unless', 'atan2', 'inf', 'nan']);
const IDENTIFIER = /[A-Za-z_:][A-Za-z0-9_:]*/y;
const NUMBER = /(?:0x[0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?:[smhdwy]|ms)*/y;

/**
 * The metric names a PromQL expression selects: bare names (`foo`, `foo{a="b"}`) and `{__name__="foo"}`.
 * Function and aggregation names, keywords, label names (in matchers and in by/without/on/ignoring/
 * group_left/group_right lists), strings, numbers and durations are not metric names. A `__name__`
 * matched by a regular expression cannot be checked and is reported as `~REGEX`.
 */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  let i = 0;
  const skipString = (): void => {
    const quote = expr[i];
    i++;
    while (i < expr.length && expr[i] !== quote) i += expr[i] === '\\' && quote !== '`' ? 2 : 1;
    i++;
  };
  const nextNonSpace = (from: number): number => {
    let j = from;
    while (j < expr.length && /\s/.test(expr[j] as string)) j++;
    return j;
  };
  while (i < expr.length) {
    const c = expr[i] as string;
    if (c === '"' || c === "'" || c === '`') {
      skipString();
    } else if (c === '#') {
      while (i < expr.length && expr[i] !== '\n') i++;
    } else if (c === '{') {
      const end = matchingBrace(expr, i);
      for (const m of expr.slice(i + 1, end).matchAll(/__name__\s*(=~|!=|!~|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)/g)) {
        const value = (m[2] as string).slice(1, -1);
        if (m[1] === '=') names.add(value);
        else if (m[1] === '=~') names.add(`~${value}`);
      }
      i = end + 1;
    } else if (c === '[') {
      i = expr.indexOf(']', i) + 1 || expr.length;
    } else if (/[0-9.]/.test(c) && numberEndsAt(expr, i) > i) {
      i = numberEndsAt(expr, i);
    } else if (/[A-Za-z_:]/.test(c)) {
      IDENTIFIER.lastIndex = i;
      IDENTIFIER.test(expr);
      const word = expr.slice(i, IDENTIFIER.lastIndex);
      i = IDENTIFIER.lastIndex;
      const next = nextNonSpace(i);
      if (LABEL_LISTS.has(word) && expr[next] === '(') {
        i = expr.indexOf(')', next) + 1 || expr.length;
      } else if (expr[next] === '(' || KEYWORDS.has(word.toLowerCase())) {
        // A function call (its arguments are read next) or a keyword.
      } else {
        names.add(word);
      }
    } else {
      i++;
    }
  }
  return [...names].sort();
}

/** Where a number or duration (`0.9`, `3.6e6`, `5m`, `1h30m`) starting at `from` ends; `from` when none starts there. */
function numberEndsAt(expr: string, from: number): number {
  NUMBER.lastIndex = from;
  return NUMBER.test(expr) ? NUMBER.lastIndex : from;
}

function matchingBrace(expr: string, open: number): number {
  let i = open + 1;
  while (i < expr.length && expr[i] !== '}') {
    const c = expr[i];
    if (c === '"' || c === "'" || c === '`') {
      const quote = c;
      i++;
      while (i < expr.length && expr[i] !== quote) i += expr[i] === '\\' && quote !== '`' ? 2 : 1;
    }
    i++;
  }
  return i;
}

/**
 * The metric names a scrape exposes, from its `# TYPE` lines: as exported (counters carry their
 * `_total`), histograms with their `_bucket`, `_sum` and `_count` series, summaries with `_sum` and `_count`.
 */
export function exportedMetricNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    const m = /^# TYPE ([A-Za-z_:][A-Za-z0-9_:]*) (\w+)/.exec(line);
    if (!m) continue;
    const [, name, type] = m as unknown as [string, string, string];
    names.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) names.add(name + suffix);
  }
  return names;
}

/** Series Prometheus itself writes for every target it scrapes; the only names beyond the daemon's a query may use. */
export const SCRAPE_SERIES: readonly string[] = ['up'];

/** What Prometheus answered about one expression: ok, or its error (type and message). */
export type Evaluation = { readonly ok: true } | { readonly ok: false; readonly error: string };

/**
 * Every problem with a set of expressions: one that Prometheus does not accept (a parse error is a
 * 400 bad_data), one with a Grafana variable left without a value, one that names a metric the daemon
 * does not export. An empty list means all is well.
 */
export async function expressionProblems(
  queries: readonly DashboardQuery[],
  options: { values: Readonly<Record<string, string>>; exported: ReadonlySet<string>; evaluate: (promql: string) => Promise<Evaluation> },
): Promise<string[]> {
  const problems: string[] = [];
  for (const q of queries) {
    let promql: string;
    try {
      promql = substituteVariables(q.expr, options.values);
    } catch (e) {
      problems.push(`${q.where}: ${(e as Error).message}`);
      continue;
    }
    const result = await options.evaluate(promql);
    if (!result.ok) problems.push(`${q.where}: Prometheus rejects ${promql}: ${result.error}`);
    for (const name of metricNames(promql)) {
      if (!options.exported.has(name) && !SCRAPE_SERIES.includes(name)) problems.push(`${q.where}: names ${name}, which the daemon does not export`);
    }
  }
  return problems;
}
