import { mkdir, open, rename, type FileHandle } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

import { CapframeError } from '../errors.js';
import { DEFAULT_SYNC_MS, GroupCommitFile } from '../lib/group-commit.js';
import { truncate } from '../lib/truncate.js';
import { fingerprintJson, sha256Hex } from './canonical-json.js';
import { readTail } from './lines.js';
import { GENESIS_PREV, MAX_AUDIT_LINE_BYTES_WRITTEN, parseAuditLine, type AuditRecord } from './record.js';

/**
 * Longest `agent`, `tool` and `token_id` written, in UTF-16 code units; longer ones are
 * cut and end in "…". With {@link MAX_REASON_CHARS} and {@link MAX_CODE_CHARS} this
 * bounds every line below {@link MAX_AUDIT_LINE_BYTES_WRITTEN} (at most 6 bytes per
 * unit once JSON-escaped), whatever a caller sends.
 */
export const MAX_NAME_CHARS = 128;
/** Longest `reason` written, in UTF-16 code units. */
export const MAX_REASON_CHARS = 512;
const MAX_CODE_CHARS = 64;

/**
 * One line to record; the writer adds `time` (unless given), `seq`, the hashes and `prev`.
 * `decision: 'outcome'` records what became of a forwarded call (see AuditRecord) and
 * needs `ofSeq`.
 */
export interface AuditEntry {
  agent: string | null;
  tool: string | null;
  decision: 'allow' | 'deny' | 'outcome';
  /** Outcome lines: `seq` of the call's decision line. */
  ofSeq?: number;
  code: string;
  /** `tok_…` id, or null. */
  tokenId: string | null;
  /** The call arguments as checked (any JSON value); undefined when the call had none. */
  args?: unknown;
  /**
   * The SHA-256 hex of `canonicalJson(args)` when the caller computed it already (the
   * holder-proof check does); saves hashing twice. Trusted as given.
   */
  argsSha256?: string | null;
  /** Decision latency (outcome lines: upstream time) in microseconds; rounded, negative or non-finite values become 0. */
  latencyUs: number;
  reason: string;
  /** Decision time; default now. */
  time?: Date;
  /** Which front end asked for a decision that was not a proxied call (decision lines only); omitted for the proxy. */
  via?: AuditVia;
}

/** Front ends that ask for decisions without forwarding: `authzen`, the OpenID AuthZEN PDP on `serve`. */
export type AuditVia = 'authzen';

export interface AuditLogOptions {
  /** Log the raw arguments too (`audit.log_args`); default false, only their hash. */
  logArgs?: boolean;
  /** Creation mode of a new log file; default 0o600 (it names agents and tools). */
  mode?: number;
  /**
   * fsync at most this long after a write even if nobody calls flush(), bounding what a
   * power cut can lose (`audit.sync_ms`); default 100 ms, 0 leaves it to flush() and close().
   */
  syncIntervalMs?: number;
  /** Appends fail (fail closed) when this many bytes wait for the end of the turn; default 64 MiB. */
  maxPendingBytes?: number;
  /**
   * A log whose last line is torn (cut short by a crash mid-write) is kept as evidence,
   * renamed `<name>.damaged-<time>`, and a new log is started whose first line (decision
   * `restart`) names it, its last good seq and that line's hash. Default false: such a
   * log is refused (`audit_log_corrupt`). Any other damage is always refused.
   */
  recoverTornTail?: boolean;
}

export { DEFAULT_SYNC_MS };

/** A log set aside by `recoverTornTail`. */
export interface DamagedLog {
  /** Where the damaged log now is. */
  renamedTo: string;
  /** seq and SHA-256 hex of its last complete line (0 and 64 zeros when it had none). */
  lastSeq: number;
  head: string;
  /** Length of the torn line. */
  tornBytes: number;
}

