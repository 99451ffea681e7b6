import { readFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { errorMessage } from '../errors.js';
import type { PolicyIssue } from './policy-issue.js';
import { formatPath, locate, type PolicyPath } from './locate.js';

/**
 * The metrics endpoint's TLS and basic auth, in Prometheus exporter-toolkit's web-config format
 * (https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md), so one file
 * serves node_exporter and consolidator alike. The subset consolidator implements:
 *
 *   tls_server_config: { cert_file, key_file, client_ca_file?, client_auth_type?, min_version?, max_version? }
 *   basic_auth_users:  { USER: BCRYPT_HASH, ... }
 *
 * Keys of the format that consolidator does not implement (inline cert/key, cipher_suites,
 * http_server_config, rate_limit, ...) are errors, never silently ignored: a setting an operator
 * wrote for security must take effect or be refused. Problems are policy issues naming the web
 * config file, its line and the field; the key file's contents are never read here nor quoted.
 */

export const CLIENT_AUTH_TYPES = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

const TLS_VERSIONS = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const;
export type TlsVersion = (typeof TLS_VERSIONS)[keyof typeof TLS_VERSIONS];

export interface WebTlsConfig {
  /** Absolute paths (relative ones are read from the web config file's folder, as exporter-toolkit does). */
  readonly certFile: string;
  readonly keyFile: string;
  readonly clientCaFile?: string;
  readonly clientAuthType: ClientAuthType;
  readonly minVersion: TlsVersion;
  readonly maxVersion: TlsVersion;
}

export interface WebConfig {
  readonly file: string;
  readonly tls?: WebTlsConfig;
  /** User name -> bcrypt hash. Empty: no authentication. */
  readonly basicAuthUsers: ReadonlyMap<string, string>;
}

export type WebConfigResult = { ok: true; value: WebConfig } | { ok: false; issues: readonly PolicyIssue[] };

const TOP_KEYS = ['tls_server_config', 'basic_auth_users'];
const TLS_KEYS = ['cert_file', 'key_file', 'client_ca_file', 'client_auth_type', 'min_version', 'max_version'];
/** In the format, not implemented here: refused with a clear message. */
const UNSUPPORTED = new Set(['http_server_config', 'rate_limit', 'cert', 'key', 'client_ca', 'client_allowed_sans', 'cipher_suites', 'prefer_server_cipher_suites', 'curve_preferences']);
/** $2a$, $2b$, $2y$ (htpasswd -B writes $2y$), cost 04..31, 53 characters of salt and hash. */
const BCRYPT_HASH = /^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$/;

export async function loadWebConfigFile(file: string): Promise<WebConfigResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    return { ok: false, issues: [{ file, line: 1, col: 1, path: '(file)', message: `cannot read the web config file: ${errorMessage(e)}` }] };
  }
  return parseWebConfig(text, file);
}

export function parseWebConfig(text: string, file: string): WebConfigResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const issues: PolicyIssue[] = [];
  const issue = (path: PolicyPath, message: string, onKey = false) => issues.push({ file, ...locate(doc, lineCounter, path, onKey), path: formatPath(path) || '(root)', message });
  for (const error of doc.errors) {
    const pos = error.linePos?.[0] ?? lineCounter.linePos(error.pos[0]);
    issues.push({ file, line: pos.line, col: pos.col, path: '(yaml)', message: error.message.split('\n')[0] ?? error.message });
  }
  if (issues.length > 0) return { ok: false, issues };

  const raw: unknown = doc.toJS({ maxAliasCount: 100 }) ?? {};
  if (!isMapping(raw)) {
    issue([], 'the web config must be a mapping (tls_server_config, basic_auth_users)');
    return { ok: false, issues };
  }
  checkKeys(raw, [], TOP_KEYS, issue);

  const base = dirname(resolvePath(file));
  let tls: WebTlsConfig | undefined;
  const rawTls = raw['tls_server_config'];
  if (rawTls !== undefined && rawTls !== null) {
    tls = parseTls(rawTls, base, issue);
  }

  const users = new Map<string, string>();
  const rawUsers = raw['basic_auth_users'];
  if (rawUsers !== undefined && rawUsers !== null) {
    if (!isMapping(rawUsers)) issue(['basic_auth_users'], 'must be a mapping of user names to bcrypt hashes');
    else {
      for (const [user, hash] of Object.entries(rawUsers)) {
        if (user === '' || user.includes(':')) issue(['basic_auth_users', user], 'a user name must be non-empty and contain no ":"', true);
        // Never quote the value: a plaintext password written by mistake would land in the logs.
        else if (typeof hash !== 'string' || !BCRYPT_HASH.test(hash)) issue(['basic_auth_users', user], 'must be a bcrypt hash ($2y$10$..., e.g. from `htpasswd -nBC 10 "" | tr -d \':\\n\'`); the value is not shown');
        else users.set(user, hash);
      }
    }
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, value: { file, ...(tls ? { tls } : {}), basicAuthUsers: users } };
}

