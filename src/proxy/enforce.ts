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
import type { AuditLog, AuditVia } from '../audit/writer.js';
import { DECISION_META_KEY, denial, OUTCOME_META_KEY, PROOF_HEADER, PROOF_META_KEY, REQUEST_TOKEN_TOOL, TOKEN_HEADER, TOKEN_META_KEY } from '../mcp/meta.js';
import { isRecord } from '../lib/is-record.js';
import { MAX_PASSED_DEPTH, nestedDeeperThan } from '../lib/json-depth.js';
import { oneLine } from '../lib/one-line.js';
import { truncate } from '../lib/truncate.js';
import { parseHolderKey, type SigningKey } from '../keys/keys.js';
import { isResourcePattern } from '../policy/resource-name.js';
import type { Policy } from '../policy/types.js';
import type { RateLimiter, Store } from '../store/types.js';
import { tokenId as tokenIdOf } from '../token/claims.js';
import type { MintedToken } from '../token/mint.js';
import { mintGranted, type GrantRequest } from '../token/mint-granted.js';
import type { DecisionCode } from '../verify/decision.js';
import { chainCapability } from '../verify/token-facts.js';
import type { Verifier } from '../verify/verifier.js';
import { validTraceparent, type CallSpan, type CallTracing } from '../telemetry/tracing.js';
import type { AuthResult } from './auth.js';
import type { CallContext } from './call-context.js';
import type { Logger } from './log.js';
import type { CapframeMetrics } from './metrics.js';
import { argumentProblem } from './check-arguments.js';
import { isValidToolName, isValidToolPattern, MAX_TOOL_NAME_LENGTH } from './tool-name.js';
import { UpstreamCallError, type UpstreamErrorCode } from './upstream-error.js';
import type { UpstreamPool } from './upstreams.js';

// The `_meta` names and the denial live below the proxy (capframeGuard uses them too).
export { DECISION_META_KEY, denial, OUTCOME_META_KEY, PROOF_META_KEY, REQUEST_TOKEN_TOOL, TOKEN_META_KEY } from '../mcp/meta.js';
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
  /** A holder proof from the `Capframe-Proof` header, if the transport has headers. */
  headerProof?: string;
  /** The W3C `traceparent` header of the request, if any (`params._meta.traceparent` wins). */
  traceparent?: string;
}

/** The caller of a request with these headers (HTTP only has them): its auth and any Capframe-Token and Capframe-Proof headers. */
export function callerWith(auth: AuthResult, headers?: Record<string, string | string[] | undefined>): Caller {
  const first = (name: string) => {
    const header = headers?.[name];
    return Array.isArray(header) ? header[0] : header;
  };
  const headerToken = first(TOKEN_HEADER);
  const headerProof = first(PROOF_HEADER);
  const traceparent = validTraceparent(headers?.traceparent);
  return { auth, ...(headerToken !== undefined && { headerToken }), ...(headerProof !== undefined && { headerProof }), ...(traceparent !== undefined && { traceparent }) };
}

export interface EnforcerDeps {
  policy: () => Policy;
  verifier: Verifier;
  issuer: SigningKey;
  /** Where minted tokens are recorded (the ledger). */
  store: Pick<Store, 'record'>;
  upstreams: UpstreamPool;
  audit: AuditLog;
  metrics: CapframeMetrics;
  /** Rate-limit windows: in memory (embedded store) or shared by the fleet (Redis). */
  limiter: RateLimiter;
  log: Logger;
  /** A span per tools/call when an OTLP endpoint is configured; undefined costs nothing. */
  tracing?: CallTracing;
}

export interface IssuedToken {
  token: string;
  id: string;
  tool: string;
  expires_at: string;
  /** The holder key (hex) the token is bound to, when `holder_key` was given. */
  holder_key?: string;
}