/** An open, append-only audit log. See {@link openAuditLog}. */
export interface AuditLog {
  readonly path: string;
  /** `seq` of the last record appended (0 for an empty log). */
  readonly lastSeq: number;
  /** SHA-256 hex of the last line: the value to anchor elsewhere to detect tail truncation. */
  readonly head: string;
  /** Set when `recoverTornTail` set a damaged log aside and started this one. */
  readonly recovered?: DamagedLog;
  /**
   * Builds the record, chains it and queues its line; returns synchronously so the
   * decision path never waits for the disk. Throws a CapframeError (`audit_log_failed`)
   * once a write has failed or after close(): callers must then deny (fail closed).
   * Lines appended in one turn of the event loop are written together at its end.
   */
  append(entry: AuditEntry): AuditRecord;
  /**
   * Resolves once every line appended so far has been handed to the OS — written, so it
   * survives a crash of this process (not of the machine: that is flush()). A proxy
   * awaits it before forwarding an allowed call. Rejects (`audit_log_failed`) when the
   * write failed.
   */
  written(): Promise<void>;
  /** Resolves once every line appended so far is written and fsynced. */
  flush(): Promise<void>;
  /** flush(), then close the file; later appends throw. Idempotent. */
  close(): Promise<void>;
}

/**
 * Opens (creating if needed) a hash-chained JSON-lines audit log for appending. An existing
 * log's last two lines are checked first and `seq`/`prev` continue from them; a log whose
 * tail is cut short or does not chain is refused (`audit_log_corrupt`) rather than
 * extended, so evidence of a problem is never buried under new lines.
 *
 * One process owns a log: lines are written in order by a single append handle, and two
 * writers on one file would interleave two chains. Running two proxies on one state
 * directory is therefore unsupported (give each its own `audit.path`).
 *
 * @example
 * const log = await openAuditLog('/var/lib/capframe/audit.log', { logArgs: false });
 * log.append({ agent: 'support-bot', tool: 'database.query', decision: 'deny',
 *   code: 'missing_token', tokenId: null, args: { sql: 'SELECT 1' }, latencyUs: 12,
 *   reason: 'no capability token presented' });
 * await log.close();
 */
