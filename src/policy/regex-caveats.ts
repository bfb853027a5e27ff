/**
 * Load-time advice on `matches` / `not_matches` patterns (SPEC §4): the
 * shorthand classes and `.` that behave on Unicode input in ways a policy
 * author rarely means. Patterns run with the `u` flag only, so:
 *
 * - `\s` is Unicode whitespace (U+00A0, U+2028, U+FEFF, …), which a SQL engine
 *   or shell may not treat as a space;
 * - `\w`, `\b` and `\B` know only ASCII `[A-Za-z0-9_]` even with `u`
 *   (no `i` flag): `\bSELECT\b` matches inside `SELECTé`;
 * - `\d` is ASCII `[0-9]` only;
 * - `.` does not match line terminators (there is no `s` flag), so
 *   `not_matches: "DROP.*TABLE"` misses `"DROP\nTABLE"`.
 *
 * Every constraint is on an argument an agent controls, so every pattern in a
 * rule or capability gets the advice. It is a warning, never an error.
 */

const NOTES = {
  s: '\\s and \\S also treat Unicode spaces (U+00A0, U+2028, U+FEFF, …) as spaces, which the tool may not; write the class you mean, e.g. [ \\t\\r\\n]',
  w: '\\w, \\b and \\B know only ASCII [A-Za-z0-9_] even with the u flag (\\bSELECT\\b matches inside "SELECTé"); write the class you mean, e.g. (?<![A-Za-z0-9_])SELECT(?![A-Za-z0-9_])',
  d: '\\d and \\D are ASCII [0-9] only: "٣" or "３" is not a \\d',
  dot: '. does not match line terminators (\\n, \\r, U+2028, U+2029) and there is no s flag, so "DROP.*TABLE" misses "DROP\\nTABLE"; use [^] for any character, or name the class you mean',
} as const;

/**
 * The caveats that apply to a pattern, one sentence each, in a fixed order;
 * empty when it uses none of `\s \S \w \W \b \B \d \D` or an unescaped `.`.
 *
 * @example
 * regexCaveats('^\\s*SELECT\\b'); // ['\\s and \\S also treat …', '\\w, \\b and \\B know only ASCII …']
 * regexCaveats('^[ \\t]*SELECT(?![A-Za-z0-9_])'); // []
 * regexCaveats('\\.(?:sh|exe)$'); // [] (an escaped dot is a literal)
 */
export function regexCaveats(pattern: string): string[] {
  const found = new Set<keyof typeof NOTES>();
  let inClass = false;
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '\\') {
      const next = pattern[++i];
      if (next === 's' || next === 'S') found.add('s');
      else if (next === 'w' || next === 'W' || next === 'B' || (next === 'b' && !inClass)) found.add('w'); // [\b] is a backspace
      else if (next === 'd' || next === 'D') found.add('d');
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
    } else if (c === '[') {
      inClass = true;
    } else if (c === '.') {
      found.add('dot');
    }
  }
  return (Object.keys(NOTES) as (keyof typeof NOTES)[]).filter((k) => found.has(k)).map((k) => NOTES[k]);
}
