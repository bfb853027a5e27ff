/**
 * Resource names (SPEC §6): `<server>:<uri>`, the server's key in `servers` and the URI
 * the upstream uses. One name everywhere: in rules (`resource: "docs:file:///srv/*"`),
 * in tokens (the `tool` claim of a resource token), in the audit log and, for servers
 * served under qualified names, on the wire. Tool names never contain `:` (SEP-986) and
 * server names contain none either, so a name with a `:` is a resource name and the
 * first `:` ends the server name: an upstream URI that itself looks like `other:…` stays
 * the upstream's.
 *
 * A URI is judged only in normal form (RFC 3986 §6.2.2): a rule's glob compares
 * strings, while the server that resolves the URI may decode escapes, fold case or walk
 * `..`. `file:///srv/docs/../secrets` or `file:///srv/%73ecrets` would otherwise match
 * `file:///srv/docs/*` or slip past a deny rule for `file:///srv/secrets*`, so such a URI
 * is refused whatever the rules say.
 */

/** Longest resource URI the proxy accepts, in characters. */
export const MAX_RESOURCE_URI_LENGTH = 4096;

/** A URI scheme in lower case (RFC 3986 §3.1, normalized). */
const LOWER_SCHEME = /^[a-z][a-z0-9+.-]*:/;
/** Characters that never belong in a URI as written: controls, space, `\`, `"`, `<`, `>`, `^`, `` ` ``, `{`, `|`, `}`, and anything outside ASCII. */
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\x00-\x20\x7f-\uffff"<>\\^`{|}]/;
const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** `<server or glob>:<uri glob>`: printable, no whitespace, a URI part of at most {@link MAX_RESOURCE_URI_LENGTH}. */
const RESOURCE_PATTERN = new RegExp(`^[A-Za-z0-9_*-]+:[\\x21-\\x7e]{0,${MAX_RESOURCE_URI_LENGTH}}$`);

/**
 * Whether `pattern` can name resources, as a `resource:` rule or a resource token does:
 * a server name (or glob), a colon, and a URI glob of printable ASCII without spaces.
 *
 * @example
 * isResourcePattern('docs:file:///srv/docs/*'); // true
 * isResourcePattern('docs.query');               // false
 */
export function isResourcePattern(pattern: unknown): boolean {
  return typeof pattern === 'string' && RESOURCE_PATTERN.test(pattern);
}

/**
 * Whether `name` is a resource name (`<server>:<uri>`) rather than a tool or prompt name.
 *
 * @example
 * isResourceName('docs:file:///srv/a.md'); // true
 * isResourceName('database.query'); // false
 */
export function isResourceName(name: string): boolean {
  return name.includes(':');
}

/**
 * The server and URI of a resource name, or undefined when it has no `:` or no server.
 *
 * @example
 * splitResourceName('docs:file:///srv/a.md'); // { server: 'docs', uri: 'file:///srv/a.md' }
 * splitResourceName('a:b:test://x');          // { server: 'a', uri: 'b:test://x' }
 */
export function splitResourceName(name: string): { server: string; uri: string } | undefined {
  const colon = name.indexOf(':');
  if (colon <= 0) return undefined;
  return { server: name.slice(0, colon), uri: name.slice(colon + 1) };
}

/**
 * Why a URI cannot be judged by a rule, or undefined when it is in normal form: at most
 * {@link MAX_RESOURCE_URI_LENGTH} characters of printable ASCII, a lower-case scheme, a
 * lower-case host, no percent-escape of an unreserved character, of `/` or `\` or of NUL,
 * no malformed escape, and no `.`, `..` or empty path segment.
 *
 * @example
 * resourceUriProblem('file:///srv/docs/a.md');           // undefined
 * resourceUriProblem('file:///srv/docs/../secrets');     // 'the path has a "." or ".." segment …'
 */
export function resourceUriProblem(uri: string): string | undefined {
  if (uri.length === 0) return 'the URI is empty';
  if (uri.length > MAX_RESOURCE_URI_LENGTH) return `the URI is longer than ${MAX_RESOURCE_URI_LENGTH} characters`;
  const bad = FORBIDDEN.exec(uri);
  if (bad !== null) {
    const code = bad[0].charCodeAt(0);
    return `the URI contains ${code > 0x20 && code < 0x7f ? JSON.stringify(bad[0]) : `U+${code.toString(16).toUpperCase().padStart(4, '0')}`}, which a URI carries only percent-encoded`;
  }
  if (!LOWER_SCHEME.test(uri)) return 'the URI does not start with a lower-case scheme such as "file:" or "https:"';
  for (let i = uri.indexOf('%'); i !== -1; i = uri.indexOf('%', i + 1)) {
    const hex = uri.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return `the URI has a malformed percent-escape at character ${i + 1}`;
    const char = String.fromCharCode(Number.parseInt(hex, 16));
    if (UNRESERVED.test(char) || char === '/' || char === '\\' || char === '\0') {
      return `the URI percent-encodes ${JSON.stringify(char)} (%${hex}); servers differ on whether that is the same URI, so it is not judged`;
    }
  }
  const rest = uri.slice(uri.indexOf(':') + 1);
  const end = rest.search(/[?#]/);
  let path = end === -1 ? rest : rest.slice(0, end);
  if (path.startsWith('//')) {
    const slash = path.indexOf('/', 2);
    const authority = slash === -1 ? path.slice(2) : path.slice(2, slash);
    if (authority !== authority.toLowerCase()) return 'the URI host is not in lower case';
    path = slash === -1 ? '' : path.slice(slash);
  }
  const segments = path.split('/');
  if (segments.some((segment) => segment === '.' || segment === '..')) {
    return 'the path has a "." or ".." segment; servers resolve those, so the URI is not judged';
  }
  // `/srv/docs//private/x` passes a deny rule for `/srv/docs/private/*` as a string, and a
  // file or HTTP server collapses the `//`. (The first segment is empty in an absolute path,
  // the last after a trailing `/`; a rootless path such as `other:test://x` is opaque.)
  if (path.startsWith('/') && segments.slice(1, -1).includes('')) return 'the path has an empty segment ("//"); servers collapse those, so the URI is not judged';
  return undefined;
}
