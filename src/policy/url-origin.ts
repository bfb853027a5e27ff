/**
 * `url_origin_in`: is a URL's origin one of an allowlist (SPEC §4)?
 *
 * Parsing is the WHATWG URL parser's, but the raw string is screened first for
 * what other parsers read differently: userinfo (`https://api.example.com@evil.com`),
 * backslashes, whitespace and control characters (WHATWG silently drops tabs and
 * newlines), percent-escapes in the host, and a scheme not followed by exactly `//`.
 * Hosts written in non-ASCII, or whose ASCII form has an `xn--` label, pass only
 * when the allowlist itself names that origin in IDN form: an ASCII entry never
 * admits a homograph or a fullwidth spelling that the URL parser would fold into it.
 */
import { describeValue } from './problem.js';

/** Origins allowed by one constraint, normalised by the URL parser. */
export interface OriginSet {
  /** Every listed origin (`scheme://host[:port]`). */
  readonly origins: ReadonlySet<string>;
  /** Listed origins whose host was written in non-ASCII or as punycode. */
  readonly idnOrigins: ReadonlySet<string>;
}

export type OriginResult = 'inside' | 'outside' | 'invalid';

const SCHEME = /^https?:\/\//i;

/** The authority as written: after `scheme://`, up to the first `/`, `?` or `#`. */
function rawAuthority(raw: string): string | undefined {
  const m = SCHEME.exec(raw);
  if (!m) return undefined;
  const rest = raw.slice(m[0].length);
  const end = rest.search(/[/?#]/);
  return end < 0 ? rest : rest.slice(0, end);
}

/** Rejects characters that parsers disagree about. */
function hasUnsafeCharacter(raw: string): boolean {
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x5c /* \ */) return true;
  }
  return false;
}

function isIdnHost(authority: string, hostname: string): boolean {
  return /[^\x00-\x7f]/.test(authority) || hostname.split('.').some((label) => label.toLowerCase().startsWith('xn--'));
}

/**
 * Parses a URL we are willing to judge; undefined when it is unsafe or
 * unparseable. Shared with `url_path_within`, so both operators refuse the same inputs.
 *
 * @example
 * parseScreened('https://api.example.com/v1')?.url.pathname; // '/v1'
 * parseScreened('https://api.example.com@evil.com/');        // undefined (userinfo)
 */
export function parseScreened(raw: string): { url: URL; idn: boolean } | undefined {
  if (raw.length === 0 || raw.length > 8192 || hasUnsafeCharacter(raw)) return undefined;
  const authority = rawAuthority(raw);
  if (authority === undefined || authority.length === 0) return undefined;
  if (authority.includes('@') || authority.includes('%')) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username !== '' || url.password !== '') return undefined;
  return { url, idn: isIdnHost(authority, url.hostname) };
}

/**
 * Validates the configured list; returns the set or one message per bad entry.
 *
 * @example
 * compileOrigins(['https://api.example.com', 'http://localhost:8080']);
 * // { origins: Set {'https://api.example.com', 'http://localhost:8080'}, idnOrigins: Set {} }
 */
export function compileOrigins(list: readonly unknown[]): OriginSet | { errors: { index: number; message: string }[] } {
  const origins = new Set<string>();
  const idnOrigins = new Set<string>();
  const errors: { index: number; message: string }[] = [];
  list.forEach((entry, index) => {
    if (typeof entry !== 'string') {
      errors.push({ index, message: `expected an origin string such as "https://api.example.com", got ${describeValue(entry)}` });
      return;
    }
    const parsed = parseScreened(entry);
    if (!parsed) {
      errors.push({ index, message: `${JSON.stringify(entry)} is not an http(s) origin such as "https://api.example.com" (no userinfo, spaces or backslashes)` });
      return;
    }
    const { url, idn } = parsed;
    if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || /[?#]/.test(entry)) {
      errors.push({ index, message: `${JSON.stringify(entry)} has a path, query or fragment; expected only scheme://host[:port]` });
      return;
    }
    origins.add(url.origin);
    if (idn) idnOrigins.add(url.origin);
  });
  return errors.length > 0 ? { errors } : { origins, idnOrigins };
}

/**
 * Judges a URL against a compiled origin set.
 *
 * @example
 * const set = compileOrigins(['https://api.example.com']) as OriginSet;
 * checkUrlOrigin(set, 'https://api.example.com/v1/x'); // 'inside'
 * checkUrlOrigin(set, 'https://api.example.com.evil.com/'); // 'outside'
 * checkUrlOrigin(set, 'https://api.example.com@evil.com/'); // 'invalid'
 */
export function checkUrlOrigin(set: OriginSet, raw: string): OriginResult {
  // URL parsing dominates `decide` for this operator, and agents repeat the same URLs;
  // the answer is a pure function of (set, raw), so a small bounded memo is exact.
  let memo = recent.get(set);
  if (memo === undefined) recent.set(set, (memo = new Map()));
  let result = memo.get(raw);
  if (result === undefined) {
    result = judge(set, raw);
    if (memo.size >= MEMO_SIZE) memo.clear();
    memo.set(raw, result);
  }
  return result;
}

const MEMO_SIZE = 256;
const recent = new WeakMap<OriginSet, Map<string, OriginResult>>();

function judge(set: OriginSet, raw: string): OriginResult {
  const parsed = parseScreened(raw);
  if (!parsed) return 'invalid';
  const origin = parsed.url.origin;
  if (parsed.idn) return set.idnOrigins.has(origin) ? 'inside' : 'invalid';
  return set.origins.has(origin) ? 'inside' : 'outside';
}

