/**
 * Argument constraints (SPEC §4): validated and compiled once, evaluated on
 * every call without allocating unless they fail.
 *
 * Every evaluation has three outcomes: the constraint holds, it does not, or it
 * cannot be judged (missing argument, wrong type, a path or URL we refuse to
 * interpret). An allow needs every constraint to hold; a deny rule applies
 * unless one of its constraints clearly does not hold. Either way an input we
 * cannot judge ends in a denial: fail closed.
 */
import { CapframeError } from '../errors.js';
import { BLOCKED, FOUND, MISSING, compileArgPath, isPlainObject, parseArgPath, type ArgReader } from './arg-path.js';
import { checkPathWithin, normalizeRoot } from './path-within.js';
import { describeValue, formatPath, type Problem } from './problem.js';
import type { CompiledConstraints, Constraint, Operator } from './types.js';
import { checkUrlOrigin, compileOrigins, type OriginSet } from './url-origin.js';
import { checkUrlPath, compilePathPrefix } from './url-path.js';

/** Every operator, in the order error messages list them. */
export const OPERATORS: readonly Operator[] = [
  '==', '!=', '<', '<=', '>', '>=', 'in', 'not_in', 'matches', 'not_matches',
  'starts_with', 'contains', 'max_length', 'path_within', 'url_origin_in', 'url_path_within', 'absent',
];
const OPERATOR_SET: ReadonlySet<string> = new Set(OPERATORS);

const PASS = 0;
const FAIL = 1;
/** Wrong type or missing: the value is not of a kind the operator judges. */
const MISMATCH = 2;
/** Right type but refused (undecodable path, URL with userinfo, …). */
const INVALID = 3;
type Outcome = typeof PASS | typeof FAIL | typeof MISMATCH | typeof INVALID;

/** Largest list accepted for `in`, `not_in`, `url_origin_in`. */
const MAX_LIST = 10_000;

type Scalar = string | number | boolean;
type Kind = 'string' | 'number' | 'boolean';

function scalarKind(value: unknown): Kind | undefined {
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number':
      // JSON cannot carry NaN or ±Infinity; a caller that passes one gets no judgement.
      return Number.isFinite(value) ? 'number' : undefined;
    default:
      return undefined;
  }
}

/** What an operator does with the resolved value. */
interface Test {
  run(value: unknown): Outcome;
  /** The kind of value expected, for mismatch messages. */
  expects: string;
  /** Why a value of the right kind failed. */
  failed: string;
  /** Why a value of the right kind was refused. */
  invalid?: string;
}

/** One compiled constraint. */
export interface Item {
  readonly reader: ArgReader;
  readonly absent: boolean;
  readonly test: Test | undefined;
  readonly label: string;
}

const OK = Object.freeze({ ok: true as const });

function run(item: Item, args: unknown): Outcome {
  const found = item.reader.read(args);
  if (item.absent) return found === MISSING ? PASS : found === FOUND ? FAIL : MISMATCH;
  if (found !== FOUND) return MISMATCH;
  return (item.test as Test).run(item.reader.value);
}

function explain(item: Item, args: unknown, outcome: Outcome): string {
  const found = item.reader.read(args);
  const arg = item.reader.segments.join('.');
  if (item.absent) {
    return found === FOUND
      ? `${item.label}: argument "${arg}" is present`
      : `${item.label}: a list or non-mapping value sits on the path to "${arg}"`;
  }
  if (found === MISSING) return `${item.label}: argument "${arg}" is missing`;
  if (found === BLOCKED) return `${item.label}: a list or non-mapping value sits on the path to "${arg}"`;
  const test = item.test as Test;
  if (outcome === FAIL) return `${item.label}: ${test.failed}`;
  if (outcome === INVALID) return `${item.label}: ${test.invalid ?? 'value refused'}`;
  return `${item.label}: expected ${test.expects}, got ${describeValue(item.reader.value)}`;
}

/** The library's compiled constraints; the decision engine also asks it about deny rules. */
export class ConstraintSet implements CompiledConstraints {
  readonly source: readonly Constraint[];
  readonly #items: readonly Item[];

  constructor(source: readonly Constraint[], items: readonly Item[]) {
    this.source = source;
    this.#items = items;
  }

  /** Number of constraints. */
  get size(): number {
    return this.#items.length;
  }

