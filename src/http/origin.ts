/**
 * DNS-rebinding protection (MCP Streamable HTTP transport, "Security Warning"): a web page
 * whose host name an attacker re-points at 127.0.0.1 can make the user's browser talk to a
 * local `capframe serve`. The browser then sends the attacker's name in `Host` and the
 * attacker's page in `Origin`, so:
 *
 * - On a loopback listener, `Host` must be a loopback name (localhost, 127.x.x.x, [::1],
 *   with any port) or listed in `allowed_hosts` / `--allowed-host`.
 * - On any other listener, `Host` is checked only when hosts are listed.
 * - A present `Origin` must be a loopback origin (loopback listener only) or listed in
 *   `allowed_origins` / `--allowed-origin`. Clients that are not browsers send no Origin.
 *
 * The check runs before anything else on every route, so a refused request costs no
 * authentication, no body parsing and no session.
 */
import type { IncomingMessage } from 'node:http';

import type { Policy } from '../policy/types.js';

const LOOPBACK_HOST = /^(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;
const LOOPBACK_ORIGIN = /^https?:\/\/(?:localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d{1,5})?$/i;
const PORT_SUFFIX = /:\d{1,5}$/;

/** True for an address a listener bound to only the local machine (127.0.0.0/8, ::1). */
export function isLoopbackAddress(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || /^::ffff:127\./i.test(address);
}

export interface OriginGuardOptions {
  /** Whether the listener is bound to a loopback address; read per request (known once listening). */
  loopback: () => boolean;
  /** The policy, for its `allowed_origins` and `allowed_hosts` (it hot-reloads). */
  policy: () => Policy;
  /** From `--allowed-origin`, normalized. */
  origins: readonly string[];
  /** From `--allowed-host`, normalized. */
  hosts: readonly string[];
}

interface Allowed {
  origins: ReadonlySet<string>;
  hosts: ReadonlySet<string>;
}

/**
 * A check returning why a request is refused, or undefined when it may proceed.
 *
 * @example
 * const refuse = createOriginGuard({ loopback: () => true, policy, origins: [], hosts: [] });
 * refuse(req); // 'Host "evil.example" is not …' for a rebinding attempt
 */
export function createOriginGuard(options: OriginGuardOptions): (req: IncomingMessage) => string | undefined {
  let seen: Policy | undefined;
  let allowed: Allowed = { origins: new Set(), hosts: new Set() };
  const allowedFor = (policy: Policy): Allowed => {
    if (policy !== seen) {
      seen = policy;
      allowed = { origins: new Set([...options.origins, ...policy.allowedOrigins]), hosts: new Set([...options.hosts, ...policy.allowedHosts]) };
    }
    return allowed;
  };

  return (req) => {
    const { host, origin } = req.headers;
    const loopback = options.loopback();
    // The common case, a local client with no Origin, decides on one regular expression.
    if (loopback && origin === undefined && host !== undefined && LOOPBACK_HOST.test(host)) return undefined;
    const { origins, hosts } = allowedFor(options.policy());
    if (loopback || hosts.size > 0) {
      if (host === undefined) return 'the Host header is missing';
      if (!LOOPBACK_HOST.test(host)) {
        const h = host.toLowerCase();
        if (!hosts.has(h) && !hosts.has(h.replace(PORT_SUFFIX, ''))) {
          return `Host ${JSON.stringify(host)} is not accepted here; a local client names localhost or 127.0.0.1, and other names must be listed in allowed_hosts (policy) or --allowed-host`;
        }
      }
    }
    if (origin !== undefined && !(loopback && LOOPBACK_ORIGIN.test(origin)) && !origins.has(origin) && !origins.has(origin.toLowerCase())) {
      return `Origin ${JSON.stringify(origin)} is not accepted here; list it in allowed_origins (policy) or --allowed-origin to let browser pages from it call this server`;
    }
    return undefined;
  };
}
