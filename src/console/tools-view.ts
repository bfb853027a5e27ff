/**
 * The console's tools view: every upstream tool with its discovery findings (the same
 * rules as `capframe discover`, run over the definitions the proxy was served), whether it
 * is served, and its pin state against `capframe.lock.json`.
 */
import { riskOf } from '../discover/discover.js';
import { visible } from '../discover/report.js';
import { classifyTool, shadowingFindings, sortFindings } from '../discover/rules.js';
import type { Finding, Risk, Tool } from '../discover/types.js';
import { truncate } from '../lib/truncate.js';
import type { CatalogServer, CatalogTool } from '../proxy/upstreams.js';

/** Texts from upstreams are untrusted: hidden characters shown as escapes, lengths bounded. */
const shown = (text: string, max: number): string => visible(truncate(text, max));

export interface ToolsViewFinding {
  rule: string;
  severity: Finding['severity'];
  title: string;
  detail: string;
  remediation: string;
}

export interface ToolsViewTool {
  /** `<server>.<tool>`. */
  name: string;
  description: string;
  status: CatalogTool['status'];
  reason?: string;
  pin: CatalogTool['pin'];
  risk: Risk;
  findings: ToolsViewFinding[];
}

export interface ToolsViewServer {
  server: string;
  up: boolean;
  restarts: number;
  lastError?: string;
  tools: ToolsViewTool[];
  lockedMissing: string[];
}

/** Tools shown per server at most; a server listing more says how many were left out. */
export const MAX_TOOLS_PER_SERVER = 500;

/** Findings of one definition, cached per definition object (the pool replaces them when it re-lists). */
const findingsCache = new WeakMap<Tool, Finding[]>();

function findingsOf(server: string, tool: Tool): Finding[] {
  let found = findingsCache.get(tool);
  if (found === undefined) {
    found = classifyTool(server, tool);
    findingsCache.set(tool, found);
  }
  return found;
}

/**
 * The tools view of a pool's catalog.
 *
 * @example
 * toolsView(rt.upstreams.catalog()); // [{ server: 'database', up: true, tools: [{ name: 'database.query', risk: 'medium', … }] }]
 */
export function toolsView(catalog: readonly CatalogServer[]): { servers: (ToolsViewServer & { omitted: number })[] } {
  const listed = catalog.flatMap((s) => s.tools.filter((t) => t.definition !== undefined).map((t) => ({ server: s.server, tool: t.definition as Tool })));
  const shadowing = new Map<string, Finding[]>();
  for (const f of shadowingFindings(listed)) shadowing.set(f.tool, [...(shadowing.get(f.tool) ?? []), f]);
  return {
    servers: catalog.map((s) => ({
      server: s.server,
      up: s.up,
      restarts: s.restarts,
      ...(s.lastError !== undefined && { lastError: shown(s.lastError, 300) }),
      omitted: Math.max(0, s.tools.length - MAX_TOOLS_PER_SERVER),
      lockedMissing: s.lockedMissing.slice(0, MAX_TOOLS_PER_SERVER).map((t) => shown(t, 200)),
      tools: s.tools.slice(0, MAX_TOOLS_PER_SERVER).map((t) => {
        const qualified = `${s.server}.${t.name}`;
        const findings = sortFindings([...(t.definition === undefined ? [] : findingsOf(s.server, t.definition)), ...(shadowing.get(qualified) ?? [])]);
        return {
          name: shown(qualified, 200),
          description: shown(t.definition?.description ?? '', 600),
          status: t.status,
          ...(t.reason !== undefined && { reason: shown(t.reason, 600) }),
          pin: t.pin,
          risk: riskOf(findings),
          findings: findings.map((f) => ({ rule: f.rule, severity: f.severity, title: f.title, detail: shown(f.detail, 400), remediation: f.remediation })),
        };
      }),
    })),
  };
}
