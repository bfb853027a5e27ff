/**
 * A least-privilege starting policy drafted from discovery findings, written
 * as commented YAML for a person to review (SPEC §10, `init --from-discovery`).
 *
 * - read-only tools: allowed, longer TTL;
 * - side-effecting tools: allowed, short TTL, suggested constraints (`<=` for
 *   money, `url_origin_in` for URLs, `path_within` for paths, `max_length` for
 *   free text) whose placeholder values deny until someone sets them;
 * - critical tools and tools whose text addresses the model: `effect: deny`;
 * - everything else stays denied by `default_policy: deny`.
 */
import { stringify } from 'yaml';

import { isStdioConfig } from '../mcp/connect.js';
import { visible } from './report.js';
import { words } from './words.js';
import type { DiscoveryResult, Finding, ToolReport, UpstreamConfig } from './types.js';

export interface DraftOptions {
  /** The policy file discovery read, named in the header comment. */
  source?: string;
  /** TTL for read-only tools, seconds (default 300). */
  readOnlyTtl?: number;
  /** TTL for side-effecting tools, seconds (default 60). */
  sideEffectTtl?: number;
}

/** Placeholder origin: `.invalid` never resolves, so the rule denies until reviewed. */
export const PLACEHOLDER_ORIGIN = 'https://review-me.invalid';
/** Placeholder root for `path_within` when the server's config names no directory. */
export const PLACEHOLDER_ROOT = '/REVIEW/allowed/root';
const DEFAULT_MONEY_BOUND = 100;
const DEFAULT_TEXT_BOUND = 1000;

/** What the policy loader accepts as a rule's `tool` (printable ASCII, no whitespace). */
const RULE_TOOL = /^[\x21-\x7e]{1,256}$/;

/** Rules whose finding means the definition itself is hostile or unreviewable: deny. */
const POISONED = new Set(['CF-PROMPT-001', 'CF-UNICODE-001']);

/**
 * Drafts the policy YAML. The result keeps the `servers` block, uses only SPEC §3
 * keys, and loads with `loadPolicy`.
 *
 * @example
 * const result = await discover(policy.servers, { cwd: dirname(policy.file) });
 * writeFileSync('draft-policy.yaml', draftPolicy(result, policy.servers, { source: policy.file }));
 */
export function draftPolicy(result: DiscoveryResult, servers: Readonly<Record<string, UpstreamConfig>>, opts: DraftOptions = {}): string {
  const readOnlyTtl = opts.readOnlyTtl ?? 300;
  const sideEffectTtl = opts.sideEffectTtl ?? 60;
  const findingsById = new Map(result.findings.map((f) => [f.id, f]));
  const lines: string[] = [];
  const c = (text: string): string => comment(text);

  lines.push(
    c('Capframe policy drafted by `capframe discover` from the tools its servers expose.'),
    ...(opts.source ? [c(`Source: ${opts.source}`)] : []),
    c(`${result.tools.length} tools on ${result.servers.filter((s) => s.status === 'ok').length}/${result.servers.length} servers; ${result.findings.length} findings.`),
    '#',
    c('REVIEW EVERY RULE BEFORE USE. This is a least-privilege starting point:'),
    c(`  - read-only tools are allowed with a ${readOnlyTtl}s TTL;`),
    c(`  - side-effecting tools are allowed with a ${sideEffectTtl}s TTL and suggested constraints;`),
    c('    values marked REVIEW are placeholders that deny until you set them;'),
    c('  - critical tools, and tools whose text addresses the model, are denied;'),
    c('  - anything not listed is denied (default_policy: deny).'),
    c('Constraints on optional arguments are left commented out: a constraint on an'),
    c('absent argument fails, which would deny every call that omits it.'),
    'capframe:',
    '  version: "0.2"',
    '  default_policy: deny',
  );

  const serverEntries = Object.entries(servers);
  if (serverEntries.length > 0) {
    // Plain objects for the YAML writer (the loader's records have null prototypes).
    const plain = JSON.parse(JSON.stringify(Object.fromEntries(serverEntries))) as Record<string, unknown>;
    lines.push(indent(stringify({ servers: plain }, { lineWidth: 0 }).trimEnd(), 2));
  }

  const ruleLines: string[] = [];
  let drafted = 0;
  for (const server of result.servers) {
    if (server.status === 'unreachable') {
      ruleLines.push('', c(`${server.name}: unreachable during discovery (${server.error ?? 'no answer'}); no rules drafted, its tools stay denied.`));
      continue;
    }
    const tools = result.tools.filter((t) => t.server === server.name);
    if (tools.length === 0) {
      ruleLines.push('', c(`${server.name}: lists no tools.`));
      continue;
    }
    const config = Object.hasOwn(servers, server.name) ? servers[server.name] : undefined;
    for (const tool of tools) {
      const findings = tool.findings.map((id) => findingsById.get(id)).filter((f): f is Finding => f !== undefined);
      const rule = ruleFor(tool, findings, config, { readOnlyTtl, sideEffectTtl });
      if (rule.some((l) => l.startsWith('- tool:'))) drafted++;
      ruleLines.push('', ...rule);
    }
  }
  // Blank lines separate rules; none straight after `rules:`. Comments alone would make `rules:` null.
  lines.push(drafted > 0 ? '  rules:' : '  rules: []  # nothing to allow: every tool stays denied');
  lines.push(...ruleLines.slice(1).map((l) => (l === '' ? '' : `    ${l}`)));
  return `${lines.join('\n').replace(/\n{3,}/g, '\n\n')}\n`;
}

