/**
 * `capframe serve` as a function: starts the runtime behind HTTP or stdio and runs
 * until SIGTERM/SIGINT (drain in-flight calls, flush the audit log, exit 0).
 */
import type { AddressInfo } from 'node:net';

import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';

import { parseWholeNumber } from '../cli/args.js';
import { loadConsoleAssets } from '../console/assets.js';
import { CapframeError } from '../errors.js';
import { isLoopbackAddress } from '../http/origin.js';
import { createHttpServer } from '../http/server.js';
import { normalizeHost, normalizeOrigin } from '../policy/allow-lists.js';
import { authenticate } from './auth.js';
import { createSessionServer } from './mcp-server.js';
import { startRuntime, type Runtime } from './runtime.js';
import { DEFAULT_SESSION_LIMITS, type SessionLimits } from './sessions.js';

export interface ServeOptions {
  policy: string;
  port?: string;
  host: string;
  stdio?: boolean;
  maxBody: string;
  jsonResponse?: boolean;
  auditLog?: string;
  maxSessions?: string;
  maxSessionsPerAgent?: string;
  maxAnonymousSessions?: string;
  /** Seconds a session may stay without a request after its initialize. */
  sessionHandshakeTimeout?: string;
  /** Seconds a session may stay without any request. */
  sessionIdleTimeout?: string;
  /** `--allowed-origin`, repeatable. */
  allowedOrigin?: string[];
  /** `--allowed-host`, repeatable. */
  allowedHost?: string[];
  /** Serve the operator console under /console (needs CAPFRAME_ADMIN_KEY). */
  console?: boolean;
  /** Mark the console's session cookie `Secure` even on a loopback listener (TLS terminated in front). */
  consoleSecureCookie?: boolean;
}

/** Shortest admin key the console accepts: it is the only thing between a browser and revocation. */
export const MIN_CONSOLE_ADMIN_KEY_CHARS = 16;

/** Why `--console` cannot start with these options, or undefined. */
function consoleProblem(opts: ServeOptions): string | undefined {
  if (opts.console !== true) return opts.consoleSecureCookie === true ? '--console-secure-cookie needs --console' : undefined;
  if (opts.stdio === true) return '--console needs HTTP (--port), not --stdio';
  const key = process.env.CAPFRAME_ADMIN_KEY;
  if (key === undefined || key === '') return '--console needs CAPFRAME_ADMIN_KEY: set it to a long random secret (e.g. `openssl rand -base64 32`); it is the console\'s sign-in key';
  if (key.length < MIN_CONSOLE_ADMIN_KEY_CHARS) return `--console needs a CAPFRAME_ADMIN_KEY of at least ${MIN_CONSOLE_ADMIN_KEY_CHARS} characters (it has ${key.length}); use a long random secret, e.g. \`openssl rand -base64 32\``;
  return undefined;
}

function sessionLimits(opts: ServeOptions): SessionLimits {
  const d = DEFAULT_SESSION_LIMITS;
  const count = (value: string | undefined, flag: string, fallback: number) => (value === undefined ? fallback : parseWholeNumber(value, flag));
  return {
    total: count(opts.maxSessions, '--max-sessions', d.total),
    perAgent: count(opts.maxSessionsPerAgent, '--max-sessions-per-agent', d.perAgent),
    anonymous: count(opts.maxAnonymousSessions, '--max-anonymous-sessions', d.anonymous),
    handshakeMs: count(opts.sessionHandshakeTimeout, '--session-handshake-timeout', d.handshakeMs / 1000) * 1000,
    idleMs: count(opts.sessionIdleTimeout, '--session-idle-timeout', d.idleMs / 1000) * 1000,
  };
}

/** Each `--allowed-origin` / `--allowed-host` value, normalized, or an error naming the flag. */
function allowList(values: string[] | undefined, flag: string, normalize: (text: string) => { value: string } | { error: string }): string[] {
  return (values ?? []).map((text) => {
    const r = normalize(text);
    if ('error' in r) throw new CapframeError('invalid_argument', `${flag}: ${r.error}`);
    return r.value;
  });
}

