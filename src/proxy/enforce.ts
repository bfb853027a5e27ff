/**
 * The enforcement path of every `tools/call` (SPEC §6):
 * authenticate → decode and verify the token → policy and constraints → rate limit
 * → audit → forward. Every branch ends in a decision that is audited; any error on
 * the way denies with `internal_error`. Nothing fails open.
 *
 * What the agent gets back keeps two things apart. `DENIED <code>` means the call was
 * not forwarded. Once it was sent, a failure is `UPSTREAM_ERROR <code>` — the call may
 * have run — with the outcome in `_meta["capframe/outcome"]` and an outcome line in the
 * audit log. The `capframe/` keys of a result's `_meta` are the proxy's alone.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

import type { AuditRecord } from '../audit/record.js';
import type { AuditLog } from '../audit/writer.js';
import { DECISION_META_KEY, denial, OUTCOME_META_KEY, TOKEN_META_KEY } from '../mcp/meta.js';
import { isRecord } from '../lib/is-record.js';
import { MAX_PASSED_DEPTH, nestedDeeperThan } from '../lib/json-depth.js';
import { oneLine } from '../lib/one-line.js';
import { truncate } from '../lib/truncate.js';
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
import { argumentProblem } from './check-arguments.js';
import { isValidToolName, isValidToolPattern, MAX_TOOL_NAME_LENGTH } from './tool-name.js';
import { UpstreamCallError, type UpstreamErrorCode } from './upstream-error.js';
import type { UpstreamPool } from './upstreams.js';

/** The tool every agent sees, for getting tokens (SPEC §6). */
export const REQUEST_TOKEN_TOOL = 'capframe.request_token';
// The `_meta` names and the denial live below the proxy (capframeGuard uses them too).
export { DECISION_META_KEY, denial, OUTCOME_META_KEY, TOKEN_META_KEY } from '../mcp/meta.js';
/** The proxy's namespace in a result's `_meta`; an upstream's keys in it are removed (any letter case). */
const PROXY_NAMESPACE = /^capframe\//i;
/**
 * Text only the proxy writes at the start of a result; an upstream's text that starts so
 * is marked as the upstream's — in any letter case and behind spaces or invisible
 * characters (`\u200bDENIED` reads the same), in any text item (the model reads them all).
 */
const PROXY_VERDICT_TEXT = /^[\s\p{Cf}]*(?:DENIED|UPSTREAM_ERROR)\b/iu;
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

/** The decision on one call, as audited. */
interface Verdict {
  allowed: boolean;
  code: DecisionCode;
  reason: string;
  agent: string | null;
  tokenId: string | null;
}

/** `_meta["capframe/decision"]` of an allowed call: which token, under which rule (its line; null for `default_policy: allow`). */
export interface AllowedMeta {
  allowed: true;
  code: 'ok';
  token: string | null;
  rule: number | null;
}

/** What the decision hands to forwarding. */
interface Forward {
  server: string;
  name: string;
  token: string;
  meta: AllowedMeta;
}

/**
 * An allowed call that was sent and did not end with the upstream's result: `isError`,
 * text `UPSTREAM_ERROR <code>: <reason>`, the allowed decision and the outcome in `_meta`.
 */
export function upstreamError(code: UpstreamErrorCode, reason: string, decision: AllowedMeta): CallToolResult {
  return {
    content: [{ type: 'text', text: `UPSTREAM_ERROR ${code}: ${reason}` }],
    isError: true,
    _meta: { [DECISION_META_KEY]: decision, [OUTCOME_META_KEY]: { code, reason } },
  };
}

/** Why an upstream's tools/call result cannot be passed on, or undefined. Cheap: the HTTP path has no schema check before this. */
function resultProblem(result: CallToolResult): string | undefined {
  if (!isRecord(result)) return 'the result is not an object';
  const content: unknown = result.content;
  if (content !== undefined) {
    if (!Array.isArray(content)) return '"content" is not a list';
    for (const item of content) if (!isRecord(item) || typeof item.type !== 'string') return 'a "content" item has no type';
  }
  if (result.isError !== undefined && typeof result.isError !== 'boolean') return '"isError" is not true or false';
  if (result.structuredContent !== undefined && !isRecord(result.structuredContent)) return '"structuredContent" is not an object';
  // JSON.stringify of the answer would overflow the stack (an HTTP 500, or no answer at all on the SDK path).
  if (nestedDeeperThan(result, MAX_PASSED_DEPTH)) return `the result is nested deeper than ${MAX_PASSED_DEPTH} levels`;
  return undefined;
}

