/** Shared shapes of the discovery module. */
import type { Tool } from '@modelcontextprotocol/sdk/types.js';

import type { UpstreamConfig } from '../mcp/connect.js';

/** Finding severities, most severe first. */
export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'info'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** A tool's risk: its most severe finding, or `none`. */
export type Risk = Severity | 'none';

/** Stable rule identifiers; a finding's id is `<rule>:<server>.<tool>`. */
export type RuleId =
  | 'CF-EXEC-001'
  | 'CF-MONEY-001'
  | 'CF-SSRF-001'
  | 'CF-FS-001'
  | 'CF-SECRET-001'
  | 'CF-TEXT-001'
  | 'CF-MUT-001'
  | 'CF-PROMPT-001'
  | 'CF-UNICODE-001'
  | 'CF-SHADOW-001'
  | 'CF-SCHEMA-001';

/** One problem with one tool. */
export interface Finding {
  /** `<rule>:<server>.<tool>`, stable across runs. */
  id: string;
  rule: RuleId;
  severity: Severity;
  server: string;
  /** `<server>.<tool>`, the name the policy and the proxy use. */
  tool: string;
  title: string;
  /** What exactly was seen: which arguments, words or characters. */
  detail: string;
  /** Display paths of the arguments involved (`amount`, `payment.amount`, `urls[]`). */
  args: string[];
  remediation: string;
  /** OWASP Top 10 for LLM Applications 2025, e.g. `LLM06:2025 Excessive Agency`. */
  owasp: string[];
  /** NIST AI RMF 1.0 subcategories, e.g. `MEASURE 2.7`. */
  nist: string[];
  /** MITRE ATLAS technique ids, e.g. `AML.T0051.001`. */
  atlas: string[];
}

/** A tool seen on a server, with its classification. */
export interface ToolReport {
  /** `<server>.<tool>`. */
  name: string;
  server: string;
  /** The MCP tool name as the server spells it. */
  mcpName: string;
  title?: string;
  description: string;
  risk: Risk;
  /** True when the server declares `readOnlyHint: true`. */
  readOnly: boolean;
  /** SHA-256 of the canonical definition (the value `--lock` pins). */
  sha256: string;
  /** Finding ids, most severe first. */
  findings: string[];
  /** Constraint hints for a drafted policy: argument paths by kind. */
  hints: ArgumentHints;
  /** The definition as listed. */
  definition: Tool;
}

/** Arguments a drafted policy could constrain, as dotted paths (only those a SPEC §4 path can name). */
export interface ArgumentHints {
  money: { arg: string; required: boolean }[];
  url: { arg: string; required: boolean }[];
  path: { arg: string; required: boolean }[];
  /** Unconstrained strings of a side-effecting tool. */
  text: { arg: string; required: boolean }[];
}

/** What happened when discovery contacted one server. */
export interface ServerReport {
  name: string;
  transport: 'stdio' | 'http';
  status: 'ok' | 'unreachable';
  /** Why it is unreachable (one line). */
  error?: string;
  durationMs: number;
  toolCount: number;
  serverInfo?: { name: string; version: string };
}

/** Everything `discover` learned. */
export interface DiscoveryResult {
  servers: ServerReport[];
  tools: ToolReport[];
  /** All findings, most severe first, then by tool name. */
  findings: Finding[];
}

export type { Tool, UpstreamConfig };
