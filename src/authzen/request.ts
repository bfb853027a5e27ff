/**
 * The OpenID AuthZEN Authorization API 1.0 request shapes (§5–§7), checked strictly, and
 * their mapping onto a Capframe tool call:
 *
 *   subject  {type: "agent", id: <agent>}
 *   action   {name: "tools/call"}
 *   resource {type: "mcp_tool", id: "<server>.<tool>", properties: {arguments}}
 *   context  {token?, proof?}
 *
 * A request the information model does not allow (a required entity missing, a wrong
 * type) is a Bad Request for the whole payload. A well-formed request that does not map
 * onto a tool call is not an error: it is a question Capframe answers with a denial.
 */
import { isRecord } from '../lib/is-record.js';
import { isValidToolName } from '../proxy/tool-name.js';
import type { DecisionCode } from '../verify/decision.js';

export const SUBJECT_TYPE = 'agent';
export const ACTION_NAME = 'tools/call';
export const RESOURCE_TYPE = 'mcp_tool';

/** Most evaluations one `/access/v1/evaluations` request may carry. */
export const MAX_EVALUATIONS = 256;

export const EVALUATIONS_SEMANTICS = ['execute_all', 'deny_on_first_deny', 'permit_on_first_permit'] as const;
export type EvaluationsSemantic = (typeof EVALUATIONS_SEMANTICS)[number];

/** One evaluation after defaults were applied: the four entities, checked. */
export interface Evaluation {
  subject: { type: string; id: string; properties?: Record<string, unknown> };
  action: { name: string; properties?: Record<string, unknown> };
  resource: { type: string; id: string; properties?: Record<string, unknown> };
  context?: Record<string, unknown>;
}

/** What an evaluation asks of Capframe: a tool call to decide, or a denial it cannot be. */
export type MappedCall =
  | { kind: 'call'; subject: string; tool: string; args: unknown; token?: string; proof?: string }
  | { kind: 'refused'; subject: string; tool: string | null; args: unknown; code: DecisionCode; reason: string };

/** A Bad Request: the message the PDP answers with (400). */
export class BadRequest extends Error {}

function entity(value: unknown, where: string, key: 'id' | 'name', needsType: boolean): void {
  if (value === undefined) throw new BadRequest(`${where} is required`);
  if (!isRecord(value)) throw new BadRequest(`${where} must be an object`);
  if (needsType && typeof value.type !== 'string') throw new BadRequest(`${where}.type is required and must be a string`);
  if (typeof value[key] !== 'string') throw new BadRequest(`${where}.${key} is required and must be a string`);
  if (value.properties !== undefined && !isRecord(value.properties)) throw new BadRequest(`${where}.properties must be an object`);
}

/**
 * One evaluation from its own keys over the defaults (each key replaces the default
 * whole, as §7.1.1 says), or a BadRequest naming what is missing or wrong.
 */
export function evaluationOf(item: Record<string, unknown>, defaults: Record<string, unknown>, where: string): Evaluation {
  const pick = (key: string) => (item[key] !== undefined ? { value: item[key], at: `${where}.${key}` } : { value: defaults[key], at: key });
  const subject = pick('subject');
  const action = pick('action');
  const resource = pick('resource');
  const context = pick('context');
  entity(subject.value, subject.at, 'id', true);
  entity(action.value, action.at, 'name', false);
  entity(resource.value, resource.at, 'id', true);
  if (context.value !== undefined && !isRecord(context.value)) throw new BadRequest(`${context.at} must be an object`);
  return {
    subject: subject.value as Evaluation['subject'],
    action: action.value as Evaluation['action'],
    resource: resource.value as Evaluation['resource'],
    ...(context.value !== undefined && { context: context.value as Record<string, unknown> }),
  };
}

/** A single Access Evaluation request (§6.1). */
export function parseEvaluationRequest(body: unknown): Evaluation {
  if (!isRecord(body)) throw new BadRequest('the request body must be a JSON object');
  return evaluationOf(body, {}, 'request');
}