  /**
   * Every constraint holds → `{ ok: true }` (a shared frozen object); else the
   * first failure, naming the argument, the operator and why.
   *
   * @example
   * compileConstraints([{ arg: 'amount', op: '<=', value: 50 }]).check({ amount: '10' });
   * // { ok: false, reason: 'amount <= 50: expected a number, got a string' }
   */
  check(args: unknown): { ok: true } | { ok: false; reason: string } {
    const items = this.#items;
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item;
      const outcome = run(item, args);
      if (outcome !== PASS) return { ok: false, reason: explain(item, args, outcome) };
    }
    return OK;
  }

  /**
   * For a deny rule: true unless some constraint clearly does not hold. A
   * constraint that cannot be judged (missing, wrong type, refused) counts as
   * holding, so doubt denies.
   */
  holdsForDeny(args: unknown): boolean {
    const items = this.#items;
    for (let i = 0; i < items.length; i++) {
      if (run(items[i] as Item, args) === FAIL) return false;
    }
    return true;
  }
}

/** The constraint set with no constraints. */
export const NO_CONSTRAINTS = new ConstraintSet(Object.freeze([]), Object.freeze([]));

function short(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** Plain-data copy (YAML and CBOR give JSON-like data); functions or cycles never reach here. */
function copyData(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(copyData);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) Object.defineProperty(out, k, { value: copyData(v), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}

type Compiled = { test: Test } | { problems: Problem[] };

function numberTest(op: '<' | '<=' | '>' | '>=', bound: number): Test {
  const cmp =
    op === '<' ? (v: number) => v < bound : op === '<=' ? (v: number) => v <= bound : op === '>' ? (v: number) => v > bound : (v: number) => v >= bound;
  return {
    expects: 'a number',
    failed: 'does not hold',
    run: (v) => (typeof v === 'number' && Number.isFinite(v) ? (cmp(v) ? PASS : FAIL) : MISMATCH),
  };
}

function codePointsAtMost(s: string, max: number): boolean {
  if (s.length <= max) return true;
  // Each code point is one or two UTF-16 units.
  if (s.length > 2 * max) return false;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    if (++n > max) return false;
  }
  return true;
}

function compileScalarList(value: unknown, at: (string | number)[]): { values: Set<Scalar>; kinds: Set<Kind> } | { problems: Problem[] } {
  if (!Array.isArray(value) || value.length === 0) {
    return { problems: [{ path: at, message: `expected a non-empty list of strings, numbers or booleans, got ${describeValue(value)}` }] };
  }
  if (value.length > MAX_LIST) return { problems: [{ path: at, message: `list has ${value.length} entries; at most ${MAX_LIST} are allowed` }] };
  const problems: Problem[] = [];
  const values = new Set<Scalar>();
  const kinds = new Set<Kind>();
  value.forEach((entry, j) => {
    const kind = scalarKind(entry);
    if (kind === undefined) problems.push({ path: [...at, j], message: `expected a string, number or boolean, got ${describeValue(entry)}` });
    else {
      kinds.add(kind);
      values.add(entry as Scalar);
    }
  });
  return problems.length > 0 ? { problems } : { values, kinds };
}

/** Compiles the operator's value into a test, or explains what was expected. */
function compileTest(op: Exclude<Operator, 'absent'>, value: unknown, at: (string | number)[]): Compiled {
  const bad = (message: string): Compiled => ({ problems: [{ path: at, message }] });
  switch (op) {
    case '==':
    case '!=': {
      const kind = scalarKind(value);
      if (kind === undefined) return bad(`${op} needs a string, number or boolean value, got ${describeValue(value)}`);
      const equal = op === '==';
      return {
        test: {
          expects: `a ${kind}`,
          failed: equal ? 'value differs' : 'value is the excluded one',
          // Same type only: "50" never equals 50, true never equals 1.
          run: (v) => (typeof v !== kind || (kind === 'number' && !Number.isFinite(v as number)) ? MISMATCH : (v === value) === equal ? PASS : FAIL),
        },
      };
    }
    case '<':
    case '<=':
    case '>':
    case '>=':
      if (typeof value !== 'number' || !Number.isFinite(value)) return bad(`${op} needs a number value, got ${describeValue(value)}`);
      return { test: numberTest(op, value) };
    case 'in':
    case 'not_in': {
      const list = compileScalarList(value, at);
      if ('problems' in list) return list;
      const { values, kinds } = list;
      const inside = op === 'in';
      const expects = [...kinds].map((k) => `a ${k}`).join(' or ');
      return {
        test: {
          expects,
          failed: inside ? 'value is not in the list' : 'value is in the excluded list',
          run: (v) => {
            const kind = scalarKind(v);
            if (kind === undefined || !kinds.has(kind)) return MISMATCH;
            return values.has(v as Scalar) === inside ? PASS : FAIL;
          },
        },
      };
    }
    case 'matches':
    case 'not_matches': {
      if (typeof value !== 'string') return bad(`${op} needs a regular expression string, got ${describeValue(value)}`);
      let re: RegExp;
      try {
        re = new RegExp(value, 'u');
      } catch (error) {
        return bad(`invalid regular expression ${JSON.stringify(value)}: ${(error as Error).message.replace(/^Invalid regular expression: /, '')}`);
      }
      const want = op === 'matches';
      return {
        test: {
          expects: 'a string',
          failed: want ? 'value does not match' : 'value matches the excluded pattern',
          // No g or y flag: test() keeps no state between calls.
          run: (v) => (typeof v !== 'string' ? MISMATCH : re.test(v) === want ? PASS : FAIL),
        },
      };
    }
    case 'starts_with':
      if (typeof value !== 'string') return bad(`starts_with needs a string value, got ${describeValue(value)}`);
      return { test: { expects: 'a string', failed: 'value does not start with the prefix', run: (v) => (typeof v !== 'string' ? MISMATCH : v.startsWith(value) ? PASS : FAIL) } };
    case 'contains':
      if (typeof value !== 'string') return bad(`contains needs a string value, got ${describeValue(value)}`);
      return { test: { expects: 'a string', failed: 'value does not contain the text', run: (v) => (typeof v !== 'string' ? MISMATCH : v.includes(value) ? PASS : FAIL) } };
    case 'max_length':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) return bad(`max_length needs a non-negative integer, got ${short(value)}`);
      return {
        test: {
          expects: 'a string or a list',
          failed: 'value is too long',
          run: (v) => (typeof v === 'string' ? (codePointsAtMost(v, value) ? PASS : FAIL) : Array.isArray(v) ? (v.length <= value ? PASS : FAIL) : MISMATCH),
        },
      };
    case 'path_within': {
      if (typeof value !== 'string') return bad(`path_within needs an absolute path string, got ${describeValue(value)}`);
      const root = normalizeRoot(value);
      if ('error' in root) return bad(`path_within ${root.error}`);
      const r = root.root;
      return {
        test: {
          expects: 'a string',
          failed: 'path is outside the root',
          invalid: 'path is not absolute, or contains NUL, a backslash, an invalid or double percent-encoding',
          run: (v) => {
            if (typeof v !== 'string') return MISMATCH;
            const w = checkPathWithin(r, v);
            return w === 'inside' ? PASS : w === 'outside' ? FAIL : INVALID;
          },
        },
      };
    }
    case 'url_origin_in': {
      if (!Array.isArray(value) || value.length === 0) return bad(`url_origin_in needs a non-empty list of origins such as ["https://api.example.com"], got ${describeValue(value)}`);
      if (value.length > MAX_LIST) return bad(`list has ${value.length} entries; at most ${MAX_LIST} are allowed`);
      const set = compileOrigins(value);
      if ('errors' in set) return { problems: set.errors.map((e) => ({ path: [...at, e.index], message: e.message })) };
      const origins: OriginSet = set;
      return {
        test: {
          expects: 'a string',
          failed: 'URL origin is not allowed',
          invalid: 'not an http(s) URL we can judge safely (userinfo, backslash, whitespace, percent-encoded or unlisted IDN/punycode host)',
          run: (v) => {
            if (typeof v !== 'string') return MISMATCH;
            const o = checkUrlOrigin(origins, v);
            return o === 'inside' ? PASS : o === 'outside' ? FAIL : INVALID;
          },
        },
      };
    }
    case 'url_path_within': {
      if (typeof value !== 'string') return bad(`url_path_within needs a path prefix string such as "/api/v1", got ${describeValue(value)}`);
      const compiled = compilePathPrefix(value);
      if ('error' in compiled) return bad(`url_path_within ${compiled.error}`);
      const prefix = compiled.prefix;
      return {
        test: {
          expects: 'a string',
          failed: 'URL path is outside the prefix',
          invalid:
            'not an absolute http(s) URL whose path we can judge safely (userinfo, backslash, whitespace, a malformed or double percent-encoding, or a path that servers read differently: encoded / or \\, ;params, //, letter case)',
          run: (v) => {
            if (typeof v !== 'string') return MISMATCH;
            const o = checkUrlPath(prefix, v);
            return o === 'inside' ? PASS : o === 'outside' ? FAIL : INVALID;
          },
        },
      };
    }
  }
}

