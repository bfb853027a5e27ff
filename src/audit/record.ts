import { canonicalJson, sha256Hex } from './canonical-json.js';

/**
 * One audit line, exactly as written: the key order below is the order on disk, so the
 * raw log reads naturally. `prev` is the SHA-256 (hex) of the previous line's exact bytes
 * without its "\n" ({@link GENESIS_PREV} on line 1), which chains every line to all
 * lines before it.
 */
export interface AuditRecord {
  /** ISO 8601 UTC with milliseconds, e.g. `2026-11-21T15:34:48.123Z`. */
  time: string;
  /** 1 on the first line, then +1 per line. */
  seq: number;
  /** Authenticated agent, or null when the caller was not identified. */
  agent: string | null;
  /** `<server>.<tool>`, or null when the request named no tool. */
  tool: string | null;
  decision: 'allow' | 'deny';
  /** Stable reason code (SPEC §6), e.g. `missing_token`. */
  code: string;
  /** The token's human id (`tok_…`) or null when no token was presented/decoded. */
  token_id: string | null;
  /** SHA-256 hex of the RFC 8785 canonical JSON of the call arguments; null when there were none or they were not JSON. */
  args_sha256: string | null;
  /** The arguments themselves, only when the policy sets `audit.log_args: true`. */
  args?: unknown;
  /** Decision latency in whole microseconds. */
  latency_us: number;
  /** Human-readable reason. */
  reason: string;
  prev: string;
}

/** `prev` of the first line: 64 zeros. */
export const GENESIS_PREV = '0'.repeat(64);

const REQUIRED_KEYS = [
  'time',
  'seq',
  'agent',
  'tool',
  'decision',
  'code',
  'token_id',
  'args_sha256',
  'latency_us',
  'reason',
  'prev',
] as const;
const ALLOWED_KEYS: ReadonlySet<string> = new Set<string>([...REQUIRED_KEYS, 'args']);
const KEYS_WITH_ARGS: readonly string[] = [...REQUIRED_KEYS.slice(0, 8), 'args', ...REQUIRED_KEYS.slice(8)];

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Result of reading one line: the record, or what is wrong with it. */
export type ParsedLine = { ok: true; record: AuditRecord } | { ok: false; problem: string };

/**
 * Parses and strictly checks one audit line (without its "\n"): valid JSON, exactly the
 * known fields with the right types in the writer's order and byte-for-byte in the form
 * the writer produces, and `args_sha256` matching `args` when both are present. Chain
 * links (`seq`, `prev`) between lines are checked by the verifier.
 *
 * @example
 * const parsed = parseAuditLine(lineText);
 * if (parsed.ok) console.log(parsed.record.seq);
 */
export function parseAuditLine(text: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, problem: 'not a JSON object' };
  }
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!ALLOWED_KEYS.has(key)) return { ok: false, problem: `unknown field "${key}"` };
  }
  for (const key of REQUIRED_KEYS) {
    if (!(key in obj)) return { ok: false, problem: `missing field "${key}"` };
  }
  const problem = fieldProblem(obj);
  if (problem !== undefined) return { ok: false, problem };
  // The writer emits JSON.stringify of the record in a fixed key order; anything else
  // (reordered keys, added whitespace, re-escaped text, a duplicate key) was edited.
  const keys = Object.keys(obj);
  const expected = 'args' in obj ? KEYS_WITH_ARGS : REQUIRED_KEYS;
  if (keys.length !== expected.length || keys.some((key, i) => key !== expected[i])) {
    return { ok: false, problem: 'fields are not in the order the writer uses' };
  }
  if (JSON.stringify(obj) !== text) {
    return { ok: false, problem: 'not in the exact form the writer produces (whitespace, escapes or duplicate keys changed)' };
  }
  return { ok: true, record: obj as unknown as AuditRecord };
}

function fieldProblem(obj: Record<string, unknown>): string | undefined {
  if (typeof obj.time !== 'string' || !ISO_MS.test(obj.time) || Number.isNaN(Date.parse(obj.time))) {
    return 'field "time" is not an ISO 8601 UTC time with milliseconds';
  }
  if (!Number.isSafeInteger(obj.seq) || (obj.seq as number) < 1) return 'field "seq" is not a positive integer';
  if (!isStringOrNull(obj.agent)) return 'field "agent" is not a string or null';
  if (!isStringOrNull(obj.tool)) return 'field "tool" is not a string or null';
  if (obj.decision !== 'allow' && obj.decision !== 'deny') return 'field "decision" is not "allow" or "deny"';
  if (typeof obj.code !== 'string' || obj.code === '') return 'field "code" is not a non-empty string';
  if (!isStringOrNull(obj.token_id)) return 'field "token_id" is not a string or null';
  if (obj.args_sha256 !== null && (typeof obj.args_sha256 !== 'string' || !HEX64.test(obj.args_sha256))) {
    return 'field "args_sha256" is not 64 lowercase hex digits or null';
  }
  if (!Number.isSafeInteger(obj.latency_us) || (obj.latency_us as number) < 0) {
    return 'field "latency_us" is not a non-negative integer';
  }
  if (typeof obj.reason !== 'string') return 'field "reason" is not a string';
  if (typeof obj.prev !== 'string' || !HEX64.test(obj.prev)) return 'field "prev" is not 64 lowercase hex digits';
  if ('args' in obj) {
    // The hash is what the chain commits to; logged arguments must agree with it so an
    // edit to them is caught even on the last line, which no later line vouches for.
    let hash: string;
    try {
      hash = sha256Hex(canonicalJson(obj.args));
    } catch {
      return 'field "args" is not canonicalizable JSON';
    }
    if (obj.args_sha256 !== hash) return 'field "args" does not match "args_sha256"';
  }
  return undefined;
}

function isStringOrNull(value: unknown): boolean {
  return value === null || typeof value === 'string';
}
