/**
 * Answers AuthZEN evaluations with the proxy's own decision path (Enforcer.decideCall):
 * the same engine, codes and audit lines, with `via: "authzen"`.
 */
import type { Policy } from '../policy/types.js';
import type { AuthResult } from '../proxy/auth.js';
import type { CallDecision, CallQuestion } from '../proxy/enforce.js';
import { mapEvaluation, type Evaluation, type EvaluationsSemantic } from './request.js';

/** An AuthZEN Decision (§5.5) with Capframe's reason code in its context. */
export interface AuthzenDecision {
  decision: boolean;
  /** `token_id` is omitted when no token was presented (the spec asks that nulls be left out). */
  context: { code: string; reason: string; token_id?: string };
}

/** The decision function: Enforcer.decideCall, or anything with its contract. */
export type DecideCall = (question: CallQuestion) => Promise<CallDecision>;

/** Whom the engine decides for: the subject as an agent of the policy, or the open (capability) mode. */
function authFor(policy: Policy, subject: string): AuthResult {
  if (Object.keys(policy.agents).length === 0) return { kind: 'open' };
  return Object.hasOwn(policy.agents, subject) ? { kind: 'agent', agent: subject } : { kind: 'rejected', reason: `subject ${JSON.stringify(subject.length > 64 ? `${subject.slice(0, 64)}…` : subject)} is not an agent of this policy` };
}

/**
 * Decides one evaluation (audited once).
 *
 * @example
 * const answer = await evaluate(rt.enforcer.decideCall.bind(rt.enforcer), rt.policy(), evaluation);
 * // { decision: true, context: { code: 'ok', reason: 'allowed by the rule at line 12', token_id: 'tok_…' } }
 */
export async function evaluate(decide: DecideCall, policy: Policy, evaluation: Evaluation): Promise<AuthzenDecision> {
  const call = mapEvaluation(evaluation);
  const question: CallQuestion =
    call.kind === 'refused'
      ? { auth: authFor(policy, call.subject), subject: call.subject, tool: call.tool, args: call.args, via: 'authzen', refused: { code: call.code, reason: call.reason } }
      : {
          auth: authFor(policy, call.subject),
          subject: call.subject,
          tool: call.tool,
          args: call.args,
          ...(call.token !== undefined && { token: call.token }),
          ...(call.proof !== undefined && { proof: call.proof }),
          via: 'authzen',
        };
  const d = await decide(question);
  return { decision: d.allowed, context: { code: d.code, reason: d.reason, ...(d.tokenId !== null && { token_id: d.tokenId }) } };
}

/**
 * Decides evaluations in order under a §7.1.2 semantic: every one (`execute_all`), up to
 * and including the first denial (`deny_on_first_deny`) or the first permit
 * (`permit_on_first_permit`). Evaluations after the stop are not decided, so not audited
 * and not counted against rate limits. In order, not in parallel: rate limits and proof
 * nonces are taken in the order the PEP listed the calls.
 */
export async function evaluateAll(decide: DecideCall, policy: () => Policy, evaluations: readonly Evaluation[], semantic: EvaluationsSemantic): Promise<AuthzenDecision[]> {
  const answers: AuthzenDecision[] = [];
  for (const evaluation of evaluations) {
    const answer = await evaluate(decide, policy(), evaluation);
    answers.push(answer);
    if (semantic === 'deny_on_first_deny' && !answer.decision) break;
    if (semantic === 'permit_on_first_permit' && answer.decision) break;
  }
  return answers;
}