/** A text item that starts like a proxy verdict (see PROXY_VERDICT_TEXT). */
function readsLikeVerdict(item: CallToolResult['content'][number]): item is Extract<CallToolResult['content'][number], { type: 'text' }> {
  return item.type === 'text' && typeof item.text === 'string' && PROXY_VERDICT_TEXT.test(item.text);
}

/**
 * The upstream's result as the agent gets it: every `capframe/*` key the upstream put in
 * the result's `_meta` removed and the proxy's decision written there. Only the result's
 * own `_meta` is the proxy's namespace; `_meta` inside content items is the upstream's.
 * A text that reads like a proxy verdict is marked as the upstream's words.
 */
function ownedResult(result: CallToolResult, decision: AllowedMeta): CallToolResult {
  const meta: Record<string, unknown> = {};
  const upstreamMeta: unknown = result._meta;
  if (isRecord(upstreamMeta)) {
    for (const key of Object.keys(upstreamMeta)) {
      if (key !== '__proto__' && !PROXY_NAMESPACE.test(key)) meta[key] = upstreamMeta[key];
    }
  }
  meta[DECISION_META_KEY] = decision;
  const content = result.content ?? [];
  if (content.some(readsLikeVerdict)) {
    return { ...result, content: content.map((item) => (readsLikeVerdict(item) ? { ...item, text: `[upstream] ${item.text}` } : item)), _meta: meta };
  }
  return { ...result, content, _meta: meta };
}

/**
 * The token a call presents: `_meta["capframe/token"]` or the Capframe-Token header, or
 * undefined for none. Refused instead of guessed: a `_meta` token that is not a string
 * (it would otherwise be ignored, and auto_mint would step in), and two different tokens
 * (the header and `_meta` must not name different grants, whichever a layer in between reads).
 */
function presentedToken(meta: unknown, header: string | undefined): string | undefined | { problem: string } {
  const inMeta = isRecord(meta) && Object.hasOwn(meta, TOKEN_META_KEY) ? meta[TOKEN_META_KEY] : undefined;
  if (inMeta !== undefined && typeof inMeta !== 'string') {
    return { problem: `_meta["${TOKEN_META_KEY}"] must be a token string (cf1.…), got ${inMeta === null ? 'null' : Array.isArray(inMeta) ? 'a list' : typeof inMeta}` };
  }
  if (inMeta !== undefined && inMeta !== '' && header !== undefined && header !== '' && inMeta !== header) {
    return { problem: `two different tokens were presented (_meta["${TOKEN_META_KEY}"] and the Capframe-Token header); present one` };
  }
  return inMeta !== undefined && inMeta !== '' ? inMeta : header;
}

export class Enforcer {
  /** Calls decided and not yet answered; SIGTERM waits for them. */
  inFlight = 0;

  constructor(private readonly deps: EnforcerDeps) {}

