/**
 * The upstream MCP servers behind the proxy: one live connection each, their tools
 * under `<server>.<tool>`, pinning against `capframe.lock.json`, and reconnection
 * with backoff when a server goes away — while the other servers keep working.
 */
import { CallToolResultSchema, ErrorCode, McpError, type CallToolResult, type Tool } from '@modelcontextprotocol/sdk/types.js';

import { canonicalJson } from '../audit/canonical-json.js';
import { compareToLock, type LockFile } from '../discover/lock.js';
import { MAX_PASSED_DEPTH, nestedDeeperThan } from '../lib/json-depth.js';
import { connectUpstream, listAllTools, maxResultBytes, upstreamTimeoutMs, type Upstream, type UpstreamConfig } from '../mcp/connect.js';
import { NotSentError, RefusedAnswer } from '../mcp/stdio-transport.js';
import { callToolOverHttp } from './http-upstream-call.js';
import type { Logger } from './log.js';
import { DEFAULT_SCREEN, isWithheld, screenDefinition, withheldReason, type ScreenSettings } from './screen.js';
import { isValidToolName } from './tool-name.js';
import { UpstreamCallError } from './upstream-error.js';

/** Where a `<server>.<tool>` name stands. */
export type ToolStatus =
  | { state: 'ok'; server: string; name: string; definition: Tool }
  | { state: 'unavailable'; server: string; reason: string }
  | { state: 'changed'; server: string; reason: string }
  | { state: 'withheld'; server: string; reason: string }
  | { state: 'unknown'; reason: string };

interface ServerState {
  name: string;
  config: UpstreamConfig;
  upstream?: Upstream;
  /** Tools to serve, by MCP name. */
  tools: Map<string, Tool>;
  /** Tools whose definition drifted from the lock or that the lock does not know. */
  held: Map<string, string>;
  /** Served tools the screening found poisoned, with the reason; withheld unless `screen.allow` names them. */
  flagged: Map<string, string>;
  /** Tools never served because `<server>.<tool>` is not a valid MCP tool name, or the definition nests too deep to pass on. */
  misnamed: number;
  up: boolean;
  lastError?: string;
  restarts: number;
  attempt: number;
  timer?: NodeJS.Timeout;
}

export interface UpstreamPoolOptions {
  /** Base directory for stdio servers (the policy file's directory). */
  cwd: string;
  /** Handshake and per-call timeout when a server sets none, in ms. */
  defaultTimeoutMs: number;
  lock?: LockFile;
  log: Logger;
  /** Called when a server goes up or down or its tool list changes. */
  onChange?: (server: string, up: boolean) => void;
  /** The policy's `screen:` settings, read when tools are listed and looked up (default: screen, allow nothing). */
  screen?: () => ScreenSettings;
  /** First reconnect delay, doubled per failure up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
}

/** One tool a server listed, served or not, as the operator console shows it. */
export interface CatalogTool {
  /** The MCP tool name as the server spells it. */
  name: string;
  /** As listed; absent for a tool the lock holds back (its definition is not kept). */
  definition?: Tool;
  /**
   * `served`: in tools/list; `withheld`: screened as poisoned and not allowed;
   * `held`: drifted from the lock or not in it.
   */
  status: 'served' | 'withheld' | 'held';
  /** Why it is withheld or held, or the screening findings a `screen.allow` entry overrides. */
  reason?: string;
  /** `locked`: matches its lock entry; `drifted` / `not_in_lock`: held; `no_lock`: nothing is pinned. */
  pin: 'locked' | 'drifted' | 'not_in_lock' | 'no_lock';
}

/** One server in {@link UpstreamPool.catalog}. */
export interface CatalogServer {
  server: string;
  up: boolean;
  restarts: number;
  /** Why it is down (one line), when it is. */
  lastError?: string;
  tools: CatalogTool[];
  /** Locked tools of this server it no longer lists. */
  lockedMissing: string[];
}

export interface ServerHealth {
  up: boolean;
  tools: number;
  restarts: number;
  pid?: number;
}

export class UpstreamPool {
  private readonly servers = new Map<string, ServerState>();
  private closed = false;

