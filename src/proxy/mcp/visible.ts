/**
 * What a caller may see (SPEC §6): every list is the upstreams' lists, under the names
 * clients use, filtered to what the policy could grant this caller. A resource template
 * is shown when some URI it expands to could be read (its `{…}` expressions read as `*`).
 */
import { createHash } from 'node:crypto';

import type { Prompt, Resource, ResourceTemplate, Tool } from '@modelcontextprotocol/sdk/types.js';

import type { Policy } from '../../policy/types.js';
import type { UpstreamPool } from '../upstreams.js';

/** The caller lists are filtered for: an agent, or anonymous (capability mode). */
export interface Viewer {
  agent: string | undefined;
}

/** A fingerprint of a list as a client fetched it: list_changed is sent when it would differ. */
export function fingerprintOf(list: unknown): string {
  return createHash('sha256').update(JSON.stringify(list)).digest('base64url');
}

/** A template's URIs as a glob: each `{…}` expression matches anything. */
export function templateGlob(uriTemplate: string): string {
  return uriTemplate.replace(/\{[^}]*\}/g, '*');
}

export function visibleTools(pool: UpstreamPool, policy: Policy, viewer: Viewer): Tool[] {
  const out: Tool[] = [];
  for (const t of pool.tools()) if (policy.couldGrant(t.qualified, viewer.agent)) out.push({ ...t.definition, name: t.shown });
  return out;
}

export function visiblePrompts(pool: UpstreamPool, policy: Policy, viewer: Viewer): Prompt[] {
  const out: Prompt[] = [];
  for (const p of pool.prompts()) if (policy.prompts.couldGrant(p.qualified, viewer.agent)) out.push({ ...p.definition, name: p.shown });
  return out;
}

export function visibleResources(pool: UpstreamPool, policy: Policy, viewer: Viewer): Resource[] {
  const out: Resource[] = [];
  for (const r of pool.resources()) if (policy.resources.couldGrant(r.qualified, viewer.agent)) out.push({ ...r.definition, uri: r.shown });
  return out;
}

export function visibleTemplates(pool: UpstreamPool, policy: Policy, viewer: Viewer): ResourceTemplate[] {
  const out: ResourceTemplate[] = [];
  for (const t of pool.templates()) {
    if (policy.resources.couldGrantSome(templateGlob(t.qualified), viewer.agent)) out.push({ ...t.definition, uriTemplate: t.shown });
  }
  return out;
}
