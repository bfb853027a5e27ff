/**
 * Tool-definition pinning: `capframe.lock.json` records a SHA-256 of each
 * tool's definition (RFC 8785 canonical JSON), so the runtime can refuse a tool
 * whose definition drifted after review (`tool_changed`) and hold back tools
 * that were never reviewed.
 *
 * The file is deterministic (sorted keys, no timestamps): locking the same
 * servers twice gives byte-identical output, and a diff shows exactly what moved.
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { canonicalJson, sha256Hex } from '../audit/canonical-json.js';
import { CapframeError } from '../errors.js';
import { isRecord } from '../lib/is-record.js';
import type { Tool } from './types.js';

/** The lock file's name; it lives next to the policy file. */
export const LOCK_FILE_NAME = 'capframe.lock.json';

/** The parts of a definition that are pinned, in the order they are reported. */
export const LOCK_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;
export type LockField = (typeof LOCK_FIELDS)[number];

/** One pinned tool. */
export interface LockEntry {
  server: string;
  /** The MCP tool name. */
  tool: string;
  /** Hex SHA-256 of the canonical definition (see {@link hashToolDefinition}). */
  sha256: string;
  /** Hex SHA-256 of each field, so a drift report can say what changed. */
  fields: Record<LockField, string>;
}

/** The parsed lock file. `tools` is keyed `<server>.<tool>`. */
export interface LockFile {
  version: 1;
  algorithm: 'sha256';
  canonicalization: 'RFC 8785';
  tools: Record<string, LockEntry>;
}

/** How a server's current tools differ from the lock. Names are `<server>.<tool>`. */
export interface LockDiff {
  changed: { tool: string; fields: LockField[] }[];
  /** Listed now, not in the lock: not reviewed yet. */
  added: string[];
  /** In the lock, no longer listed. */
  removed: string[];
}

/** The pinned subset of a definition; absent fields stay absent. */
function pinned(tool: Tool): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of LOCK_FIELDS) {
    const value = (tool as Record<string, unknown>)[field];
    if (value !== undefined) out[field] = jsonSafe(value);
  }
  return out;
}

/**
 * Hex SHA-256 over the RFC 8785 canonical JSON of the tool's name, title,
 * description, input and output schema and annotations. Independent of key order
 * and whitespace; any change to any of those fields changes it.
 *
 * @example
 * hashToolDefinition({ name: 'query', description: 'Run a SELECT', inputSchema: { type: 'object' } });
 * // '5f0c…' (64 hex digits)
 */
export function hashToolDefinition(tool: Tool): string {
  return sha256Hex(canonicalJson(pinned(tool)));
}

/**
 * Per-field hashes (an absent field hashes as `null`).
 *
 * @example
 * hashToolFields(tool).description; // 64 hex digits
 */
export function hashToolFields(tool: Tool): Record<LockField, string> {
  const p = pinned(tool);
  const out = {} as Record<LockField, string>;
  for (const field of LOCK_FIELDS) out[field] = sha256Hex(canonicalJson(p[field] ?? null));
  return out;
}

/**
 * Lock entries for one server's tools, keyed `<server>.<tool>`.
 *
 * @example
 * const entries = lockEntries('database', await listAllTools(client));
 * Object.keys(entries); // ['database.query', 'database.update']
 */
export function lockEntries(server: string, tools: readonly Tool[]): Record<string, LockEntry> {
  const out: Record<string, LockEntry> = {};
  for (const tool of tools) {
    out[`${server}.${tool.name}`] = { server, tool: tool.name, sha256: hashToolDefinition(tool), fields: hashToolFields(tool) };
  }
  return out;
}

/**
 * Reads and validates a lock file. Resolves to undefined when the file does not
 * exist (no pinning configured); throws CapframeError(`invalid_lock`) when it
 * exists but is not a valid lock, naming the file and the problem.
 *
 * @example
 * const lock = await readLock(join(dirname(policy.file), LOCK_FILE_NAME));
 * if (lock) compareToLock(lock, 'database', tools);
 */
export async function readLock(file: string): Promise<LockFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CapframeError('invalid_lock', `${file}: cannot read lock file: ${(error as Error).message}`, { cause: error });
  }
  return parseLock(text, file);
}

/** Synchronous {@link readLock}, for start-up code that cannot await. */
export function readLockSync(file: string): LockFile | undefined {
  if (!existsSync(file)) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new CapframeError('invalid_lock', `${file}: cannot read lock file: ${(error as Error).message}`, { cause: error });
  }
  return parseLock(text, file);
}

/**
 * Parses lock-file text; `file` only names the source in errors.
 *
 * @example
 * parseLock('{"version":1,"algorithm":"sha256","canonicalization":"RFC 8785","tools":{}}').tools; // {}
 */