  constructor(
    configs: Record<string, UpstreamConfig>,
    private readonly options: UpstreamPoolOptions,
  ) {
    for (const [name, config] of Object.entries(configs)) this.servers.set(name, this.state(name, config));
  }

  private state(name: string, config: UpstreamConfig): ServerState {
    return { name, config, tools: new Map(), held: new Map(), flagged: new Map(), misnamed: 0, up: false, restarts: 0, attempt: 0 };
  }

  /** True once the pool is closed or `s` was replaced or removed by `reconfigure`: its connection must not be used or renewed. */
  private retired(s: ServerState): boolean {
    return this.closed || this.servers.get(s.name) !== s;
  }

  /** Stops a server `reconfigure` took out of the pool: no reconnect, child stopped. */
  private async retire(s: ServerState): Promise<void> {
    clearTimeout(s.timer);
    s.up = false;
    await s.upstream?.close();
  }

  /** Connects every server in parallel; one that fails is retried in the background. */
  async start(): Promise<void> {
    await Promise.all([...this.servers.values()].map((s) => this.connect(s)));
  }

  /** The tools to show, as `<server>.<tool>` with their upstream definitions; withheld ones are left out. */
  *tools(): Generator<{ qualified: string; server: string; definition: Tool }> {
    const screen = this.screenSettings();
    for (const s of this.servers.values()) {
      if (!s.up) continue;
      for (const [name, definition] of s.tools) {
        const qualified = `${s.name}.${name}`;
        if (s.flagged.has(name) && isWithheld(screen, qualified)) continue;
        yield { qualified, server: s.name, definition };
      }
    }
  }

  /** Tools not served per server: screened out (and not allowed) or with an invalid MCP name. For /metrics. */
  withheldCounts(): Record<string, number> {
    const screen = this.screenSettings();
    const out: Record<string, number> = {};
    for (const s of this.servers.values()) {
      let count = s.misnamed;
      for (const name of s.flagged.keys()) if (isWithheld(screen, `${s.name}.${name}`)) count += 1;
      out[s.name] = count;
    }
    return out;
  }

  /** Resolves a `<server>.<tool>` name. Server names are the policy's keys; tool names may contain dots. */
  lookup(qualified: string): ToolStatus {
    const dot = qualified.indexOf('.');
    const s = dot > 0 ? this.servers.get(qualified.slice(0, dot)) : undefined;
    if (s === undefined) return { state: 'unknown', reason: `no upstream server serves "${qualified}"` };
    const name = qualified.slice(dot + 1);
    if (!s.up) return { state: 'unavailable', server: s.name, reason: `upstream "${s.name}" is unavailable${s.lastError ? `: ${s.lastError}` : ''}` };
    const held = s.held.get(name);
    if (held !== undefined) return { state: 'changed', server: s.name, reason: held };
    const definition = s.tools.get(name);
    if (definition === undefined) return { state: 'unknown', reason: `upstream "${s.name}" has no tool "${name}"` };
    if (s.flagged.size > 0) {
      const flagged = s.flagged.get(name);
      if (flagged !== undefined && isWithheld(this.screenSettings(), qualified)) return { state: 'withheld', server: s.name, reason: flagged };
    }
    return { state: 'ok', server: s.name, name, definition };
  }

