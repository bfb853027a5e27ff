/**
 * Dotted argument paths (`"filter.owner"`). A path walks plain objects only and
 * own properties only: an array, a class instance or a scalar on the way means
 * the path cannot be resolved, which is a type mismatch, not absence.
 */

/** Outcome of resolving a path; the value is in `ArgReader.value` when `FOUND`. */
export const FOUND = 0;
/** The last object on the way is a plain object without the key (or the arguments are undefined). */
export const MISSING = 1;
/** Something other than a plain object sits on the way. */
export const BLOCKED = 2;

export type Lookup = typeof FOUND | typeof MISSING | typeof BLOCKED;

/**
 * A compiled path. `read` returns a status and leaves the value in `value`, so
 * the hot path allocates nothing.
 */
export interface ArgReader {
  readonly segments: readonly string[];
  value: unknown;
  read(args: unknown): Lookup;
}

/** Plain data object: what JSON.parse, YAML or CBOR produce. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Splits and checks a dotted path; returns an error message or the segments. */
export function parseArgPath(path: string): string[] | string {
  if (path.length === 0) return 'arg must be a non-empty dotted path';
  const segments = path.split('.');
  if (segments.some((s) => s.length === 0)) return `arg "${path}" has an empty segment; expected names separated by single dots`;
  if (segments.length > 16) return `arg "${path}" is nested deeper than 16 levels`;
  return segments;
}

/**
 * Compiles a path whose segments were checked with `parseArgPath`.
 *
 * @example
 * const r = compileArgPath(['filter', 'owner']);
 * r.read({ filter: { owner: 'me' } }) === FOUND && r.value; // 'me'
 */
export function compileArgPath(segments: readonly string[]): ArgReader {
  const n = segments.length;
  const reader: ArgReader = {
    segments,
    value: undefined,
    read(args: unknown): Lookup {
      reader.value = undefined;
      // No arguments at all: every path is absent.
      if (args === undefined) return MISSING;
      let current: unknown = args;
      for (let i = 0; i < n; i++) {
        if (!isPlainObject(current)) return BLOCKED;
        const key = segments[i] as string;
        if (!Object.hasOwn(current, key)) return MISSING;
        current = current[key];
        // JSON cannot carry undefined; re-serialisation would drop it, so it is absence.
        if (current === undefined) return MISSING;
      }
      reader.value = current;
      return FOUND;
    },
  };
  return reader;
}
