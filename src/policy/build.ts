/**
 * From validated YAML data to a compiled `Policy`: names checked, constraints
 * compiled, cross-references resolved, paths made absolute, warnings gathered.
 */
import { dirname, resolve } from 'node:path';

import { parseHolderKey } from '../keys/keys.js';
import { DEFAULT_SYNC_MS } from '../lib/group-commit.js';
import { DEFAULT_MAX_DEPTH } from '../token/chain.js';
import { isPlainObject } from './arg-path.js';
import { normalizeHost, normalizeOrigin } from './allow-lists.js';
import { compileConstraintList, NO_CONSTRAINTS, type ConstraintSet } from './constraints.js';
import { createEngine } from './decide.js';
import type { Problem } from './problem.js';
import { regexCaveats } from './regex-caveats.js';
import { isResourceName, isResourcePattern, MAX_RESOURCE_URI_LENGTH } from './resource-name.js';
import type { PolicyFile, RuleInput, ServerInput } from './schema.js';
import type { AgentConfig, AuditSinkConfig, Policy, Rule, RuleKind, ServerConfig, ServerServing } from './types.js';

/** Undelivered lines an audit sink keeps in memory unless it sets `queue`. */
export const DEFAULT_SINK_QUEUE = 10_000;

/** Server names become tool prefixes (`<server>.<tool>`): no dots, no globs. */
const SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
/** Agent and capability names travel in tokens and CLI arguments. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;
/** Tool and prompt patterns: printable, no whitespace. */
const TOOL_PATTERN = /^[\x21-\x7e]{1,256}$/;
/** A server name that is also a valid URI scheme (RFC 3986 §3.1), so `<server>:<uri>` is a valid URI. */
const URI_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*$/;
/** The proxy's own tools live under this prefix. */
const RESERVED_SERVER = 'capframe';

/** Where the file is and how to find line numbers, for building. */
export interface BuildContext {
  /** Absolute path, or `<inline>`. */
  file: string;
  /** Directory relative paths resolve against. */
  baseDir: string;
  lineOf(path: readonly (string | number)[]): number;
}

function nullRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

function serving(s: ServerInput, out: ServerServing): void {
  if (s.timeout !== undefined) out.timeout = s.timeout;
  if (s.max_result_bytes !== undefined) out.maxResultBytes = s.max_result_bytes;
  if (s.names !== undefined) out.names = s.names;
  if (s.relay !== undefined) out.relay = Object.freeze({ ...s.relay });
}

function toServer(s: ServerInput): ServerConfig {
  if (s.url !== undefined) {
    const out: ServerConfig = { url: s.url };
    if (s.headers) out.headers = { ...s.headers };
    serving(s, out);
    return out;
  }
  const out: ServerConfig = { command: s.command as string };
  if (s.args) out.args = [...s.args];
  if (s.env) out.env = { ...s.env };
  if (s.cwd !== undefined) out.cwd = s.cwd;
  serving(s, out);
  return out;
}

/** What a rule names and its pattern. */
function ruleTarget(r: RuleInput): { kind: RuleKind; pattern: string } {
  if (r.resource !== undefined) return { kind: 'resource', pattern: r.resource };
  if (r.prompt !== undefined) return { kind: 'prompt', pattern: r.prompt };
  return { kind: 'tool', pattern: r.tool as string };
}

/**
 * Builds the policy or returns every problem found.
 *
 * @example
 * const r = buildPolicy(validated, { file: '/etc/capframe/policy.yaml', baseDir: '/etc/capframe', lineOf: () => 1 });
 * if ('policy' in r) r.policy.decide({ tool: 'database.query', args: {} });
 */
