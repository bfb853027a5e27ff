/**
 * Discovery output: a table for people and a JSON document for programs
 * (described by docs/discovery.schema.json). Everything that came from an
 * upstream is untrusted, so text printed to a terminal has its control,
 * bidi and zero-width characters made visible instead of interpreted.
 */
import { MITRE_ATLAS } from './frameworks.js';
import { SEVERITIES, type DiscoveryResult, type Finding, type Severity } from './types.js';

/** Identifies the JSON document's format; bump on incompatible change. */
export const DISCOVERY_FORMAT = 'capframe.discovery/v1';

/** The `--json` document (snake_case, as documented in docs/discovery.schema.json). */
export interface DiscoveryDocument {
  format: typeof DISCOVERY_FORMAT;
  generated_at: string;
  policy: string | null;
  summary: {
    servers: number;
    reachable: number;
    unreachable: number;
    tools: number;
    findings: number;
    by_severity: Record<Severity, number>;
  };
  servers: {
    name: string;
    transport: 'stdio' | 'http';
    status: 'ok' | 'unreachable';
    error?: string;
    duration_ms: number;
    tool_count: number;
    server_info?: { name: string; version: string };
  }[];
  tools: {
    name: string;
    server: string;
    mcp_name: string;
    title?: string;
    description: string;
    risk: string;
    read_only: boolean;
    annotations: Record<string, unknown>;
    sha256: string;
    findings: string[];
  }[];
  findings: Finding[];
}

/**
 * Builds the JSON document.
 *
 * @example
 * JSON.stringify(toDocument(result, { policy: '/srv/policy.yaml' }), null, 2);
 */
export function toDocument(result: DiscoveryResult, meta: { policy?: string; now?: Date } = {}): DiscoveryDocument {
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, result.findings.filter((f) => f.severity === s).length])) as Record<Severity, number>;
  return {
    format: DISCOVERY_FORMAT,
    generated_at: (meta.now ?? new Date()).toISOString(),
    policy: meta.policy ?? null,
    summary: {
      servers: result.servers.length,
      reachable: result.servers.filter((s) => s.status === 'ok').length,
      unreachable: result.servers.filter((s) => s.status === 'unreachable').length,
      tools: result.tools.length,
      findings: result.findings.length,
      by_severity: bySeverity,
    },
    servers: result.servers.map((s) => ({
      name: s.name,
      transport: s.transport,
      status: s.status,
      ...(s.error !== undefined ? { error: s.error } : {}),
      duration_ms: s.durationMs,
      tool_count: s.toolCount,
      ...(s.serverInfo ? { server_info: s.serverInfo } : {}),
    })),
    tools: result.tools.map((t) => ({
      name: t.name,
      server: t.server,
      mcp_name: t.mcpName,
      ...(t.title !== undefined ? { title: t.title } : {}),
      description: t.description,
      risk: t.risk,
      read_only: t.readOnly,
      annotations: { ...(t.definition.annotations ?? {}) },
      sha256: t.sha256,
      findings: t.findings,
    })),
    findings: result.findings,
  };
}

const RULE_LABELS: Record<string, string> = {
  'CF-EXEC-001': 'exec',
  'CF-MONEY-001': 'money',
  'CF-SSRF-001': 'ssrf',
  'CF-FS-001': 'fs-write',
  'CF-SECRET-001': 'secrets',
  'CF-TEXT-001': 'free-text',
  'CF-MUT-001': 'undeclared-mutation',
  'CF-PROMPT-001': 'prompt-injection',
  'CF-UNICODE-001': 'hidden-unicode',
  'CF-SHADOW-001': 'shadowing',
  'CF-SCHEMA-001': 'schema-too-complex',
};

/**
 * The readable report: a table (server, tool, risk, findings), unreachable
 * servers, then each finding with its remediation and framework ids.
 *
 * @example
 * process.stdout.write(formatTable(result));
 */
export function formatTable(result: DiscoveryResult): string {
  const findingsById = new Map(result.findings.map((f) => [f.id, f]));
  const rows: string[][] = [['SERVER', 'TOOL', 'RISK', 'FINDINGS']];
  for (const t of result.tools) {
    const labels = t.findings.map((id) => {
      const f = findingsById.get(id);
      return f ? `${RULE_LABELS[f.rule] ?? f.rule}(${f.severity})` : id;
    });
    rows.push([visible(t.server), visible(t.mcpName), t.risk, labels.length > 0 ? labels.join(', ') : '-']);
  }
  for (const s of result.servers) {
    if (s.status === 'unreachable') rows.push([visible(s.name), '-', 'unreachable', visible(s.error ?? '')]);
  }
  const widths = [0, 1, 2].map((c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  const lines = rows.map((r) => r.map((cell, c) => (c < 3 ? cell.padEnd(widths[c] ?? 0) : cell)).join('  ').trimEnd());

  const out: string[] = [...lines, ''];
  if (result.findings.length > 0) {
    out.push('Findings:');
    for (const f of result.findings) {
      out.push(`  [${f.severity}] ${visible(f.id)}`);
      out.push(`      ${f.title}: ${visible(f.detail)}`);
      out.push(`      fix: ${f.remediation}`);
      out.push(`      OWASP ${f.owasp.join('; ')} | NIST AI RMF ${f.nist.join(', ')} | ATLAS ${f.atlas.map((a) => `${a} ${MITRE_ATLAS[a] ?? ''}`.trim()).join('; ')}`);
    }
    out.push('');
  }
  const reachable = result.servers.filter((s) => s.status === 'ok').length;
  const counts = SEVERITIES.map((s) => [s, result.findings.filter((f) => f.severity === s).length] as const)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${n} ${s}`);
  out.push(
    `${result.tools.length} tool${result.tools.length === 1 ? '' : 's'} on ${reachable}/${result.servers.length} server${result.servers.length === 1 ? '' : 's'}; ` +
      `${result.findings.length} finding${result.findings.length === 1 ? '' : 's'}${counts.length > 0 ? ` (${counts.join(', ')})` : ''}.`,
  );
  return `${out.join('\n')}\n`;
}

/**
 * Makes untrusted text safe for a terminal: control, bidi, zero-width and tag
 * characters become `\u{…}` escapes, so they are seen rather than obeyed.
 *
 * @example
 * visible('ok\u200Bthen\u001b[2J'); // 'ok\\u{200b}then\\u{1b}[2J'
 */
export function visible(text: string): string {
  return text.replace(
    /[\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2069\uFEFF]|[\u{E0000}-\u{E007F}]/gu,
    (c) => `\\u{${(c.codePointAt(0) ?? 0).toString(16)}}`,
  );
}