function parseTls(rawTls: unknown, base: string, issue: (path: PolicyPath, message: string, onKey?: boolean) => void): WebTlsConfig | undefined {
  const at = (key: string): PolicyPath => ['tls_server_config', key];
  if (!isMapping(rawTls)) {
    issue(['tls_server_config'], 'must be a mapping (cert_file, key_file, ...)');
    return undefined;
  }
  checkKeys(rawTls, ['tls_server_config'], TLS_KEYS, issue);
  const path = (key: string, required: boolean): string | undefined => {
    const value = rawTls[key];
    if (value === undefined || value === null) {
      if (required) issue(at(key), `is required when tls_server_config is set`);
      return undefined;
    }
    if (typeof value !== 'string' || value === '') {
      issue(at(key), 'must be a file path');
      return undefined;
    }
    return resolvePath(base, value);
  };
  const certFile = path('cert_file', true);
  const keyFile = path('key_file', true);
  const clientCaFile = path('client_ca_file', false);
  const authType = rawTls['client_auth_type'] ?? 'NoClientCert';
  let clientAuthType: ClientAuthType = 'NoClientCert';
  if (typeof authType !== 'string' || !(CLIENT_AUTH_TYPES as readonly string[]).includes(authType)) {
    issue(at('client_auth_type'), `must be one of ${CLIENT_AUTH_TYPES.join(', ')}`);
  } else clientAuthType = authType as ClientAuthType;
  if ((clientAuthType === 'VerifyClientCertIfGiven' || clientAuthType === 'RequireAndVerifyClientCert') && clientCaFile === undefined) {
    issue(at('client_ca_file'), `is required with client_auth_type ${clientAuthType} (the CA that signs client certificates)`);
  }
  if (clientCaFile !== undefined && clientAuthType === 'NoClientCert') {
    issue(at('client_auth_type'), 'client_ca_file is set but client_auth_type is NoClientCert: set RequireAndVerifyClientCert to check client certificates');
  }
  const version = (key: string, fallback: TlsVersion): TlsVersion => {
    const value = rawTls[key];
    if (value === undefined || value === null) return fallback;
    if (typeof value === 'string' && value in TLS_VERSIONS) return TLS_VERSIONS[value as keyof typeof TLS_VERSIONS];
    issue(at(key), `must be one of ${Object.keys(TLS_VERSIONS).join(', ')}`);
    return fallback;
  };
  const minVersion = version('min_version', 'TLSv1.2');
  const maxVersion = version('max_version', 'TLSv1.3');
  if (certFile === undefined || keyFile === undefined) return undefined;
  return { certFile, keyFile, ...(clientCaFile ? { clientCaFile } : {}), clientAuthType, minVersion, maxVersion };
}

function checkKeys(value: Record<string, unknown>, at: PolicyPath, known: readonly string[], issue: (path: PolicyPath, message: string, onKey?: boolean) => void): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const message = UNSUPPORTED.has(key) ? 'is part of the exporter-toolkit format but not supported by consolidator' : `unknown key (known keys: ${known.join(', ')})`;
    issue([...at, key], message, true);
  }
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The certificate, key and CA files exist and are readable; the key file is private (a warning if not). */
export async function checkWebConfigFiles(
  config: WebConfig,
  files: { isReadable(path: string): Promise<string | undefined>; isPrivate(path: string): Promise<boolean> },
): Promise<{ errors: PolicyIssue[]; warnings: PolicyIssue[] }> {
  const errors: PolicyIssue[] = [];
  const warnings: PolicyIssue[] = [];
  if (!config.tls) return { errors, warnings };
  const text = await readFile(config.file, 'utf8').catch(() => '');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  const at = (key: string) => ({ file: config.file, ...locate(doc, lineCounter, ['tls_server_config', key]), path: `tls_server_config.${key}` });
  const entries: [string, string | undefined][] = [
    ['cert_file', config.tls.certFile],
    ['key_file', config.tls.keyFile],
    ['client_ca_file', config.tls.clientCaFile],
  ];
  for (const [key, path] of entries) {
    if (path === undefined) continue;
    const problem = await files.isReadable(path);
    if (problem) errors.push({ ...at(key), message: `${path} ${problem}` });
    else if (key === 'key_file' && !(await files.isPrivate(path))) warnings.push({ ...at(key), message: `${path} can be read by group or others; chmod 600 it` });
  }
  return { errors, warnings };
}
