/**
 * The MCP face of the proxy: one SDK `Server` per client session serving the whole MCP
 * surface under policy — tools (src/proxy/mcp/tools.ts), resources (resources.ts),
 * prompts (prompts.ts), completion (completion.ts) and logging (logging.ts) — with what
 * upstreams say about a request relayed back to the session that made it (relay.ts).
 * Transport-agnostic: HTTP and stdio both use it.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';

import type { AuthResult } from './auth.js';
import { registerCompletion } from './mcp/completion.js';
import { registerLogging } from './mcp/logging.js';
import { registerPrompts } from './mcp/prompts.js';
import { registerResources } from './mcp/resources.js';
import { ProxySession, type SessionDeps } from './mcp/session.js';
import { registerTools } from './mcp/tools.js';

export type { SessionDeps } from './mcp/session.js';
export { ProxySession } from './mcp/session.js';
export { Sessions } from './mcp/hub.js';

export const PROXY_INFO = { name: 'capframe', version: '0.1.0' };

/** What the proxy serves to every session; each list is filtered per caller. */
export const PROXY_CAPABILITIES = {
  tools: { listChanged: true },
  resources: { subscribe: true, listChanged: true },
  prompts: { listChanged: true },
  logging: {},
  completions: {},
};

/** Carries the per-request authentication result from the transport to the handlers. */
export function authInfoFor(auth: AuthResult): AuthInfo {
  return { token: '', clientId: auth.kind === 'agent' ? auth.agent : '', scopes: [], extra: { capframe: auth } };
}

/**
 * A new session: its MCP server with every handler, registered with the hub. `owner` is
 * the agent an HTTP session belongs to (undefined when anonymous or over stdio). Call
 * `session.release()` when its transport closes.
 *
 * @example
 * const session = createSession(deps, 'support-bot');
 * await session.server.connect(transport);
 */
export function createSession(deps: SessionDeps, owner: string | undefined): ProxySession {
  const server = new Server(PROXY_INFO, { capabilities: PROXY_CAPABILITIES });
  const session = new ProxySession(server, deps, owner);
  registerTools(session);
  registerResources(session);
  registerPrompts(session);
  registerCompletion(session);
  registerLogging(session);
  deps.hub.add(session);
  server.onclose = () => session.release();
  return session;
}