export function buildPolicy(input: PolicyFile, ctx: BuildContext): { policy: Policy } | { problems: Problem[] } {
  const body = input.capframe;
  const problems: Problem[] = [];
  const warnings: string[] = [];
  const at = (...path: (string | number)[]) => ['capframe', ...path];

  const servers = nullRecord<ServerConfig>();
  for (const [name, s] of Object.entries(body.servers ?? {})) {
    if (!SERVER_NAME.test(name) || name === RESERVED_SERVER) {
      problems.push({ path: at('servers'), key: name, message: `server name ${JSON.stringify(name)} is not allowed; expected letters, digits, _ or - (no dots), and not "capframe"` });
      continue;
    }
    servers[name] = Object.freeze(toServer(s));
  }

  const policyAutoMint = body.auto_mint ?? false;
  const agents = nullRecord<AgentConfig>();
  const agentNames = body.agents ? new Set<string>() : undefined;
  for (const [name, a] of Object.entries(body.agents ?? {})) {
    if (!NAME.test(name)) {
      problems.push({ path: at('agents'), key: name, message: `agent name ${JSON.stringify(name)} is not allowed; expected letters, digits, ., _, @ or -` });
      continue;
    }
    const holderKeys: string[] = [];
    a.holder_keys?.forEach((key, j) => {
      try {
        holderKeys.push(Buffer.from(parseHolderKey(key)).toString('hex'));
      } catch (error) {
        problems.push({ path: at('agents', name, 'holder_keys', j), message: (error as Error).message });
      }
    });
    agents[name] = Object.freeze({ keySha256: a.key_sha256.toLowerCase(), autoMint: a.auto_mint ?? policyAutoMint, pdp: a.pdp ?? false, holderKeys: Object.freeze(holderKeys) });
    agentNames?.add(name);
  }

  const capabilities = nullRecord<{ when: ConstraintSet }>();
  const capabilityMap = new Map<string, ConstraintSet>();
  for (const [name, c] of Object.entries(body.capabilities ?? {})) {
    if (!NAME.test(name)) {
      problems.push({ path: at('capabilities'), key: name, message: `capability name ${JSON.stringify(name)} is not allowed; expected letters, digits, ., _, @ or -` });
      continue;
    }
    const compiled = compileConstraintList(c.when);
    if ('problems' in compiled) {
      for (const p of compiled.problems) problems.push({ ...p, path: [...at('capabilities', name, 'when'), ...p.path] });
      continue;
    }
    capabilities[name] = Object.freeze({ when: compiled.compiled });
    capabilityMap.set(name, compiled.compiled);
    warnRegexes(compiled.compiled, `capability ${JSON.stringify(name)}`, (i) => ctx.lineOf(at('capabilities', name, 'when', i)), warnings);
  }

  const rules: Rule[] = [];
  /** Capabilities rules name but nothing defines, with the lines naming them: one warning each. */
  const labelLines = new Map<string, number[]>();
  (body.rules ?? []).forEach((r, i) => {
    const line = ctx.lineOf(at('rules', i));
    const effect = r.effect ?? 'allow';
    const { kind, pattern } = ruleTarget(r);
    let ok = true;
    if (kind === 'resource') {
      if (!isResourcePattern(pattern)) {
        problems.push({
          path: at('rules', i, 'resource'),
          message: `resource ${JSON.stringify(pattern.slice(0, 200))} is not a resource name or pattern; expected "<server>:<uri>" or a glob such as "docs:file:///srv/docs/*" (printable, no spaces, a URI of at most ${MAX_RESOURCE_URI_LENGTH} characters)`,
        });
        ok = false;
      }
    } else if (!TOOL_PATTERN.test(pattern) || isResourceName(pattern)) {
      problems.push({
        path: at('rules', i, kind),
        message:
          kind === 'tool'
            ? `tool ${JSON.stringify(pattern)} is not a tool name or pattern; expected "<server>.<tool>" or a glob such as "database.*"${isResourceName(pattern) ? ' (a name with ":" is a resource: write it as resource:)' : ''}`
            : `prompt ${JSON.stringify(pattern)} is not a prompt name or pattern; expected "<server>.<prompt>" or a glob such as "notes.*"`,
      });
      ok = false;
    }
    if (kind === 'prompt') {
      // Prompts are decided without tokens: a capability or ttl would shape nothing.
      for (const key of ['capability', 'ttl'] as const) {
        if (r[key] !== undefined) {
          problems.push({ path: at('rules', i), key, message: `"${key}" has no meaning on a prompt rule (prompts are decided by the policy for the caller, without tokens); remove it` });
          ok = false;
        }
      }
    }
    if (effect === 'deny') {
      // These only shape what an allow rule grants; on a deny rule they would suggest a meaning they do not have.
      for (const key of ['capability', 'ttl', 'rate_limit'] as const) {
        if (r[key] !== undefined) {
          problems.push({ path: at('rules', i), key, message: `"${key}" has no meaning on a deny rule; remove it or make the rule effect: allow` });
          ok = false;
        }
      }
    }
    r.agents?.forEach((name, j) => {
      if (agentNames !== undefined && !agentNames.has(name)) {
        problems.push({ path: at('rules', i, 'agents', j), message: `agent ${JSON.stringify(name)} is not defined under agents` });
        ok = false;
      }
    });
    const when = compileConstraintList(r.when);
    if ('problems' in when) {
      for (const p of when.problems) problems.push({ ...p, path: [...at('rules', i, 'when'), ...p.path] });
      ok = false;
    }
    if (!ok || 'problems' in when) return;
    warnRegexes(when.compiled, `rule for ${JSON.stringify(pattern.slice(0, 200))}`, (j) => ctx.lineOf(at('rules', i, 'when', j)), warnings);
    const rule: Rule = { kind, tool: pattern, effect, when: when.compiled ?? NO_CONSTRAINTS, line };
    if (r.capability !== undefined) rule.capability = r.capability;
    if (r.ttl !== undefined) rule.ttl = r.ttl;
    if (r.agents) rule.agents = Object.freeze([...r.agents]) as string[];
    if (r.rate_limit) rule.rateLimit = Object.freeze({ calls: r.rate_limit.calls, per: r.rate_limit.per });
    rules.push(Object.freeze(rule));

    if (body.servers) {
      const separator = kind === 'resource' ? ':' : '.';
      const prefix = pattern.split(separator)[0] ?? '';
      if (!prefix.includes('*') && pattern.includes(separator) && !(prefix in servers) && (kind !== 'tool' || prefix !== RESERVED_SERVER)) {
        warnings.push(`line ${line}: rule ${kind} ${JSON.stringify(pattern.slice(0, 200))} names no configured server ${JSON.stringify(prefix)}`);
      } else if (kind === 'resource' && prefix in servers && !URI_SCHEME.test(prefix) && servers[prefix]?.names !== 'upstream') {
        warnings.push(
          `line ${line}: server ${JSON.stringify(prefix)} is not a valid URI scheme (a letter, then letters, digits, "+", "-" or "."), so its resources, listed as "${prefix}:<uri>", are not valid URIs; clients that check URIs may refuse them`,
        );
      }
    }
    if (r.capability !== undefined && !capabilityMap.has(r.capability)) {
      const lines = labelLines.get(r.capability) ?? [];
      if (lines.length === 0) labelLines.set(r.capability, lines);
      lines.push(line);
    }
  });

  const screenAllow: string[] = [];
  (body.screen?.allow ?? []).forEach((name, i) => {
    // A resource name's first ":" ends the server; a tool's or prompt's first ".".
    const colon = name.indexOf(':');
    const dot = colon === -1 ? name.indexOf('.') : colon;
    if (dot <= 0 || dot === name.length - 1 || name.includes('*')) {
      problems.push({
        path: at('screen', 'allow', i),
        message: `${JSON.stringify(name)} is not a tool, prompt or resource name; screen.allow lists exact "<server>.<tool>", "<server>.<prompt>" or "<server>:<uri>" names (no globs), each reviewed`,
      });
      return;
    }
    const server = name.slice(0, dot);
    if (body.servers && !(server in servers)) warnings.push(`screen.allow: ${JSON.stringify(name)} names no configured server ${JSON.stringify(server)}`);
    screenAllow.push(name);
  });
  const screen = Object.freeze({
    tools: body.screen?.tools ?? true,
    prompts: body.screen?.prompts ?? true,
    resources: body.screen?.resources ?? true,
    allow: Object.freeze(screenAllow) as readonly string[],
  });
  for (const what of ['tools', 'prompts', 'resources'] as const) {
    if (!screen[what]) warnings.push(`screen.${what} is false: upstream ${what.slice(0, -1)} definitions are served to the model without screening for injected instructions or hidden characters`);
  }
  const allowedOrigins: string[] = [];
  body.allowed_origins?.forEach((text, i) => {
    const r = normalizeOrigin(text);
    if ('error' in r) problems.push({ path: at('allowed_origins', i), message: r.error });
    else allowedOrigins.push(r.value);
  });
  const allowedHosts: string[] = [];
  body.allowed_hosts?.forEach((text, i) => {
    const r = normalizeHost(text);
    if ('error' in r) problems.push({ path: at('allowed_hosts', i), message: r.error });
    else allowedHosts.push(r.value);
  });

  if (problems.length > 0) return { problems };
  for (const [name, lines] of labelLines) {
    const where = lines.length === 1 ? `line ${lines[0]}` : `lines ${lines.slice(0, 5).join(', ')}${lines.length > 5 ? `, … (${lines.length} rules)` : ''}`;
    warnings.push(`${where}: capability ${JSON.stringify(name)} is not defined under capabilities; it is a label with no extra constraints`);
  }
  // In file order, by the first line each names.
  const firstLine = (w: string) => Number(/^lines? (\d+)/.exec(w)?.[1] ?? 0);
  warnings.sort((a, b) => firstLine(a) - firstLine(b));

  const defaultPolicy = body.default_policy ?? 'deny';
  if (defaultPolicy === 'allow') {
    warnings.unshift('WARNING: default_policy is allow: every tool that no rule mentions is ALLOWED for every agent. Use default_policy: deny outside experiments.');
  }
  const sinks = (body.audit?.sinks ?? []).map((sink): AuditSinkConfig => {
    const ca = sink.ca === undefined ? {} : { ca: resolve(ctx.baseDir, sink.ca) };
    const queue = sink.queue ?? DEFAULT_SINK_QUEUE;
    return Object.freeze(sink.type === 'syslog' ? { type: 'syslog', url: sink.url, ...ca, queue } : { type: 'http', url: sink.url, ...ca, headers: Object.freeze({ ...sink.headers }), queue });
  });
  const audit: Policy['audit'] = { logArgs: body.audit?.log_args ?? false, syncMs: body.audit?.sync_ms ?? DEFAULT_SYNC_MS, sinks: Object.freeze(sinks) };
  if (body.audit?.path !== undefined) audit.path = resolve(ctx.baseDir, body.audit.path);

  const ofKind = (kind: RuleKind) => rules.filter((r) => r.kind === kind);
  const engine = createEngine({ rules: ofKind('tool'), capabilities: capabilityMap, agentNames, defaultPolicy });
  const resources = createEngine({ rules: ofKind('resource'), capabilities: capabilityMap, agentNames, defaultPolicy, kind: 'resource' });
  const prompts = createEngine({ rules: ofKind('prompt'), capabilities: capabilityMap, agentNames, defaultPolicy, kind: 'prompt' });
  // Names with a ":" are resources (tool names never have one): tokens, mint and the
  // proxy's decision path treat both kinds alike, each decided by its own rules.
  const forName = (name: string) => (isResourceName(name) ? resources : engine);
  const policy: Policy = {
    file: ctx.file,
    version: body.version,
    defaultPolicy,
    stateDir: resolve(ctx.baseDir, body.state_dir ?? '.capframe'),
    servers: Object.freeze(servers),
    agents: Object.freeze(agents),
    capabilities: Object.freeze(capabilities),
    rules: Object.freeze(rules) as Rule[],
    autoMint: policyAutoMint,
    onStoreFailure: body.on_store_failure ?? 'deny',
    redis: Object.freeze({ prefix: body.redis?.prefix ?? 'capframe:', revocationGrace: body.redis?.revocation_grace ?? 60 }),
    maxDelegationDepth: body.max_delegation_depth ?? DEFAULT_MAX_DEPTH,
    audit: Object.freeze(audit),
    screen,
    allowedOrigins: Object.freeze(allowedOrigins),
    allowedHosts: Object.freeze(allowedHosts),
    warnings: Object.freeze(warnings) as string[],
    decide: (input) => forName(input.tool).decide(input),
    grant: (request) => forName(request.tool).grant(request),
    couldGrant: (tool, agent) => forName(tool).couldGrant(tool, agent),
    resources: Object.freeze(resources),
    prompts: Object.freeze(prompts),
  };
  if (body.issuer !== undefined) policy.issuer = body.issuer;
  if (body.store !== undefined) policy.store = body.store;
  return { policy: Object.freeze(policy) };
}