function ruleFor(
  tool: ToolReport,
  findings: Finding[],
  config: UpstreamConfig | undefined,
  ttl: { readOnlyTtl: number; sideEffectTtl: number },
): string[] {
  const out: string[] = [];
  const contradicted = findings.some((f) => f.rule === 'CF-MUT-001' && f.severity === 'high');
  const readOnly = tool.readOnly && !contradicted;
  const deny = tool.risk === 'critical' || findings.some((f) => POISONED.has(f.rule));
  out.push(comment(`${tool.name} — risk: ${tool.risk}; ${readOnly ? 'read-only (readOnlyHint: true)' : 'side-effecting (not declared read-only)'}`));
  for (const f of findings) out.push(comment(`  [${f.severity}] ${f.rule}: ${f.detail}`));
  const name = JSON.stringify(tool.name);

  if (!RULE_TOOL.test(tool.name)) {
    out.push(comment('  NOT DRAFTED: the name has whitespace, control or non-ASCII characters, which a policy rule cannot name; it stays denied.'));
    return out;
  }
  if (deny) {
    out.push(comment(findings.some((f) => POISONED.has(f.rule)) ? '  DENIED: its definition addresses the model; review it, then re-run discovery.' : '  DENIED: critical. Replace with a narrow allow rule only if an agent truly needs it.'));
    out.push(`- tool: ${name}`, '  effect: deny');
    return out;
  }
  if (tool.name.includes('*')) {
    // A `*` in a tool name would make an allow rule a pattern that grants more than this tool.
    out.push(comment('  NOT DRAFTED: the tool name contains "*", which a rule would read as a pattern. Allow it by hand if needed.'));
    return out;
  }
  if (findings.some((f) => f.rule === 'CF-SECRET-001')) out.push(comment('  REVIEW: handles secrets; consider `effect: deny` unless an agent needs it.'));
  if (findings.some((f) => f.rule === 'CF-SHADOW-001')) out.push(comment('  REVIEW: another server exposes the same name; make sure this is the one you mean.'));

  // Secrets get the short TTL even when reading them changes nothing.
  const longTtl = readOnly && !findings.some((f) => f.rule === 'CF-SECRET-001');
  out.push(`- tool: ${name}`, `  capability: ${readOnly ? '"read-only"' : '"read-write"'}`, `  ttl: ${longTtl ? ttl.readOnlyTtl : ttl.sideEffectTtl}`);
  const active: string[] = [];
  const optional: string[] = [];
  const add = (required: boolean, constraint: string, why: string): void => {
    (required ? active : optional).push(`${constraint}  # ${sanitize(why)}`);
  };
  const schemaMax = (arg: string): number | undefined => {
    const node = findSchemaNode(tool, arg);
    return typeof node?.maximum === 'number' ? node.maximum : undefined;
  };
  for (const h of tool.hints.money) {
    const bound = schemaMax(h.arg) ?? DEFAULT_MONEY_BOUND;
    add(h.required, `- { arg: ${JSON.stringify(h.arg)}, op: "<=", value: ${bound} }`, 'REVIEW: the largest amount an agent may move in one call');
  }
  for (const h of tool.hints.url) {
    add(h.required, `- { arg: ${JSON.stringify(h.arg)}, op: url_origin_in, value: [${JSON.stringify(PLACEHOLDER_ORIGIN)}] }`, 'REVIEW: the origins this tool may reach');
  }
  const root = config ? guessRoot(config) : undefined;
  for (const h of tool.hints.path) {
    add(
      h.required,
      `- { arg: ${JSON.stringify(h.arg)}, op: path_within, value: ${JSON.stringify(root ?? PLACEHOLDER_ROOT)} }`,
      root ? 'REVIEW: root taken from the server config; paths must be absolute' : 'REVIEW: the only directory this tool may touch (absolute)',
    );
  }
  for (const h of tool.hints.text) {
    add(h.required, `- { arg: ${JSON.stringify(h.arg)}, op: max_length, value: ${DEFAULT_TEXT_BOUND} }`, 'REVIEW: bounds free text into a side effect');
  }
  if (active.length > 0) out.push('  when:', ...active.map((l) => `    ${l}`));
  if (optional.length > 0) {
    out.push(`  ${comment('Suggested for optional arguments (move under `when:` to require them):')}`);
    out.push(...optional.map((l) => `  #   ${l}`));
  }
  if (tool.hints.money.length > 0) out.push('  rate_limit: { calls: 10, per: 60 }  # REVIEW: calls per agent per minute');
  return out;
}

