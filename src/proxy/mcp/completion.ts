/**
 * `completion/complete`, routed to the upstream that owns the prompt or resource template
 * it completes an argument of, under the upstream's own name, when the caller could see
 * that prompt or template; otherwise answered as for a name that does not exist.
 * Completions suggest argument values and read nothing: like lists, they are filtered,
 * not audited.
 */
import { CompleteRequestSchema, ErrorCode, type CompleteResult } from '@modelcontextprotocol/sdk/types.js';

import { truncate } from '../../lib/truncate.js';
import { RpcError } from '../rpc-error.js';
import { asUpstreamFailure, upstreamFailure } from './errors.js';
import { callContext } from './relay.js';
import type { ProxySession } from './session.js';
import { templateGlob } from './visible.js';

const EMPTY: CompleteResult = { completion: { values: [], total: 0, hasMore: false } };

export function registerCompletion(session: ProxySession): void {
  const { server, deps } = session;

  server.setRequestHandler(CompleteRequestSchema, async (request, extra) => {
    const { auth } = session.callerOf(extra);
    const agent = auth.kind === 'agent' ? auth.agent : undefined;
    const policy = deps.policy();
    const { ref } = request.params;
    let target: { server: string; ref: typeof ref; name: string } | undefined;
    if (auth.kind !== 'rejected' && ref.type === 'ref/prompt') {
      const status = deps.upstreams.lookupPrompt(ref.name);
      if (status.state === 'ok' && policy.prompts.couldGrant(status.qualified!, agent)) target = { server: status.server, ref: { ...ref, name: status.name }, name: status.qualified! };
    } else if (auth.kind !== 'rejected' && ref.type === 'ref/resource') {
      const resolved = deps.upstreams.resolveResource(ref.uri);
      // Only a template (or resource) the lists show: screening may have withheld it, as prompts are checked above.
      const listed = resolved !== undefined && [...deps.upstreams.templates(), ...deps.upstreams.resources()].some((t) => t.qualified === resolved.qualified);
      if (listed && policy.resources.couldGrantSome(templateGlob(resolved.qualified), agent)) target = { server: resolved!.server, ref: { ...ref, uri: resolved!.uri }, name: resolved!.qualified };
    }
    if (target === undefined) {
      const what = ref.type === 'ref/prompt' ? `prompt ${JSON.stringify(truncate(ref.name, 200))}` : `resource ${JSON.stringify(truncate(String((ref as { uri?: unknown }).uri), 200))}`;
      throw new RpcError(ErrorCode.InvalidParams, `no ${what} to complete an argument of`);
    }
    // An upstream that does not complete arguments offers no values.
    if (deps.upstreams.capabilities(target.server)?.completions === undefined) return EMPTY;
    try {
      return (await deps.upstreams.request(target.server, 'completion/complete', { ...request.params, ref: target.ref }, callContext(session, extra, target))) as CompleteResult;
    } catch (error) {
      throw upstreamFailure(asUpstreamFailure(error), target.server);
    }
  });
}
