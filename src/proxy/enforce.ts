/**
 * The enforcement path of every `tools/call` (SPEC §6):
 * authenticate → decode and verify the token → policy and constraints → rate limit
 * → forward → audit. Every branch ends in a decision that is audited; any error on
 * the way denies with `internal_error`. Nothing fails open.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

import type { AuditLog } from '../audit/writer.js';
import { denial, TOKEN_META_KEY } from '../mcp/meta.js';
import { isRecord } from '../lib/is-record.js';
import type { SigningKey } from '../keys/keys.js';
import type { Policy } from '../policy/types.js';
import type { FileStore } from '../store/file-store.js';
import type { MintedToken } from '../token/mint.js';
import { mintGranted, type GrantRequest } from '../token/mint-granted.js';
import type { DecisionCode } from '../verify/decision.js';
import type { Verifier } from '../verify/verifier.js';
import type { AuthResult } from './auth.js';
import type { Logger } from './log.js';
import type { CapframeMetrics } from './metrics.js';
import type { RateLimiter } from './rate-limit.js';
import { UpstreamCallError } from './http-upstream-call.js';
import type { UpstreamPool } from './upstreams.js';

/** The tool every agent sees, for getting tokens (SPEC §6). */
export const REQUEST_TOKEN_TOOL = 'capframe.request_token';
// The `_meta` names and the denial live below the proxy (capframeGuard uses them too).
export { DECISION_META_KEY, denial, TOKEN_META_KEY } from '../mcp/meta.js';
/** Lifetime of a token minted for a single call under `auto_mint`. */
const AUTO_MINT_TTL = 60;

/** Who is calling, as the transport established it. */
export interface Caller {
  auth: AuthResult;
  /** A token from the `Capframe-Token` header, if the transport has headers. */
  headerToken?: string;
}

/** The caller of a request with these headers (HTTP only has them): its auth and any Capframe-Token header. */
export function callerWith(auth: AuthResult, headers?: Record<string, string | string[] | undefined>): Caller {
  const header = headers?.['capframe-token'];
  const headerToken = Array.isArray(header) ? header[0] : header;
  return headerToken === undefined ? { auth } : { auth, headerToken };
}

export interface EnforcerDeps {
  policy: () => Policy;
  verifier: Verifier;
  issuer: SigningKey;
  store: FileStore;
  upstreams: UpstreamPool;
  audit: AuditLog;
  metrics: CapframeMetrics;
  limiter: RateLimiter;
  log: Logger;
}

export interface IssuedToken {
  token: string;
  id: string;
  tool: string;
  expires_at: string;
}

interface Outcome {
  allowed: boolean;
  code: DecisionCode;
  reason: string;
  agent: string | null;
  tokenId: string | null;
}

/** True when some object inside `value` has an own "__proto__" key. */
function hasProtoKey(value: unknown, depth = 0): boolean {
  if (typeof value !== 'object' || value === null || depth > 64) return depth > 64;
  if (Object.hasOwn(value, '__proto__')) return true;
  for (const v of Object.values(value)) if (hasProtoKey(v, depth + 1)) return true;
  return false;
}

export class Enforcer {
  /** Calls decided and not yet answered; SIGTERM waits for them. */
  inFlight = 0;

  constructor(private readonly deps: EnforcerDeps) {}

  /** Decides one `tools/call` and, when allowed, forwards it. Never throws. */
  async callTool(caller: Caller, tool: string, rawArgs: unknown, meta: unknown): Promise<CallToolResult> {
    this.inFlight += 1;
    const started = process.hrtime.bigint();
    const args = rawArgs ?? {};
    let outcome: Outcome = { allowed: false, code: 'internal_error', reason: 'internal error', agent: null, tokenId: null };
    try {
      if (tool === REQUEST_TOKEN_TOOL) {
        const issued = this.issue(caller, args);
        outcome = issued.outcome;
        this.record(outcome, tool, args, started);
        return issued.ok
          ? { content: [{ type: 'text', text: JSON.stringify(issued.body) }], structuredContent: { ...issued.body } }
          : denial(outcome.code, outcome.reason);
      }
      const decided = this.decide(caller, tool, args, meta);
      outcome = decided.outcome;
      // Audit before forwarding: a call we cannot record is a call we do not make.
      this.record(outcome, tool, args, started);
      if (!('forward' in decided)) return denial(outcome.code, outcome.reason);
      const { server, name, token } = decided.forward;
      return await this.forward(server, name, args as Record<string, unknown>, token, tool);
    } catch (error) {
      // Whatever failed — deciding or recording the decision — the call is not forwarded.
      this.deps.log.error('enforcement error', { tool, error: (error as Error).message });
      const reason = 'internal error; the call was not forwarded';
      try {
        this.record({ ...outcome, allowed: false, code: 'internal_error', reason }, tool, args, started);
      } catch {
        // The audit log itself failed; the denial below still stands.
      }
      return denial('internal_error', reason);
    } finally {
      this.inFlight -= 1;
    }
  }