/** The schema keywords at a dotted argument path of the tool's input schema (plain properties only). */
function findSchemaNode(tool: ToolReport, arg: string): Record<string, unknown> | undefined {
  let node: unknown = tool.definition.inputSchema;
  for (const part of arg.split('.')) {
    const props = (node as { properties?: Record<string, unknown> } | undefined)?.properties;
    if (!props || !Object.hasOwn(props, part)) return undefined;
    node = props[part];
  }
  return typeof node === 'object' && node !== null ? (node as Record<string, unknown>) : undefined;
}

/**
 * A directory the server's own config already confines it to: an absolute
 * directory argument (e.g. server-filesystem's allowed directory) or an env var
 * named like a root (`SANDBOX_DIR`, `ROOT`). Undefined when there is none.
 */
export function guessRoot(config: UpstreamConfig): string | undefined {
  if (!isStdioConfig(config)) return undefined;
  const usable = (p: string): boolean => p.startsWith('/') && !/[\\%\0]/.test(p) && !/\.(?:[cm]?[jt]s|py|rb|sh)$/.test(p);
  const fromArgs = (config.args ?? []).find(usable);
  if (fromArgs !== undefined) return fromArgs;
  for (const [key, value] of Object.entries(config.env ?? {})) {
    if (usable(value) && words(key).some((w) => ['dir', 'root', 'sandbox', 'directory', 'folder'].includes(w))) return value;
  }
  return undefined;
}

/** One YAML comment line; upstream text is sanitised so it cannot break out of the comment. */
function comment(text: string): string {
  return `# ${sanitize(text)}`.trimEnd();
}

function sanitize(text: string): string {
  // visible() escapes line breaks (\n, \r, NEL, U+2028/9) and other controls.
  const flat = visible(text);
  return flat.length > 300 ? `${flat.slice(0, 297)}...` : flat;
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces);
  return text
    .split('\n')
    .map((l) => (l === '' ? l : pad + l))
    .join('\n');
}
