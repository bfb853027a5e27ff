/** How the CLI prints verification decisions. */
import type { Decision } from '../verify/decision.js';

function inSeconds(date: Date): string {
  const s = Math.round((date.getTime() - Date.now()) / 1000);
  return s >= 0 ? `in ${s}s` : `${-s}s ago`;
}

/** `OK tok_… tool=… capability=… agent=… expires=… (in Ns)` or `DENIED <code>: <reason>`. */
export function formatDecision(d: Decision): string {
  if (!d.allowed) return `DENIED ${d.code}: ${d.reason}`;
  const c = d.claims!;
  const expires = d.expiresAt!;
  return [
    'OK',
    d.tokenId,
    `tool=${c.tool}`,
    `capability=${c.cap ?? '-'}`,
    `agent=${c.sub ?? '-'}`,
    `expires=${expires.toISOString()} (${inSeconds(expires)})`,
  ].join(' ');
}

/** The decision as JSON for `--json`. */
export function decisionJson(d: Decision): string {
  return JSON.stringify({
    allowed: d.allowed,
    code: d.code,
    reason: d.reason,
    token_id: d.tokenId ?? null,
    tool: d.claims?.tool ?? null,
    capability: d.claims?.cap ?? null,
    agent: d.claims?.sub ?? null,
    expires_at: d.expiresAt?.toISOString() ?? null,
  });
}
