/**
 * The audit guarantee of a forwarded call (issue 13): its `allow` line has been handed
 * to the OS — it is in the file, readable by another process — at the moment the
 * upstream receives the call, so a `kill -9` of the proxy cannot lose it. The
 * upstream here is a stand-in that reads the audit file when the call arrives.
 * (test/proxy/crash.test.ts checks the same end to end with a real kill -9.)
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { describe, expect, it } from 'vitest';

import { canonicalJson, sha256Hex } from '../../src/audit/canonical-json.js';
import { openAuditLog } from '../../src/audit/writer.js';
import { parsePolicy } from '../../src/policy/index.js';
import { Enforcer } from '../../src/proxy/enforce.js';
import { createLogger } from '../../src/proxy/log.js';
import { createCapframeMetrics } from '../../src/proxy/metrics.js';
import type { UpstreamPool } from '../../src/proxy/upstreams.js';
import { openFileStore } from '../../src/store/file-store.js';
import { openKeyStore } from '../../src/store/keys.js';
import { MemoryRateLimiter } from '../../src/store/memory-rate-limit.js';
import { mint } from '../../src/token/mint.js';
import { createVerifier } from '../../src/verify/verifier.js';
import { tempDir } from '../helpers.js';

const dir = tempDir('capframe-audit-forward-');
const store = openFileStore(join(dir, 'state'));
const keys = openKeyStore(join(dir, 'state'));
keys.ensureIssuerKey();
const policy = parsePolicy('capframe:\n  version: "0.2"\n  default_policy: deny\n  rules:\n    - { tool: db.query, ttl: 60 }\n');

describe('a forwarded call', () => {
  it('reaches the upstream only after its allow line is in the audit file, for every call of a burst', async () => {
    const path = join(dir, 'audit.log');
    // No fsync timer: the guarantee is about the write, not the disk.
    const audit = await openAuditLog(path, { syncIntervalMs: 0 });
    const seenAtArrival: boolean[] = [];
    const upstreams = {
      lookup: (tool: string) => ({ state: 'ok' as const, server: 'db', name: tool.slice(3), definition: { name: 'query', inputSchema: { type: 'object' as const } } }),
      call: async (_server: string, _name: string, args: Record<string, unknown>): Promise<CallToolResult> => {
        // What another process (or the disk after kill -9) sees right now.
        const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { decision: string; args_sha256: string });
        const own = sha256Hex(canonicalJson(args));
        seenAtArrival.push(lines.some((l) => l.decision === 'allow' && l.args_sha256 === own));
        return { content: [{ type: 'text', text: 'ok' }] };
      },
    } as unknown as UpstreamPool;
    const enforcer = new Enforcer({
      policy: () => policy,
      verifier: createVerifier({ keys: keys.trustedKeys() }),
      issuer: keys.issuerKey(),
      store,
      upstreams,
      audit,
      metrics: createCapframeMetrics(),
      limiter: new MemoryRateLimiter(),
      log: createLogger({ write: () => undefined }),
    });
    const token = mint({ key: keys.issuerKey(), tool: 'db.query', ttl: 60 }).token;
    // 50 calls decided in one turn: one write covers them all, before any is forwarded.
    const results = await Promise.all(Array.from({ length: 50 }, (_, n) => enforcer.callTool({ auth: { kind: 'open' } }, 'db.query', { n }, { 'capframe/token': token })));
    expect(results.every((r) => r.isError !== true)).toBe(true);
    expect(seenAtArrival).toEqual(Array(50).fill(true));
    // Each call's own line was there: 50 allow lines, in the order decided.
    await audit.close();
    const lines = readFileSync(path, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(50);
  });
});

describe('a forwarded resource read or prompt get', () => {
  // resources/read and prompts/get forward as soon as authorize()/authorizePrompt() answer allowed.
  const surfacePolicy = parsePolicy(
    'capframe:\n  version: "0.2"\n  default_policy: deny\n  rules:\n    - { resource: "docs:file:///srv/*", ttl: 60 }\n    - { prompt: notes.summarize }\n',
  );
  const open = async (name: string) => {
    const path = join(dir, name);
    const audit = await openAuditLog(path, { syncIntervalMs: 0 });
    const enforcer = new Enforcer({
      policy: () => surfacePolicy,
      verifier: createVerifier({ keys: keys.trustedKeys() }),
      issuer: keys.issuerKey(),
      store,
      upstreams: { lookup: () => ({ state: 'ok' as const, server: 'docs', name: 'x', definition: { name: 'x', inputSchema: { type: 'object' as const } } }) } as unknown as UpstreamPool,
      audit,
      metrics: createCapframeMetrics(),
      limiter: new MemoryRateLimiter(),
      log: createLogger({ write: () => undefined }),
    });
    const allowLines = () => readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { decision: string; tool: string }).filter((l) => l.decision === 'allow');
    return { audit, enforcer, allowLines };
  };

  it('is allowed only once its allow line is in the audit file (prompts/get)', async () => {
    const { audit, enforcer, allowLines } = await open('audit-prompt.log');
    const { verdict } = await enforcer.authorizePrompt({ auth: { kind: 'open' } }, 'notes.summarize', { topic: 'x' });
    expect(verdict.allowed).toBe(true);
    // What another process (or the disk after kill -9) sees at the moment the get is forwarded.
    expect(allowLines().map((l) => l.tool)).toEqual(['notes.summarize']);
    await audit.close();
  });

  it('is allowed only once its allow line is in the audit file (resources/read)', async () => {
    const { audit, enforcer, allowLines } = await open('audit-resource.log');
    const token = mint({ key: keys.issuerKey(), tool: 'docs:file:///srv/*', ttl: 60 }).token;
    const { forward } = await enforcer.authorize({ auth: { kind: 'open' } }, 'docs:file:///srv/a', { uri: 'file:///srv/a' }, { 'capframe/token': token });
    expect(forward).toBeDefined();
    expect(allowLines().map((l) => l.tool)).toEqual(['docs:file:///srv/a']);
    await audit.close();
  });
});
