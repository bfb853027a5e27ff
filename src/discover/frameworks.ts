/**
 * Framework identifiers attached to every finding, so a report can be filed
 * against the control set an organisation already tracks:
 * OWASP Top 10 for LLM Applications 2025, NIST AI RMF 1.0 (subcategories) and
 * MITRE ATLAS (techniques, names as of the 2026 data releases).
 */
import type { RuleId } from './types.js';

/** OWASP Top 10 for LLM Applications 2025, id → label used in findings. */
export const OWASP_LLM_2025 = {
  LLM01: 'LLM01:2025 Prompt Injection',
  LLM02: 'LLM02:2025 Sensitive Information Disclosure',
  LLM03: 'LLM03:2025 Supply Chain',
  LLM04: 'LLM04:2025 Data and Model Poisoning',
  LLM05: 'LLM05:2025 Improper Output Handling',
  LLM06: 'LLM06:2025 Excessive Agency',
  LLM07: 'LLM07:2025 System Prompt Leakage',
  LLM08: 'LLM08:2025 Vector and Embedding Weaknesses',
  LLM09: 'LLM09:2025 Misinformation',
  LLM10: 'LLM10:2025 Unbounded Consumption',
} as const;

/** The NIST AI RMF 1.0 subcategories the rules cite, with their text (abridged). */
export const NIST_AI_RMF: Readonly<Record<string, string>> = {
  'GOVERN 6.1': 'Policies and procedures address AI risks associated with third-party entities',
  'MAP 3.5': 'Processes for human oversight are defined, assessed, and documented',
  'MAP 4.1': 'Approaches for mapping the risks of AI components, including third-party software, are in place and documented',
  'MAP 4.2': 'Internal risk controls for components of the AI system, including third-party AI technologies, are identified and documented',
  'MEASURE 2.6': 'The AI system is evaluated for safety risks and can fail safely',
  'MEASURE 2.7': 'AI system security and resilience are evaluated and documented',
  'MEASURE 2.10': 'Privacy risk of the AI system is examined and documented',
  'MANAGE 1.3': 'Responses to high-priority AI risks are developed, planned, and documented',
  'MANAGE 2.4': 'Mechanisms are in place to supersede, disengage, or deactivate AI systems acting outside intended use',
  'MANAGE 3.1': 'AI risks and benefits from third-party resources are regularly monitored, and risk controls are applied',
};

/** The MITRE ATLAS techniques the rules cite. */
export const MITRE_ATLAS: Readonly<Record<string, string>> = {
  'AML.T0010': 'AI Supply Chain Compromise',
  'AML.T0048.000': 'External Harms: Financial Harm',
  'AML.T0050': 'Command and Scripting Interpreter',
  'AML.T0051': 'LLM Prompt Injection',
  'AML.T0051.001': 'LLM Prompt Injection: Indirect',
  'AML.T0053': 'AI Agent Tool Invocation (formerly LLM Plugin Compromise)',
  'AML.T0055': 'Unsecured Credentials',
  'AML.T0057': 'LLM Data Leakage',
  'AML.T0068': 'LLM Prompt Obfuscation',
  'AML.T0086': 'Exfiltration via AI Agent Tool Invocation',
  'AML.T0098': 'AI Agent Tool Credential Harvesting',
  'AML.T0101': 'Data Destruction via AI Agent Tool Invocation',
  'AML.T0110': 'AI Agent Tool Poisoning',
};

export interface FrameworkRefs {
  owasp: string[];
  nist: string[];
  atlas: string[];
}

const O = OWASP_LLM_2025;

/** Which identifiers each rule maps to, and why (the comments). */
export const RULE_FRAMEWORKS: Readonly<Record<RuleId, FrameworkRefs>> = {
  // An agent that can run commands has the host's privileges: the textbook excessive-agency case.
  'CF-EXEC-001': { owasp: [O.LLM06, O.LLM05], nist: ['MANAGE 1.3', 'MANAGE 2.4', 'MEASURE 2.7'], atlas: ['AML.T0053', 'AML.T0050'] },
  // Moving money with no ceiling: direct financial harm from one manipulated call.
  'CF-MONEY-001': { owasp: [O.LLM06], nist: ['MAP 3.5', 'MANAGE 1.3', 'MEASURE 2.6'], atlas: ['AML.T0053', 'AML.T0048.000'] },
  // Model-chosen URLs reach internal services (SSRF) or carry data out.
  'CF-SSRF-001': { owasp: [O.LLM06, O.LLM05], nist: ['MEASURE 2.7', 'MANAGE 1.3'], atlas: ['AML.T0053', 'AML.T0086'] },
  'CF-FS-001': { owasp: [O.LLM06], nist: ['MEASURE 2.7', 'MANAGE 1.3'], atlas: ['AML.T0053', 'AML.T0101'] },
  'CF-SECRET-001': { owasp: [O.LLM02, O.LLM06], nist: ['MEASURE 2.7', 'MEASURE 2.10'], atlas: ['AML.T0055', 'AML.T0098', 'AML.T0057'] },
  // Unbounded text into a side effect is both an injection sink and an exfiltration channel.
  'CF-TEXT-001': { owasp: [O.LLM05, O.LLM06], nist: ['MEASURE 2.7'], atlas: ['AML.T0053', 'AML.T0086'] },
  // The server does not say what the tool changes, so nobody reviewed it.
  'CF-MUT-001': { owasp: [O.LLM06], nist: ['MAP 4.2', 'GOVERN 6.1'], atlas: ['AML.T0053'] },
  // Tool-description poisoning is indirect prompt injection delivered through the supply chain.
  'CF-PROMPT-001': { owasp: [O.LLM01, O.LLM03], nist: ['MEASURE 2.7', 'MANAGE 3.1', 'GOVERN 6.1'], atlas: ['AML.T0051.001', 'AML.T0110'] },
  'CF-UNICODE-001': { owasp: [O.LLM01, O.LLM03], nist: ['MEASURE 2.7', 'MANAGE 3.1'], atlas: ['AML.T0051.001', 'AML.T0068', 'AML.T0110'] },
  'CF-SHADOW-001': { owasp: [O.LLM03, O.LLM06], nist: ['MANAGE 3.1', 'GOVERN 6.1', 'MAP 4.1'], atlas: ['AML.T0010', 'AML.T0110'] },
  'CF-SCHEMA-001': { owasp: [O.LLM06], nist: ['MEASURE 2.7'], atlas: ['AML.T0053'] },
};

/**
 * The framework identifiers for a rule (fresh arrays, safe to mutate).
 *
 * @example
 * frameworksFor('CF-EXEC-001').owasp; // ['LLM06:2025 Excessive Agency', 'LLM05:2025 Improper Output Handling']
 */
export function frameworksFor(rule: RuleId): FrameworkRefs {
  const refs = RULE_FRAMEWORKS[rule];
  return { owasp: [...refs.owasp], nist: [...refs.nist], atlas: [...refs.atlas] };
}
