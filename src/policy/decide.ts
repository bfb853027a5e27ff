/**
 * The decision engine: deny rules win, then the first allow rule whose tool
 * pattern, agent list and constraints all match, then the default.
 *
 * Everything that can be is computed at load: tool matchers, agent sets and the
 * allow/deny decisions themselves (shared, frozen objects), plus a per-tool
 * cache of candidate rules. An allowed call allocates nothing.
 */
import { NO_CONSTRAINTS, type ConstraintSet } from './constraints.js';
import { isResourceName, resourceUriProblem, splitResourceName } from './resource-name.js';
import { compileToolPattern, patternCovers, patternsMayOverlap, type ToolMatcher } from './tool-pattern.js';
import type { AccessEngine, Decision, DecideInput, Grant, Rule, RuleKind } from './types.js';

/** TTL cap, in seconds, for rules that set none. */
export const DEFAULT_TTL = 300;

/** A rule with everything the hot path needs precomputed. */
interface Entry {
  readonly rule: Rule;
  readonly match: ToolMatcher;
  readonly agents: ReadonlySet<string> | undefined;
  readonly when: ConstraintSet;
  /** The rule's capability's constraints (none when it names no defined capability). */
  readonly capWhen: ConstraintSet;
  /** The decision returned when this rule decides the call. */
  readonly decision: Decision;
}

interface Candidates {
  readonly deny: readonly Entry[];
  readonly allow: readonly Entry[];
}

export interface EngineOptions {
  /** Rules in file order; `when` must come from `compileConstraints`. */
  rules: readonly Rule[];
  /** Capability name → its compiled constraints. */
  capabilities: ReadonlyMap<string, ConstraintSet>;
  /** Agents the policy defines, or undefined when it defines none (pure capability model). */
  agentNames: ReadonlySet<string> | undefined;
  defaultPolicy: 'deny' | 'allow';
  /**
   * What the rules name (default `tool`). A resource engine judges only URIs in normal
   * form and accepts only resource tokens (whose pattern has a `:`): a tool token never
   * reads a resource. `default_policy: allow` applies to tools alone: resources and
   * prompts are served only under a rule that names them.
   */
  kind?: RuleKind;
}

export type Engine = AccessEngine;

/** Bound on the per-tool caches so hostile tool names cannot grow memory. */
const CACHE_LIMIT = 4096;

function deny(code: string, reason: string, rule?: Rule): Decision {
  return rule ? { allowed: false, code, reason, rule } : { allowed: false, code, reason };
}

function quote(s: string): string {
  return JSON.stringify(s.length > 200 ? `${s.slice(0, 200)}…` : s);
}

/**
 * Builds the engine for a validated policy.
 *
 * @example
 * const engine = createEngine({ rules, capabilities: new Map(), agentNames: undefined, defaultPolicy: 'deny' });
 * engine.decide({ tool: 'database.query', args: { sql: 'SELECT 1' } }); // { allowed: true, code: 'ok', … }
 */