/** The decision on one call, as audited. */
export interface Verdict {
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

/**
 * A question from a decision client (the AuthZEN PDP): may this call be made? Decided by
 * the same path as a proxied call, audited with `via`, and never forwarded.
 */
export interface CallQuestion {
  /**
   * Who the decision is for: the subject's agent when the policy defines agents (an
   * unknown one is `rejected`), else `open` (the token alone authorizes, as in the proxy).
   */
  auth: AuthResult;
  /** The subject named by the question: whom the policy alone decides for when no token is presented. */
  subject: string;
  /** `<server>.<tool>`; null only with `refused` (the question named no tool). */
  tool: string | null;
  args: unknown;
  /** The capability token presented with the call; without one the policy alone decides, as `capframe policy test` does. */
  token?: string;
  /** The holder proof presented with the token. */
  proof?: string;
  /** Written to the audit line: which front end asked. */
  via: AuditVia;
  /** Set when the front end could not map the question onto a tool call: denied as given, and audited. */
  refused?: { code: DecisionCode; reason: string };
}

/** The answer to a CallQuestion, as audited. */
export interface CallDecision {
  allowed: boolean;
  code: DecisionCode;
  reason: string;
  /** The agent the decision was for (audited), or null. */
  agent: string | null;
  /** `tok_…` of the presented token, or null. */
  tokenId: string | null;
  /** `seq` of the audit line, or null when even the audit log failed (then the answer is a denial). */
  seq: number | null;
}

/** A verified token as the policy step sees it: what it grants, and the proof nonce still to claim. */
interface PresentedToken {
  text: string;
  tool: string;
  /** The chain's capability (a delegated token's is its root's). */
  cap?: string;
  /** The holder proof it came with, forwarded with it. */
  proof?: string;
  /** Claims the proof's nonce (a no-op decision for tokens without one). */
  claim(): Promise<{ allowed: boolean; code: DecisionCode; reason: string }>;
  /** Added to the reason of an allowed call: which delegation chain allowed it. */
  note: string;
}

/** How a decision is asked for: a proxied call (forwarded when allowed), or a decision client's question. */
interface DecideMode {
  /** Set for a decision client (AuthZEN): no auto-mint, no token → the policy alone for this subject. */
  subject?: string;
}

/** What the decision hands to forwarding. */
export interface Forward {
  server: string;
  name: string;
  token: string;
  /** The holder proof the call carried, passed on so a guarded upstream can check it too. */
  proof?: string;
  meta: AllowedMeta;
  /** W3C trace context for the upstream: the call's span, or the caller's own when tracing is off. */
  traceparent?: string;
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
 * An upstream's `_meta` as a client gets it: every `capframe/*` key (any letter case)
 * removed, then `own` written. The proxy's namespace is the top-level `_meta` of what it
 * passes on (results, relayed requests and notifications); `_meta` inside content items
 * is the upstream's.
 *
 * @example
 * ownedMeta({ 'capframe/decision': { allowed: true }, trace: 'x' }, {}); // { trace: 'x' }
 */
export function ownedMeta(upstreamMeta: unknown, own: Record<string, unknown>): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  if (isRecord(upstreamMeta)) {
    for (const key of Object.keys(upstreamMeta)) {
      if (key !== '__proto__' && !PROXY_NAMESPACE.test(key)) meta[key] = upstreamMeta[key];
    }
  }
  return Object.assign(meta, own);
}

/**
 * The upstream's result as the agent gets it: every `capframe/*` key the upstream put in
 * the result's `_meta` removed and the proxy's decision written there. Only the result's
 * own `_meta` is the proxy's namespace; `_meta` inside content items is the upstream's.
 * A text that reads like a proxy verdict is marked as the upstream's words.
 */
function ownedResult(result: CallToolResult, decision: AllowedMeta): CallToolResult {
  const meta = ownedMeta(result._meta, { [DECISION_META_KEY]: decision });
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

  /**
   * Decides one `tools/call` and, when allowed, forwards it. Never throws. `ctx` relays
   * what the upstream says about the call back to the calling session and carries its
   * cancellation (see src/proxy/call-context.ts).
   */
  async callTool(caller: Caller, tool: string, rawArgs: unknown, meta: unknown, ctx?: CallContext): Promise<CallToolResult> {
    const parent = (isRecord(meta) ? validTraceparent(meta.traceparent) : undefined) ?? caller.traceparent;
    const tracing = this.deps.tracing;
    if (tracing === undefined) return this.enforceCall(caller, tool, rawArgs, meta, parent, undefined, ctx);
    let span: CallSpan | undefined;
    try {
      span = tracing.start(String(tool), parent);
    } catch (error) {
      this.deps.log.warn('tracing failed to start a span', { error: (error as Error).message });
    }
    const result = await this.enforceCall(caller, tool, rawArgs, meta, span?.traceparent ?? parent, span, ctx);
    try {
      const decision = result._meta?.[DECISION_META_KEY] as { allowed?: boolean; token?: unknown } | undefined;
      const outcome = result._meta?.[OUTCOME_META_KEY] as { code?: string } | undefined;
      // An allowed call with a token was forwarded (capframe.request_token is answered here).
      const forwarded = decision?.allowed === true && decision.token !== null;
      span?.end(forwarded ? { code: outcome?.code ?? 'ok', server: String(tool).slice(0, String(tool).indexOf('.')) } : { code: 'not_forwarded' });
    } catch (error) {
      this.deps.log.warn('tracing failed to end a span', { error: (error as Error).message });
    }
    return result;
  }

  /** callTool's work; `traceparent` goes upstream, `span` hears the decision. */
  private async enforceCall(caller: Caller, tool: string, rawArgs: unknown, meta: unknown, traceparent: string | undefined, span: CallSpan | undefined, ctx: CallContext | undefined): Promise<CallToolResult> {
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
          span?.decided(verdict);
          return denial(verdict.code, verdict.reason);
        }
        if (tool === REQUEST_TOKEN_TOOL) {
          const issued = await this.issue(caller, args);
          verdict = issued.outcome;
          this.record(verdict, tool, args, started);
          span?.decided(verdict);
          return issued.ok
            ? {
                content: [{ type: 'text', text: JSON.stringify(issued.body) }],
                structuredContent: { ...issued.body },
                _meta: { [DECISION_META_KEY]: { allowed: true, code: 'ok', token: null, rule: null } satisfies AllowedMeta },
              }
            : denial(verdict.code, verdict.reason);
        }
        const decision = await this.decide(caller, tool, args, meta);
        verdict = decision.outcome;
        // Audit before forwarding: a call we cannot record is a call we do not make.
        decided = this.record(verdict, tool, args, started);
        span?.decided(verdict);
        if (!verdict.allowed || decision.forward === undefined) return denial(verdict.allowed ? 'internal_error' : verdict.code, verdict.allowed ? 'internal error; the call was not forwarded' : verdict.reason);
        forward = traceparent === undefined ? decision.forward : { ...decision.forward, traceparent };
        // The line must be in the kernel before the call leaves: a crash of this process
        // after forwarding cannot lose it. One write for every call of this turn.
        await this.deps.audit.written();
      } catch (error) {
        // Whatever failed — deciding or recording the decision — the call is not forwarded.
        this.deps.log.error('enforcement error', { tool: truncate(String(tool), MAX_TOOL_NAME_LENGTH), error: (error as Error).message });
        const reason = 'internal error; the call was not forwarded';
        try {
          this.record({ ...verdict, allowed: false, code: 'internal_error', reason }, tool, args, started);
          span?.decided({ ...verdict, allowed: false, code: 'internal_error' });
        } catch {
          // The audit log itself failed; the denial below still stands.
        }
        return denial('internal_error', reason);
      }
      // From here on the call is on its way: only a call that provably never left may be DENIED.
      return await this.forward(forward, tool, args as Record<string, unknown>, decided, ctx);
    } finally {
      this.inFlight -= 1;
    }
  }

  /**
   * Decides one call without forwarding it, for decision clients (the AuthZEN PDP): the
   * same checks, codes and audit line as a proxied call, with `via` on the line. With no
   * token the policy alone decides for `question.subject` (no auto-mint). An evaluation
   * stands for one call: it takes a rate-limit slot like the call would. Never throws;
   * any failure is an audited `internal_error` denial.
   *
   * @example
   * const d = await enforcer.decideCall({ auth: { kind: 'agent', agent: 'support-bot' }, subject: 'support-bot',
   *   tool: 'database.query', args: { sql: 'SELECT 1' }, token, via: 'authzen' });
   * d.allowed; // true → the PEP may make the call
   */
  async decideCall(question: CallQuestion): Promise<CallDecision> {
    const started = process.hrtime.bigint();
    const { tool, via } = question;
    const args = question.args ?? {};
    let verdict: Verdict = { allowed: false, code: 'internal_error', reason: 'internal error', agent: null, tokenId: null };
    try {
      if (question.refused !== undefined || tool === null) {
        const refused = question.refused ?? { code: 'no_rule', reason: 'the question names no tool' };
        verdict = { allowed: false, code: refused.code, reason: refused.reason, agent: question.subject, tokenId: null };
      } else if (!isValidToolName(tool)) {
        verdict = { ...verdict, code: 'no_rule', reason: `${JSON.stringify(truncate(String(tool), 64))} is not a valid MCP tool name (1 to ${MAX_TOOL_NAME_LENGTH} characters of A-Z a-z 0-9 _ . -)` };
      } else {
        const meta = { [TOKEN_META_KEY]: question.token, [PROOF_META_KEY]: question.proof };
        verdict = (await this.decide({ auth: question.auth }, tool, args, meta, { subject: question.subject })).outcome;
      }
      const line = this.record(verdict, tool, args, started, via);
      return { ...verdict, seq: line.seq };
    } catch (error) {
      this.deps.log.error('decision error', { tool: tool === null ? null : truncate(String(tool), MAX_TOOL_NAME_LENGTH), via, error: (error as Error).message });
      const denied: Verdict = { ...verdict, allowed: false, code: 'internal_error', reason: 'internal error; the call must not be made' };
      let seq: number | null = null;
      try {
        seq = this.record(denied, tool, args, started, via).seq;
      } catch {
        // The audit log itself failed; the denial still stands.
      }
      return { ...denied, seq };
    }
  }

  /**
   * The decision path of a call without the call: authenticate, verify the token (or
   * auto_mint one), the policy and its constraints, the upstream's state, the rate limit,
   * then the audit line. For names that are not tools: a resource read decides
   * `<server>:<uri>` with args `{uri}` exactly as a call is decided, by the resource rules
   * (`Policy.decide` hands resource names to them). Returns the audited verdict and, when
   * allowed, what to forward; the caller forwards, and records an outcome line
   * ({@link recordOutcome}) for a forwarded request that did not end with its answer.
   * Never throws: a failure on the way denies with `internal_error`.
   */
  async authorize(caller: Caller, name: string, args: unknown, meta: unknown): Promise<{ verdict: Verdict; decided?: AuditRecord; forward?: Forward }> {
    const started = process.hrtime.bigint();
    let verdict: Verdict = { allowed: false, code: 'internal_error', reason: 'internal error', agent: null, tokenId: null };
    try {
      const decision = await this.decide(caller, name, args, meta);
      verdict = decision.outcome;
      const decided = this.record(verdict, name, args, started);
      if (decision.forward === undefined) return { verdict, decided };
      // As for a call: the line is in the kernel before the request leaves.
      await this.deps.audit.written();
      return { verdict, decided, forward: decision.forward };
    } catch (error) {
      this.deps.log.error('enforcement error', { name: truncate(String(name), 200), error: (error as Error).message });
      verdict = { ...verdict, allowed: false, code: 'internal_error', reason: 'internal error; the request was not forwarded' };
      try {
        this.record(verdict, name, args, started);
      } catch {
        // The audit log itself failed; the denial stands.
      }
      return { verdict };
    }
  }

  /**
   * The decision on a `prompts/get` of `qualified` (`<server>.<prompt>`) with `args`, by
   * the prompt rules for the authenticated caller (prompts use no tokens), the prompt's
   * state upstream and the rule's rate limit; audited. Never throws.
   */
  async authorizePrompt(caller: Caller, qualified: string, args: unknown): Promise<{ verdict: Verdict; decided?: AuditRecord; rule?: number | null }> {
    const started = process.hrtime.bigint();
    const agent = caller.auth.kind === 'agent' ? caller.auth.agent : null;
    let verdict: Verdict = { allowed: false, code: 'internal_error', reason: 'internal error; the prompt was not requested', agent, tokenId: null };
    let rule: number | null = null;
    try {
      ({ verdict, rule } = await this.decidePrompt(caller, qualified, args));
      const decided = this.record(verdict, qualified, args, started);
      // As for a call: the line is in the kernel before the get leaves.
      if (verdict.allowed) await this.deps.audit.written();
      return { verdict, decided, rule };
    } catch (error) {
      this.deps.log.error('enforcement error', { prompt: truncate(qualified, 200), error: (error as Error).message });
      verdict = { ...verdict, allowed: false, code: 'internal_error', reason: 'internal error; the prompt was not requested' };
      try {
        this.record(verdict, qualified, args, started);
      } catch {
        // The audit log itself failed; the denial stands.
      }
      return { verdict };
    }
  }

  private async decidePrompt(caller: Caller, qualified: string, args: unknown): Promise<{ verdict: Verdict; rule: number | null }> {
    const deny = (code: DecisionCode, reason: string, agent: string | null = null) => ({
      verdict: { allowed: false, code, reason: `prompt: ${reason}`, agent, tokenId: null } satisfies Verdict,
      rule: null,
    });
    if (caller.auth.kind === 'rejected') return deny('agent_unknown', caller.auth.reason);
    const agent = caller.auth.kind === 'agent' ? caller.auth.agent : undefined;
    if (!isRecord(args)) return deny('constraint_failed', 'prompt arguments must be a JSON object', agent ?? null);
    const problem = argumentProblem(args);
    if (problem !== undefined) return deny('constraint_failed', problem, agent ?? null);
    const decision = this.deps.policy().prompts.decide({ ...(agent !== undefined && { agent }), tool: qualified, args });
    if (!decision.allowed) return deny(decision.code as DecisionCode, decision.reason, agent ?? null);
    const limit = decision.rule?.rateLimit;
    // The limiter may be shared (Redis): its answer is awaited, and a failure to get one throws (denied above).
    if (limit !== undefined && !(await this.deps.limiter.take(`${agent ?? '(anonymous)'}\u0000${decision.rule!.line}`, limit))) {
      return deny('rate_limited', `more than ${limit.calls} requests in ${limit.per}s under the rule at line ${decision.rule!.line}`, agent ?? null);
    }
    return {
      verdict: { allowed: true, code: 'ok', reason: `prompt: allowed by the rule at line ${decision.rule!.line}`, agent: agent ?? null, tokenId: null },
      rule: decision.rule!.line,
    };
  }

  /**
   * Everything before forwarding. Pure decision: no upstream is touched. With
   * `mode.subject` (a decision client) nothing is auto-minted and a call without a token
   * is decided by the policy alone for that subject.
   *
   * A holder-bound or delegated token is verified with its proof and whole chain; with
   * agents, the authenticated agent must hold the presented token's holder key
   * (`agents.<name>.holder_keys`), and a token that is not delegated must also have been
   * issued to it (`sub`). The policy then decides the call for the authenticated agent,
   * so a delegated token never grants more than the policy grants that agent. The
   * proof's nonce is claimed last, once nothing else denies the call: a call denied for
   * any other reason never burns it.
   */
  private async decide(caller: Caller, tool: string, args: unknown, meta: unknown, mode: DecideMode = {}): Promise<{ outcome: Verdict; forward?: Forward }> {
    const policy = this.deps.policy();
    const deny = (code: DecisionCode, reason: string, agent: string | null = null, tokenId: string | null = null) => ({
      outcome: { allowed: false, code, reason, agent, tokenId } satisfies Verdict,
    });

    if (caller.auth.kind === 'rejected') return deny('agent_unknown', caller.auth.reason, mode.subject ?? null);
    const agent = caller.auth.kind === 'agent' ? caller.auth.agent : undefined;
    if (!isRecord(args)) return deny('constraint_failed', 'tool arguments must be a JSON object', agent ?? null);
    // The upstream gets JSON.stringify of exactly this object: it must say exactly what was checked.
    const problem = argumentProblem(args);
    if (problem !== undefined) return deny('constraint_failed', problem, agent ?? null);

    const metaProof = isRecord(meta) ? meta[PROOF_META_KEY] : undefined;
    if (metaProof !== undefined && typeof metaProof !== 'string') {
      return deny('bad_proof', `_meta["${PROOF_META_KEY}"] must be a cfp1. proof string`, agent ?? null);
    }
    if (metaProof !== undefined && caller.headerProof !== undefined && metaProof !== caller.headerProof) {
      // As for tokens: two different proofs leave it unclear which one is meant; none is guessed.
      return deny('bad_proof', `two different proofs were presented (_meta["${PROOF_META_KEY}"] and the Capframe-Proof header)`, agent ?? null);
    }
    const proof = metaProof ?? caller.headerProof;

    const presented = presentedToken(meta, caller.headerToken);
    if (typeof presented === 'object') return deny('malformed_token', presented.problem, agent ?? null);
    let token = presented;
    if (token === undefined || token === '') {
      // A decision client asking without a token: the policy alone, as `capframe policy test` decides.
      if (mode.subject !== undefined) return await this.conclude(policy, tool, args, agent ?? mode.subject, null, undefined, mode);
      const autoMint = agent !== undefined && (policy.agents[agent]?.autoMint ?? policy.autoMint);
      if (!autoMint) return deny('missing_token', `no capability token was presented for ${tool}`, agent ?? null);
      const minted = await this.mintFor(policy, { tool, agent, ttl: AUTO_MINT_TTL });
      if ('code' in minted) return deny(minted.code as DecisionCode, minted.reason, agent);
      token = minted.token;
    }

    // The proof is checked against exactly the arguments that will be forwarded.
    const staged = this.deps.verifier.verifyStaged(token, { tool, args, ...(proof !== undefined && { proof }) });
    const verified = staged.decision;
    const tokenId = verified.tokenId ?? null;
    if (!verified.allowed) return deny(verified.code, verified.reason, agent ?? null, tokenId);
    const claims = verified.claims!;
    const chain = verified.chain!;
    const root = chain.at(-1)!;
    const depth = chain.length - 1;
    // The verifier accepts any depth up to the format's limit; the policy's, read per call, follows reloads.
    if (depth > policy.maxDelegationDepth) {
      return deny('delegation_invalid', `delegation chain of token ${tokenId} is ${depth} deep; this policy accepts at most ${policy.maxDelegationDepth} (max_delegation_depth)`, agent ?? null, tokenId);
    }
    if (agent !== undefined) {
      // A delegated token's sub is the delegator's word, not the issuer's: only its holder key counts.
      if (depth === 0 && claims.sub !== agent) {
        return deny('agent_not_allowed', `token ${tokenId} was issued to ${claims.sub === undefined ? 'no agent' : `"${claims.sub}"`}, not "${agent}"`, agent, tokenId);
      }
      if (verified.holderKey !== undefined) {
        const holder = Buffer.from(verified.holderKey).toString('hex');
        if (!policy.agents[agent]?.holderKeys.includes(holder)) {
          return deny('agent_not_allowed', `token ${tokenId} is bound to holder key ${holder}, which is not one of agent "${agent}"'s holder_keys`, agent, tokenId);
        }
      }
    }

    // Without agents, the root's sub is the issuer's word; a delegated link's is not.
    const who = agent ?? root.sub;
    const capability = chainCapability(chain);
    const checked: PresentedToken = {
      text: token,
      tool: claims.tool,
      ...(capability !== undefined && { cap: capability }),
      ...(proof !== undefined && { proof }),
      claim: () => staged.claim(),
      note: depth > 0 ? ` (delegated token, depth ${depth}, root ${tokenIdOf(root.cti)})` : '',
    };
    return await this.conclude(policy, tool, args, who, tokenId, checked, mode);
  }

  /**
   * The policy's verdict on a call whose caller and token (if any) passed, then the
   * upstream's state and the rate limit. For a decision client the upstream checks apply
   * only to tools of this proxy's own `servers`: a PEP may guard tools capframe does not proxy.
   */
  private async conclude(
    policy: Policy,
    tool: string,
    args: Record<string, unknown>,
    who: string | undefined,
    tokenId: string | null,
    token: PresentedToken | undefined,
    mode: DecideMode,
  ): Promise<{ outcome: Verdict; forward?: Forward }> {
    const deny = (code: DecisionCode, reason: string) => ({ outcome: { allowed: false, code, reason, agent: who ?? null, tokenId } satisfies Verdict });
    const decision = policy.decide({
      ...(who !== undefined && { agent: who }),
      tool,
      args,
      ...(token !== undefined && { token: { tool: token.tool, ...(token.cap !== undefined && { cap: token.cap }) } }),
    });
    if (!decision.allowed) return deny(decision.code as DecisionCode, decision.reason);

    const proxied = mode.subject === undefined || Object.hasOwn(policy.servers, tool.slice(0, Math.max(0, tool.indexOf('.'))));
    const status = proxied ? this.deps.upstreams.lookup(tool) : undefined;
    if (status !== undefined) {
      if (status.state === 'changed') return deny('tool_changed', status.reason);
      if (status.state === 'withheld') return deny('denied_by_rule', status.reason);
      if (status.state === 'unavailable') return deny('upstream_unavailable', status.reason);
      if (status.state === 'unknown') return deny('no_rule', status.reason);
    }

    // Before the rate limit: a replayed proof must not spend the holder's calls.
    if (token !== undefined) {
      const claimed = await token.claim();
      if (!claimed.allowed) return deny(claimed.code, claimed.reason);
    }

    const limit = decision.rule?.rateLimit;
    const taken = limit === undefined ? true : this.deps.limiter.take(`${who ?? tokenId}\u0000${decision.rule!.line}`, limit);
    if (limit !== undefined && !(typeof taken === 'boolean' ? taken : await taken)) {
      return deny('rate_limited', `more than ${limit.calls} calls in ${limit.per}s under the rule at line ${decision.rule!.line}`);
    }
    const outcome = { allowed: true, code: 'ok', reason: `allowed by ${decision.rule ? `the rule at line ${decision.rule.line}` : 'default_policy: allow'}${token?.note ?? ''}`, agent: who ?? null, tokenId } satisfies Verdict;
    if (status === undefined || status.state !== 'ok' || token === undefined) return { outcome };
    return {
      outcome,
      forward: {
        server: status.server,
        name: status.name,
        token: token.text,
        ...(token.proof !== undefined && { proof: token.proof }),
        meta: { allowed: true, code: 'ok', token: tokenId, rule: decision.rule?.line ?? null },
      },
    };
  }

  /**
   * Sends an allowed call and returns what the agent gets: the upstream's result under the
   * proxy's `_meta`, an UPSTREAM_ERROR when the sent call failed, or DENIED
   * upstream_unavailable when it could not be sent. Never throws.
   */
  private async forward(f: Forward, tool: string, args: Record<string, unknown>, decided: AuditRecord, ctx?: CallContext): Promise<CallToolResult> {
    const started = performance.now();
    let result: CallToolResult;
    try {
      // The upstream receives the token (and proof) too, so a guarded server can verify them itself.
      const meta: Record<string, unknown> = { [TOKEN_META_KEY]: f.token };
      if (f.proof !== undefined) meta[PROOF_META_KEY] = f.proof;
      if (f.traceparent !== undefined) meta.traceparent = f.traceparent;
      result = await this.deps.upstreams.call(f.server, f.name, args, meta, ctx);
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
      case 'cancelled':
        reason = `the client cancelled the call after it was sent to ${upstream}; it may have run`;
        break;
    }
    this.deps.log.warn('upstream call failed', { tool, code, error: detail });
    this.deps.metrics.upstreamFailures.labels(f.server, code).inc();
    this.recordOutcome(decided, code, reason, started);
    return failure.code === 'not_sent' ? denial('upstream_unavailable', reason) : upstreamError(failure.code, reason, f.meta);
  }

  /**
   * The outcome line of a forwarded request that did not end with its answer, after its
   * decision line `decided`. Never throws: the request happened (or not) whatever the log
   * says, and the answer to the client must still be honest.
   */
  recordOutcome(decided: AuditRecord, code: string, reason: string, startedMs: number): void {
    try {
      this.deps.audit.append({
        agent: decided.agent,
        tool: decided.tool,
        decision: 'outcome',
        ofSeq: decided.seq,
        code,
        tokenId: decided.token_id,
        argsSha256: decided.args_sha256,
        latencyUs: (performance.now() - startedMs) * 1000,
        reason,
      });
    } catch (error) {
      this.deps.log.error('audit log failed to record an outcome', { tool: decided.tool, code, error: (error as Error).message });
    }
  }

  /**
   * Issues a token to the caller: `capframe.request_token {tool, capability?, ttl?, holder_key?}`
   * and `POST /v1/tokens`. With `holder_key` (one of the agent's `holder_keys`) the token is
   * bound to it: every call then needs a proof by that key. The caller audits the outcome.
   */
  async issue(caller: Caller, args: unknown): Promise<{ ok: true; body: IssuedToken; outcome: Verdict } | { ok: false; outcome: Verdict }> {
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
    const policy = this.deps.policy();
    if (!isRecord(args) || typeof args.tool !== 'string' || args.tool === '') {
      return fail('malformed_token', `${REQUEST_TOKEN_TOOL} needs {tool: string, capability?: string, ttl?: seconds, holder_key?: public key}`, agent ?? null);
    }
    if (!isValidToolPattern(args.tool) && !isResourcePattern(args.tool)) {
      // Before minting: such a token could never match a call; a long name made a ledger line of its size, or an internal_error beyond 8 KiB.
      return fail(
        'malformed_token',
        `${JSON.stringify(truncate(args.tool, 64))} is not a tool name or pattern (1 to ${MAX_TOOL_NAME_LENGTH} characters of A-Z a-z 0-9 _ . - *) nor a resource pattern ("<server>:<uri pattern>")`,
        agent ?? null,
      );
    }
    let holderKey: Uint8Array | undefined;
    if (args.holder_key !== undefined) {
      // Strict: a token bound to a key nobody can sign with would be useless, and one bound
      // to a key the agent does not hold would be refused on every call.
      if (typeof args.holder_key !== 'string') {
        return fail('malformed_token', 'holder_key must be the hex or base64url Ed25519 public key printed by `capframe keys generate --holder`', agent);
      }
      try {
        holderKey = parseHolderKey(args.holder_key);
      } catch (error) {
        return fail('malformed_token', `holder_key is not usable: ${(error as Error).message}`, agent);
      }
      const hex = Buffer.from(holderKey).toString('hex');
      if (!policy.agents[agent]?.holderKeys.includes(hex)) {
        return fail('agent_not_allowed', `holder_key ${hex} is not one of agent "${agent}"'s holder_keys; the operator adds it under agents.${agent}.holder_keys`, agent);
      }
    }
    const ttl = args.ttl;
    if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isSafeInteger(ttl) || ttl <= 0)) {
      return fail('malformed_token', 'ttl must be a positive whole number of seconds', agent ?? null);
    }
    if (args.capability !== undefined && typeof args.capability !== 'string') {
      return fail('malformed_token', 'capability must be a string', agent ?? null);
    }
    const minted = await this.mintFor(policy, {
      tool: args.tool,
      agent,
      ...(ttl !== undefined && { ttl: ttl as number }),
      ...(args.capability !== undefined && { capability: args.capability as string }),
      ...(holderKey !== undefined && { holderKey }),
    });
    if ('code' in minted) return fail(minted.code as DecisionCode, minted.reason, agent ?? null);
    return {
      ok: true,
      body: {
        token: minted.token,
        id: minted.id,
        tool: minted.claims.tool,
        expires_at: minted.expiresAt.toISOString(),
        ...(holderKey !== undefined && { holder_key: Buffer.from(holderKey).toString('hex') }),
      },
      outcome: { allowed: true, code: 'ok', reason: `issued ${minted.id} for ${minted.claims.tool}${holderKey === undefined ? '' : ', holder-bound'}`, agent: agent ?? null, tokenId: minted.id },
    };
  }

  /** Issues a token over HTTP (`POST /v1/tokens`), audited like the tool. */
  async issueOverHttp(caller: Caller, args: unknown): Promise<{ ok: true; body: IssuedToken } | { ok: false; code: DecisionCode; reason: string }> {
    const started = process.hrtime.bigint();
    let issued: Awaited<ReturnType<Enforcer['issue']>>;
    try {
      issued = await this.issue(caller, args);
    } catch (error) {
      // The token could not be recorded (or minted): none is handed out, and the refusal is audited.
      this.deps.log.error('token issuance failed', { error: (error as Error).message });
      issued = { ok: false, outcome: { allowed: false, code: 'internal_error', reason: 'internal error; no token was issued', agent: null, tokenId: null } };
    }
    this.record(issued.outcome, REQUEST_TOKEN_TOOL, args, started);
    return issued.ok ? { ok: true, body: issued.body } : { ok: false, code: issued.outcome.code, reason: issued.outcome.reason };
  }

  /** Mints what the policy grants `agent` for `tool`, recording it in the ledger. */
  private async mintFor(policy: Policy, request: GrantRequest): Promise<MintedToken | { code: string; reason: string }> {
    const result = mintGranted(policy, () => this.deps.issuer, request);
    if ('allowed' in result) return { code: result.code, reason: result.reason };
    // Written to the ledger before the token is used or handed out.
    await this.deps.store.record(result.minted);
    return result.minted;
  }

  /** Resolves once every audit line recorded so far is written (in the kernel); rejects if the log failed. */
  auditWritten(): Promise<void> {
    return this.deps.audit.written();
  }

  /** Counts a decision and writes its audit line (throws when the log cannot be written: the caller then denies). */
  record(o: Verdict, tool: string | null, args: unknown, started: bigint, via?: AuditVia): AuditRecord {
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
      ...(via !== undefined && { via }),
    });
  }
}
