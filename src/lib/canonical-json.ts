import { hash } from 'node:crypto';

import { CapframeError } from '../errors.js';

/**
 * Nesting deeper than this is refused with a CapframeError instead of overflowing the
 * stack with a RangeError; no real tool-call argument comes close.
 */
export const MAX_CANONICAL_DEPTH = 1000;

// A lone (unpaired) surrogate: with the `u` flag, paired surrogates are consumed as one
// code point, so only unpaired halves match.
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Serialises a JSON value with the JSON Canonicalization Scheme (RFC 8785, "JCS"):
 * object members sorted by the UTF-16 code units of their names, numbers in ECMAScript
 * `Number#toString` form (`-0` becomes `0`), strings with the minimal JSON escapes, no
 * whitespace. Equal JSON data always yields the same string, so its hash is stable.
 *
 * Only I-JSON data is accepted; anything else throws a CapframeError
 * (`invalid_argument`) rather than being silently dropped or coerced the way
 * `JSON.stringify` does: `undefined` (also as a property value or array element),
 * functions, symbols, BigInt, NaN, ±Infinity, strings with lone surrogates, cycles,
 * non-plain objects (Date, Map, class instances, typed arrays, boxed primitives) and
 * nesting deeper than {@link MAX_CANONICAL_DEPTH}. Only own enumerable string keys are
 * serialised, as in JSON.
 *
 * @example
 * canonicalJson({ b: [1, 2.50, 1e21], a: 'é' }); // '{"a":"é","b":[1,2.5,1e+21]}'
 */
export function canonicalJson(value: unknown): string {
  return serialize(value, [], [], false);
}

/**
 * The SHA-256 fingerprint of any value, for the audit log's `args_sha256`: the hash of
 * its {@link canonicalJson} when it is I-JSON (`canonical` is then that text), and
 * otherwise the hash of "!" followed by a lenient canonical form in which each value
 * that is not I-JSON is replaced by a marker string (`"\u0000not I-JSON: Infinity"`),
 * lone surrogates are kept as JSON escapes, and nesting is cut at
 * {@link MAX_CANONICAL_DEPTH}. Canonical JSON never starts with "!", so a refused
 * call's fingerprint can never equal an I-JSON value's. Never throws.
 *
 * @example
 * fingerprintJson({ sql: 'SELECT 1' }).canonical; // '{"sql":"SELECT 1"}'
 * fingerprintJson({ n: Infinity }).canonical;     // undefined, but sha256 is set
 */
export function fingerprintJson(value: unknown): { sha256: string; canonical: string | undefined } {
  try {
    const canonical = serialize(value, [], [], false);
    return { sha256: sha256Hex(canonical), canonical };
  } catch {
    return { sha256: sha256Hex(`!${serialize(value, [], [], true)}`), canonical: undefined };
  }
}

/**
 * Hex SHA-256 of a string (hashed as UTF-8) or of raw bytes.
 *
 * @example
 * sha256Hex(canonicalJson({ sql: 'SELECT 1' })); // 64 lowercase hex digits
 */
export function sha256Hex(data: string | Uint8Array): string {
  // One-shot: half the cost of createHash().update().digest() for the short inputs hashed per call.
  return hash('sha256', data, 'hex');
}

// Where in the value we are, as keys and indexes; turned into text only when failing so
// the success path builds no path strings.
type Where = (string | number)[];

function describe(where: Where): string {
  let text = '$';
  for (const step of where) text += typeof step === 'number' ? `[${step}]` : `.${step}`;
  return text;
}

function fail(where: Where, what: string): never {
  throw new CapframeError('invalid_argument', `canonical JSON: ${what} at ${describe(where)} is not a JSON value`);
}

/** In lenient mode, what stands in for a value that is not I-JSON. */
function marker(what: string): string {
  return JSON.stringify(`\u0000not I-JSON: ${what}`);
}

function serialize(value: unknown, ancestors: object[], where: Where, lenient: boolean): string {
  switch (typeof value) {
    case 'string':
      return lenient ? JSON.stringify(value) : serializeString(value, where);
    case 'number':
      if (!Number.isFinite(value)) return lenient ? marker(String(value)) : fail(where, String(value));
      // ECMAScript Number#toString is exactly the RFC 8785 number format; -0 prints "0".
      return String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      break;
    case 'bigint':
      return lenient ? marker('a BigInt') : fail(where, 'a BigInt');
    case 'undefined':
      return lenient ? marker('undefined') : fail(where, 'undefined');
    case 'function':
      return lenient ? marker('a function') : fail(where, 'a function');
    default:
      return lenient ? marker(`a ${typeof value}`) : fail(where, `a ${typeof value}`);
  }
  if (value === null) return 'null';
  if (ancestors.length >= MAX_CANONICAL_DEPTH) {
    if (lenient) return marker(`nesting deeper than ${MAX_CANONICAL_DEPTH}`);
    throw new CapframeError('invalid_argument', `canonical JSON: nesting deeper than ${MAX_CANONICAL_DEPTH} at ${describe(where)}`);
  }
  // Only the current ancestry counts as a cycle: a shared (DAG) sub-object is fine.
  if (ancestors.includes(value)) {
    if (lenient) return marker('a cycle');
    throw new CapframeError('invalid_argument', `canonical JSON: cycle at ${describe(where)}`);
  }
  ancestors.push(value);
  try {
    if (Array.isArray(value)) {
      const parts: string[] = [];
      for (let i = 0; i < value.length; i++) {
        // Holes in sparse arrays read as undefined and are rejected like undefined.
        where.push(i);
        parts.push(serialize(value[i], ancestors, where, lenient));
        where.pop();
      }
      return `[${parts.join(',')}]`;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
      const what = `an instance of ${typeof name === 'string' && name !== '' ? name : 'a non-plain class'}`;
      if (lenient) return marker(what);
      fail(where, what);
    }
    const record = value as Record<string, unknown>;
    // Default comparison of JS strings is by UTF-16 code units, which is what JCS requires
    // (not locale order, not code points).
    const keys = Object.keys(record).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const parts: string[] = [];
    for (const key of keys) {
      where.push(key);
      const name = lenient ? JSON.stringify(key) : serializeString(key, where);
      parts.push(`${name}:${serialize(record[key], ancestors, where, lenient)}`);
      where.pop();
    }
    return `{${parts.join(',')}}`;
  } finally {
    ancestors.pop();
  }
}

function serializeString(text: string, where: Where): string {
  if (LONE_SURROGATE.test(text)) fail(where, 'a string with a lone surrogate');
  // For well-formed strings JSON.stringify emits exactly the JCS escapes: \" \\ \b \t \n
  // \f \r, other C0 controls as lowercase \u00xx, and everything else verbatim.
  return JSON.stringify(text);
}