  /** Decides one `tools/call` and, when allowed, forwards it. Never throws. */
  async callTool(caller: Caller, tool: string, rawArgs: unknown, meta: unknown): Promise<CallToolResult> {
    this.inFlight += 1;
    try {
      const started = process.hrtime.bigint();
      const args = rawArgs ?? {};
      let verdict: Verdict = { allowed: false, code: 'internal_error', reason: 'internal error', agent: null, tokenId: null };
      let forward: Forward;
      let decided: AuditRecord;
      try {
        if (!isValidToolName(tool)) {
          // Before any other work: an unauthenticated caller must not make us log or look up arbitrary text.
          verdict = { ...verdict, code: 'no_rule', reason: `${JSON.stringify(truncate(String(tool), 64))} is not a valid MCP tool name (1 to ${MAX_TOOL_NAME_LENGTH} characters of A-Z a-z 0-9 _ . -)` };
          this.record(verdict, String(tool), args, started);
          return denial(verdict.code, verdict.reason);
        }
        if (tool === REQUEST_TOKEN_TOOL) {
          const issued = this.issue(caller, args);
          verdict = issued.outcome;
          this.record(verdict, tool, args, started);
          return issued.ok
            ? {
                content: [{ type: 'text', text: JSON.stringify(issued.body) }],
                structuredContent: { ...issued.body },
                _meta: { [DECISION_META_KEY]: { allowed: true, code: 'ok', token: null, rule: null } satisfies AllowedMeta },
              }
            : denial(verdict.code, verdict.reason);
        }
        const decision = this.decide(caller, tool, args, meta);
        verdict = decision.outcome;
        // Audit before forwarding: a call we cannot record is a call we do not make.
        decided = this.record(verdict, tool, args, started);
        if (!('forward' in decision)) return denial(verdict.code, verdict.reason);
        forward = decision.forward;
        // The line must be in the kernel before the call leaves: a crash of this process
        // after forwarding cannot lose it. One write for every call of this turn.
        await this.deps.audit.written();
      } catch (error) {
        // Whatever failed — deciding or recording the decision — the call is not forwarded.
        this.deps.log.error('enforcement error', { tool: truncate(String(tool), MAX_TOOL_NAME_LENGTH), error: (error as Error).message });
        const reason = 'internal error; the call was not forwarded';
        try {
          this.record({ ...verdict, allowed: false, code: 'internal_error', reason }, tool, args, started);
        } catch {
          // The audit log itself failed; the denial below still stands.
        }
        return denial('internal_error', reason);
      }
      // From here on the call is on its way: only a call that provably never left may be DENIED.
      return await this.forward(forward, tool, args as Record<string, unknown>, decided);
    } finally {
      this.inFlight -= 1;
    }
  }

  /** Everything before forwarding. Pure decision: no upstream is touched. */
  private decide(caller: Caller, tool: string, args: unknown, meta: unknown) {
    const policy = this.deps.policy();
    const deny = (code: DecisionCode, reason: string, agent: string | null = null, tokenId: string | null = null) => ({
      outcome: { allowed: false, code, reason, agent, tokenId } satisfies Verdict,
    });

    if (caller.auth.kind === 'rejected') return deny('agent_unknown', caller.auth.reason);
    const agent = caller.auth.kind === 'agent' ? caller.auth.agent : undefined;
    if (!isRecord(args)) return deny('constraint_failed', 'tool arguments must be a JSON object', agent ?? null);
    // The upstream gets JSON.stringify of exactly this object: it must say exactly what was checked.
    const problem = argumentProblem(args);
    if (problem !== undefined) return deny('constraint_failed', problem, agent ?? null);

    const presented = presentedToken(meta, caller.headerToken);
    if (typeof presented === 'object') return deny('malformed_token', presented.problem, agent ?? null);
    let token = presented;
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
    if (status.state === 'withheld') return deny('denied_by_rule', status.reason, who ?? null, tokenId);
    if (status.state === 'unavailable') return deny('upstream_unavailable', status.reason, who ?? null, tokenId);
    if (status.state === 'unknown') return deny('no_rule', status.reason, who ?? null, tokenId);

    const limit = decision.rule?.rateLimit;
    if (limit !== undefined && !this.deps.limiter.take(`${who ?? tokenId}\u0000${decision.rule!.line}`, limit)) {
      return deny('rate_limited', `more than ${limit.calls} calls in ${limit.per}s under the rule at line ${decision.rule!.line}`, who ?? null, tokenId);
    }
    return {
      outcome: { allowed: true, code: 'ok', reason: `allowed by ${decision.rule ? `the rule at line ${decision.rule.line}` : 'default_policy: allow'}`, agent: who ?? null, tokenId } satisfies Verdict,
      forward: { server: status.server, name: status.name, token, meta: { allowed: true, code: 'ok', token: tokenId, rule: decision.rule?.line ?? null } } satisfies Forward,
    };
  }