/** One warning per `matches`/`not_matches` pattern that uses a construct with a Unicode caveat. */
function warnRegexes(set: ConstraintSet, where: string, lineOf: (index: number) => number, warnings: string[]): void {
  set.source.forEach((c, i) => {
    if ((c.op !== 'matches' && c.op !== 'not_matches') || typeof c.value !== 'string') return;
    const notes = regexCaveats(c.value);
    if (notes.length === 0) return;
    const pattern = c.value.length > 60 ? `${c.value.slice(0, 57)}...` : c.value;
    warnings.push(`line ${lineOf(i)}: ${where}: ${c.arg} ${c.op} ${JSON.stringify(pattern)}: ${notes.join('; ')}`);
  });
}

/**
 * Constraint problems in raw, not yet validated data, so a file with a schema
 * error still gets its bad constraints reported in the same run.
 */
export function rawConstraintProblems(data: unknown): Problem[] {
  const problems: Problem[] = [];
  const body = isPlainObject(data) ? data.capframe : undefined;
  if (!isPlainObject(body)) return problems;
  const collect = (when: unknown, path: (string | number)[]) => {
    if (!Array.isArray(when)) return;
    const compiled = compileConstraintList(when);
    if ('problems' in compiled) for (const p of compiled.problems) problems.push({ ...p, path: [...path, ...p.path] });
  };
  if (isPlainObject(body.capabilities)) {
    for (const [name, c] of Object.entries(body.capabilities)) if (isPlainObject(c)) collect(c.when, ['capframe', 'capabilities', name, 'when']);
  }
  if (Array.isArray(body.rules)) {
    body.rules.forEach((r: unknown, i) => {
      if (isPlainObject(r)) collect(r.when, ['capframe', 'rules', i, 'when']);
    });
  }
  return problems;
}

/** Directory that relative paths in a policy file resolve against. */
export function baseDirOf(file: string): string {
  return file === '<inline>' ? process.cwd() : dirname(file);
}