  /**
   * Calls a tool on its upstream within the server's timeout and `max_result_bytes`.
   * Throws an UpstreamCallError: `not_sent` when the call provably did not leave the
   * proxy (server down, transport closed), else what became of the sent call.
   */
  async call(server: string, name: string, args: Record<string, unknown>, meta: Record<string, unknown>): Promise<CallToolResult> {
    const s = this.servers.get(server);
    const upstream = s?.upstream;
    if (s === undefined || upstream === undefined || !s.up) throw new UpstreamCallError(`upstream "${server}" is unavailable`, 'not_sent');
    const timeout = upstreamTimeoutMs(s.config, this.options.defaultTimeoutMs);
    if (upstream.http !== undefined) {
      try {
        return await callToolOverHttp(upstream.http, name, args, meta, { timeoutMs: timeout, maxResultBytes: maxResultBytes(s.config) });
      } catch (error) {
        // 404 on a session we negotiated: the upstream restarted and forgot it.
        if (error instanceof UpstreamCallError && error.status === 404) this.lost(s, upstream, 'session expired (HTTP 404)');
        throw error;
      }
    }
    // The SDK would report a closed client as a plain "Not connected" Error: check first.
    if (upstream.client.transport === undefined) throw new UpstreamCallError(`upstream "${server}" is not connected`, 'not_sent');
    try {
      // request(), not callTool(): the proxy passes results through; validating them
      // against the tool's output schema is the agent's client's business.
      return await upstream.client.request({ method: 'tools/call', params: { name, arguments: args, _meta: meta } }, CallToolResultSchema, { timeout });
    } catch (error) {
      throw stdioFailure(error);
    }
  }

  /**
   * Every tool each server last listed, served or not, with its pin state: what the
   * operator console shows. Tools of a server that is down are its last listing.
   */
  catalog(): CatalogServer[] {
    const screen = this.screenSettings();
    const lock = this.options.lock;
    return [...this.servers.values()].map((s) => {
      const tools: CatalogTool[] = [];
      for (const [name, definition] of s.tools) {
        const flagged = s.flagged.get(name);
        const withheld = flagged !== undefined && isWithheld(screen, `${s.name}.${name}`);
        tools.push({ name, definition, status: withheld ? 'withheld' : 'served', ...(flagged !== undefined && { reason: flagged }), pin: lock === undefined ? 'no_lock' : 'locked' });
      }
      for (const [name, reason] of s.held) {
        tools.push({ name, status: 'held', reason, pin: lock !== undefined && Object.hasOwn(lock.tools, `${s.name}.${name}`) ? 'drifted' : 'not_in_lock' });
      }
      const listed = new Set([...s.tools.keys(), ...s.held.keys()]);
      const lockedMissing = s.up && lock !== undefined ? Object.values(lock.tools).filter((e) => e.server === s.name && !listed.has(e.tool)).map((e) => e.tool) : [];
      return { server: s.name, up: s.up, restarts: s.restarts, ...(s.lastError !== undefined && { lastError: s.lastError }), tools, lockedMissing };
    });
  }

  health(): Record<string, ServerHealth> {
    const out: Record<string, ServerHealth> = {};
    for (const s of this.servers.values()) {
      out[s.name] = {
        up: s.up,
        tools: s.tools.size,
        restarts: s.restarts,
        ...(s.upstream?.pid !== undefined && { pid: s.upstream.pid }),
      };
    }
    return out;
  }

  /**
   * Applies a reloaded policy's `servers` block: a server only in `configs` is
   * started, one no longer in it is stopped (its tools disappear at once, calls
   * to them answer `no_rule`), and one whose configuration changed in any field
   * is restarted (its tools answer `upstream_unavailable` until it is back).
   * Unchanged servers keep their connection. Each change is logged. Resolves once
   * removed servers are stopped and added or restarted ones have had their first
   * connection attempt; a failed one keeps retrying with backoff, as at start.
   *
   * @example
   * watchPolicy(file, { onReload: (p) => void pool.reconfigure(p.servers), onError });
   */
  async reconfigure(configs: Record<string, UpstreamConfig>): Promise<{ added: string[]; removed: string[]; restarted: string[] }> {
    const result = { added: [] as string[], removed: [] as string[], restarted: [] as string[] };
    if (this.closed) return result;
    const { log } = this.options;
    const stopping: Promise<void>[] = [];
    const starting: ServerState[] = [];
    // The map changes synchronously, so a second reload that arrives while this one
    // awaits sees the new set and diffs against it.
    for (const [name, old] of [...this.servers]) {
      const config = Object.hasOwn(configs, name) ? configs[name] : undefined;
      if (config !== undefined && canonicalJson(config) === canonicalJson(old.config)) continue;
      this.servers.delete(name);
      stopping.push(this.retire(old));
      if (config === undefined) {
        result.removed.push(name);
        log.info('upstream removed by policy reload; stopping it', { server: name, pid: old.upstream?.pid });
        this.options.onChange?.(name, false);
      } else {
        const next = this.state(name, config);
        next.restarts = old.restarts + 1;
        this.servers.set(name, next);
        starting.push(next);
        result.restarted.push(name);
        log.info('upstream changed by policy reload; restarting it', { server: name, pid: old.upstream?.pid, changed: changedFields(old.config, config) });
      }
    }
    for (const [name, config] of Object.entries(configs)) {
      if (this.servers.has(name)) continue;
      const next = this.state(name, config);
      this.servers.set(name, next);
      starting.push(next);
      result.added.push(name);
      log.info('upstream added by policy reload; starting it', { server: name });
    }
    await Promise.all(stopping);
    await Promise.all(starting.map((state) => this.connect(state)));
    return result;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      [...this.servers.values()].map(async (s) => {
        clearTimeout(s.timer);
        s.up = false;
        await s.upstream?.close();
      }),
    );
  }