export function createEngine(options: EngineOptions): Engine {
  const { agentNames } = options;
  const kind = options.kind ?? 'tool';
  const defaultPolicy = kind === 'tool' ? options.defaultPolicy : 'deny';
  const entries: Entry[] = options.rules.map((rule) => {
    const capWhen = rule.capability !== undefined ? (options.capabilities.get(rule.capability) ?? NO_CONSTRAINTS) : NO_CONSTRAINTS;
    const decision: Decision =
      rule.effect === 'deny'
        ? deny('denied_by_rule', `denied by the deny rule at line ${rule.line} (${kind} ${quote(rule.tool)})`, rule)
        : { allowed: true, code: 'ok', reason: `allowed by the rule at line ${rule.line}`, rule };
    return {
      rule,
      match: compileToolPattern(rule.tool),
      agents: rule.agents ? new Set(rule.agents) : undefined,
      when: rule.when as ConstraintSet,
      capWhen,
      decision: Object.freeze(decision),
    };
  });
  const denyEntries = entries.filter((e) => e.rule.effect === 'deny');
  const allowEntries = entries.filter((e) => e.rule.effect === 'allow');
  const defaultAllow: Decision = Object.freeze({ allowed: true, code: 'ok', reason: 'no rule names this tool; default_policy is allow' });

  const cache = new Map<string, Candidates>();
  function candidates(tool: string): Candidates {
    const hit = cache.get(tool);
    if (hit) return hit;
    const found: Candidates = { deny: denyEntries.filter((e) => e.match(tool)), allow: allowEntries.filter((e) => e.match(tool)) };
    if (cache.size < CACHE_LIMIT) cache.set(tool, found);
    return found;
  }

  const tokenMatchers = new Map<string, ToolMatcher>();
  function tokenCovers(pattern: string, tool: string): boolean {
    if (pattern === tool) return true;
    let m = tokenMatchers.get(pattern);
    if (!m) {
      m = compileToolPattern(pattern);
      if (tokenMatchers.size < CACHE_LIMIT) tokenMatchers.set(pattern, m);
    }
    return m(tool);
  }

  /** A deny rule applies to the agent unless it lists agents and the agent is known not to be one of them. */
  const denyApplies = (e: Entry, agent: string | undefined) => e.agents === undefined || agent === undefined || e.agents.has(agent);
  const allowAdmits = (e: Entry, agent: string | undefined) => e.agents === undefined || (agent !== undefined && e.agents.has(agent));

  /** Why a resource name cannot be judged (no server, or a URI not in normal form), for resource engines. */
  const nameProblem = (name: string): string | undefined => {
    if (kind !== 'resource') return undefined;
    const parts = splitResourceName(name);
    if (parts === undefined) return `${quote(name)} is not a resource name; expected "<server>:<uri>"`;
    const problem = resourceUriProblem(parts.uri);
    return problem === undefined ? undefined : `resource ${quote(name)} is refused: ${problem}`;
  };

  function decide(input: DecideInput): Decision {
    const { tool, agent, args, token } = input;
    if (agentNames !== undefined && agent !== undefined && !agentNames.has(agent)) {
      return deny('agent_unknown', `agent ${quote(agent)} is not defined in the policy`);
    }
    const problem = nameProblem(tool);
    if (problem !== undefined) return deny('constraint_failed', problem);
    if (token !== undefined && kind === 'resource' && !isResourceName(token.tool)) {
      return deny('tool_mismatch', `the token is for tools (${quote(token.tool)}); reading ${quote(tool)} needs a resource token ("<server>:<uri pattern>")`);
    }
    if (token !== undefined && !tokenCovers(token.tool, tool)) {
      return deny('tool_mismatch', `the token is for ${quote(token.tool)}, not ${quote(tool)}`);
    }
    const { deny: denies, allow } = candidates(tool);
    for (let i = 0; i < denies.length; i++) {
      const e = denies[i] as Entry;
      if (denyApplies(e, agent) && e.when.holdsForDeny(args)) return e.decision;
    }
    const cap = token?.cap;
    let failed: { rule: Rule; reason: string } | undefined;
    let agentExcluded = false;
    for (let i = 0; i < allow.length; i++) {
      const e = allow[i] as Entry;
      if (cap !== undefined && e.rule.capability !== cap) continue;
      if (!allowAdmits(e, agent)) {
        agentExcluded = true;
        continue;
      }
      let result = e.when.check(args);
      if (result.ok) result = e.capWhen.check(args);
      if (result.ok) return e.decision;
      failed ??= { rule: e.rule, reason: result.reason };
    }
    if (failed) return deny('constraint_failed', `rule at line ${failed.rule.line}: ${failed.reason}`, failed.rule);
    if (agentExcluded) {
      return deny('agent_not_allowed', agent === undefined ? `rules for ${quote(tool)} name agents and the call has none` : `no rule for ${quote(tool)} allows agent ${quote(agent)}`);
    }
    // Default allow only for tools no allow rule mentions: a rule's constraints must not be bypassed by the default.
    if (defaultPolicy === 'allow' && allow.length === 0) return defaultAllow;
    return deny('no_rule', cap === undefined ? `no rule allows ${quote(tool)}` : `no rule allows ${quote(tool)} with capability ${quote(cap)}`);
  }

  function grant(request: { tool: string; capability?: string; agent?: string }): Grant | Decision {
    const { tool, capability, agent } = request;
    if (agentNames !== undefined && agent !== undefined && !agentNames.has(agent)) {
      return deny('agent_unknown', `agent ${quote(agent)} is not defined in the policy`);
    }
    const pattern = tool.includes('*');
    if (!pattern) {
      const problem = nameProblem(tool);
      if (problem !== undefined) return deny('constraint_failed', problem);
    }
    for (const e of denyEntries) {
      // A token for a pattern must not reach a tool that a deny rule blocks outright.
      const hits = pattern ? patternsMayOverlap(e.rule.tool, tool) : e.match(tool);
      if (hits && e.when.size === 0 && denyApplies(e, agent)) return e.decision;
    }
    let agentExcluded = false;
    let ruled = false;
    for (const e of allowEntries) {
      const covers = pattern ? patternCovers(e.rule.tool, tool) : e.match(tool);
      if (!covers) continue;
      ruled = true;
      if (capability !== undefined && e.rule.capability !== capability) continue;
      if (!allowAdmits(e, agent)) {
        agentExcluded = true;
        continue;
      }
      const grant: Grant = { rule: e.rule, ttl: e.rule.ttl ?? DEFAULT_TTL, when: [...e.rule.when.source, ...e.capWhen.source] };
      if (e.rule.capability !== undefined) grant.capability = e.rule.capability;
      return grant;
    }
    if (agentExcluded) return deny('agent_not_allowed', `no rule grants ${quote(tool)} to ${agent === undefined ? 'a call without an agent' : `agent ${quote(agent)}`}`);
    if (defaultPolicy === 'allow' && !ruled && !pattern) {
      const capWhen = capability !== undefined ? (options.capabilities.get(capability) ?? NO_CONSTRAINTS) : NO_CONSTRAINTS;
      const rule: Rule = { kind, tool, effect: 'allow', when: NO_CONSTRAINTS, line: 0 };
      const g: Grant = { rule, ttl: DEFAULT_TTL, when: [...capWhen.source] };
      if (capability !== undefined) g.capability = capability;
      return g;
    }
    const withCap = capability === undefined ? '' : ` with capability ${quote(capability)}`;
    return deny('no_rule', `no allow rule grants ${quote(tool)}${withCap}; add a rule for it to the policy`);
  }

  function couldGrant(tool: string, agent?: string): boolean {
    if (agentNames !== undefined && agent !== undefined && !agentNames.has(agent)) return false;
    if (nameProblem(tool) !== undefined) return false;
    const { deny: denies, allow } = candidates(tool);
    for (const e of denies) if (e.when.size === 0 && denyApplies(e, agent)) return false;
    // Without agents in the policy, an anonymous caller may hold a token for any agent-limited rule.
    const anyAgent = agent === undefined && agentNames === undefined;
    for (const e of allow) if (anyAgent || allowAdmits(e, agent)) return true;
    return defaultPolicy === 'allow' && allow.length === 0;
  }

  function couldGrantSome(pattern: string, agent?: string): boolean {
    if (!pattern.includes('*')) return couldGrant(pattern, agent);
    if (agentNames !== undefined && agent !== undefined && !agentNames.has(agent)) return false;
    // An unconditional deny rule covering every name of the pattern hides it; anything less leaves some name open.
    for (const e of denyEntries) if (e.when.size === 0 && denyApplies(e, agent) && patternCovers(e.rule.tool, pattern)) return false;
    const anyAgent = agent === undefined && agentNames === undefined;
    for (const e of allowEntries) if ((anyAgent || allowAdmits(e, agent)) && patternsMayOverlap(e.rule.tool, pattern)) return true;
    return defaultPolicy === 'allow';
  }

  return { decide, grant, couldGrant, couldGrantSome };
}
