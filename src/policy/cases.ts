/**
 * Policy test cases (`capframe policy test`): a YAML list of calls with the
 * expected verdict, each decided by the policy alone as if a valid token for
 * that tool had been presented.
 */
import { readFileSync } from 'node:fs';

import { z } from 'zod';

import { CapframeError } from '../errors.js';
import type { Problem } from './problem.js';
import { issuesToProblems } from './schema.js';
import type { Decision, Policy } from './types.js';
import { formatProblems, parseYamlSource } from './yaml-source.js';

/** Codes a case may expect. */
export const DECISION_CODES: readonly string[] = [
  'ok',
  'no_rule',
  'denied_by_rule',
  'constraint_failed',
  'agent_not_allowed',
  'agent_unknown',
  'tool_mismatch',
];

export interface PolicyCase {
  name: string;
  agent?: string;
  tool: string;
  /** Capability of the presented token, when the case names one. */
  capability?: string;
  args: unknown;
  expect: 'allow' | 'deny';
  code?: string;
  /** 1-based line of the case in its file. */
  line: number;
}

export interface CaseResult {
  case: PolicyCase;
  decision: Decision;
  passed: boolean;
}

const text = (what: string) => z.string({ error: `${what} must be a string` }).min(1, { error: `${what} must not be empty` });
const caseSchema = z.strictObject(
  {
    name: text('name'),
    agent: text('agent').optional(),
    tool: text('tool'),
    capability: text('capability').optional(),
    args: z.unknown().optional(),
    expect: z.enum(['allow', 'deny'], { error: 'expect must be allow or deny' }),
    code: z.enum(DECISION_CODES as [string, ...string[]], { error: `code must be one of ${DECISION_CODES.join(', ')}` }).optional(),
  },
  { error: (i) => (i.code === 'unrecognized_keys' ? 'expected one of: name, agent, tool, capability, args, expect, code' : undefined) },
);
const fileSchema = z.strictObject(
  { cases: z.array(caseSchema, { error: 'expected cases: a list of {name, tool, args, expect}' }) },
  { error: (i) => (i.code === 'unrecognized_keys' ? 'expected only: cases' : i.code === 'invalid_type' ? 'expected a mapping with one key, cases' : undefined) },
);

/**
 * Parses and validates a cases file's text; throws `CapframeError('invalid_argument')`
 * with one `file:line:column: …` line per problem.
 *
 * @example
 * const cases = parseCases('cases:\n  - { name: q, tool: database.query, args: {}, expect: allow }\n', 'cases.yaml');
 */
export function parseCases(source: string, name: string): PolicyCase[] {
  const yaml = parseYamlSource(source, name, 'invalid_argument');
  const result = fileSchema.safeParse(yaml.data);
  if (!result.success) throw new CapframeError('invalid_argument', formatProblems(yaml, issuesToProblems(result.error.issues)));
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const cases = result.data.cases.map((c, i): PolicyCase => {
    if (seen.has(c.name)) problems.push({ path: ['cases', i, 'name'], message: `duplicate case name ${JSON.stringify(c.name)}` });
    seen.add(c.name);
    if (c.expect === 'allow' && c.code !== undefined && c.code !== 'ok') {
      problems.push({ path: ['cases', i, 'code'], message: `expect: allow goes with code ok, not ${c.code}` });
    }
    if (c.expect === 'deny' && c.code === 'ok') problems.push({ path: ['cases', i, 'code'], message: 'expect: deny cannot go with code ok' });
    const out: PolicyCase = { name: c.name, tool: c.tool, args: c.args ?? {}, expect: c.expect, line: yaml.locate(['cases', i]).line };
    if (c.agent !== undefined) out.agent = c.agent;
    if (c.capability !== undefined) out.capability = c.capability;
    if (c.code !== undefined) out.code = c.code;
    return out;
  });
  if (problems.length > 0) throw new CapframeError('invalid_argument', formatProblems(yaml, problems));
  return cases;
}

/**
 * Reads a cases file.
 *
 * @example
 * const cases = loadCasesSync('examples/cases.yaml');
 */
export function loadCasesSync(file: string): PolicyCase[] {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new CapframeError('invalid_argument', `cannot read cases file ${file}: ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  return parseCases(source, file);
}

/**
 * Decides every case; a case passes when allowed/denied matches `expect` and,
 * if it names a `code`, the decision's code is that code.
 *
 * @example
 * const results = runCases(policy, cases);
 * const failed = results.filter((r) => !r.passed).length;
 */
export function runCases(policy: Policy, cases: readonly PolicyCase[]): CaseResult[] {
  return cases.map((c) => {
    const token: { tool: string; cap?: string } = { tool: c.tool };
    if (c.capability !== undefined) token.cap = c.capability;
    const input: Parameters<Policy['decide']>[0] = { tool: c.tool, args: c.args, token };
    if (c.agent !== undefined) input.agent = c.agent;
    const decision = policy.decide(input);
    const passed = decision.allowed === (c.expect === 'allow') && (c.code === undefined || decision.code === c.code);
    return { case: c, decision, passed };
  });
}
