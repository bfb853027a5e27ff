/**
 * Plumbing for the MCP-surface tests of `capframe serve`: the conformance fixture
 * (test/fixtures/conformance-server.mjs) as the upstream, over Streamable HTTP (its own
 * child process) or stdio (a child of serve), logging every message it receives to
 * MESSAGE_LOG; a policy with two agents, A and B; and SDK clients that declare sampling,
 * elicitation and roots with handlers that record what reaches them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
  type ClientCapabilities,
} from '@modelcontextprotocol/sdk/types.js';
import { parse, stringify } from 'yaml';

import type { AuditRecord } from '../../src/audit/record.js';
import { ROOT } from '../helpers.js';
import { createPolicyEnv, sha256Hex, startServe, type PolicyEnv, type ServeProcess } from './e2e-helpers.js';

export const FIXTURE = join(ROOT, 'test', 'fixtures', 'conformance-server.mjs');
export const KEY_A = `cfk_agent_a_${'a'.repeat(40)}`;
export const KEY_B = `cfk_agent_b_${'b'.repeat(40)}`;

/** Polls `probe` until it returns a value (generous deadline: the machine is shared). */
export async function until<T>(what: string, probe: () => T | undefined | false, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** One line of the fixture's MESSAGE_LOG. */
export interface MessageLine {
  server: string;
  method: string;
  params: Record<string, unknown> | null;
}

function readJsonLines<T>(file: string): T[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as T);
}

/** A fixture listening on HTTP (its own process), for serve to reach by URL. */
export interface HttpFixture {
  url: string;
  stop(): Promise<void>;
}

export async function startHttpFixture(env: Record<string, string>): Promise<HttpFixture> {
  const child: ChildProcess = spawn(process.execPath, [FIXTURE, '--port', '0'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const url = await until('the fixture to listen', () => /listening on (\S+)/.exec(stderr)?.[1]);
  return {
    url,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export type UpstreamKind = 'http' | 'stdio';

export interface SurfaceEnv {
  env: PolicyEnv;
  serve: ServeProcess;
  /** The fixture's message log: what reached the upstream. */
  messages(): MessageLine[];
  /** The audit log's lines. */
  audit(): AuditRecord[];
  stop(): Promise<void>;
}

export interface SurfaceOptions {
  upstream: UpstreamKind;
  /** Extra keys of the fixture's server entry (names, relay, …). */
  server?: Record<string, unknown>;
  /** The rules (agents `a` and `b` exist). */
  rules: Record<string, unknown>[];
  /** Extra environment for the fixture. */
  fixtureEnv?: Record<string, string>;
  /** Extra top-level policy keys. */
  policy?: Record<string, unknown>;
  /** The fixture's server name in the policy (default `conf`). */
  name?: string;
  /** No agents in the policy (capability mode); by default agents `a` and `b` exist. */
  noAgents?: boolean;
}

/** Starts the fixture (HTTP: its own process) and `capframe serve` in front of it. */
export async function startSurface(options: SurfaceOptions): Promise<SurfaceEnv> {
  let fixture: HttpFixture | undefined;
  let messageLog = '';
  const env = createPolicyEnv(({ dir }) => {
    messageLog = join(dir, 'messages.log');
    return {
      version: '0.2',
      default_policy: 'deny',
      ...options.policy,
      ...(options.noAgents !== true && { agents: { a: { key_sha256: sha256Hex(KEY_A), auto_mint: true }, b: { key_sha256: sha256Hex(KEY_B), auto_mint: true } } }),
      servers: {},
      rules: options.rules,
    };
  });
  const fixtureEnv = { MESSAGE_LOG: messageLog, CALL_LOG: env.callLog, ...options.fixtureEnv };
  const name = options.name ?? 'conf';
  let entry: Record<string, unknown>;
  if (options.upstream === 'http') {
    fixture = await startHttpFixture(fixtureEnv);
    entry = { url: fixture.url, timeout: 30, ...options.server };
  } else {
    entry = { command: process.execPath, args: [FIXTURE, '--stdio'], env: fixtureEnv, timeout: 30, ...options.server };
  }
  // The policy is rewritten with the server entry now that the fixture's URL is known.
  const doc = parse(readFileSync(env.policyFile, 'utf8')) as { capframe: { servers: Record<string, unknown> } };
  doc.capframe.servers = { [name]: entry };
  writeFileSync(env.policyFile, stringify(doc));
  let serve: ServeProcess;
  try {
    serve = await startServe(env);
  } catch (error) {
    await fixture?.stop();
    throw error;
  }
  return {
    env,
    serve,
    messages: () => readJsonLines<MessageLine>(messageLog),
    audit: () => readJsonLines<AuditRecord>(join(env.stateDir, 'audit.log')),
    async stop() {
      await serve.stop();
      await fixture?.stop();
      env.remove();
    },
  };
}

/** What reached one client: the upstream's requests and the notifications the proxy sent it. */
export interface Recorder {
  sampling: unknown[];
  elicitation: unknown[];
  roots: unknown[];
  logs: unknown[];
  listChanged: string[];
  updated: string[];
}

/**
 * An SDK client of the proxy with agent key `key`, declaring `capabilities` (default:
 * sampling, elicitation and roots) and recording everything that reaches it.
 */
export async function surfaceClient(url: string, key: string, capabilities: ClientCapabilities = { sampling: {}, elicitation: {}, roots: {} }): Promise<{ client: Client; seen: Recorder }> {
  const client = new Client({ name: 'surface-test', version: '1.0.0' }, { capabilities });
  const seen: Recorder = { sampling: [], elicitation: [], roots: [], logs: [], listChanged: [], updated: [] };
  if (capabilities.sampling !== undefined) {
    client.setRequestHandler(CreateMessageRequestSchema, (request) => {
      seen.sampling.push(request.params);
      return { role: 'assistant', content: { type: 'text', text: `sampled for ${key.slice(0, 11)}` }, model: 'test-model', stopReason: 'endTurn' };
    });
  }
  if (capabilities.elicitation !== undefined) {
    client.setRequestHandler(ElicitRequestSchema, (request) => {
      seen.elicitation.push(request.params);
      return { action: 'accept', content: { username: key.slice(0, 11), email: 'x@example.com' } };
    });
  }
  if (capabilities.roots !== undefined) {
    client.setRequestHandler(ListRootsRequestSchema, () => {
      seen.roots.push(true);
      return { roots: [{ uri: `file:///home/${key.slice(4, 11)}`, name: 'home' }] };
    });
  }
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void seen.logs.push(n.params));
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => void seen.listChanged.push('tools'));
  client.setNotificationHandler(PromptListChangedNotificationSchema, () => void seen.listChanged.push('prompts'));
  client.setNotificationHandler(ResourceListChangedNotificationSchema, () => void seen.listChanged.push('resources'));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void seen.updated.push(n.params.uri));
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: { authorization: `Bearer ${key}` } } }));
  return { client, seen };
}

/** The first text of a tool result. */
export function firstText(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content[0]?.type === 'text' ? (content[0].text ?? '') : '';
}
