/**
 * Tool patterns: an exact `<server>.<tool>` name, or a glob where `*` matches any
 * run of characters (dots included). No regular expressions, so a pattern can
 * never be slow on a hostile tool name.
 */

/** A precompiled tool pattern. */
export type ToolMatcher = (tool: string) => boolean;

/**
 * Compiles a pattern once for repeated matching.
 *
 * @example
 * const m = compileToolPattern('database.*');
 * m('database.query'); // true
 * m('payments.refund'); // false
 */
export function compileToolPattern(pattern: string): ToolMatcher {
  if (!pattern.includes('*')) return (tool) => tool === pattern;
  const parts = pattern.split('*');
  const first = parts[0] ?? '';
  const last = parts[parts.length - 1] ?? '';
  if (parts.length === 2) {
    if (first === '' && last === '') return () => true;
    const min = first.length + last.length;
    return (tool) => tool.length >= min && tool.startsWith(first) && tool.endsWith(last);
  }
  const middle = parts.slice(1, -1).filter((p) => p !== '');
  const min = parts.reduce((n, p) => n + p.length, 0);
  return (tool) => {
    if (tool.length < min || !tool.startsWith(first) || !tool.endsWith(last)) return false;
    // Greedy leftmost placement of each middle part is optimal for `*`-only globs.
    let at = first.length;
    const end = tool.length - last.length;
    for (const part of middle) {
      const found = tool.indexOf(part, at);
      if (found < 0 || found + part.length > end) return false;
      at = found + part.length;
    }
    return true;
  };
}

/**
 * True when `tool` is matched by `pattern` (exact name or `*` glob).
 *
 * @example
 * toolMatches('shell.*', 'shell.exec'); // true
 * toolMatches('*', 'anything.at_all'); // true
 */
export function toolMatches(pattern: string, tool: string): boolean {
  return compileToolPattern(pattern)(tool);
}

/**
 * True only when every tool matched by `inner` is also matched by `outer`.
 * Conservative: answers false when it cannot tell (used to decide whether a
 * rule may grant a token for a pattern).
 *
 * @example
 * patternCovers('database.*', 'database.query'); // true
 * patternCovers('database.*', 'database.read_*'); // true
 * patternCovers('database.query', 'database.*'); // false
 */
export function patternCovers(outer: string, inner: string): boolean {
  if (outer === inner) return true;
  if (!inner.includes('*')) return toolMatches(outer, inner);
  const o = outer.split('*');
  if (o.length === 2) {
    // `prefix*suffix` covers `inner` when inner starts with prefix and ends with suffix as literals.
    const [prefix = '', suffix = ''] = o;
    const i = inner.split('*');
    const innerFirst = i[0] ?? '';
    const innerLast = i[i.length - 1] ?? '';
    return innerFirst.startsWith(prefix) && innerLast.endsWith(suffix) && innerFirst.length >= prefix.length;
  }
  return false;
}

/**
 * True when some tool could be matched by both patterns. Conservative: may
 * answer true for patterns that cannot actually overlap, never the reverse.
 *
 * @example
 * patternsMayOverlap('shell.*', '*'); // true
 * patternsMayOverlap('shell.*', 'database.*'); // false
 */
export function patternsMayOverlap(a: string, b: string): boolean {
  if (!a.includes('*')) return toolMatches(b, a);
  if (!b.includes('*')) return toolMatches(a, b);
  const ap = a.split('*');
  const bp = b.split('*');
  const aFirst = ap[0] ?? '';
  const bFirst = bp[0] ?? '';
  const aLast = ap[ap.length - 1] ?? '';
  const bLast = bp[bp.length - 1] ?? '';
  const prefixesAgree = aFirst.startsWith(bFirst) || bFirst.startsWith(aFirst);
  const suffixesAgree = aLast.endsWith(bLast) || bLast.endsWith(aLast);
  return prefixesAgree && suffixesAgree;
}
