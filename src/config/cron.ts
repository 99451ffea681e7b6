/**
 * A small cron-expression parser and matcher. The daemon's schedule is run by node-cron; this module
 * validates expressions at policy load (with a message that says which field is wrong) and decides,
 * purely, whether a moment falls inside a quiet or active window. Windows are cron expressions read as
 * "every minute that matches is inside the window": `* 0-6 * * *` is 00:00 to 06:59 every day.
 *
 * Fields: [second] minute hour day-of-month month day-of-week, with `*`, lists, ranges, steps and
 * English month and weekday names (0 and 7 are both Sunday). Windows are matched in the policy's IANA
 * time zone (UTC by default); the planner receives `now`, so matching stays pure.
 */

export interface CronExpression {
  readonly source: string;
  readonly seconds: ReadonlySet<number>;
  readonly minutes: ReadonlySet<number>;
  readonly hours: ReadonlySet<number>;
  readonly daysOfMonth: ReadonlySet<number>;
  readonly months: ReadonlySet<number>;
  readonly daysOfWeek: ReadonlySet<number>;
  readonly daysOfMonthRestricted: boolean;
  readonly daysOfWeekRestricted: boolean;
}

interface FieldSpec {
  readonly name: string;
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const SECOND: FieldSpec = { name: 'second', min: 0, max: 59 };
const MINUTE: FieldSpec = { name: 'minute', min: 0, max: 59 };
const HOUR: FieldSpec = { name: 'hour', min: 0, max: 23 };
const DAY_OF_MONTH: FieldSpec = { name: 'day of month', min: 1, max: 31 };
const MONTH: FieldSpec = {
  name: 'month',
  min: 1,
  max: 12,
  names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
};
const DAY_OF_WEEK: FieldSpec = {
  name: 'day of week',
  min: 0,
  max: 7,
  names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'],
};

export type CronParseResult = { ok: true; value: CronExpression } | { ok: false; error: string };

export function parseCron(source: string): CronParseResult {
  const fields = source.trim().split(/\s+/);
  if (fields.length !== 5 && fields.length !== 6) {
    return { ok: false, error: `a cron expression has 5 fields (minute hour day month weekday) or 6 (with seconds first), got ${fields.length}` };
  }
  const withSeconds = fields.length === 6 ? fields : ['0', ...fields];
  const specs = [SECOND, MINUTE, HOUR, DAY_OF_MONTH, MONTH, DAY_OF_WEEK];
  const sets: Set<number>[] = [];
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i] as FieldSpec;
    const parsed = parseField(withSeconds[i] as string, spec);
    if (typeof parsed === 'string') return { ok: false, error: parsed };
    sets.push(parsed);
  }
  const dow = sets[5] as Set<number>;
  if (dow.has(7)) {
    dow.delete(7);
    dow.add(0);
  }
  return {
    ok: true,
    value: {
      source,
      seconds: sets[0] as Set<number>,
      minutes: sets[1] as Set<number>,
      hours: sets[2] as Set<number>,
      daysOfMonth: sets[3] as Set<number>,
      months: sets[4] as Set<number>,
      daysOfWeek: dow,
      daysOfMonthRestricted: (withSeconds[3] as string) !== '*',
      daysOfWeekRestricted: (withSeconds[5] as string) !== '*',
    },
  };
}

function parseField(text: string, spec: FieldSpec): Set<number> | string {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    const [rangeText, stepText, extra] = part.split('/');
    if (extra !== undefined || rangeText === undefined || rangeText === '') {
      return `${spec.name} field "${text}": "${part}" is not a value, range or step`;
    }
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) {
        return `${spec.name} field "${text}": step "${stepText}" must be a whole number of at least 1`;
      }
      step = Number(stepText);
    }
    let low: number;
    let high: number;
    if (rangeText === '*') {
      low = spec.min;
      high = spec.max === 7 ? 6 : spec.max;
    } else {
      const bounds = rangeText.split('-');
      if (bounds.length > 2) return `${spec.name} field "${text}": "${rangeText}" is not a range`;
      const first = parseValue(bounds[0] as string, spec);
      if (typeof first === 'string') return first;
      low = first;
      if (bounds.length === 2) {
        const second = parseValue(bounds[1] as string, spec);
        if (typeof second === 'string') return second;
        high = second;
        if (high < low) return `${spec.name} field "${text}": range ${rangeText} runs backwards`;
      } else {
        high = stepText === undefined ? low : spec.max;
      }
    }
    for (let v = low; v <= high; v += step) values.add(v);
  }
  return values;
}

