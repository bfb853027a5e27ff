/**
 * `allowed_origins` and `allowed_hosts` (and the `serve` flags of the same names): the
 * browser origins and Host names `capframe serve` accepts beyond loopback, in the exact
 * form browsers send them, so a request is checked with one set lookup.
 */

const ORIGIN = /^([a-z][a-z0-9+.-]*):\/\/([^/?#@\s]+)\/?$/i;
const HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(:\d{1,5})?$/i;

/**
 * An origin as a browser serializes it in the `Origin` header (`scheme://host[:port]`,
 * lower case, default port dropped), or an error saying what is expected.
 *
 * @example
 * normalizeOrigin('https://Console.Example.com:443/'); // { value: 'https://console.example.com' }
 * normalizeOrigin('*');                                 // { error: 'expected an origin such as …' }
 */
export function normalizeOrigin(text: string): { value: string } | { error: string } {
  const expected = `expected an origin such as "https://console.example.com" or "http://localhost:5173" (scheme, host and port only), got ${JSON.stringify(text)}`;
  const m = ORIGIN.exec(text);
  if (m === null) return { error: expected };
  const scheme = m[1]!.toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return { value: `${scheme}://${m[2]!.toLowerCase()}` };
  try {
    const url = new URL(text);
    if (url.username !== '' || url.password !== '') return { error: expected };
    return { value: url.origin };
  } catch {
    return { error: expected };
  }
}

/**
 * A `Host` header value to accept: a host name or address, with or without a port, lower case.
 *
 * @example
 * normalizeHost('MCP.example.com:8080'); // { value: 'mcp.example.com:8080' }
 */
export function normalizeHost(text: string): { value: string } | { error: string } {
  if (!HOST.test(text)) {
    return { error: `expected a host name as the Host header carries it, such as "mcp.example.com" or "mcp.example.com:8080" (no scheme, no path), got ${JSON.stringify(text)}` };
  }
  return { value: text.toLowerCase() };
}
