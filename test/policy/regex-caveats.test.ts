/**
 * Load-time advice on regular expressions (SPEC §4 `matches`): which constructs
 * get a warning, that the warning names the line, and that the behaviour each
 * warning describes is real under the `u` flag the constraints use.
 */
import { describe, expect, it } from 'vitest';

import { compileConstraints, parsePolicy } from '../../src/policy/index.js';
import { regexCaveats } from '../../src/policy/regex-caveats.js';

const kinds = (pattern: string) =>
  regexCaveats(pattern).map((note) => (note.startsWith('\\s') ? 's' : note.startsWith('\\w') ? 'w' : note.startsWith('\\d') ? 'd' : note.startsWith('.') ? 'dot' : note));

describe('regexCaveats', () => {
  it.each([
    ['^\\s*SELECT\\b', ['s', 'w']],
    ['\\S+', ['s']],
    ['[\\s,]+', ['s']],
    ['\\w+@example\\.com', ['w']],
    ['\\Bx', ['w']],
    ['^\\d+$', ['d']],
    ['[^\\D]', ['d']],
    ['DROP.*TABLE', ['dot']],
    ['^.$', ['dot']],
    ['^\\s.\\d\\w$', ['s', 'w', 'd', 'dot']],
    // Not caveats: an escaped dot, a dot in a class, [\b] (a backspace), an escaped backslash before s.
    ['\\.(?:sh|exe)$', []],
    ['^[.a-z]+$', []],
    ['[\\b]', []],
    ['\\\\s', []],
    ['^[ \\t\\r\\n]*(?:SELECT|select)[ \\t\\r\\n]', []],
    ['(?<![A-Za-z0-9_])DROP(?![A-Za-z0-9_])', []],
    ['^\\p{Lu}+$', []],
    ['[^]*', []],
  ])('%s → %j', (pattern, expected) => {
    expect(kinds(pattern)).toEqual(expected);
  });

  it('describes behaviour that is real under the u flag', () => {
    const c = (value: string, op: 'matches' | 'not_matches' = 'matches') => compileConstraints([{ arg: 'x', op, value }]);
    // \s is Unicode whitespace: a no-break space or a byte-order mark counts as a space.
    for (const ch of ['\u00a0', '\u2028', '\ufeff']) expect(c('^SELECT\\s').check({ x: `SELECT${ch}1` }).ok).toBe(true);
    // \b and \w are ASCII only, even with u: é is not a word character.
    expect(c('^SELECT\\b').check({ x: 'SELECTé' }).ok).toBe(true);
    // \d is ASCII only: an Arabic-Indic or fullwidth digit passes a "no digits" check.
    expect(c('\\d', 'not_matches').check({ x: '٣３' }).ok).toBe(true);
    // . stops at a line terminator: a newline walks past a not_matches check.
    expect(c('DROP.*TABLE', 'not_matches').check({ x: 'DROP\nTABLE t' }).ok).toBe(true);
    expect(c('DROP[^]*TABLE', 'not_matches').check({ x: 'DROP\nTABLE t' }).ok).toBe(false);
  });
});

describe('policy load warnings for patterns', () => {
  it('warns once per pattern, in capabilities and rules, naming the line; explicit classes get none', () => {
    const policy = parsePolicy(
      `capframe:
  version: "0.2"
  capabilities:
    read-only:
      when:
        - { arg: sql, op: matches, value: "^\\\\s*SELECT\\\\b" }
        - { arg: sql, op: matches, value: "^[ \\\\t]*SELECT(?![A-Za-z0-9_])" }
  rules:
    - tool: database.query
      capability: read-only
    - tool: http.fetch
      when:
        - { arg: url, op: not_matches, value: "admin.*panel" }
        - { arg: url, op: max_length, value: 100 }
`,
      'p.yaml',
    );
    expect(policy.warnings).toHaveLength(2);
    expect(policy.warnings[0]).toMatch(/^line 6: capability "read-only": sql matches "\^\\\\s\*SELECT\\\\b": \\s and \\S also treat Unicode spaces .*; \\w, \\b and \\B know only ASCII/);
    expect(policy.warnings[1]).toMatch(/^line 13: rule for "http\.fetch": url not_matches "admin\.\*panel": \. does not match line terminators .* use \[\^\] for any character/);
  });
});
