import { describe, expect, it } from 'vitest';
import { cronMatchesMinute, minimumIntervalSeconds, parseCron } from '../../../src/config/cron.js';

function parse(source: string) {
  const result = parseCron(source);
  if (!result.ok) throw new Error(result.error);
  return result.value;
}

const at = (iso: string) => Date.parse(iso);

describe('cron expressions', () => {
  it.each([
    ['*/5 * * * *', 300],
    ['0 * * * *', 3600],
    ['*/10 * * * * *', 10],
    ['0 2 * * *', 86_400],
  ])('%s fires at least every %i s', (source, seconds) => {
    expect(minimumIntervalSeconds(parse(source))).toBe(seconds);
  });

  it.each([
    ['* * * *', 'a cron expression has 5 fields (minute hour day month weekday) or 6 (with seconds first), got 4'],
    ['61 * * * *', 'minute 61 is out of range 0-59'],
    ['* 5-2 * * *', 'hour field "5-2": range 5-2 runs backwards'],
    ['*/0 * * * *', 'minute field "*/0": step "0" must be a whole number of at least 1'],
    ['* * * foo *', 'month "foo" is not a number or a name'],
  ])('rejects %s', (source, message) => {
    expect(parseCron(source)).toEqual({ ok: false, error: message });
  });

  it('matches windows minute by minute', () => {
    const nights = parse('* 22-23,0-5 * * *');
    expect(cronMatchesMinute(nights, at('2026-11-26T23:30:00Z'))).toBe(true);
    expect(cronMatchesMinute(nights, at('2026-11-26T05:59:59Z'))).toBe(true);
    expect(cronMatchesMinute(nights, at('2026-11-26T06:00:00Z'))).toBe(false);
  });

  it('reads names and treats 7 as Sunday', () => {
    const weekend = parse('* * * * sat,7');
    expect(cronMatchesMinute(weekend, at('2026-11-28T12:00:00Z'))).toBe(true); // Saturday
    expect(cronMatchesMinute(weekend, at('2026-11-29T12:00:00Z'))).toBe(true); // Sunday
    expect(cronMatchesMinute(weekend, at('2026-11-30T12:00:00Z'))).toBe(false); // Monday
    expect(cronMatchesMinute(parse('* * * nov *'), at('2026-11-30T12:00:00Z'))).toBe(true);
  });

  it('matches either day field when both are restricted, as classic cron does', () => {
    const firstOrMonday = parse('* * 1 * mon');
    expect(cronMatchesMinute(firstOrMonday, at('2026-12-01T00:00:00Z'))).toBe(true); // the 1st, a Tuesday
    expect(cronMatchesMinute(firstOrMonday, at('2026-11-30T00:00:00Z'))).toBe(true); // a Monday
    expect(cronMatchesMinute(firstOrMonday, at('2026-12-02T00:00:00Z'))).toBe(false);
  });

  it('reads windows in the policy time zone', () => {
    const morning = parse('* 8 * * *');
    // 07:30 UTC is 08:30 in Paris (UTC+1 in November).
    expect(cronMatchesMinute(morning, at('2026-11-26T07:30:00Z'), 'Europe/Paris')).toBe(true);
    expect(cronMatchesMinute(morning, at('2026-11-26T07:30:00Z'), 'UTC')).toBe(false);
  });
});
