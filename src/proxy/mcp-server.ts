/**
 * The MCP face of the proxy: one SDK `Server` per client session, answering
 * `tools/list` with the tools the agent could be granted and sending every
 * `tools/call` through the Enforcer. Transport-agnostic: HTTP and stdio both use it.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';

import type { Policy } from '../policy/types.js';
import type { AuthResult } from './auth.js';
import { callerWith, REQUEST_TOKEN_TOOL, type Caller, type Enforcer } from './enforce.js';
import type { UpstreamPool } from './upstreams.js';

export const PROXY_INFO = { name: 'capframe', version: '0.1.0' };

const REQUEST_TOKEN_DEFINITION: Tool = {
  name: REQUEST_TOKEN_TOOL,
  description:
    'Get a capability token for one tool. Pass the returned token in params._meta["capframe/token"] (or the Capframe-Token header) when calling that tool. ' +
    'With holder_key, the token is bound to that key: every call then also needs a fresh holder proof in params._meta["capframe/proof"] (capframeClient does this).',
  inputSchema: {
    type: 'object',
    properties: {
      tool: { type: 'string', description: 'Tool name, e.g. database.query' },
      capability: { type: 'string' },
      ttl: { type: 'integer', minimum: 1, description: 'Lifetime in seconds, capped by the policy' },
      holder_key: {
        type: 'string',
        description: "Bind the token to this Ed25519 public key (64 hex characters or base64url), one of the agent's holder_keys in the policy",
      },
    },
    required: ['tool'],
    additionalProperties: false,
  },
};

/** Carries the per-request authentication result from the transport to the handlers. */
export function authInfoFor(auth: AuthResult): AuthInfo {
  return { token: '', clientId: auth.kind === 'agent' ? auth.agent : '', scopes: [], extra: { capframe: auth } };
}

export interface SessionDeps {
  enforcer: Enforcer;
  upstreams: UpstreamPool;
  policy: () => Policy;
  /** Authentication for transports without per-request auth (stdio), evaluated per request. */
  defaultAuth?: () => AuthResult;
}

/** A new MCP server for one session. */
export function createSessionServer(deps: SessionDeps): Server {
  const server = new Server(PROXY_INFO, { capabilities: { tools: { listChanged: true } } });

  const callerOf = (extra: { authInfo?: AuthInfo; requestInfo?: { headers: Record<string, string | string[] | undefined> } }): Caller => {
    const auth = (extra.authInfo?.extra?.capframe as AuthResult | undefined) ?? deps.defaultAuth?.() ?? { kind: 'rejected', reason: 'no authentication' };
    return callerWith(auth, extra.requestInfo?.headers);
  };

  server.setRequestHandler(ListToolsRequestSchema, (_request, extra) => {
    const { auth } = callerOf(extra);
    const policy = deps.policy();
    const agent = auth.kind === 'agent' ? auth.agent : undefined;
    const tools: Tool[] = [REQUEST_TOKEN_DEFINITION];
    if (auth.kind !== 'rejected') {
      for (const t of deps.upstreams.tools()) {
        if (policy.couldGrant(t.qualified, agent)) tools.push({ ...t.definition, name: t.qualified });
      }
    }
    return { tools };
  });

  server.setRequestHandler(CallToolRequestSchema, (request, extra) =>
    deps.enforcer.callTool(callerOf(extra), request.params.name, request.params.arguments, request.params._meta),
  );
  return server;
}
