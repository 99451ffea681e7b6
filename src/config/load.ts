import { constants as fsConstants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConsolidatorError, errorMessage } from '../errors.js';
import { formatPath, locate, type PolicyPath } from './locate.js';
import { PolicySchema, policyJsonSchema, type Policy } from './schema.js';
import { checkSemantics, type PolicyProblem } from './semantics.js';
import { resolveHosts, type ResolvedHost } from './resolve.js';
import { closest, knownKeysAt } from './suggest.js';
import { checkWebConfigFiles, loadWebConfigFile, type WebConfig } from './web-config.js';
import { formatIssue, type PolicyIssue } from './policy-issue.js';

export { formatIssue, type PolicyIssue };

export interface LoadedPolicy {
  readonly file: string;
  readonly policy: Policy;
  /** Hosts with hostDefaults applied. */
  readonly hosts: readonly ResolvedHost[];
  /** Things worth fixing that do not stop the policy from loading (e.g. a secret readable by all). */
  readonly warnings: readonly PolicyIssue[];
  /** metrics.webConfigFile, parsed (TLS and basic auth for /metrics); undefined when not set. */
  readonly webConfig?: WebConfig;
}

export type LoadResult = { ok: true; value: LoadedPolicy } | { ok: false; issues: readonly PolicyIssue[] };

/** Loads and checks a policy file. Expected problems come back as data, every one of them at once. */
export async function loadPolicyFile(file: string): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    return { ok: false, issues: [{ file, line: 1, col: 1, path: '(file)', message: `cannot read the policy file: ${errorMessage(e)}` }] };
  }
  return loadPolicyText(text, file);
}

/** Like loadPolicyFile, but throws a POLICY_INVALID error listing every issue. */
export async function loadPolicyOrThrow(file: string): Promise<LoadedPolicy> {
  const result = await loadPolicyFile(file);
  if (!result.ok) {
    throw new ConsolidatorError('POLICY_INVALID', `${file} is not a valid policy:\n${result.issues.map(formatIssue).join('\n')}`, {
      details: { file, issues: result.issues.length },
    });
  }
  return result.value;
}

export async function loadPolicyText(text: string, file: string): Promise<LoadResult> {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  const issues: PolicyIssue[] = [];

  for (const error of doc.errors) {
    const pos = error.linePos?.[0] ?? lineCounter.linePos(error.pos[0]);
    issues.push({ file, line: pos.line, col: pos.col, path: '(yaml)', message: yamlMessage(error.message) });
  }
  if (issues.length > 0) return { ok: false, issues };

  if (doc.contents === null || doc.contents === undefined) {
    return { ok: false, issues: [{ file, line: 1, col: 1, path: '(root)', message: 'the policy file is empty: it needs at least version: 1 and hosts' }] };
  }

  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    const pos = locate(doc, lineCounter, []);
    return { ok: false, issues: [{ file, ...pos, path: '(root)', message: 'the policy must be a mapping of keys to values (version: 1, hosts: ...)' }] };
  }

  const parsed = PolicySchema.safeParse(raw);
  if (!parsed.success) {
    const jsonSchema = policyJsonSchema();
    for (const zodIssue of parsed.error.issues) issues.push(...describeZodIssue(zodIssue, doc, lineCounter, file, jsonSchema));
    return { ok: false, issues: sortIssues(issues) };
  }

  const policy = parsed.data;
  const hosts = resolveHosts(policy, dirname(resolvePath(file)));
  const problems = await checkSemantics(policy, hosts, { isReadable, isPrivate, serviceCredentialElsewhere });
  const at = (p: PolicyProblem): PolicyIssue => ({ file, ...locate(doc, lineCounter, p.path), path: formatPath(p.path), message: p.message });
  const errors = problems.filter((p) => p.severity === 'error').map(at);
  const warnings = problems.filter((p) => p.severity === 'warning').map(at);
  if (errors.length > 0) return { ok: false, issues: sortIssues(errors) };
  let webConfig: WebConfig | undefined;
  if (policy.metrics.webConfigFile !== undefined) {
    const web = await loadWebConfigFile(resolvePath(dirname(resolvePath(file)), policy.metrics.webConfigFile));
    if (!web.ok) return { ok: false, issues: web.issues };
    const fileProblems = await checkWebConfigFiles(web.value, { isReadable, isPrivate });
    if (fileProblems.errors.length > 0) return { ok: false, issues: fileProblems.errors };
    warnings.push(...fileProblems.warnings);
    webConfig = web.value;
  }
  return { ok: true, value: { file, policy, hosts, warnings, ...(webConfig ? { webConfig } : {}) } };
}