  private async connect(s: ServerState): Promise<void> {
    const { log } = this.options;
    const timeoutMs = upstreamTimeoutMs(s.config, this.options.defaultTimeoutMs);
    try {
      const upstream = await connectUpstream(s.name, s.config, {
        timeoutMs,
        cwd: this.options.cwd,
        onStderr: (text) => log.debug('upstream stderr', { server: s.name, text: text.trimEnd().slice(0, 2000) }),
      });
      if (this.retired(s)) {
        await upstream.close();
        return;
      }
      const tools = await listAllTools(upstream.client, { timeoutMs });
      if (this.retired(s)) {
        await upstream.close();
        return;
      }
      s.upstream = upstream;
      this.setTools(s, tools);
      s.up = true;
      s.attempt = 0;
      delete s.lastError;
      // A stdio child that dies closes the transport: mark the server down and reconnect.
      upstream.client.onclose = () => this.lost(s, upstream, 'connection closed');
      // E.g. an oversized or malformed message that names no request: dropped, and said so.
      upstream.client.onerror = (error) => log.debug('upstream protocol error', { server: s.name, error: error.message.slice(0, 300) });
      log.info('upstream connected', { server: s.name, transport: upstream.transport, pid: upstream.pid, tools: s.tools.size, held: s.held.size });
      this.options.onChange?.(s.name, true);
    } catch (error) {
      if (this.retired(s)) return;
      s.up = false;
      // The first line says what failed; the rest is the child's stderr, for the operator's
      // log only: agents see lastError in denials, and stderr can quote configuration.
      const [first = '', ...stderr] = (error as Error).message.split('\n');
      s.lastError = first;
      log.error('upstream unavailable', { server: s.name, error: first, ...(stderr.length > 0 && { stderr: stderr.map((l) => l.replace(/^ {2}stderr: /, '')) }) });
      this.options.onChange?.(s.name, false);
      this.schedule(s);
    }
  }

  /** Marks a server down after its connection failed, and reconnects with backoff. */
  private lost(s: ServerState, upstream: Upstream, reason: string): void {
    if (this.closed || s.upstream !== upstream || !s.up) return;
    s.up = false;
    s.lastError = reason;
    this.options.log.warn('upstream went away', { server: s.name, pid: upstream.pid, reason });
    this.options.onChange?.(s.name, false);
    this.schedule(s);
  }

