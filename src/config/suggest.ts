import type { PolicyPath } from './locate.js';

/** Edit distance (Levenshtein), for "did you mean" on unknown keys and values. */
export function editDistance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = previous[0] as number;
    previous[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = previous[j] as number;
      const cost = a[i - 1]?.toLowerCase() === b[j - 1]?.toLowerCase() ? 0 : 1;
      previous[j] = Math.min(above + 1, (previous[j - 1] as number) + 1, diagonal + cost);
      diagonal = above;
    }
  }
  return previous[b.length] as number;
}

/** The closest candidate, if it is close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const d = editDistance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  const tolerance = Math.max(2, Math.floor(word.length / 3));
  return bestDistance <= tolerance ? best : undefined;
}

type JsonSchema = { [key: string]: unknown };

/** The keys an object at `path` may have, read from the JSON Schema generated from the zod schema. */
export function knownKeysAt(schema: JsonSchema, path: PolicyPath): string[] {
  let nodes: JsonSchema[] = [schema];
  for (const segment of path) {
    const next: JsonSchema[] = [];
    for (const node of nodes.flatMap(alternatives)) {
      if (typeof segment === 'number') {
        if (isSchema(node['items'])) next.push(node['items']);
      } else {
        const props = node['properties'];
        if (isSchema(props) && isSchema(props[segment])) next.push(props[segment]);
        else if (isSchema(node['additionalProperties'])) next.push(node['additionalProperties']);
      }
    }
    nodes = next;
  }
  const keys = new Set<string>();
  for (const node of nodes.flatMap(alternatives)) {
    const props = node['properties'];
    if (isSchema(props)) for (const k of Object.keys(props)) keys.add(k);
  }
  return [...keys];
}

function alternatives(node: JsonSchema): JsonSchema[] {
  const out: JsonSchema[] = [node];
  for (const key of ['anyOf', 'oneOf', 'allOf']) {
    const list = node[key];
    if (Array.isArray(list)) for (const item of list) if (isSchema(item)) out.push(...alternatives(item));
  }
  return out;
}

function isSchema(value: unknown): value is JsonSchema {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