function yamlMessage(message: string): string {
  // The yaml library appends a code excerpt after the first line; the position is reported separately.
  const first = message.split('\n')[0] ?? message;
  return first.replace(/ at line \d+, column \d+:?$/, '');
}

function describeZodIssue(
  issue: z.core.$ZodIssue,
  doc: Document,
  lineCounter: LineCounter,
  file: string,
  jsonSchema: Record<string, unknown>,
): PolicyIssue[] {
  const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const known = knownKeysAt(jsonSchema, path);
    return issue.keys.map((key) => {
      const suggestion = closest(key, known);
      const hint = suggestion ? ` (did you mean "${suggestion}"?)` : known.length > 0 ? ` (known keys: ${known.join(', ')})` : '';
      return { file, ...locate(doc, lineCounter, [...path, key], true), path: formatPath([...path, key]), message: `unknown key${hint}` };
    });
  }
  return [{ file, ...locate(doc, lineCounter, path), path: formatPath(path), message: zodMessage(issue, valueAt(doc, path)) }];
}

function valueAt(doc: Document, path: PolicyPath): unknown {
  const node = doc.getIn(path, false);
  return node;
}

function zodMessage(issue: z.core.$ZodIssue, actual: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      if (actual === undefined) return `is required (${issue.expected})`;
      return `must be ${article(issue.expected)}, got ${describeValue(actual)}`;
    case 'invalid_value': {
      const options = issue.values.map((v) => JSON.stringify(v));
      const suggestion = typeof actual === 'string' ? closest(actual, issue.values.map(String)) : undefined;
      const base = options.length === 1 ? `must be ${options[0]}` : `must be one of ${options.join(', ')}`;
      if (actual === undefined) return `is required (${base})`;
      return `${base}, got ${describeValue(actual)}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`;
    }
    default:
      return issue.message;
  }
}

function article(expected: string): string {
  return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

function sortIssues(issues: PolicyIssue[]): PolicyIssue[] {
  return issues.sort((a, b) => a.line - b.line || a.col - b.col || a.path.localeCompare(b.path));
}

async function isReadable(path: string): Promise<string | undefined> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return 'is not a regular file';
    await access(path, fsConstants.R_OK);
    return undefined;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ENOENT') return 'does not exist';
    if (code === 'EACCES') return 'is not readable by this user';
    return `cannot be read (${code ?? errorMessage(e)})`;
  }
}

function serviceCredentialElsewhere(path: string): string | undefined {
  const match = /^\/run\/credentials\/([^/]+)\/[^/]+$/.exec(resolvePath(path));
  if (!match) return undefined;
  // systemd sets CREDENTIALS_DIRECTORY in the service it loads credentials for.
  const own = process.env['CREDENTIALS_DIRECTORY'];
  return own !== undefined && resolvePath(own) === resolvePath('/run/credentials', match[1] ?? '') ? undefined : match[1];
}

async function isPrivate(path: string): Promise<boolean> {
  try {
    const info = await stat(path);
    return (info.mode & 0o077) === 0;
  } catch {
    // Readability is reported by isReadable; an unreadable file is not also called public.
    return true;
  }
}