export async function openAuditLog(path: string, opts: AuditLogOptions = {}): Promise<AuditLog> {
  await mkdir(dirname(path), { recursive: true });
  let handle: FileHandle;
  try {
    // a+: O_APPEND for writes (each write lands at the end) and readable for the tail check.
    handle = await open(path, 'a+', opts.mode ?? 0o600);
  } catch (error) {
    throw new CapframeError('audit_log_failed', `cannot open audit log ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  let damaged: DamagedLog | undefined;
  try {
    const tail = await readChainTail(handle, path);
    if ('torn' in tail) {
      if (opts.recoverTornTail !== true) throw tail.torn;
      // Set the damaged log aside untouched and start a new one in its place.
      await handle.close();
      const renamedTo = `${path}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      await rename(path, renamedTo);
      damaged = { renamedTo, lastSeq: tail.seq, head: tail.head, tornBytes: tail.tornBytes };
      handle = await open(path, 'a+', opts.mode ?? 0o600);
      const log = new AppendLog(path, handle, 0, GENESIS_PREV, opts);
      log.restartFrom({ ...damaged, renamedTo: basename(renamedTo) });
      await log.flush();
      log.recovered = damaged;
      return log;
    }
    return new AppendLog(path, handle, tail.seq, tail.head, opts);
  } catch (error) {
    await handle.close().catch(() => undefined);
    if (error instanceof CapframeError) throw error;
    throw new CapframeError('audit_log_failed', `cannot open audit log ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/** The seq and hash to continue from; or, for a torn last line, those of the line before it. */
async function readChainTail(handle: FileHandle, path: string): Promise<{ seq: number; head: string } | { torn: CapframeError; seq: number; head: string; tornBytes: number }> {
  const { size } = await handle.stat();
  if (size === 0) return { seq: 0, head: GENESIS_PREV };
  const tail = await readTail(handle, size, 2);
  const corrupt = (problem: string): CapframeError =>
    new CapframeError(
      'audit_log_corrupt',
      `audit log ${path} cannot be extended: ${problem}; run \`capframe audit verify --log ${path}\``,
    );
  const complete = checkComplete(tail.lines, corrupt);
  if (tail.partial.length > 0) {
    return { torn: corrupt('its last line is incomplete (no trailing newline)'), ...complete, tornBytes: tail.partial.length };
  }
  if (tail.lines.length === 0) throw corrupt('it has no complete line');
  return complete;
}

/** seq and hash of the last of these complete lines, which must chain (no lines: a new chain). */
function checkComplete(lines: Buffer[], corrupt: (problem: string) => CapframeError): { seq: number; head: string } {
  const last = lines[lines.length - 1];
  if (last === undefined) return { seq: 0, head: GENESIS_PREV };
  const parsed = parseAuditLine(last.toString('utf8'));
  if (!parsed.ok) throw corrupt(`its last line: ${parsed.problem}`);
  const before = lines.length === 2 ? lines[0] : undefined;
  if (before === undefined) {
    // The log has exactly one line: it must be the genesis line.
    if (parsed.record.seq !== 1 || parsed.record.prev !== GENESIS_PREV) {
      throw corrupt('its only line is not a first line (seq 1, prev of zeros)');
    }
  } else {
    const previous = parseAuditLine(before.toString('utf8'));
    if (!previous.ok) throw corrupt(`its second-to-last line: ${previous.problem}`);
    if (parsed.record.prev !== sha256Hex(before) || parsed.record.seq !== previous.record.seq + 1) {
      throw corrupt('its last two lines do not chain');
    }
  }
  return { seq: parsed.record.seq, head: sha256Hex(last) };
}

class AppendLog implements AuditLog {
  readonly path: string;
  private seq: number;
  private prevHash: string;
  private readonly handle: FileHandle;
  private readonly file: GroupCommitFile;
  private readonly logArgs: boolean;
  private closing: Promise<void> | null = null;
  recovered?: DamagedLog;

  constructor(path: string, handle: FileHandle, seq: number, head: string, opts: AuditLogOptions) {
    this.path = path;
    this.handle = handle;
    this.seq = seq;
    this.prevHash = head;
    this.logArgs = opts.logArgs ?? false;
    this.file = new GroupCommitFile(handle.fd, {
      name: `audit log ${path}`,
      syncMs: opts.syncIntervalMs ?? DEFAULT_SYNC_MS,
      ...(opts.maxPendingBytes !== undefined && { maxPendingBytes: opts.maxPendingBytes }),
    });
  }

  get lastSeq(): number {
    return this.seq;
  }

  get head(): string {
    return this.prevHash;
  }

  append(entry: AuditEntry): AuditRecord {
    if (this.file.failed !== undefined) throw this.file.failed;
    if (this.closing !== null) throw new CapframeError('audit_log_failed', `audit log ${this.path} is closed`);
    const { record, line } = this.serialize(this.build(entry));
    return this.push(record, line);
  }

  /** Queues a serialized record; the chain moves on only once the line is queued. */
  private push(record: AuditRecord, line: string): AuditRecord {
    this.file.push(`${line}\n`);
    // JSON.stringify output is well-formed UTF-16 (lone surrogates are escaped), so the
    // string hashes to the same digest as the UTF-8 bytes written.
    this.prevHash = sha256Hex(line);
    this.seq = record.seq;
    return record;
  }

  /** Starts this (new, empty) log with a line naming the damaged log it replaces. */
  restartFrom(damaged: DamagedLog): AuditRecord {
    const record: AuditRecord = {
      time: new Date().toISOString(),
      seq: 1,
      agent: null,
      tool: null,
      decision: 'restart',
      code: 'audit_log_damaged',
      token_id: null,
      args_sha256: null,
      previous_log: truncate(damaged.renamedTo, MAX_REASON_CHARS),
      previous_seq: damaged.lastSeq,
      previous_head: damaged.head,
      latency_us: 0,
      reason: truncate(`the previous log ended in a torn line (${damaged.tornBytes} bytes after seq ${damaged.lastSeq}, left by a crash); it is kept unchanged as ${damaged.renamedTo} and this chain starts anew`, MAX_REASON_CHARS),
      prev: GENESIS_PREV,
    };
    return this.push(record, JSON.stringify(record));
  }

  written(): Promise<void> {
    return this.file.written();
  }

  private build(entry: AuditEntry): AuditRecord {
    let argsSha256: string | null = null;
    let canonical: string | undefined;
    let reason = entry.reason;
    if (entry.argsSha256 !== undefined && !(this.logArgs && entry.args !== undefined)) {
      argsSha256 = entry.argsSha256;
    } else if (entry.args !== undefined) {
      const fingerprint = fingerprintJson(entry.args);
      argsSha256 = fingerprint.sha256;
      canonical = fingerprint.canonical;
      // Still record the decision (every denial is audited) with a fingerprint; say why
      // it is not the plain canonical hash.
      if (canonical === undefined) reason = `${truncate(reason, MAX_REASON_CHARS - 64)} [arguments are not I-JSON; args_sha256 is of their marked form]`;
    }
    if (entry.decision === 'outcome' && !(Number.isSafeInteger(entry.ofSeq) && (entry.ofSeq as number) >= 1 && (entry.ofSeq as number) <= this.seq)) {
      throw new CapframeError('invalid_argument', `an outcome line needs ofSeq, the seq of an earlier line (got ${String(entry.ofSeq)})`);
    }
    const latency = Number.isFinite(entry.latencyUs) ? Math.max(0, Math.round(entry.latencyUs)) : 0;
    const cut = (text: string | null, max: number): string | null => (text === null ? null : truncate(text, max));
    // Built literally in the on-disk key order (see AuditRecord).
    const head = {
      time: (entry.time ?? new Date()).toISOString(),
      seq: this.seq + 1,
      agent: cut(entry.agent, MAX_NAME_CHARS),
      tool: cut(entry.tool, MAX_NAME_CHARS),
      decision: entry.decision,
      code: truncate(entry.code, MAX_CODE_CHARS),
      token_id: cut(entry.tokenId, MAX_NAME_CHARS),
      args_sha256: argsSha256,
    };
    const tail = { latency_us: latency, reason: truncate(reason, MAX_REASON_CHARS), prev: this.prevHash };
    if (entry.decision === 'outcome') return { ...head, of_seq: entry.ofSeq as number, ...tail };
    const via = entry.via === undefined ? undefined : { via: entry.via };
    if (this.logArgs && canonical !== undefined) {
      // The parsed canonical form is a detached plain copy the caller cannot mutate later.
      return { ...head, args: JSON.parse(canonical) as unknown, ...via, ...tail };
    }
    return { ...head, ...via, ...tail };
  }

  /**
   * The line for a record, never longer than MAX_AUDIT_LINE_BYTES_WRITTEN: logged
   * arguments that would make it longer are left out (their hash stays).
   */
  private serialize(record: AuditRecord): { record: AuditRecord; line: string } {
    const line = JSON.stringify(record);
    // JSON.stringify output has no lone surrogates, so a UTF-16 unit is at most 3 UTF-8
    // bytes: short lines need no byte count.
    if (line.length * 3 <= MAX_AUDIT_LINE_BYTES_WRITTEN || Buffer.byteLength(line) <= MAX_AUDIT_LINE_BYTES_WRITTEN) return { record, line };
    if (!('args' in record)) return { record, line }; // bounded by the field limits
    const { args, via, latency_us, reason, prev, ...head } = record;
    const omitted = { ...head, args_omitted: Buffer.byteLength(JSON.stringify(args)), ...(via !== undefined && { via }), latency_us, reason, prev };
    return { record: omitted, line: JSON.stringify(omitted) };
  }

  flush(): Promise<void> {
    // Durable means: every line appended before this call is written and fsynced.
    return this.file.flush();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.file.close();
      } finally {
        await this.handle.close();
      }
    })();
    return this.closing;
  }
}
