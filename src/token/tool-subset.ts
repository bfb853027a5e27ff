/**
 * Narrowing of tool patterns in delegation (SPEC §5): a child token may name only
 * tools its parent names. Patterns are exact names or globs where `*` matches any
 * run of characters, dots included (`policy/tool-pattern.ts`).
 */

/**
 * True only when every tool name that `child` matches is also matched by `parent`.
 * Sound, never the reverse: when it answers true, no name escapes; it may answer
 * false for some exotic pairs that are in fact nested (the delegation is then
 * refused, which is safe).
 *
 * How: read `child` as a string in which each `*` is a wildcard symbol no literal
 * character equals, and match `parent` against it, where a literal of `parent`
 * must meet the same literal and a `*` of `parent` may absorb any run — wildcards
 * included. If that succeeds, any name made by filling in the child's wildcards
 * is matched the same way, with the fillings inside the parent's `*` runs.
 *
 * @example
 * toolSubset('database.query', 'database.*'); // true
 * toolSubset('database.q*', 'database.*');    // true
 * toolSubset('anything.at_all', '*');         // true
 * toolSubset('data*.query', 'database.*');    // false: data-x.query is not under database.
 * toolSubset('database.*', 'database.query'); // false
 */
export function toolSubset(child: string, parent: string): boolean {
  if (child === parent) return true;
  // Classic greedy wildcard matching with one backtrack point (the last `*` of
  // `parent`), which is exact for `*`-only globs; O(|child|·|parent|) at worst.
  let p = 0;
  let c = 0;
  let starP = -1;
  let starC = 0;
  while (c < child.length) {
    const pc = parent[p];
    if (pc === '*') {
      starP = p++;
      starC = c;
    } else if (pc !== undefined && child[c] !== '*' && pc === child[c]) {
      p++;
      c++;
    } else if (starP >= 0) {
      p = starP + 1;
      c = ++starC;
    } else {
      return false;
    }
  }
  while (parent[p] === '*') p++;
  return p === parent.length;
}
