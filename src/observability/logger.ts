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
const SECRET_KEY = /pass(word|phrase)?|secret|token|private.?key|api.?key|credential|authorization/i;
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
  for (const [key, value] of Object.entries(fields)) out[key] = serializeValue(key, value, new WeakSet(), 0);
  return out;
}

/** Deeper than this a value is cut off (a marker, never the value: what is not walked is not redacted). */
const MAX_DEPTH = 32;

function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key) && !/file$/i.test(key);
}

/**
 * A value as it may be logged: a secret-named key's value redacted at any depth, in objects, arrays,
 * Maps and Sets alike; errors as their code, message (and details and causes for ours); a structure
 * that contains itself cut where it does. `ancestors` holds the objects on the path from the root.
 */
function serializeValue(key: string, value: unknown, ancestors: WeakSet<object>, depth: number): unknown {
  if (isSecretKey(key)) return REDACTED;
  if (typeof value !== 'object' || value === null) return value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? String(value) : value.toISOString();
  if (ancestors.has(value)) return CIRCULAR;
  if (depth >= MAX_DEPTH) return TOO_DEEP;
  ancestors.add(value);
  try {
    const walk = (k: string, v: unknown) => serializeValue(k, v, ancestors, depth + 1);
    if (value instanceof ConsolidatorError) return walk('', value.toJSON());
    if (value instanceof Error) {
      const code = (value as { code?: unknown }).code;
      return { name: value.name, message: value.message, ...(code !== undefined ? { code: walk('code', code) } : {}) };
    }
    if (Array.isArray(value)) return value.map((item) => walk('', item));
    if (value instanceof Set) return [...value].map((item) => walk('', item));
    if (value instanceof Map) {
      const out: Record<string, unknown> = {};
      for (const [k, v] of value) out[String(k)] = walk(String(k), v);
      return out;
    }
    if (ArrayBuffer.isView(value)) return `[${value.constructor.name} of ${value.byteLength} bytes]`;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = walk(k, v);
    return out;
  } finally {
    ancestors.delete(value);
  }
}

const CIRCULAR = '[circular]';
const TOO_DEEP = '[too deep]';
/** Fields winston adds itself: never secrets, and the symbol-keyed parts of `info` must stay as they are. */
const WINSTON_FIELDS = new Set(['level', 'message', 'timestamp']);

/** Last line of defence: scrub secret-named keys, at any depth, that reached winston through another path. */
const redact = winston.format((info) => {
  const fields = info as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!WINSTON_FIELDS.has(key)) fields[key] = serializeValue(key, fields[key], new WeakSet(), 0);
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
