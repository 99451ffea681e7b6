import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export type PolicyPath = readonly (string | number)[];

export interface SourcePosition {
  readonly line: number;
  readonly col: number;
}

/**
 * Finds where a path points in the YAML document. For a path that does not exist (a missing required
 * key) it returns the deepest node that does, which is where the key should have been written.
 * With `atKey`, the position of the key itself (for unknown keys) rather than its value.
 */
export function locate(doc: Document, lineCounter: LineCounter, path: PolicyPath, atKey = false): SourcePosition {
  let node: unknown = doc.contents;
  let lastOffset = offsetOf(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i];
    const isLast = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      if (isLast && atKey) {
        lastOffset = offsetOf(pair.key) ?? lastOffset;
        break;
      }
      node = pair.value;
      lastOffset = offsetOf(node) ?? offsetOf(pair.key) ?? lastOffset;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment];
      if (item === undefined) break;
      node = item;
      lastOffset = offsetOf(node) ?? lastOffset;
    } else {
      break;
    }
  }
  const pos = lineCounter.linePos(lastOffset);
  return { line: pos.line, col: pos.col };
}

function offsetOf(node: unknown): number | undefined {
  const range = (node as Node | null | undefined)?.range;
  return range ? range[0] : undefined;
}

/** `hosts[2].ssh.keyFile` */
export function formatPath(path: PolicyPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? segment : `.${segment}`;
  }
  return out === '' ? '(root)' : out;
}
