/**
 * `discover`: contact every configured server in parallel, list its tools, and
 * classify them. A server that fails or does not answer in time is reported as
 * unreachable; the others are still listed.
 */
import { connectUpstream, isStdioConfig, listAllTools, upstreamTimeoutMs, type Upstream } from '../mcp/connect.js';
import { hashToolDefinition } from './lock.js';
import { argumentHints, classifyContext, shadowingFindings, sortFindings, toolContext } from './rules.js';
import { SEVERITIES, type DiscoveryResult, type Finding, type Risk, type ServerReport, type Tool, type ToolReport, type UpstreamConfig } from './types.js';

/** Per-server deadline when neither `--timeout` nor the server's `timeout` says otherwise. */
export const DEFAULT_DISCOVER_TIMEOUT_MS = 10_000;

/** Progress of one server, for a terminal display. */
export interface DiscoverProgress {
  server: string;
  phase: 'connecting' | 'listing' | 'done' | 'failed';
  toolCount?: number;
  error?: string;
}

export interface DiscoverOptions {
  /** Deadline per server (connect + list), ms. When unset: the server's own `timeout`, else 10 s. */
  timeoutMs?: number;
  /** Base directory for stdio servers (the policy file's directory). */
  cwd?: string;
  onProgress?: (event: DiscoverProgress) => void;
}

/** What one server gave us, before classification. */
export interface ServerListing {
  report: ServerReport;
  tools: Tool[];
}

/**
 * Connects to every server, lists and classifies all tools.
 *
 * @example
 * const result = await discover(policy.servers, { cwd: dirname(policy.file), timeoutMs: 5000 });
 * result.tools.map((t) => `${t.name} ${t.risk}`); // ['shell.exec critical', …]
 */
export async function discover(servers: Readonly<Record<string, UpstreamConfig>>, opts: DiscoverOptions = {}): Promise<DiscoveryResult> {
  const listings = await Promise.all(Object.entries(servers).map(([name, config]) => listServer(name, config, opts)));
  return classifyListings(listings);
}

/**
 * Lists one server's tools within its deadline. Never throws: failures become an
 * `unreachable` report with a one-line reason.
 */
export async function listServer(name: string, config: UpstreamConfig, opts: DiscoverOptions = {}): Promise<ServerListing> {
  const timeoutMs = opts.timeoutMs ?? upstreamTimeoutMs(config, DEFAULT_DISCOVER_TIMEOUT_MS);
  const transport = isStdioConfig(config) ? 'stdio' : 'http';
  const started = performance.now();
  const deadline = Date.now() + timeoutMs;
  const report = (status: ServerReport['status'], extra: Partial<ServerReport> = {}): ServerReport => ({
    name,
    transport,
    status,
    durationMs: Math.round(performance.now() - started),
    toolCount: 0,
    ...extra,
  });
  opts.onProgress?.({ server: name, phase: 'connecting' });
  let upstream: Upstream | undefined;
  try {
    upstream = await connectUpstream(name, config, { timeoutMs, ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) });
    opts.onProgress?.({ server: name, phase: 'listing' });
    const remaining = Math.max(1, deadline - Date.now());
    const tools = await withTimeout(listAllTools(upstream.client, { timeoutMs: remaining }), remaining, `no complete tools/list within ${timeoutMs / 1000}s`);
    const info = upstream.client.getServerVersion();
    opts.onProgress?.({ server: name, phase: 'done', toolCount: tools.length });
    return {
      report: report('ok', { toolCount: tools.length, ...(info ? { serverInfo: { name: info.name, version: info.version } } : {}) }),
      tools,
    };
  } catch (error) {
    // McpError RequestTimeout (-32001) during tools/list: say what timed out.
    const timedOut = (error as { code?: unknown }).code === -32001;
    const message = timedOut
      ? `no complete tools/list within ${timeoutMs / 1000}s`
      : oneLine(error instanceof Error ? error.message : String(error));
    opts.onProgress?.({ server: name, phase: 'failed', error: message });
    return { report: report('unreachable', { error: message }), tools: [] };
  } finally {
    await upstream?.close();
  }
}

/**
 * Classifies listed tools: per-tool rules, then shadowing across servers.
 * Pure and deterministic; exported for tests and for callers that list tools themselves.
 */
export function classifyListings(listings: readonly ServerListing[]): DiscoveryResult {
  const byTool = new Map<string, Finding[]>();
  const tools: ToolReport[] = [];
  const all: Finding[] = [];
  for (const { report, tools: listed } of listings) {
    for (const tool of listed) {
      const ctx = toolContext(report.name, tool);
      const findings = classifyContext(ctx);
      byTool.set(ctx.qualified, findings);
      all.push(...findings);
      const annotations = tool.annotations ?? {};
      tools.push({
        name: ctx.qualified,
        server: report.name,
        mcpName: tool.name,
        ...(tool.title ?? annotations.title ? { title: (tool.title ?? annotations.title) as string } : {}),
        description: tool.description ?? '',
        risk: 'none',
        readOnly: annotations.readOnlyHint === true,
        sha256: hashToolDefinition(tool),
        findings: [],
        hints: argumentHints(ctx),
        definition: tool,
      });
    }
  }
  const shadows = shadowingFindings(listings.flatMap((l) => l.tools.map((tool) => ({ server: l.report.name, tool }))));
  for (const f of shadows) {
    byTool.set(f.tool, [...(byTool.get(f.tool) ?? []), f]);
    all.push(f);
  }
  for (const t of tools) {
    const findings = sortFindings(byTool.get(t.name) ?? []);
    t.findings = findings.map((f) => f.id);
    t.risk = riskOf(findings);
  }
  return { servers: listings.map((l) => l.report), tools, findings: sortFindings(all) };
}

/**
 * The highest severity among findings, or `none`.
 *
 * @example
 * riskOf([]); // 'none'
 */
export function riskOf(findings: readonly Pick<Finding, 'severity'>[]): Risk {
  for (const s of SEVERITIES) if (findings.some((f) => f.severity === s)) return s;
  return 'none';
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, 500);
}

async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(message)), ms + 100);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