  /**
   * Sends an allowed call and returns what the agent gets: the upstream's result under the
   * proxy's `_meta`, an UPSTREAM_ERROR when the sent call failed, or DENIED
   * upstream_unavailable when it could not be sent. Never throws.
   */
  private async forward(f: Forward, tool: string, args: Record<string, unknown>, decided: AuditRecord): Promise<CallToolResult> {
    const started = performance.now();
    let result: CallToolResult;
    try {
      // The upstream receives the token too, so a guarded server can verify it itself.
      result = await this.deps.upstreams.call(f.server, f.name, args, { [TOKEN_META_KEY]: f.token });
    } catch (error) {
      const failure = error instanceof UpstreamCallError ? error : new UpstreamCallError((error as Error).message, 'upstream_error');
      return this.failed(f, tool, decided, failure, started);
    } finally {
      this.deps.metrics.upstreamCall.labels(f.server).observe((performance.now() - started) / 1000);
    }
    try {
      const problem = resultProblem(result);
      if (problem === undefined) return ownedResult(result, f.meta);
      return this.failed(f, tool, decided, new UpstreamCallError(problem, 'malformed_result'), started);
    } catch (error) {
      return this.failed(f, tool, decided, new UpstreamCallError(`the result could not be read: ${(error as Error).message}`, 'malformed_result'), started);
    }
  }

  /** The answer for a call that did not end with the upstream's result, with its outcome audited. */
  private failed(f: Forward, tool: string, decided: AuditRecord, failure: UpstreamCallError, started: number): CallToolResult {
    const upstream = `upstream "${f.server}"`;
    // The upstream's own words (its error message, a schema complaint) quoted on one line of ours.
    const detail = truncate(oneLine(failure.message), 300);
    const code = failure.code === 'not_sent' ? 'upstream_unavailable' : failure.code;
    let reason: string;
    switch (failure.code) {
      case 'not_sent':
        reason = `${upstream} is unavailable (${detail}); the call was not forwarded`;
        break;
      case 'upstream_error':
        reason = `${upstream} answered with an error: ${detail}; the call was sent and may have run`;
        break;
      case 'upstream_timeout':
        reason = `${upstream} did not answer in time (${detail}); the call was sent and may have run`;
        break;
      case 'upstream_disconnected':
        reason = `the connection to ${upstream} was lost (${detail}); the call was sent and may have run`;
        break;
      case 'result_too_large':
        reason = `the answer of ${upstream} was refused: ${detail}; the call was sent and may have run`;
        break;
      case 'malformed_result':
        reason = `the answer of ${upstream} is malformed: ${detail}; the call was sent and may have run`;
        break;
    }
    this.deps.log.warn('upstream call failed', { tool, code, error: detail });
    this.deps.metrics.upstreamFailures.labels(f.server, code).inc();
    try {
      this.deps.audit.append({
        agent: decided.agent,
        tool,
        decision: 'outcome',
        ofSeq: decided.seq,
        code,
        tokenId: decided.token_id,
        argsSha256: decided.args_sha256,
        latencyUs: (performance.now() - started) * 1000,
        reason,
      });
    } catch (error) {
      // The call has happened (or not) whatever the log says; the answer must still be honest.
      this.deps.log.error('audit log failed to record a call outcome', { tool, code, error: (error as Error).message });
    }
    return failure.code === 'not_sent' ? denial('upstream_unavailable', reason) : upstreamError(failure.code, reason, f.meta);
  }

  /**
   * Issues a token to the caller: `capframe.request_token {tool, capability?, ttl?}` and
   * `POST /v1/tokens`. The caller audits the outcome.
   */
  issue(caller: Caller, args: unknown): { ok: true; body: IssuedToken; outcome: Verdict } | { ok: false; outcome: Verdict } {
    const fail = (code: DecisionCode, reason: string, agent: string | null = null) => ({
      ok: false as const,
      outcome: { allowed: false, code, reason, agent, tokenId: null } satisfies Verdict,
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
    if (!isValidToolPattern(args.tool)) {
      // Before minting: such a token could never match a call; a long name made a ledger line of its size, or an internal_error beyond 8 KiB.
      return fail('malformed_token', `${JSON.stringify(truncate(args.tool, 64))} is not a tool name or pattern (1 to ${MAX_TOOL_NAME_LENGTH} characters of A-Z a-z 0-9 _ . - *)`, agent ?? null);
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

  private record(o: Verdict, tool: string, args: unknown, started: bigint): AuditRecord {
    const latencyUs = Number(process.hrtime.bigint() - started) / 1000;
    const { metrics } = this.deps;
    metrics.decisions.labels(o.code, o.allowed ? 'allow' : 'deny').inc();
    metrics.decisionLatency.observe(latencyUs / 1e6);
    return this.deps.audit.append({
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