export function parseLock(text: string, file = 'capframe.lock.json'): LockFile {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new CapframeError('invalid_lock', `${file}: not valid JSON: ${(error as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new CapframeError('invalid_lock', `${file}: ${what}`);
  };
  if (!isRecord(data)) return bad('expected a JSON object');
  if (data.version !== 1) bad(`unsupported version ${JSON.stringify(data.version)} (expected 1)`);
  if (data.algorithm !== 'sha256') bad(`unsupported algorithm ${JSON.stringify(data.algorithm)} (expected "sha256")`);
  if (data.canonicalization !== 'RFC 8785') bad(`unsupported canonicalization ${JSON.stringify(data.canonicalization)} (expected "RFC 8785")`);
  if (!isRecord(data.tools)) return bad('"tools" must be an object');
  const tools: Record<string, LockEntry> = Object.create(null) as Record<string, LockEntry>;
  for (const [key, raw] of Object.entries(data.tools)) {
    const where = `tools[${JSON.stringify(key)}]`;
    if (!isRecord(raw)) return bad(`${where} must be an object`);
    if (typeof raw.server !== 'string' || typeof raw.tool !== 'string') return bad(`${where} needs "server" and "tool" strings`);
    if (key !== `${raw.server}.${raw.tool}`) bad(`${where} does not match its server and tool (${raw.server}.${raw.tool})`);
    if (!isHash(raw.sha256)) bad(`${where}.sha256 must be 64 lowercase hex digits`);
    if (!isRecord(raw.fields)) return bad(`${where}.fields must be an object`);
    const fields = {} as Record<LockField, string>;
    for (const field of LOCK_FIELDS) {
      const h = raw.fields[field];
      if (!isHash(h)) return bad(`${where}.fields.${field} must be 64 lowercase hex digits`);
      fields[field] = h;
    }
    tools[key] = { server: raw.server, tool: raw.tool, sha256: raw.sha256 as string, fields };
  }
  return { version: 1, algorithm: 'sha256', canonicalization: 'RFC 8785', tools };
}

/**
 * The lock file text for `entries`: sorted keys, two-space indent, trailing newline.
 *
 * @example
 * serializeLock(lockEntries('database', tools)); // '{\n  "version": 1, …'
 */
export function serializeLock(entries: Record<string, LockEntry>): string {
  const sorted: Record<string, LockEntry> = {};
  for (const key of Object.keys(entries).sort()) {
    const e = entries[key] as LockEntry;
    const fields = {} as Record<LockField, string>;
    for (const field of LOCK_FIELDS) fields[field] = e.fields[field];
    sorted[key] = { server: e.server, tool: e.tool, sha256: e.sha256, fields };
  }
  const lock: LockFile = { version: 1, algorithm: 'sha256', canonicalization: 'RFC 8785', tools: sorted };
  return `${JSON.stringify(lock, null, 2)}\n`;
}

/**
 * Writes the lock file atomically (temporary file + rename), so a reader never
 * sees half a lock.
 *
 * @example
 * await writeLock(join(dirname(policyFile), LOCK_FILE_NAME), lockEntries('database', tools));
 */
export async function writeLock(file: string, entries: Record<string, LockEntry>): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, serializeLock(entries), { mode: 0o644 });
    await rename(tmp, file);
  } catch (error) {
    throw new CapframeError('invalid_lock', `${file}: cannot write lock file: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Compares one server's current tools with the lock. A tool is `changed` when its
 * definition hash differs (with the fields that differ), `added` when the lock
 * has no entry for it, `removed` when the lock has an entry the server no longer
 * lists. The runtime denies `changed` tools (`tool_changed`) and withholds `added`.
 *
 * @example
 * compareToLock(lock, 'database', tools);
 * // { changed: [{ tool: 'database.query', fields: ['description'] }], added: [], removed: [] }
 */
export function compareToLock(lock: LockFile, server: string, tools: readonly Tool[]): LockDiff {
  const diff: LockDiff = { changed: [], added: [], removed: [] };
  const listed = new Set<string>();
  for (const tool of tools) {
    const key = `${server}.${tool.name}`;
    listed.add(key);
    const entry = Object.hasOwn(lock.tools, key) ? lock.tools[key] : undefined;
    if (entry === undefined) {
      diff.added.push(key);
      continue;
    }
    if (entry.sha256 === hashToolDefinition(tool)) continue;
    const now = hashToolFields(tool);
    diff.changed.push({ tool: key, fields: LOCK_FIELDS.filter((f) => now[f] !== entry.fields[f]) });
  }
  for (const entry of Object.values(lock.tools)) {
    const key = `${entry.server}.${entry.tool}`;
    if (entry.server === server && !listed.has(key)) diff.removed.push(key);
  }
  diff.removed.sort();
  return diff;
}

/**
 * Entries for a new lock: fresh entries for the servers that answered, and the
 * old entries of servers that did not (an outage must not silently un-pin them).
 */
export function mergeLockEntries(
  previous: LockFile | undefined,
  fresh: Record<string, LockEntry>,
  answered: ReadonlySet<string>,
): Record<string, LockEntry> {
  const out: Record<string, LockEntry> = {};
  if (previous) {
    for (const [key, entry] of Object.entries(previous.tools)) if (!answered.has(entry.server)) out[key] = entry;
  }
  return Object.assign(out, fresh);
}

/**
 * Tool definitions come from the wire and may hold lone surrogates, which RFC 8785
 * cannot encode; spell them out as `\\uXXXX` text so hashing never throws and stays deterministic.
 */
function jsonSafe(value: unknown): unknown {
  if (typeof value === 'string') {
    return value.replace(/\p{Cs}/gu, (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16)}`);
  }
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (isRecord(value)) {
    // Null prototype: a property named "__proto__" must be hashed as data, not become a prototype.
    const out = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[jsonSafe(k) as string] = jsonSafe(v);
    return out;
  }
  return value;
}

function isHash(value: unknown): value is string {
  return typeof value === 'string' && /^[0-9a-f]{64}$/.test(value);
}