/**
 * Validates and compiles a list; problems carry paths relative to the list
 * (`[2, 'value']`), so callers can point at YAML lines or token claim indexes.
 */
export function compileConstraintList(list: unknown): { compiled: ConstraintSet } | { problems: Problem[] } {
  if (list === undefined) return { compiled: NO_CONSTRAINTS };
  if (!Array.isArray(list)) return { problems: [{ path: [], message: `expected a list of constraints ({arg, op, value}), got ${describeValue(list)}` }] };
  const problems: Problem[] = [];
  const items: Item[] = [];
  const source: Constraint[] = [];
  list.forEach((raw, i) => {
    if (!isPlainObject(raw)) {
      problems.push({ path: [i], message: `expected a constraint mapping {arg, op, value}, got ${describeValue(raw)}` });
      return;
    }
    let ok = true;
    for (const key of Object.keys(raw)) {
      if (key !== 'arg' && key !== 'op' && key !== 'value') {
        problems.push({ path: [i], key, message: `unknown key "${key}" in constraint; expected arg, op, value` });
        ok = false;
      }
    }
    const { arg, op, value } = raw;
    const hasValue = Object.hasOwn(raw, 'value');
    let segments: string[] | undefined;
    if (typeof arg !== 'string') {
      problems.push({ path: Object.hasOwn(raw, 'arg') ? [i, 'arg'] : [i], message: `constraint needs "arg", a dotted path string such as "amount" or "filter.owner", got ${describeValue(arg)}` });
      ok = false;
    } else {
      const parsed = parseArgPath(arg);
      if (typeof parsed === 'string') {
        problems.push({ path: [i, 'arg'], message: parsed });
        ok = false;
      } else segments = parsed;
    }
    if (typeof op !== 'string' || !OPERATOR_SET.has(op)) {
      const got = typeof op === 'string' ? `unknown operator ${JSON.stringify(op)}` : `constraint needs "op", got ${describeValue(op)}`;
      problems.push({ path: Object.hasOwn(raw, 'op') ? [i, 'op'] : [i], message: `${got}; expected one of ${OPERATORS.join(' ')}` });
      return;
    }
    const operator = op as Operator;
    let test: Test | undefined;
    if (operator === 'absent') {
      if (hasValue) {
        problems.push({ path: [i, 'value'], message: 'absent takes no value; remove "value"' });
        ok = false;
      }
    } else if (!hasValue) {
      problems.push({ path: [i], message: `${operator} needs a "value"` });
      ok = false;
    } else {
      const compiled = compileTest(operator, value, [i, 'value']);
      if ('problems' in compiled) {
        problems.push(...compiled.problems);
        ok = false;
      } else test = compiled.test;
    }
    if (!ok || segments === undefined) return;
    const label = operator === 'absent' ? `${arg as string} absent` : `${arg as string} ${operator} ${short(value)}`;
    items.push({ reader: compileArgPath(segments), absent: operator === 'absent', test, label });
    source.push(operator === 'absent' ? { arg: arg as string, op: operator } : { arg: arg as string, op: operator, value: copyData(value) });
  });
  if (problems.length > 0) return { problems };
  return { compiled: new ConstraintSet(deepFreeze(source), Object.freeze(items)) };
}

/**
 * Validates and compiles constraints from YAML or a token's `"when"` claim.
 * Throws `CapframeError('invalid_policy')` naming `where` and the index of each
 * bad constraint. `undefined` compiles to no constraints.
 *
 * @example
 * const c = compileConstraints([{ arg: 'to', op: 'matches', value: '^[^@]+@example\\.com$' }], 'token when');
 * c.check({ to: 'ann@example.com' }); // { ok: true }
 * c.check({ to: ['x@evil.com'] });    // { ok: false, reason: 'to matches "…": expected a string, got a list' }
 */
export function compileConstraints(list: unknown, where = 'constraints'): ConstraintSet {
  const result = compileConstraintList(list);
  if ('problems' in result) {
    throw new CapframeError('invalid_policy', result.problems.map((p) => `${formatPath(where, p.path, p.key)}: ${p.message}`).join('\n'));
  }
  return result.compiled;
}
