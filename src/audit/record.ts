import { canonicalJson, sha256Hex } from './canonical-json.js';

/**
 * One audit line, exactly as written: the key order below is the order on disk, so the
 * raw log reads naturally. `prev` is the SHA-256 (hex) of the previous line's exact bytes
 * without its "\n" ({@link GENESIS_PREV} on line 1), which chains every line to all
 * lines before it.
 *
 * Two kinds of line share the chain. A decision line (`decision` "allow" or "deny")
 * records why a call was or was not forwarded. An outcome line (`decision` "outcome")
 * follows a forwarded call that did not end with the upstream's result — an upstream
 * error, a timeout, a lost connection, an oversized or malformed answer, or a call that
 * could not be sent after all — and points at its decision line with `of_seq`. Logs
 * written before outcome lines existed are read unchanged.
 *
 * A restart line (`decision` "restart", code `audit_log_damaged`) is only ever the first
 * line of a log: `serve` found the previous log's last line torn by a crash, kept that
 * log unchanged under a new name, and started this chain; `previous_log`,
 * `previous_seq` and `previous_head` say where the old chain ends (check them against
 * `capframe audit verify` of the old file, which reports the torn line).
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
  decision: 'allow' | 'deny' | 'outcome' | 'restart';
  /** Stable reason code (SPEC §6), e.g. `missing_token`; on an outcome line, the outcome (`upstream_timeout`, …). */
  code: string;
  /** The token's human id (`tok_…`) or null when no token was presented/decoded. */
  token_id: string | null;
  /**
   * SHA-256 hex of the RFC 8785 canonical JSON of the call arguments (or, for arguments
   * that are not I-JSON, of their marked form: see `fingerprintJson`); null only on
   * lines whose entry had no arguments at all.
   */
  args_sha256: string | null;
  /** The arguments themselves, only when the policy sets `audit.log_args: true`. */
  args?: unknown;
  /**
   * Instead of `args`: the arguments were to be logged but would have made the line
   * longer than {@link MAX_AUDIT_LINE_BYTES_WRITTEN}; this is their canonical size in bytes.
   */
  args_omitted?: number;
  /** Outcome lines only: `seq` of the decision line of the call. */
  of_seq?: number;
  /**
   * Decision lines asked for by a front end that does not forward (`authzen`: the
   * AuthZEN PDP); absent on the proxy's own lines and on logs written before it existed.
   */
  via?: string;
  /** Restart lines only: the file name the damaged previous log was kept under. */
  previous_log?: string;
  /** Restart lines only: seq of the previous log's last good line (0 when it had none). */
  previous_seq?: number;
  /** Restart lines only: SHA-256 hex of that line (64 zeros when it had none). */
  previous_head?: string;
  /** Decision latency in whole microseconds; on an outcome line, the time the upstream took. */
  latency_us: number;
  /** Human-readable reason. */
  reason: string;
  prev: string;
}

/** `prev` of the first line: 64 zeros. */
export const GENESIS_PREV = '0'.repeat(64);

/** The writer never writes a line longer than this (bytes, without the "\n"). */
export const MAX_AUDIT_LINE_BYTES_WRITTEN = 8 * 1024;

const HEAD_KEYS = ['time', 'seq', 'agent', 'tool', 'decision', 'code', 'token_id', 'args_sha256'] as const;
const TAIL_KEYS = ['latency_us', 'reason', 'prev'] as const;
const RESTART_KEYS = ['previous_log', 'previous_seq', 'previous_head'] as const;
const KNOWN_KEYS: ReadonlySet<string> = new Set<string>([...HEAD_KEYS, 'args', 'args_omitted', 'of_seq', 'via', ...RESTART_KEYS, ...TAIL_KEYS]);

/** The keys a line must have, in the writer's order: which optional keys sit in the middle depends on the kind of line. */
function expectedKeys(obj: Record<string, unknown>): readonly string[] {
  if (obj.decision === 'outcome') return [...HEAD_KEYS, 'of_seq', ...TAIL_KEYS];
  if (obj.decision === 'restart') return [...HEAD_KEYS, ...RESTART_KEYS, ...TAIL_KEYS];
  const via = 'via' in obj ? ['via'] : [];
  if ('args' in obj) return [...HEAD_KEYS, 'args', ...via, ...TAIL_KEYS];
  if ('args_omitted' in obj) return [...HEAD_KEYS, 'args_omitted', ...via, ...TAIL_KEYS];
  return [...HEAD_KEYS, ...via, ...TAIL_KEYS];
}

/** A front end's name on a `via` line: short, lower case. */
const VIA = /^[a-z][a-z0-9_-]{0,31}$/;

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Result of reading one line: the record, or what is wrong with it. */
export type ParsedLine = { ok: true; record: AuditRecord } | { ok: false; problem: string };

/**
 * Parses and strictly checks one audit line (without its "\n"): valid JSON, exactly the
 * known fields of its kind with the right types in the writer's order and byte-for-byte
 * in the form the writer produces, and `args_sha256` matching `args` when both are
 * present. Chain links (`seq`, `prev`) between lines are checked by the verifier.
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
    if (!KNOWN_KEYS.has(key)) return { ok: false, problem: `unknown field "${key}"` };
  }
  const expected = expectedKeys(obj);
  for (const key of expected) {
    if (!(key in obj)) return { ok: false, problem: `missing field "${key}"` };
  }
  const problem = fieldProblem(obj);
  if (problem !== undefined) return { ok: false, problem };
  // The writer emits JSON.stringify of the record in a fixed key order; anything else
  // (reordered keys, added whitespace, re-escaped text, a duplicate key, a field that
  // does not belong to this kind of line) was edited.
  const keys = Object.keys(obj);
  const stray = keys.find((key) => !expected.includes(key));
  if (stray !== undefined) return { ok: false, problem: `field "${stray}" does not belong on a "${String(obj.decision)}" line` };
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
  if (obj.decision !== 'allow' && obj.decision !== 'deny' && obj.decision !== 'outcome' && obj.decision !== 'restart') {
    return 'field "decision" is not "allow", "deny", "outcome" or "restart"';
  }
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
  if ('of_seq' in obj) {
    // An outcome follows its decision: it can only point backwards.
    if (!Number.isSafeInteger(obj.of_seq) || (obj.of_seq as number) < 1 || (obj.of_seq as number) >= (obj.seq as number)) {
      return 'field "of_seq" is not the seq of an earlier line';
    }
  }
  if ('via' in obj && (typeof obj.via !== 'string' || !VIA.test(obj.via))) return 'field "via" is not a front-end name such as "authzen"';
  if (obj.decision === 'restart') {
    if (obj.seq !== 1 || obj.prev !== GENESIS_PREV) return 'a "restart" line is not the first line of its log (seq 1, prev of zeros)';
    if (typeof obj.previous_log !== 'string' || obj.previous_log === '') return 'field "previous_log" is not a non-empty string';
    if (!Number.isSafeInteger(obj.previous_seq) || (obj.previous_seq as number) < 0) return 'field "previous_seq" is not a non-negative integer';
    if (typeof obj.previous_head !== 'string' || !HEX64.test(obj.previous_head)) return 'field "previous_head" is not 64 lowercase hex digits';
  }
  if ('args_omitted' in obj) {
    if (!Number.isSafeInteger(obj.args_omitted) || (obj.args_omitted as number) < 0) return 'field "args_omitted" is not a non-negative integer';
    if (obj.args_sha256 === null) return 'field "args_omitted" without an "args_sha256"';
  }
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