/** Runs until SIGTERM/SIGINT: drains in-flight calls, flushes the audit log, exits 0. */
export async function serve(opts: ServeOptions, onListening?: (url: string, rt: Runtime) => void): Promise<void> {
  if (opts.stdio !== true && opts.port === undefined) throw new CapframeError('invalid_argument', 'pass --port <n> (HTTP) or --stdio');
  const port = opts.port === undefined ? 0 : parseWholeNumber(opts.port, '--port', 0);
  const maxBodyBytes = parseWholeNumber(opts.maxBody, '--max-body');
  const sessions = sessionLimits(opts);
  const allowedOrigins = allowList(opts.allowedOrigin, '--allowed-origin', normalizeOrigin);
  const allowedHosts = allowList(opts.allowedHost, '--allowed-host', normalizeHost);
  const refused = consoleProblem(opts);
  if (refused !== undefined) throw new CapframeError('invalid_argument', refused);
  // Before the runtime starts: a console whose files are missing stops nothing but itself.
  const consoleAssets = opts.console === true ? loadConsoleAssets() : undefined;
  const rt = await startRuntime({ policyFile: opts.policy, ...(opts.auditLog !== undefined && { auditLog: opts.auditLog }) });
  process.on('SIGHUP', () => void rt.reloadPolicy());

  let stopping = false;
  const stopWith = (close: () => void) => async (signal: string) => {
    if (stopping) return;
    stopping = true;
    rt.log.info('shutting down: draining in-flight calls', { signal });
    close();
    await rt.stop();
    process.exit(0);
  };

  if (opts.stdio === true) {
    const server = createSessionServer({
      enforcer: rt.enforcer,
      upstreams: rt.upstreams,
      policy: rt.policy,
      defaultAuth: () => authenticate(rt.policy(), process.env.CAPFRAME_AGENT_KEY),
    });
    const stop = stopWith(() => undefined);
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
    process.stdin.on('end', () => void stop('stdin closed'));
    await server.connect(new StdioServerTransport());
    return;
  }

  const http = createHttpServer(rt, {
    maxBodyBytes,
    jsonResponse: opts.jsonResponse === true,
    sessions,
    allowedOrigins,
    allowedHosts,
    ...(consoleAssets !== undefined && { console: { secureCookie: opts.consoleSecureCookie === true, assets: consoleAssets } }),
  });
  const stop = stopWith(() => {
    http.close();
    http.closeIdleConnections();
  });
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, opts.host, resolve);
    });
  } catch (error) {
    // Nothing will be served: stop the upstream children (no orphans) and the rest of the
    // runtime, then fail, so the CLI exits 1 instead of idling without a listener.
    stopping = true; // a signal arriving now must not stop the runtime a second time
    rt.log.error('cannot listen; stopping', { host: opts.host, port, error: (error as Error).message });
    http.close();
    await rt.stop().catch((stopError: unknown) => rt.log.error('runtime did not stop cleanly', { error: (stopError as Error).message }));
    throw new CapframeError('invalid_argument', `cannot listen on ${opts.host}:${port}: ${listenFailure(error)}`, { cause: error });
  }
  const address = http.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/mcp`;
  rt.log.info('listening', { url });
  if (opts.console === true) rt.log.info('operator console', { url: url.replace(/\/mcp$/, '/console/') });
  if (!isLoopbackAddress(address.address)) {
    if (opts.console === true) {
      rt.log.warn('operator console beyond loopback: serve it behind TLS; its session cookie is Secure, so browsers will not sign in over plain HTTP', { address: address.address });
    }
    const policy = rt.policy();
    const origins = allowedOrigins.length + policy.allowedOrigins.length;
    const hosts = allowedHosts.length + policy.allowedHosts.length;
    if (origins === 0 || hosts === 0) {
      rt.log.warn('listening beyond loopback: every host that reaches this address can open sessions', {
        address: address.address,
        host_header: hosts === 0 ? 'not checked; list the names clients use in allowed_hosts (policy) or --allowed-host' : 'checked against allowed_hosts',
        origin_header: origins === 0 ? 'browser requests (with an Origin) are refused; list trusted origins in allowed_origins or --allowed-origin' : 'checked against allowed_origins',
      });
    }
  }
  onListening?.(url, rt);
}

/** Why a listen failed, in words, with the system code and what to change. */
function listenFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EADDRINUSE':
      return 'port in use (EADDRINUSE); pick another --port';
    case 'EACCES':
      return 'permission denied (EACCES); ports below 1024 need privileges, pick another --port';
    case 'EADDRNOTAVAIL':
      return 'address not available on this machine (EADDRNOTAVAIL); check --host';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host not found (${code}); check --host`;
    default:
      return `${(error as Error).message}${code !== undefined && !(error as Error).message.includes(code) ? ` (${code})` : ''}`;
  }
}
