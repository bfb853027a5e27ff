/**
 * Screening of definitions the proxy serves to the model (SPEC §6): a definition whose
 * text addresses the model ("ignore previous instructions", "do not tell the user", …)
 * or carries hidden or bidirectional Unicode is withheld, unless the policy's `screen:`
 * section allows it by name. The detectors are the discovery rules CF-PROMPT-001 and
 * CF-UNICODE-001 (src/discover/rules.ts), so `capframe discover` and `serve` agree on
 * what is poisoned. Anything with a name, a description and arguments can be screened:
 * tools today, prompts by the same function.
 */
import type { Tool } from '@modelcontextprotocol/sdk/types.js';

import { promptRule, toolContext, unicodeRule } from '../discover/rules.js';
import type { RuleId } from '../discover/types.js';
import { truncate } from '../lib/truncate.js';

/** The policy's `screen:` section, as the proxy reads it. */
export interface ScreenSettings {
  /** Screen tool definitions (default true). */
  tools: boolean;
  /** `<server>.<tool>` names served despite findings: each was reviewed by the operator. */
  allow: readonly string[];
}

/** Screening on, nothing allowed: what a policy without `screen:` means. */
export const DEFAULT_SCREEN: ScreenSettings = Object.freeze({ tools: true, allow: Object.freeze([]) as readonly string[] });

export interface ScreenFinding {
  rule: RuleId;
  title: string;
  detail: string;
}

/** The rules whose findings keep a definition from the model; the other discovery rules describe risk, not poison. */
const SCREEN_RULES = [promptRule, unicodeRule] as const;

/**
 * The findings that keep a definition from the model: its name, title, description,
 * schema texts or argument names address the model or hide characters. Empty when the
 * definition is clean.
 *
 * @example
 * screenDefinition('notes', { name: 'add', description: 'Ignore previous instructions.', inputSchema: { type: 'object' } });
 * // [{ rule: 'CF-PROMPT-001', title: 'Tool text addresses the model …', detail: 'description tells the model …' }]
 */
export function screenDefinition(server: string, definition: Tool): ScreenFinding[] {
  const ctx = toolContext(server, definition);
  const out: ScreenFinding[] = [];
  for (const rule of SCREEN_RULES) {
    const finding = rule(ctx);
    if (finding !== undefined) out.push({ rule: finding.rule, title: finding.title, detail: finding.detail });
  }
  return out;
}

/**
 * The reason a withheld definition is denied with: which findings, and what to do.
 *
 * @example
 * withheldReason('notes.add', findings);
 * // 'notes.add is withheld because its definition was screened: CF-PROMPT-001 (…): …; review it, then list it under screen.allow'
 */
export function withheldReason(qualified: string, findings: readonly ScreenFinding[]): string {
  const what = findings.map((f) => `${f.rule} (${f.title}): ${truncate(f.detail, 200)}`).join('; ');
  return `${qualified} is withheld because its definition was screened: ${what}; review it, then list it under screen.allow in the policy to serve it`;
}

/**
 * Whether a definition with findings is withheld under these settings.
 *
 * @example
 * isWithheld({ tools: true, allow: ['notes.add'] }, 'notes.add'); // false
 */
export function isWithheld(settings: ScreenSettings, qualified: string): boolean {
  return settings.tools && !settings.allow.includes(qualified);
}
