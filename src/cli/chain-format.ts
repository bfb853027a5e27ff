/**
 * How `capframe verify` shows a token's delegation chain: one line per link, root
 * first, each with who signed it, whom it binds, its tools, constraints and
 * expiry, and which link a denial is about. The links are read, not trusted: the
 * decision printed above them says whether they verified.
 */
import { keyId } from '../lib/ed25519.js';
import { readChain } from '../token/chain.js';
import { decodeClaims, tokenId, type Claims } from '../token/claims.js';
import type { Decision } from '../verify/decision.js';

interface LinkView {
  link: number;
  token_id: string;
  signed_by: string;
  holder: string | null;
  tool: string;
  capability: string | null;
  agent: string | null;
  audience: string | null;
  when: unknown[];
  expires_at: string;
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Every readable link, presented token first. */
export function chainView(bytes: Uint8Array): LinkView[] {
  return readChain(bytes).map((link, i) => {
    const c: Claims = decodeClaims(link.payload);
    return {
      link: i,
      token_id: tokenId(c.cti),
      signed_by: hex(link.kid),
      holder: link.holder === undefined ? null : hex(keyId(link.holder)),
      tool: c.tool,
      capability: c.cap ?? null,
      agent: c.sub ?? null,
      audience: c.aud ?? null,
      when: c.when ?? [],
      expires_at: new Date(c.exp * 1000).toISOString(),
    };
  });
}

/** The link a denial is about: the decision's, else the presented token for token-level codes. */
export function failedLink(d: Decision): number | null {
  if (d.allowed) return null;
  if (d.link !== undefined) return d.link;
  return d.code === 'missing_token' ? null : 0;
}

function constraintText(when: unknown[]): string {
  if (when.length === 0) return '-';
  return when
    .map((c) => {
      const { arg, op, value } = c as { arg?: unknown; op?: unknown; value?: unknown };
      return value === undefined ? `${String(arg)} ${String(op)}` : `${String(arg)} ${String(op)} ${JSON.stringify(value)}`;
    })
    .join(', ');
}

/** Text lines, root first; the failing link is marked. */
export function chainLines(links: LinkView[], failed: number | null): string[] {
  const last = links.length - 1;
  return links
    .slice()
    .reverse()
    .map((l) => {
      const name = l.link === last ? (last === 0 ? 'token' : `link ${l.link} (root)`) : `link ${l.link}`;
      const signer = l.link === last ? `issuer key ${l.signed_by}` : `holder key ${l.signed_by}`;
      return [
        `  ${name}: ${l.token_id}`,
        `signed by ${signer}`,
        `holder ${l.holder ?? '-'}`,
        `tool=${l.tool}`,
        ...(l.capability !== null ? [`capability=${l.capability}`] : []),
        ...(l.agent !== null ? [`agent=${l.agent}`] : []),
        ...(l.audience !== null ? [`audience=${l.audience}`] : []),
        `when=[${constraintText(l.when)}]`,
        `expires=${l.expires_at}`,
        ...(failed === l.link ? ['<- FAILED'] : []),
      ].join('  ');
    });
}