  /** Everything before forwarding. Pure decision: no upstream is touched. */
  private decide(caller: Caller, tool: string, args: unknown, meta: unknown) {
    const policy = this.deps.policy();
    const deny = (code: DecisionCode, reason: string, agent: string | null = null, tokenId: string | null = null) => ({
      outcome: { allowed: false, code, reason, agent, tokenId } satisfies Outcome,
    });

    if (caller.auth.kind === 'rejected') return deny('agent_unknown', caller.auth.reason);
    const agent = caller.auth.kind === 'agent' ? caller.auth.agent : undefined;
    if (!isRecord(args)) return deny('constraint_failed', 'tool arguments must be a JSON object', agent ?? null);
    if (hasProtoKey(args)) {
      // JSON.parse keeps "__proto__" as a plain key that constraints never see; an upstream
      // that merges the arguments into an object would inherit what it holds.
      return deny('constraint_failed', 'tool arguments must not contain a "__proto__" key', agent ?? null);
    }

    let token = isRecord(meta) && typeof meta[TOKEN_META_KEY] === 'string' ? (meta[TOKEN_META_KEY] as string) : caller.headerToken;
    if (token === undefined || token === '') {
      const autoMint = agent !== undefined && (policy.agents[agent]?.autoMint ?? policy.autoMint);
      if (!autoMint) return deny('missing_token', `no capability token was presented for ${tool}`, agent ?? null);
      const minted = this.mintFor(policy, { tool, agent, ttl: AUTO_MINT_TTL });
      if ('code' in minted) return deny(minted.code as DecisionCode, minted.reason, agent);
      token = minted.token;
    }

    const verified = this.deps.verifier.verify(token, { tool, args });
    const tokenId = verified.tokenId ?? null;
    if (!verified.allowed) return deny(verified.code, verified.reason, agent ?? null, tokenId);
    const claims = verified.claims!;
    if (agent !== undefined && claims.sub !== agent) {
      return deny('agent_not_allowed', `token ${tokenId} was issued to ${claims.sub === undefined ? 'no agent' : `"${claims.sub}"`}, not "${agent}"`, agent, tokenId);
    }
    if (claims.prf !== undefined) return deny('delegation_invalid', 'delegated tokens are not accepted by this proxy yet', agent ?? null, tokenId);
    if (claims.cnf !== undefined) return deny('bad_proof', 'holder-bound tokens need a holder proof, which this proxy does not verify yet', agent ?? null, tokenId);

    const who = agent ?? claims.sub;
    const decision = policy.decide({
      ...(who !== undefined && { agent: who }),
      tool,
      args,
      token: { tool: claims.tool, ...(claims.cap !== undefined && { cap: claims.cap }) },
    });
    if (!decision.allowed) return deny(decision.code as DecisionCode, decision.reason, who ?? null, tokenId);

    const status = this.deps.upstreams.lookup(tool);
    if (status.state === 'changed') return deny('tool_changed', status.reason, who ?? null, tokenId);
    if (status.state === 'unavailable') return deny('upstream_unavailable', status.reason, who ?? null, tokenId);
    if (status.state === 'unknown') return deny('no_rule', status.reason, who ?? null, tokenId);

    const limit = decision.rule?.rateLimit;
    if (limit !== undefined && !this.deps.limiter.take(`${who ?? tokenId}\u0000${decision.rule!.line}`, limit)) {
      return deny('rate_limited', `more than ${limit.calls} calls in ${limit.per}s under the rule at line ${decision.rule!.line}`, who ?? null, tokenId);
    }
    return {
      outcome: { allowed: true, code: 'ok', reason: `allowed by ${decision.rule ? `the rule at line ${decision.rule.line}` : 'default_policy: allow'}`, agent: who ?? null, tokenId } satisfies Outcome,
      forward: { server: status.server, name: status.name, token },
    };
  }

