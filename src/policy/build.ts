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
import type { PolicyFile, ServerInput } from './schema.js';
import type { AgentConfig, Policy, Rule, ServerConfig } from './types.js';

/** Server names become tool prefixes (`<server>.<tool>`): no dots, no globs. */
const SERVER_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
/** Agent and capability names travel in tokens and CLI arguments. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]*$/;
/** Tool patterns: printable, no whitespace. */
const TOOL_PATTERN = /^[\x21-\x7e]{1,256}$/;
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

function toServer(s: ServerInput): ServerConfig {
  if (s.url !== undefined) {
    const out: ServerConfig = { url: s.url };
    if (s.headers) out.headers = { ...s.headers };
    if (s.timeout !== undefined) out.timeout = s.timeout;
    if (s.max_result_bytes !== undefined) out.maxResultBytes = s.max_result_bytes;
    return out;
  }
  const out: ServerConfig = { command: s.command as string };
  if (s.args) out.args = [...s.args];
  if (s.env) out.env = { ...s.env };
  if (s.cwd !== undefined) out.cwd = s.cwd;
  if (s.timeout !== undefined) out.timeout = s.timeout;
  if (s.max_result_bytes !== undefined) out.maxResultBytes = s.max_result_bytes;
  return out;
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
    agents[name] = Object.freeze({ keySha256: a.key_sha256.toLowerCase(), autoMint: a.auto_mint ?? policyAutoMint, holderKeys: Object.freeze(holderKeys) });
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
    let ok = true;
    if (!TOOL_PATTERN.test(r.tool)) {
      problems.push({ path: at('rules', i, 'tool'), message: `tool ${JSON.stringify(r.tool)} is not a tool name or pattern; expected "<server>.<tool>" or a glob such as "database.*"` });
      ok = false;
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
    warnRegexes(when.compiled, `rule for ${JSON.stringify(r.tool)}`, (j) => ctx.lineOf(at('rules', i, 'when', j)), warnings);
    const rule: Rule = { tool: r.tool, effect, when: when.compiled ?? NO_CONSTRAINTS, line };
    if (r.capability !== undefined) rule.capability = r.capability;
    if (r.ttl !== undefined) rule.ttl = r.ttl;
    if (r.agents) rule.agents = Object.freeze([...r.agents]) as string[];
    if (r.rate_limit) rule.rateLimit = Object.freeze({ calls: r.rate_limit.calls, per: r.rate_limit.per });
    rules.push(Object.freeze(rule));

    if (body.servers) {
      const prefix = r.tool.split('.')[0] ?? '';
      if (!prefix.includes('*') && r.tool.includes('.') && !(prefix in servers) && prefix !== RESERVED_SERVER) {
        warnings.push(`line ${line}: rule tool ${JSON.stringify(r.tool)} names no configured server ${JSON.stringify(prefix)}`);
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
    const dot = name.indexOf('.');
    if (dot <= 0 || dot === name.length - 1 || name.includes('*')) {
      problems.push({ path: at('screen', 'allow', i), message: `${JSON.stringify(name)} is not a tool name; screen.allow lists exact "<server>.<tool>" names (no globs), each reviewed` });
      return;
    }
    const server = name.slice(0, dot);
    if (body.servers && !(server in servers)) warnings.push(`screen.allow: ${JSON.stringify(name)} names no configured server ${JSON.stringify(server)}`);
    screenAllow.push(name);
  });
  const screen = Object.freeze({ tools: body.screen?.tools ?? true, allow: Object.freeze(screenAllow) as readonly string[] });
  if (!screen.tools) warnings.push('screen.tools is false: upstream tool definitions are served to the model without screening for injected instructions or hidden characters');
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
  const audit: { logArgs: boolean; path?: string; syncMs: number } = { logArgs: body.audit?.log_args ?? false, syncMs: body.audit?.sync_ms ?? DEFAULT_SYNC_MS };
  if (body.audit?.path !== undefined) audit.path = resolve(ctx.baseDir, body.audit.path);

  const engine = createEngine({ rules, capabilities: capabilityMap, agentNames, defaultPolicy });
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
    maxDelegationDepth: body.max_delegation_depth ?? DEFAULT_MAX_DEPTH,
    audit: Object.freeze(audit),
    screen,
    allowedOrigins: Object.freeze(allowedOrigins),
    allowedHosts: Object.freeze(allowedHosts),
    warnings: Object.freeze(warnings) as string[],
    decide: engine.decide,
    grant: engine.grant,
    couldGrant: engine.couldGrant,
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
