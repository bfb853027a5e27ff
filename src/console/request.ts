/** Reading console requests: the session cookie, same-origin checks, query parameters. */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';

import { isLoopbackAddress } from '../http/origin.js';

export const SESSION_COOKIE = 'capframe_console';

/** The value of one cookie in the request's Cookie header(s), the first when repeated. */
export function cookieValue(req: IncomingMessage, name: string): string | undefined {
  const header = req.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Whether the session cookie must carry `Secure`: over TLS, beyond loopback, or when the operator says so. */
export function needsSecureCookie(req: IncomingMessage, force: boolean): boolean {
  if (force || (req.socket as TLSSocket).encrypted === true) return true;
  const local = req.socket.localAddress;
  return local === undefined || !isLoopbackAddress(local);
}

/**
 * The Set-Cookie value for a session id (or for clearing it). `Path=/console` keeps it away
 * from the MCP routes; `SameSite=Strict` keeps other sites' pages from sending it.
 */
export function sessionCookie(id: string, options: { secure: boolean; maxAgeSeconds: number }): string {
  return [`${SESSION_COOKIE}=${id}`, 'Path=/console', 'HttpOnly', 'SameSite=Strict', `Max-Age=${options.maxAgeSeconds}`, ...(options.secure ? ['Secure'] : [])].join('; ');
}

/**
 * Why a state-changing request is not from a console page on this server, or undefined.
 * Browsers send `Origin` on every POST; it must name this very host (the DNS-rebinding
 * guard has already checked that Host is one we answer to), and a `Sec-Fetch-Site` header,
 * when sent, must say same-origin.
 */
export function crossOriginReason(req: IncomingMessage): string | undefined {
  const { origin, host } = req.headers;
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') return `Sec-Fetch-Site is "${String(site)}", not same-origin`;
  if (origin === undefined) return 'the Origin header is missing';
  if (host === undefined) return 'the Host header is missing';
  let ours: string;
  let theirs: URL;
  try {
    theirs = new URL(origin);
    ours = new URL(`${theirs.protocol}//${host}`).host;
  } catch {
    return 'the Origin header is not an origin';
  }
  if (theirs.origin !== origin.toLowerCase() || theirs.host !== ours) return `Origin ${JSON.stringify(origin.slice(0, 100))} is not this server`;
  return undefined;
}

/** The query parameters of a request. */
export function queryOf(req: IncomingMessage): URLSearchParams {
  const url = req.url ?? '';
  const at = url.indexOf('?');
  return new URLSearchParams(at === -1 ? '' : url.slice(at + 1));
}

/** The remote address, for rate-limiting logins. */
export function remoteOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}