/**
 * An Access Evaluations request (§7.1): its evaluations with defaults applied and the
 * semantic, or `single` when it has no (or an empty) `evaluations` array, which behaves
 * as an Access Evaluation request.
 */
export function parseEvaluationsRequest(body: unknown): { single: Evaluation } | { evaluations: Evaluation[]; semantic: EvaluationsSemantic } {
  if (!isRecord(body)) throw new BadRequest('the request body must be a JSON object');
  const { evaluations, options } = body;
  let semantic: EvaluationsSemantic = 'execute_all';
  if (options !== undefined) {
    if (!isRecord(options)) throw new BadRequest('options must be an object');
    const asked = options.evaluations_semantic;
    if (asked !== undefined) {
      if (typeof asked !== 'string' || !(EVALUATIONS_SEMANTICS as readonly string[]).includes(asked)) {
        throw new BadRequest(`options.evaluations_semantic must be one of ${EVALUATIONS_SEMANTICS.join(', ')}`);
      }
      semantic = asked as EvaluationsSemantic;
    }
  }
  if (evaluations === undefined || (Array.isArray(evaluations) && evaluations.length === 0)) return { single: evaluationOf(body, {}, 'request') };
  if (!Array.isArray(evaluations)) throw new BadRequest('evaluations must be an array');
  if (evaluations.length > MAX_EVALUATIONS) throw new BadRequest(`evaluations has ${evaluations.length} entries; this PDP takes at most ${MAX_EVALUATIONS} per request`);
  const parsed = evaluations.map((item: unknown, i) => {
    if (!isRecord(item)) throw new BadRequest(`evaluations[${i}] must be an object`);
    return evaluationOf(item, body, `evaluations[${i}]`);
  });
  return { evaluations: parsed, semantic };
}

/**
 * The tool call an evaluation asks about, or why it cannot be one (a denial: Capframe
 * decides tool calls by agents and nothing else).
 *
 * @example
 * mapEvaluation({ subject: { type: 'agent', id: 'bot' }, action: { name: 'tools/call' },
 *   resource: { type: 'mcp_tool', id: 'database.query', properties: { arguments: { sql: 'SELECT 1' } } } });
 * // { kind: 'call', subject: 'bot', tool: 'database.query', args: { sql: 'SELECT 1' } }
 */
export function mapEvaluation(e: Evaluation): MappedCall {
  const subject = e.subject.id;
  const args: unknown = e.resource.properties?.arguments ?? {};
  // Audited under the tool's name whenever the resource names a valid one (never arbitrary text).
  const named = e.resource.type === RESOURCE_TYPE && isValidToolName(e.resource.id) ? e.resource.id : null;
  const refuse = (code: DecisionCode, reason: string): MappedCall => ({ kind: 'refused', subject, tool: named, args, code, reason });
  if (e.subject.type !== SUBJECT_TYPE) return refuse('agent_unknown', `subject.type is ${JSON.stringify(e.subject.type)}; Capframe decides for subjects of type "${SUBJECT_TYPE}"`);
  if (e.action.name !== ACTION_NAME) return refuse('no_rule', `action.name is ${JSON.stringify(e.action.name)}; Capframe decides "${ACTION_NAME}" only`);
  if (e.resource.type !== RESOURCE_TYPE) return refuse('no_rule', `resource.type is ${JSON.stringify(e.resource.type)}; Capframe decides resources of type "${RESOURCE_TYPE}" (id "<server>.<tool>")`);
  const tool = e.resource.id;
  const token = e.context?.token;
  const proof = e.context?.proof;
  if (token !== undefined && typeof token !== 'string') return refuse('malformed_token', 'context.token must be a capability token string (cf1.…)');
  if (proof !== undefined && typeof proof !== 'string') return refuse('bad_proof', 'context.proof must be a holder proof string');
  return { kind: 'call', subject, tool, args, ...(token !== undefined && token !== '' && { token }), ...(proof !== undefined && { proof }) };
}
