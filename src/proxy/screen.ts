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

import { hiddenCharacters, modelAddressing, promptRule, RULE_INFO, toolContext, unicodeRule } from '../discover/rules.js';
import type { RuleId } from '../discover/types.js';
import { MAX_PASSED_DEPTH } from '../lib/json-depth.js';
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
  if (out.length < SCREEN_RULES.length) out.push(...anywhere(definition, out));
  return out;
}

/**
 * The same two findings for any string of the definition, key or value. The rules read
 * the texts that describe arguments, as far as their schema walk goes; a client shows the
 * model the whole definition, so text beyond that walk (deeper than it goes, in
 * `outputSchema`, unknown keywords, unused `$defs`, `not`, `_meta`, annotations) counts too.
 */
function anywhere(definition: Tool, found: readonly ScreenFinding[]): ScreenFinding[] {
  const prompt: string[] = [];
  const hidden: string[] = [];
  let tooDeep = false;
  const wantPrompt = !found.some((f) => f.rule === 'CF-PROMPT-001');
  const wantHidden = !found.some((f) => f.rule === 'CF-UNICODE-001');
  const text = (value: string, where: string): void => {
    if (wantPrompt && prompt.length < 5) {
      const why = modelAddressing(value);
      if (why !== undefined) prompt.push(`${where} ${why}`);
    }
    if (wantHidden && hidden.length < 5) {
      const chars = hiddenCharacters(value);
      if (chars.length > 0) hidden.push(`${where}: ${chars.slice(0, 6).join(', ')}`);
    }
  };
  const visit = (value: unknown, where: string, depth: number): void => {
    if (typeof value === 'string') return text(value, where);
    if (typeof value !== 'object' || value === null) return;
    if (depth >= MAX_PASSED_DEPTH) {
      tooDeep = true;
      return;
    }
    if (Array.isArray(value)) value.forEach((item, i) => visit(item, `${where}[${i}]`, depth + 1));
    else {
      for (const [key, item] of Object.entries(value)) {
        const at = where === '' ? truncate(key, 60) : `${where}.${truncate(key, 60)}`;
        text(key, `key ${JSON.stringify(truncate(key, 60))}${where === '' ? '' : ` in ${where}`}`);
        visit(item, at, depth + 1);
      }
    }
  };
  visit(definition, '', 0);
  const out: ScreenFinding[] = [];
  const finding = (rule: RuleId, detail: string): ScreenFinding => ({ rule, title: RULE_INFO[rule].title, detail });
  if (prompt.length > 0) out.push(finding('CF-PROMPT-001', `${prompt.join('; ')}.`));
  if (hidden.length > 0) out.push(finding('CF-UNICODE-001', `Invisible or control characters in ${hidden.join('; ')}.`));
  if (tooDeep) out.push(finding('CF-SCHEMA-001', `the definition nests deeper than ${MAX_PASSED_DEPTH} levels and could not be screened.`));
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
