/**
 * `url_path_within`: does a URL's path lie under a path prefix (SPEC §4)?
 *
 * The URL is screened and parsed exactly as for `url_origin_in` (WHATWG parser,
 * http(s) only, no userinfo, no whitespace, control characters or backslashes;
 * a relative URL is not judged). Its path is then read the way RFC 3986 says it
 * means: percent-escapes of unreserved characters decoded (`/%61dmin` is
 * `/admin`), dot segments removed, compared case-sensitively at a `/` boundary
 * (`/api` admits `/api` and `/api/x`, never `/api-internal`).
 *
 * Other escapes stay encoded in that reading, so `%2F` is not a separator: a
 * server that follows RFC 3986 routes `/api/a%2Fb` as one segment. But servers
 * disagree (some decode `%2F` or `%5C` before routing, strip `;params` from
 * segments like Tomcat, merge `//` like nginx, match paths case-insensitively
 * like Express and IIS, or apply Unicode NFKC so that `ａdmin` is `admin`), and
 * the tool on the other side is unknown. So the path is
 * also read each of those ways, alone and combined; when the readings disagree
 * (inside one way, outside another) the URL is not judged at all, and neither an
 * allow rule nor a deny rule can be slipped past with `/api/..%2fadmin`,
 * `/api/..;/admin`, `//admin` or `/ADMIN`. An escape left after decoding once
 * (`%252e`) or a malformed one is refused too, like `path_within` does.
 */
import { parseScreened } from './url-origin.js';

/** A configured prefix, normalised; the object identity keys the memo. */
export interface PathPrefix {
  /** As compared: no trailing slash except for `/` itself. */
  readonly prefix: string;
  /** ASCII-lowercased, for the case-insensitive readings. */
  readonly lower: string;
}

/** `url_path_within` outcome: inside, outside, or a URL we will not judge (both deny). */
export type UrlPathResult = 'inside' | 'outside' | 'invalid';

/** Unreserved characters and the sub-delimiters that WHATWG leaves alone in a path, plus `:`, `@` and `/`. */
const PREFIX_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,=:@/]+$/;

/**
 * Validates and normalises a configured prefix; returns it or an error message.
 *
 * @example
 * compilePathPrefix('/api/v1/');           // { prefix: { prefix: '/api/v1', lower: '/api/v1' } }
 * compilePathPrefix('https://a.com/api');  // { error: '… takes a path …; pin the origin with url_origin_in' }
 */
export function compilePathPrefix(value: string): { prefix: PathPrefix } | { error: string } {
  if (!value.startsWith('/')) {
    const looksLikeUrl = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(value);
    return {
      error: looksLikeUrl
        ? `takes a path such as "/api/v1", not a URL (got ${JSON.stringify(value)}); pin the origin with url_origin_in`
        : `expected a path starting with "/" such as "/api/v1", got ${JSON.stringify(value)}`,
    };
  }
  if (!PREFIX_CHARS.test(value)) {
    return {
      error: `prefix ${JSON.stringify(value)} may contain only letters, digits, / and - . _ ~ ! $ & ' ( ) * + , = : @ (write it decoded, without %, and without ; ? # \\ or spaces)`,
    };
  }
  const trimmed = value.length > 1 && value.endsWith('/') ? value.slice(0, -1) : value;
  if (trimmed !== '/' && trimmed.slice(1).split('/').some((s) => s === '' || s === '.' || s === '..')) {
    return { error: `prefix ${JSON.stringify(value)} has an empty, "." or ".." segment; write the normalised path` };
  }
  return { prefix: Object.freeze({ prefix: trimmed, lower: asciiLower(trimmed) }) };
}

/**
 * Judges a URL against a compiled prefix.
 *
 * @example
 * const p = (compilePathPrefix('/api') as { prefix: PathPrefix }).prefix;
 * checkUrlPath(p, 'https://h.example/api/v1/items'); // 'inside'
 * checkUrlPath(p, 'https://h.example/api-internal'); // 'outside'
 * checkUrlPath(p, 'https://h.example/api/..%2fadmin'); // 'invalid' (inside as written, outside if %2F is decoded)
 */
export function checkUrlPath(prefix: PathPrefix, raw: string): UrlPathResult {
  // Parsing dominates; agents repeat URLs, and the answer is a pure function of (prefix, raw).
  let memo = recent.get(prefix);
  if (memo === undefined) recent.set(prefix, (memo = new Map()));
  let result = memo.get(raw);
  if (result === undefined) {
    result = judge(prefix, raw);
    if (memo.size >= MEMO_SIZE) memo.clear();
    memo.set(raw, result);
  }
  return result;
}

const MEMO_SIZE = 256;
const recent = new WeakMap<PathPrefix, Map<string, UrlPathResult>>();

const MALFORMED_ESCAPE = /%(?![0-9A-Fa-f]{2})/;
const ESCAPE = /%[0-9A-Fa-f]{2}/;
const ESCAPES = /%([0-9A-Fa-f]{2})/g;

function judge(prefix: PathPrefix, raw: string): UrlPathResult {
  const parsed = parseScreened(raw);
  if (parsed === undefined) return 'invalid';
  const parsedPath = parsed.url.pathname;
  const verdict = judgePath(prefix, parsedPath);
  // The parser has already removed dot segments, and with them what other servers would
  // read differently: `/x/..;/../admin` is `/x/admin` to it but `/admin` with `;params`
  // stripped first, `/x//../admin` is `/x/admin` but `/admin` with `//` merged first. So
  // the path as written is read the same ways, and must agree.
  const written = writtenPath(raw);
  if (verdict === 'invalid' || written === parsedPath) return verdict;
  if (written === undefined) return 'invalid';
  const again = judgePath(prefix, written);
  return again === verdict ? verdict : 'invalid';
}

