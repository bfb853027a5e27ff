/**
 * A fleet for the tests: `capframe serve` instances on one Redis, each with its own
 * policy file, state directory and audit log (nothing shared but Redis and the issuer
 * key, given to all as CAPFRAME_ISSUER_KEY), plus capframeGuard-ed tool servers.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { stringify } from 'yaml';

import { generateKeyPair, type KeyPair } from '../../src/index.js';
import { encodeBase64url } from '../../src/lib/base64url.js';
import { CLI, ROOT, tempDir, type CliResult } from '../helpers.js';
import { connectClient, runAsync, startServe, type Served } from '../proxy/faults-helpers.js';

export const ADMIN_KEY = 'fleet-admin-key-for-tests';
const DATABASE = join(ROOT, 'examples', 'servers', 'database.js');
const GUARD = join(ROOT, 'test', 'fixtures', 'guarded-server.js');

export interface Fleet {
  dir: string;
  issuer: KeyPair;
  /** Every tools/call the upstreams of every instance received (one CALL_LOG). */
  upstreamCalls(): number;
  /** Writes a policy for one instance (its own state directory) and returns its path. */
  policy(name: string, body?: Record<string, unknown>): string;
  /** Starts `capframe serve` on the named instance's policy. */
  serve(name: string, options?: { env?: Record<string, string>; body?: Record<string, unknown> }): Promise<Instance>;
  /** The environment every process of the fleet runs with. */
  env: Record<string, string>;
}

export interface Instance extends Served {
  name: string;
  policyFile: string;
  client: Client;
  /** tools/call database.query with `token`. */
  query(token: string, sql?: string): Promise<CallToolResult>;
  /** POST /v1/revocations {id}. */
  revoke(id: string): Promise<Response>;
  health(): Promise<{ status: number; body: Record<string, unknown> }>;
  metrics(): Promise<string>;
}

/**
 * `store`: the Redis URL the policies name. `rules`: the policy's rules (default: one
 * rule for database.query). Instances differ only in name (state directory, audit log).
 */
export function createFleet(store: string, options: { rules?: unknown[]; extra?: Record<string, unknown> } = {}): Fleet {
  const dir = tempDir('capframe-fleet-');
  const callLog = join(dir, 'calls.log');
  writeFileSync(callLog, '');
  const issuer = generateKeyPair();
  const env = { CAPFRAME_ISSUER_KEY: encodeBase64url(issuer.secretKey), CAPFRAME_ADMIN_KEY: ADMIN_KEY, CAPFRAME_LOG_LEVEL: 'info' };
  const policy = (name: string, body: Record<string, unknown> = {}) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      stringify({
        capframe: {
          version: '0.2',
          default_policy: 'deny',
          state_dir: `state-${name}`,
          store,
          redis: { prefix: 'fleet:', revocation_grace: 1 },
          servers: { database: { command: process.execPath, args: [DATABASE], env: { CALL_LOG: callLog } } },
          rules: options.rules ?? [{ tool: 'database.query', ttl: 300 }],
          ...options.extra,
          ...body,
        },
      }),
    );
    return file;
  };
  return {
    dir,
    issuer,
    env,
    policy,
    upstreamCalls: () => (existsSync(callLog) ? readFileSync(callLog, 'utf8').split('\n').filter(Boolean).length : 0),
    async serve(name, serveOptions = {}) {
      const policyFile = policy(name, serveOptions.body);
      const served = await startServe(policyFile, { env: { ...env, ...serveOptions.env }, args: ['--audit-log', join(dir, `audit-${name}.log`)] });
      const client = await connectClient(served.url);
      return {
        ...served,
        name,
        policyFile,
        client,
        query: async (token, sql = 'SELECT name FROM customers WHERE id = 1') =>
          (await client.callTool({ name: 'database.query', arguments: { sql }, _meta: { 'capframe/token': token } })) as CallToolResult,
        revoke: (id) =>
          fetch(`${served.base}/v1/revocations`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ id }) }),
        async health() {
          const res = await fetch(`${served.base}/healthz`);
          return { status: res.status, body: (await res.json()) as Record<string, unknown> };
        },
        metrics: async () => (await fetch(`${served.base}/metrics`)).text(),
      };
    },
  };
}

/**
 * A capframeGuard-ed MCP server (test/fixtures/guarded-server.js) over stdio, on the
 * fleet's Redis (revocations and proof nonces, prefix `fleet:`), counting its calls in
 * its own CALL_LOG.
 */
export async function startGuard(fleet: Fleet, redisUrl: string, extraEnv: Record<string, string> = {}): Promise<Guard> {
  const callLog = join(fleet.dir, `guard-${++guards}.log`);
  writeFileSync(callLog, '');
  const client = new Client({ name: 'fleet-test', version: '1.0.0' });
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [GUARD],
    env: {
      ...(process.env as Record<string, string>),
      GUARD_KEYS: Buffer.from(fleet.issuer.publicKey).toString('hex'),
      GUARD_REDIS_URL: redisUrl,
      GUARD_REDIS_PREFIX: 'fleet:',
      GUARD_PREFIX: 'database.',
      CALL_LOG: callLog,
      ...extraEnv,
    },
    stderr: 'inherit',
  });
  await client.connect(transport);
  return {
    client,
    call: async (meta, sql = 'SELECT 1') => (await client.callTool({ name: 'query', arguments: { sql }, _meta: meta })) as CallToolResult,
    query: async (token) => (await client.callTool({ name: 'query', arguments: { sql: 'SELECT 1' }, _meta: { 'capframe/token': token } })) as CallToolResult,
    calls: () => readFileSync(callLog, 'utf8').split('\n').filter(Boolean).length,
    close: () => client.close(),
  };
}

let guards = 0;

export interface Guard {
  client: Client;
  call(meta: Record<string, unknown>, sql?: string): Promise<CallToolResult>;
  query(token: string): Promise<CallToolResult>;
  /** Times the guarded tool ran. */
  calls(): number;
  close(): Promise<void>;
}

/** The `DENIED <code>` of a result, or `ok`. */
export function outcome(result: CallToolResult): string {
  if (result.isError !== true) return 'ok';
  const first = result.content?.[0];
  const text = first?.type === 'text' ? first.text : '';
  return /^DENIED (\w+): /.exec(text)?.[1] ?? text;
}

/** p-th percentile (0..100) of `values`, nearest rank. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Runs `capframe <args>` with the fleet's environment, without blocking the event loop. */
export function cliWith(env: Record<string, string>, args: string[], timeoutMs = 30_000): Promise<CliResult> {
  return runAsync(process.execPath, [CLI, ...args], { env, timeoutMs });
}
