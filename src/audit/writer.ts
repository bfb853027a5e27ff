import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

import { CapframeError } from '../errors.js';
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
   * fsync at most this long after an append even if nobody calls flush(), bounding what
   * a crash can lose; default 1000 ms, 0 disables.
   */
  syncIntervalMs?: number;
  /** Appends fail (fail closed) when this many bytes wait for the disk; default 64 MiB. */
  maxPendingBytes?: number;
}

/** An open, append-only audit log. See {@link openAuditLog}. */
export interface AuditLog {
  readonly path: string;
  /** `seq` of the last record appended (0 for an empty log). */
  readonly lastSeq: number;
  /** SHA-256 hex of the last line: the value to anchor elsewhere to detect tail truncation. */
  readonly head: string;
  /**
   * Builds the record, chains it and queues its line; returns synchronously so the
   * decision path never waits for the disk. Throws a CapframeError (`audit_log_failed`)
   * once a write has failed or after close(): callers must then deny (fail closed).
   */
  append(entry: AuditEntry): AuditRecord;
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
  try {
    const { seq, head } = await readChainTail(handle, path);
    return new AppendLog(path, handle, seq, head, opts);
  } catch (error) {
    await handle.close();
    throw error;
  }
}

async function readChainTail(handle: FileHandle, path: string): Promise<{ seq: number; head: string }> {
  const { size } = await handle.stat();
  if (size === 0) return { seq: 0, head: GENESIS_PREV };
  const tail = await readTail(handle, size, 2);
  const corrupt = (problem: string): CapframeError =>
    new CapframeError(
      'audit_log_corrupt',
      `audit log ${path} cannot be extended: ${problem}; run \`capframe audit verify --log ${path}\``,
    );
  if (tail.partial.length > 0) throw corrupt('its last line is incomplete (no trailing newline)');
  const last = tail.lines[tail.lines.length - 1];
  if (last === undefined) throw corrupt('it has no complete line');
  const parsed = parseAuditLine(last.toString('utf8'));
  if (!parsed.ok) throw corrupt(`its last line: ${parsed.problem}`);
  const before = tail.lines.length === 2 ? tail.lines[0] : undefined;
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
  private readonly logArgs: boolean;
  private readonly maxPendingBytes: number;
  private pending: string[] = [];
  private pendingBytes = 0;
  // Line counters: accepted by append(), handed to write(2), covered by a finished fsync.
  private appended = 0;
  private written = 0;
  private synced = 0;
  private writing: Promise<void> | null = null;
  private syncing: { upTo: number; done: Promise<void> } | null = null;
  private failure: CapframeError | null = null;
  private closing: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout | undefined;

  constructor(path: string, handle: FileHandle, seq: number, head: string, opts: AuditLogOptions) {
    this.path = path;
    this.handle = handle;
    this.seq = seq;
    this.prevHash = head;
    this.logArgs = opts.logArgs ?? false;
    this.maxPendingBytes = opts.maxPendingBytes ?? 64 * 1024 * 1024;
    const interval = opts.syncIntervalMs ?? 1000;
    if (interval > 0) {
      this.timer = setInterval(() => {
        if (this.synced < this.appended && this.closing === null) this.flush().catch(() => undefined);
      }, interval);
      // A pending background fsync must not keep the process alive.
      this.timer.unref();
    }
  }

  get lastSeq(): number {
    return this.seq;
  }

  get head(): string {
    return this.prevHash;
  }

  append(entry: AuditEntry): AuditRecord {
    if (this.failure !== null) throw this.failure;
    if (this.closing !== null) throw new CapframeError('audit_log_failed', `audit log ${this.path} is closed`);
    if (this.pendingBytes > this.maxPendingBytes) {
      throw new CapframeError('audit_log_failed', `audit log ${this.path}: writes are too far behind`);
    }
    const { record, line } = this.serialize(this.build(entry));
    // JSON.stringify output is well-formed UTF-16 (lone surrogates are escaped), so the
    // string hashes to the same digest as the UTF-8 bytes written below.
    this.prevHash = sha256Hex(line);
    this.seq = record.seq;
    this.pending.push(line);
    this.pendingBytes += line.length + 1;
    this.appended++;
    this.writing ??= this.drain();
    return record;
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

  /** Writes queued lines in order, one batch per write, until the queue is empty. */
  private async drain(): Promise<void> {
    // Let the rest of a synchronous burst of appends join the first batch.
    await Promise.resolve();
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        this.pendingBytes = 0;
        await writeAll(this.handle, Buffer.from(`${batch.join('\n')}\n`, 'utf8'));
        this.written += batch.length;
      }
    } catch (error) {
      this.failure = new CapframeError(
        'audit_log_failed',
        `audit log ${this.path}: write failed: ${(error as Error).message}`,
        { cause: error },
      );
    } finally {
      this.writing = null;
    }
  }

  async flush(): Promise<void> {
    // Durable means: every line appended before this call is written and fsynced. Lines
    // appended meanwhile do not extend the wait, so flush() ends under constant load.
    const target = this.appended;
    while (this.written < target) {
      if (this.failure !== null) throw this.failure;
      // Unwritten lines with no write running can only mean a failed write.
      if (this.writing === null) throw this.failure ?? new CapframeError('audit_log_failed', `audit log ${this.path}: lines were not written`);
      await this.writing;
    }
    while (this.synced < target) {
      if (this.failure !== null) throw this.failure;
      if (this.syncing !== null) {
        // Join a running fsync; if it started before our lines were written, loop and
        // start another one.
        await this.syncing.done;
        continue;
      }
      const upTo = this.written;
      const done = this.handle.sync().then(
        () => {
          this.synced = Math.max(this.synced, upTo);
        },
        (error: unknown) => {
          this.failure ??= new CapframeError(
            'audit_log_failed',
            `audit log ${this.path}: fsync failed: ${(error as Error).message}`,
            { cause: error },
          );
        },
      );
      this.syncing = { upTo, done };
      try {
        await done;
      } finally {
        this.syncing = null;
      }
    }
    if (this.failure !== null) throw this.failure;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer !== undefined) clearInterval(this.timer);
      try {
        await this.flush();
      } finally {
        await this.handle.close();
      }
    })();
    return this.closing;
  }
}

async function writeAll(handle: FileHandle, buf: Buffer): Promise<void> {
  let offset = 0;
  while (offset < buf.length) {
    // position null: with O_APPEND every write lands at the current end of the file.
    const { bytesWritten } = await handle.write(buf, offset, buf.length - offset, null);
    offset += bytesWritten;
  }
}
