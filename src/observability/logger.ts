import type { Writable } from 'node:stream';
import winston from 'winston';
import { ConsolidatorError } from '../errors.js';

export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type LogFormat = 'json' | 'pretty';
export type LogFields = Readonly<Record<string, unknown>>;

/**
 * The project's logger: a short lowercase event plus structured fields
 * (`log.info('migration finished', { vm, from, to, durationMs })`). One per component, via child().
 */
export interface Logger {
  error(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  debug(event: string, fields?: LogFields): void;
  /** A logger whose lines all carry these fields (`component`, `cycle`, ...). */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly format: LogFormat;
  /** Where lines go; stdout (journald) by default. */
  readonly stream?: Writable;
}

/** Keys whose values are never written, whatever they hold. */
const SECRET_KEY = /pass(word|phrase)?|secret|token|private.?key|credential|authorization/i;
const REDACTED = '[redacted]';

export function createLogger(options: LoggerOptions): Logger {
  const format =
    options.format === 'json'
      ? winston.format.combine(winston.format.timestamp(), redact(), winston.format.json())
      : winston.format.combine(winston.format.timestamp(), redact(), pretty());
  const base = winston.createLogger({
    level: options.level,
    format,
    transports: [new winston.transports.Stream({ stream: options.stream ?? process.stdout })],
  });
  return wrap(base);
}

/** A logger that drops everything, for code paths (and tests) that need one but have no audience. */
export const silentLogger: Logger = {
  error: () => undefined,
  warn: () => undefined,
  info: () => undefined,
  debug: () => undefined,
  child: () => silentLogger,
};

function wrap(w: winston.Logger): Logger {
  const emit = (level: LogLevel) => (event: string, fields?: LogFields) => {
    w.log(level, event, fields ? serializeFields(fields) : {});
  };
  return {
    error: emit('error'),
    warn: emit('warn'),
    info: emit('info'),
    debug: emit('debug'),
    child: (fields) => wrap(w.child(serializeFields(fields))),
  };
}

function serializeFields(fields: LogFields): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key] = serializeValue(key, value, 0);
  return out;
}

function serializeValue(key: string, value: unknown, depth: number): unknown {
  if (SECRET_KEY.test(key) && !/file$/i.test(key)) return REDACTED;
  if (value instanceof ConsolidatorError) return value.toJSON();
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code !== undefined ? { code } : {}) };
  }
  if (depth < 4 && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = serializeValue(k, v, depth + 1);
    return out;
  }
  return value;
}

/** Last line of defence: scrub secret-named keys that reached winston through another path. */
const redact = winston.format((info) => {
  for (const key of Object.keys(info)) {
    if (SECRET_KEY.test(key) && !/file$/i.test(key)) (info as Record<string, unknown>)[key] = REDACTED;
  }
  return info;
});

function pretty() {
  return winston.format.printf((info) => {
    const { timestamp, level, message, component, ...rest } = info as Record<string, unknown>;
    const tag = typeof component === 'string' ? ` [${component}]` : '';
    const formatted = formatPrettyFields(rest);
    const fields = formatted.length > 0 ? ` ${formatted}` : '';
    return `${String(timestamp)} ${String(level).padEnd(5)}${tag} ${String(message)}${fields}`;
  });
}

function formatPrettyFields(fields: Record<string, unknown>): string {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`)
    .join(' ');
}
