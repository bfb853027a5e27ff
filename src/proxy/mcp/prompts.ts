/**
 * Prompts under policy (SPEC §6): `prompts/list` filtered to what the prompt rules could
 * grant the caller (definitions screened like tool descriptions when listed upstream);
 * `prompts/get` decided by the prompt rules for the caller and their constraints on the
 * prompt's arguments, audited, and forwarded only when allowed. A prompt's messages are
 * the upstream's text and pass as they are, like tool results.
 */
import { GetPromptRequestSchema, ListPromptsRequestSchema, type GetPromptResult } from '@modelcontextprotocol/sdk/types.js';

import { DECISION_META_KEY } from '../../mcp/meta.js';
import { truncate } from '../../lib/truncate.js';
import type { DecisionCode } from '../../verify/decision.js';
import { ownedMeta } from '../enforce.js';
import { asUpstreamFailure, deniedError, upstreamFailure } from './errors.js';
import { callContext } from './relay.js';
import type { ProxySession } from './session.js';
import { fingerprintOf, visiblePrompts } from './visible.js';

/** The denial code for a prompt that is not served as it stands. */
const STATE_CODES: Record<string, DecisionCode> = { withheld: 'denied_by_rule', unavailable: 'upstream_unavailable', unknown: 'no_rule', changed: 'tool_changed' };

export function registerPrompts(session: ProxySession): void {
  const { server, deps } = session;

  server.setRequestHandler(ListPromptsRequestSchema, (_request, extra) => {
    const { auth } = session.callerOf(extra);
    if (auth.kind === 'rejected') return { prompts: [] };
    const prompts = visiblePrompts(deps.upstreams, deps.policy(), { agent: auth.kind === 'agent' ? auth.agent : undefined });
    session.fingerprints.set('prompts', fingerprintOf(prompts));
    return { prompts };
  });

  server.setRequestHandler(GetPromptRequestSchema, async (request, extra) => {
    const caller = session.callerOf(extra);
    const args = request.params.arguments ?? {};
    const status = deps.upstreams.lookupPrompt(request.params.name);
    const qualified = status.qualified ?? request.params.name;
    if (status.state !== 'ok') {
      const code = STATE_CODES[status.state] ?? 'no_rule';
      const reason = `prompt: ${status.reason}`;
      try {
        deps.enforcer.record({ allowed: false, code, reason, agent: caller.auth.kind === 'agent' ? caller.auth.agent : null, tokenId: null }, qualified, args, process.hrtime.bigint());
      } catch {
        // Denied either way.
      }
      throw deniedError(code, reason);
    }
    const { verdict, decided, rule } = await deps.enforcer.authorizePrompt(caller, qualified, args);
    if (!verdict.allowed || decided === undefined) throw deniedError(verdict.code, verdict.reason);
    const started = performance.now();
    let result: Record<string, unknown>;
    try {
      result = await deps.upstreams.request(status.server, 'prompts/get', { name: status.name, arguments: args }, callContext(session, extra, { server: status.server, name: qualified }));
    } catch (error) {
      const failure = asUpstreamFailure(error);
      deps.enforcer.recordOutcome(decided, failure.code === 'not_sent' ? 'upstream_unavailable' : failure.code, `prompts/get: ${truncate(failure.message, 300)}`, started);
      throw upstreamFailure(failure, status.server);
    }
    return {
      ...result,
      messages: Array.isArray(result.messages) ? result.messages : [],
      _meta: ownedMeta(result._meta, { [DECISION_META_KEY]: { allowed: true, code: 'ok', token: null, rule: rule ?? null } }),
    } as GetPromptResult;
  });
}
