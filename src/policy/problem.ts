/**
 * A validation problem located by a path into the parsed document, so the
 * loader can turn it into `file:line:column` and the token code into `where[i]`.
 */
export interface Problem {
  /** Keys and indexes from the root of whatever was validated. */
  path: (string | number)[];
  /** Set when the problem is the key itself (unknown key): points at the key, not its value. */
  key?: string;
  message: string;
}

/** Describes a value's type the way error messages talk about YAML and JSON data. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'number' && !Number.isFinite(value)) return 'a non-finite number';
  if (typeof value === 'object') return value instanceof Uint8Array ? 'binary data' : 'a mapping';
  return `a ${typeof value}`;
}

/** `where[0].value`-style rendering of a path for messages without positions. */
export function formatPath(where: string, path: readonly (string | number)[], key?: string): string {
  let out = where;
  for (const p of key === undefined ? path : [...path, key]) out += typeof p === 'number' ? `[${p}]` : `.${p}`;
  return out;
}