  private async forward(server: string, name: string, args: Record<string, unknown>, token: string, tool: string): Promise<CallToolResult> {
    const started = performance.now();
    try {
      // The upstream receives the token too, so a guarded server can verify it itself.
      return await this.deps.upstreams.call(server, name, args, { [TOKEN_META_KEY]: token });
    } catch (error) {
      const message = (error as Error).message;
      this.deps.log.warn('upstream call failed', { tool, error: message });
      if (error instanceof UpstreamCallError && error.kind === 'rpc') {
        // The call was allowed and reached a live upstream, which refused it: its error, not a denial.
        return { content: [{ type: 'text', text: `upstream "${server}" answered with an error: ${message}` }], isError: true };
      }
      return denial('upstream_unavailable', `upstream "${server}" did not answer: ${message}`);
    } finally {
      this.deps.metrics.upstreamCall.labels(server).observe((performance.now() - started) / 1000);
    }
  }

  /**
   * Issues a token to the caller: `capframe.request_token {tool, capability?, ttl?}` and
   * `POST /v1/tokens`. The caller audits the outcome.
   */
  issue(caller: Caller, args: unknown): { ok: true; body: IssuedToken; outcome: Outcome } | { ok: false; outcome: Outcome } {
    const fail = (code: DecisionCode, reason: string, agent: string | null = null) => ({
      ok: false as const,
      outcome: { allowed: false, code, reason, agent, tokenId: null } satisfies Outcome,
    });
    if (caller.auth.kind === 'rejected') return fail('agent_unknown', caller.auth.reason);
    if (caller.auth.kind === 'open') {
      // Without agents the token alone authorizes a call; handing tokens to whoever
      // asks would make that authorization meaningless. The operator mints them.
      return fail('agent_unknown', 'token issuance needs an authenticated agent, and this policy defines no agents; mint tokens with `capframe mint`');
    }
    const agent = caller.auth.agent;
    if (!isRecord(args) || typeof args.tool !== 'string' || args.tool === '') {
      return fail('malformed_token', `${REQUEST_TOKEN_TOOL} needs {tool: string, capability?: string, ttl?: seconds}`, agent ?? null);
    }
    if (args.holder_key !== undefined) {
      return fail('bad_proof', 'holder-bound tokens are not issued by this proxy yet (holder proofs are not verified)', agent ?? null);
    }
    const ttl = args.ttl;
    if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl <= 0)) {
      return fail('malformed_token', 'ttl must be a positive whole number of seconds', agent ?? null);
    }
    if (args.capability !== undefined && typeof args.capability !== 'string') {
      return fail('malformed_token', 'capability must be a string', agent ?? null);
    }
    const minted = this.mintFor(this.deps.policy(), {
      tool: args.tool,
      agent,
      ...(ttl !== undefined && { ttl: ttl as number }),
      ...(args.capability !== undefined && { capability: args.capability as string }),
    });
    if ('code' in minted) return fail(minted.code as DecisionCode, minted.reason, agent ?? null);
    return {
      ok: true,
      body: { token: minted.token, id: minted.id, tool: minted.claims.tool, expires_at: minted.expiresAt.toISOString() },
      outcome: { allowed: true, code: 'ok', reason: `issued ${minted.id} for ${minted.claims.tool}`, agent: agent ?? null, tokenId: minted.id },
    };
  }

  /** Issues a token over HTTP (`POST /v1/tokens`), audited like the tool. */
  issueOverHttp(caller: Caller, args: unknown): { ok: true; body: IssuedToken } | { ok: false; code: DecisionCode; reason: string } {
    const started = process.hrtime.bigint();
    const issued = this.issue(caller, args);
    this.record(issued.outcome, REQUEST_TOKEN_TOOL, args, started);
    return issued.ok ? { ok: true, body: issued.body } : { ok: false, code: issued.outcome.code, reason: issued.outcome.reason };
  }

  /** Mints what the policy grants `agent` for `tool`, recording it in the ledger. */
  private mintFor(policy: Policy, request: GrantRequest): MintedToken | { code: string; reason: string } {
    const result = mintGranted(policy, () => this.deps.issuer, request);
    if ('allowed' in result) return { code: result.code, reason: result.reason };
    this.deps.store.record(result.minted);
    return result.minted;
  }

  private record(o: Outcome, tool: string, args: unknown, started: bigint): void {
    const latencyUs = Number(process.hrtime.bigint() - started) / 1000;
    const { metrics } = this.deps;
    metrics.decisions.labels(o.code, o.allowed ? 'allow' : 'deny').inc();
    metrics.decisionLatency.observe(latencyUs / 1e6);
    this.deps.audit.append({
      agent: o.agent,
      tool,
      decision: o.allowed ? 'allow' : 'deny',
      code: o.code,
      tokenId: o.tokenId,
      args,
      latencyUs,
      reason: o.reason,
    });
  }
}