function parseValue(text: string, spec: FieldSpec): number | string {
  const lower = text.toLowerCase();
  const named = spec.names?.indexOf(lower) ?? -1;
  if (named >= 0) return named + (spec.name === 'month' ? 1 : 0);
  if (!/^\d+$/.test(text)) return `${spec.name} "${text}" is not a number${spec.names ? ' or a name' : ''}`;
  const value = Number(text);
  if (value < spec.min || value > spec.max) {
    return `${spec.name} ${value} is out of range ${spec.min}-${spec.max}`;
  }
  return value;
}

/**
 * True when the minute containing `atMs` matches the expression, read as wall-clock time in `timeZone`
 * (an IANA name such as "Europe/Paris"). Seconds are ignored: windows are minute-grained.
 */
export function cronMatchesMinute(expr: CronExpression, atMs: number, timeZone = 'UTC'): boolean {
  const t = wallClock(atMs, timeZone);
  if (!expr.minutes.has(t.minute)) return false;
  if (!expr.hours.has(t.hour)) return false;
  if (!expr.months.has(t.month)) return false;
  const domMatch = expr.daysOfMonth.has(t.day);
  const dowMatch = expr.daysOfWeek.has(t.weekday);
  // Classic cron: when both day fields are restricted, either one matching is enough.
  if (expr.daysOfMonthRestricted && expr.daysOfWeekRestricted) return domMatch || dowMatch;
  return domMatch && dowMatch;
}

interface WallClock {
  readonly minute: number;
  readonly hour: number;
  readonly day: number;
  readonly month: number;
  readonly weekday: number;
}

const WEEKDAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const formatters = new Map<string, Intl.DateTimeFormat>();

export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

function wallClock(atMs: number, timeZone: string): WallClock {
  if (timeZone === 'UTC') {
    const d = new Date(atMs);
    return { minute: d.getUTCMinutes(), hour: d.getUTCHours(), day: d.getUTCDate(), month: d.getUTCMonth() + 1, weekday: d.getUTCDay() };
  }
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      minute: 'numeric',
      hour: 'numeric',
      day: 'numeric',
      month: 'numeric',
      weekday: 'short',
    });
    formatters.set(timeZone, format);
  }
  const parts: Record<string, string> = {};
  for (const p of format.formatToParts(new Date(atMs))) parts[p.type] = p.value;
  return {
    minute: Number(parts['minute']),
    hour: Number(parts['hour']),
    day: Number(parts['day']),
    month: Number(parts['month']),
    weekday: WEEKDAYS.indexOf(parts['weekday'] ?? 'Sun'),
  };
}

/** Smallest interval between two firings of a schedule, in seconds (bounded search over one day). */
export function minimumIntervalSeconds(expr: CronExpression): number {
  const seconds = [...expr.seconds].sort((a, b) => a - b);
  const minutes = [...expr.minutes].sort((a, b) => a - b);
  if (seconds.length > 1) return minGap(seconds, 60);
  if (minutes.length > 1) return minGap(minutes, 60) * 60;
  const hours = [...expr.hours].sort((a, b) => a - b);
  if (hours.length > 1) return minGap(hours, 24) * 3600;
  return 86_400;
}

function minGap(sorted: readonly number[], modulus: number): number {
  let gap = modulus;
  for (let i = 0; i < sorted.length; i++) {
    const a = sorted[i] as number;
    const b = i + 1 < sorted.length ? (sorted[i + 1] as number) : (sorted[0] as number) + modulus;
    gap = Math.min(gap, b - a);
  }
  return gap;
}