/**
 * The path of a screened absolute http(s) URL as written (up to `?` or `#`), with
 * non-ASCII characters percent-encoded as UTF-8 the way the URL parser does; undefined
 * when it cannot be encoded (a lone surrogate).
 */
function writtenPath(raw: string): string | undefined {
  const afterScheme = raw.indexOf('//') + 2;
  const pathStart = raw.slice(afterScheme).search(/[/?#]/);
  if (pathStart < 0) return '/';
  const rest = raw.slice(afterScheme + pathStart);
  const end = rest.search(/[?#]/);
  const path = end < 0 ? rest : rest.slice(0, end);
  if (path === '') return '/';
  try {
    return path.replace(/[^\x00-\x7f]+/g, (text) => encodeURIComponent(text));
  } catch {
    return undefined;
  }
}

/** Judges one reading of a URL's path (as parsed, or as written). */
function judgePath(prefix: PathPrefix, path: string): UrlPathResult {
  if (!path.startsWith('/') || MALFORMED_ESCAPE.test(path)) return 'invalid';
  const canonical = path.includes('%') ? removeDotSegments(path.replace(ESCAPES, decodeUnreserved)) : path;
  // [path, read as Unicode text]: the Unicode reading also folds case beyond ASCII.
  const readings: [string, boolean][] = [[canonical, false]];
  if (path.includes('%')) {
    // Every escape decoded once, bytes as Latin-1: the ASCII structure a byte-oriented server sees.
    const full = path.replace(ESCAPES, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (ASCII_CONTROL.test(full) || ESCAPE.test(full)) return 'invalid';
    readings.push([full.replaceAll('\\', '/'), false]);
    // The same bytes as UTF-8 text after NFKC, as a server that normalises Unicode sees
    // them: a fullwidth "／" or "ａ" becomes "/" or "a". Invalid UTF-8 has no such reading.
    const text = utf8(full);
    if (text !== undefined && /[^\x00-\x7f]/.test(text)) {
      const nfkc = text.normalize('NFKC');
      if (CONTROL.test(nfkc) || ESCAPE.test(nfkc)) return 'invalid';
      readings.push([nfkc.replaceAll('\\', '/'), true]);
    }
  }
  let verdict: boolean | undefined;
  const agree = (inside: boolean): boolean => {
    if (verdict === undefined) verdict = inside;
    return verdict === inside;
  };
  for (const [base, unicode] of readings) {
    const params = base.includes(';');
    const doubled = base.includes('//');
    for (let variant = 0; variant < 8; variant++) {
      // A transformation that changes nothing gives a reading already judged.
      if (((variant & 1) !== 0 && !params) || ((variant & 2) !== 0 && !doubled)) continue;
      let p = base;
      if ((variant & 1) !== 0) p = p.replace(/;[^/]*/g, '');
      if ((variant & 2) !== 0) p = p.replace(/\/{2,}/g, '/');
      p = removeDotSegments(p);
      if ((variant & 4) === 0) {
        if (!agree(within(prefix.prefix, p))) return 'invalid';
      } else if (!unicode) {
        if (!agree(within(prefix.lower, asciiLower(p)))) return 'invalid';
      } else {
        // Servers fold case either way: "ı".toUpperCase() is "I", "K" (Kelvin).toLowerCase() is "k".
        if (!agree(within(prefix.lower, p.toLowerCase())) || !agree(within(prefix.prefix.toUpperCase(), p.toUpperCase()))) return 'invalid';
      }
    }
  }
  return verdict === true ? 'inside' : 'outside';
}

/** In bytes; multi-byte UTF-8 sequences use 0x80–0x9f, so C1 controls are checked on text only. */
const ASCII_CONTROL = /[\x00-\x1f\x7f]/;
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Latin-1 string of bytes → UTF-8 text, or undefined when the bytes are not UTF-8. */
function utf8(bytes: string): string | undefined {
  try {
    return STRICT_UTF8.decode(Buffer.from(bytes, 'latin1'));
  } catch {
    return undefined;
  }
}

/** `%61` → `a`; escapes of anything but ALPHA DIGIT - . _ ~ stay as written. */
function decodeUnreserved(escape: string, hex: string): string {
  const c = parseInt(hex, 16);
  const unreserved =
    (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
  return unreserved ? String.fromCharCode(c) : escape;
}

/** RFC 3986 §5.2.4 for an absolute path: `.` dropped, `..` pops (never above the root). */
function removeDotSegments(path: string): string {
  if (!path.includes('.')) return path;
  const input = path.split('/');
  const out: string[] = [];
  for (let i = 1; i < input.length; i++) {
    const segment = input[i] as string;
    if (segment === '.' || segment === '..') {
      if (segment === '..') out.pop();
      if (i === input.length - 1) out.push('');
    } else out.push(segment);
  }
  return `/${out.join('/')}`;
}

function within(prefix: string, path: string): boolean {
  if (prefix === '/') return true;
  return path === prefix || (path.length > prefix.length && path.startsWith(prefix) && path.charCodeAt(prefix.length) === 47);
}

function asciiLower(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}