  private schedule(s: ServerState): void {
    if (this.retired(s)) return;
    const base = this.options.backoffMs ?? 250;
    const delay = Math.min(base * 2 ** s.attempt, this.options.maxBackoffMs ?? 10_000);
    s.attempt += 1;
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      s.restarts += 1;
      const previous = s.upstream;
      delete s.upstream;
      void previous?.close().finally(() => this.connect(s));
      if (previous === undefined) void this.connect(s);
    }, delay);
    s.timer.unref();
  }

  /**
   * Applies the lock (drifted or unknown tools are held back, with the reason), leaves
   * out tools whose `<server>.<tool>` is not a valid MCP tool name, and screens the rest:
   * a poisoned definition is flagged, and withheld unless `screen.allow` names it.
   */
  private setTools(s: ServerState, tools: Tool[]): void {
    s.tools = new Map();
    s.held = new Map();
    s.flagged = new Map();
    s.misnamed = 0;
    const { log } = this.options;
    const lock = this.options.lock;
    const diff = lock === undefined ? undefined : compareToLock(lock, s.name, tools);
    const changed = new Map(diff?.changed.map((c) => [c.tool, c.fields]) ?? []);
    const added = new Set(diff?.added ?? []);
    const screen = this.screenSettings();
    for (const tool of tools) {
      const qualified = `${s.name}.${tool.name}`;
      const fields = changed.get(qualified);
      if (!isValidToolName(qualified)) {
        // No agent could call it: the proxy refuses names outside the MCP rules.
        s.misnamed += 1;
        log.warn('tool not served: its name is not a valid MCP tool name', { server: s.name, tool: JSON.stringify(tool.name.slice(0, 200)) });
      } else if (nestedDeeperThan(tool, MAX_PASSED_DEPTH)) {
        // Serving it would break tools/list for every agent: JSON.stringify overflows the stack.
        s.misnamed += 1;
        log.warn(`tool not served: its definition is nested deeper than ${MAX_PASSED_DEPTH} levels`, { tool: qualified });
      } else if (fields !== undefined) {
        const reason = `definition of ${qualified} changed since it was locked (${fields.join(', ')}); review it and re-run \`capframe discover --lock\``;
        s.held.set(tool.name, reason);
        log.warn('tool definition drifted from the lock', { tool: qualified, fields });
      } else if (added.has(qualified)) {
        s.held.set(tool.name, `${qualified} is not in capframe.lock.json; review it and re-run \`capframe discover --lock\``);
        log.warn('tool not in the lock is not served', { tool: qualified });
      } else {
        s.tools.set(tool.name, tool);
        const findings = screenDefinition(s.name, tool);
        if (findings.length > 0) {
          s.flagged.set(tool.name, withheldReason(qualified, findings));
          const rules = findings.map((f) => f.rule);
          if (isWithheld(screen, qualified)) log.warn('tool withheld: its definition was screened as poisoned', { tool: qualified, rules, detail: findings.map((f) => f.detail) });
          else log.info('tool served despite screening findings', { tool: qualified, rules, by: screen.tools ? 'screen.allow' : 'screen.tools: false' });
        }
      }
    }
  }

  private screenSettings(): ScreenSettings {
    return this.options.screen?.() ?? DEFAULT_SCREEN;
  }
}

/** What became of a tools/call on a stdio upstream, from the SDK client's error. */
function stdioFailure(error: unknown): UpstreamCallError {
  if (error instanceof UpstreamCallError) return error;
  if (error instanceof NotSentError) return new UpstreamCallError(error.message, 'not_sent');
  if (error instanceof McpError) {
    if (error.data instanceof RefusedAnswer) return new UpstreamCallError(error.data.reason, error.data.code);
    if (error.code === ErrorCode.RequestTimeout) return new UpstreamCallError('no answer within the timeout', 'upstream_timeout');
    if (error.code === ErrorCode.ConnectionClosed) return new UpstreamCallError('the connection closed before the answer', 'upstream_disconnected');
    return new UpstreamCallError(error.message, 'upstream_error');
  }
  const message = error instanceof Error ? error.message : String(error);
  // Protocol.request rejects this way, before sending, when its transport is gone.
  if (error instanceof Error && message === 'Not connected') return new UpstreamCallError('the upstream is not connected', 'not_sent');
  // A result that failed the CallToolResult schema (a ZodError), or anything else the answer caused.
  return new UpstreamCallError(`the answer is not a valid tools/call result: ${message.slice(0, 300)}`, 'malformed_result');
}

/** Top-level keys of a server entry that differ (names only: values such as env may be secrets). */
function changedFields(before: UpstreamConfig, after: UpstreamConfig): string[] {
  const a = before as Record<string, unknown>;
  const b = after as Record<string, unknown>;
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => canonicalJson(a[k] ?? null) !== canonicalJson(b[k] ?? null)).sort();
}
