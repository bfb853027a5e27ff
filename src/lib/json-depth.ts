/**
 * How deeply a parsed JSON value nests. JSON.parse reads any depth (it does not recurse),
 * but JSON.stringify does, and overflows the stack a few thousand levels down, so a value
 * from an untrusted peer that the proxy passes on is measured first.
 */

/**
 * Deepest nesting the proxy passes on from an upstream (results, tool definitions): far
 * beyond any real one, far below where JSON.stringify overflows the stack.
 */
export const MAX_PASSED_DEPTH = 1000;

/**
 * True when `value` has objects or arrays nested more than `max` levels (the value itself
 * is level 1). Stops at the first branch that is too deep; recursion is bounded by `max`.
 *
 * @example
 * nestedDeeperThan({ a: { b: [1] } }, 3); // false
 * nestedDeeperThan({ a: { b: [1] } }, 2); // true
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  return deeper(value, max);
}

function deeper(value: unknown, left: number): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (left <= 0) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (deeper(item, left - 1)) return true;
    return false;
  }
  for (const key in value) {
    if (deeper((value as Record<string, unknown>)[key], left - 1)) return true;
  }
  return false;
}
