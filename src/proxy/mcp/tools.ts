/**
 * `tools/list` (every upstream's tools the caller could be granted, under the names
 * clients use, plus `capframe.request_token`) and `tools/call` (through the Enforcer, with
 * what the upstream says about the call relayed back to this session).
 */
import { CallToolRequestSchema, ListToolsRequestSchema, type Tool } from '@modelcontextprotocol/sdk/types.js';

import { REQUEST_TOKEN_TOOL } from '../enforce.js';
import { callContext } from './relay.js';
import type { ProxySession } from './session.js';
import { fingerprintOf, visibleTools } from './visible.js';

export const REQUEST_TOKEN_DEFINITION: Tool = {
  name: REQUEST_TOKEN_TOOL,
  description:
    'Get a capability token for one tool. Pass the returned token in params._meta["capframe/token"] (or the Capframe-Token header) when calling that tool. ' +
    'With holder_key, the token is bound to that key: every call then also needs a fresh holder proof in params._meta["capframe/proof"] (capframeClient does this). ' +
    'A tool of "<server>:<uri pattern>" asks for a resource token, presented the same way on resources/read.',
  inputSchema: {
    type: 'object',
    properties: {
      tool: { type: 'string', description: 'Tool name, e.g. database.query (or a resource pattern, e.g. docs:file:///srv/docs/*)' },
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

export function registerTools(session: ProxySession): void {
  const { server, deps } = session;

  server.setRequestHandler(ListToolsRequestSchema, (_request, extra) => {
    const { auth } = session.callerOf(extra);
    const tools: Tool[] = [REQUEST_TOKEN_DEFINITION];
    if (auth.kind !== 'rejected') {
      const viewer = { agent: auth.kind === 'agent' ? auth.agent : undefined };
      const visible = visibleTools(deps.upstreams, deps.policy(), viewer);
      tools.push(...visible);
      session.fingerprints.set('tools', fingerprintOf(visible));
    }
    return { tools };
  });

  server.setRequestHandler(CallToolRequestSchema, (request, extra) => {
    const { name, arguments: args, _meta: meta } = request.params;
    // A name the client sees (own or qualified) stands for a qualified one; anything else
    // goes to the Enforcer as it is, which denies it.
    const qualified = deps.upstreams.resolveTool(name) ?? name;
    const status = deps.upstreams.lookup(qualified);
    const ctx = status.state === 'ok' ? callContext(session, extra, { server: status.server, name: qualified }) : { signal: extra.signal };
    return deps.enforcer.callTool(session.callerOf(extra), qualified, args, meta, ctx);
  });
}
