/**
 * YAML parsing that remembers where everything came from, so a validation
 * problem found on the plain data can be reported as `file:line:column`.
 */
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document, type Node as YamlNode } from 'yaml';

import { CapframeError, type ErrorCode } from '../errors.js';
import type { Problem } from './problem.js';

/** Largest file we read: a policy is configuration, not data. */
export const MAX_YAML_BYTES = 1024 * 1024;

/** Parsed YAML plus a way back from data paths to positions. */
export interface YamlSource {
  /** The file name as given, used in messages. */
  readonly name: string;
  readonly data: unknown;
  /** 1-based line and column of the node at `path` (of its key when `key` is given); the nearest existing ancestor if it is missing. */
  locate(path: readonly (string | number)[], key?: string): { line: number; col: number };
}

function keyText(node: unknown): string | undefined {
  if (isScalar(node)) return String(node.value);
  return undefined;
}

/**
 * Parses YAML 1.2 (core schema: `yes` stays a string), rejecting duplicate
 * keys, multiple documents, unknown tags and anything the parser warns about.
 * Throws `CapframeError(code)` with one `name:line:col: …` line per problem.
 *
 * @example
 * const src = parseYamlSource('a:\n  b: 1\n', 'x.yaml');
 * src.locate(['a', 'b']); // { line: 2, col: 6 }
 */
export function parseYamlSource(text: string, name: string, code: ErrorCode = 'invalid_policy'): YamlSource {
  if (text.length > MAX_YAML_BYTES) throw new CapframeError(code, `${name}:1:1: file is larger than ${MAX_YAML_BYTES} bytes`);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true, strict: true, version: '1.2' });
  const yamlProblems = [...doc.errors, ...doc.warnings];
  if (yamlProblems.length > 0) {
    const lines = yamlProblems.map((e) => {
      const pos = e.linePos?.[0] ?? lineCounter.linePos(e.pos[0]);
      const what = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?\s*$/, '');
      if (e.code === 'MULTIPLE_DOCS') return `${name}:${pos.line}:${pos.col}: invalid YAML: a second document ("---"); the file must hold exactly one`;
      return `${name}:${pos.line}:${pos.col}: invalid YAML: ${what}`;
    });
    throw new CapframeError(code, lines.join('\n'));
  }
  // A list or mapping as a key is never valid here; toJS would stringify it (with a warning on stderr).
  let complexKey: number | undefined;
  visit(doc, {
    Pair(_, pair) {
      if (pair.key !== null && !isScalar(pair.key) && !isAlias(pair.key)) {
        complexKey = (pair.key as YamlNode).range?.[0] ?? 0;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  if (complexKey !== undefined) {
    const pos = lineCounter.linePos(complexKey);
    throw new CapframeError(code, `${name}:${pos.line}:${pos.col}: invalid YAML: a mapping key must be a plain value, not a list or a mapping`);
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    throw new CapframeError(code, `${name}:1:1: invalid YAML: ${(error as Error).message}`);
  }
  return {
    name,
    data,
    locate: (path, key) => {
      const offset = locateOffset(doc, path, key);
      return lineCounter.linePos(offset);
    },
  };
}

function resolve(doc: Document, node: unknown): unknown {
  return isAlias(node) ? node.resolve(doc) : node;
}

function startOf(node: unknown): number | undefined {
  const range = (node as YamlNode | null)?.range;
  return range ? range[0] : undefined;
}

function locateOffset(doc: Document, path: readonly (string | number)[], key?: string): number {
  let node: unknown = doc.contents;
  let best = startOf(node) ?? 0;
  for (const segment of path) {
    node = resolve(doc, node);
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === String(segment));
      if (!pair) return best;
      // A key with no value (`tool:`) has no value node: point at the key.
      next = pair.value ?? pair.key;
    } else if (isSeq(node) && typeof segment === 'number') {
      next = node.items[segment];
    }
    const start = startOf(next);
    if (start === undefined) return best;
    best = start;
    node = next;
  }
  if (key !== undefined) {
    node = resolve(doc, node);
    if (isMap(node)) {
      const pair = node.items.find((p) => keyText(p.key) === key);
      const start = startOf(pair?.key);
      if (start !== undefined) return start;
    }
  }
  return best;
}

/**
 * Renders problems as `name:line:col: message` lines, in file order.
 *
 * @example
 * formatProblems(src, [{ path: ['a'], key: 'x', message: 'unknown key "x"' }]);
 * // 'x.yaml:2:3: unknown key "x"'
 */
export function formatProblems(source: YamlSource, problems: readonly Problem[]): string {
  const located = problems.map((p) => ({ ...source.locate(p.path, p.key), message: p.message }));
  located.sort((a, b) => a.line - b.line || a.col - b.col);
  const lines = located.slice(0, 50).map((p) => `${source.name}:${p.line}:${p.col}: ${p.message}`);
  if (located.length > 50) lines.push(`${source.name}: … and ${located.length - 50} more problems`);
  return [...new Set(lines)].join('\n');
}
