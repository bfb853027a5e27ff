/**
 * One audit sink: reads the hash-chained audit file (the source of truth) from where the
 * sink's cursor stands, maps each line to OCSF and sends it in batches, retrying with
 * backoff until the receiver takes it. The call path never waits for a sink: the writer
 * appends to the file as always, and the sink follows the file.
 *
 * Memory is bounded by the sink's `queue` (lines read and not yet delivered); while it is
 * full the sink stops reading and the lines wait in the file, so nothing is dropped. A
 * line that is not a valid audit record is skipped, counted and logged.
 */
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';

import type { AuditSinkConfig } from '../../policy/types.js';
import { sha256Hex } from '../canonical-json.js';
import { toOcsf } from '../ocsf.js';
import { parseAuditLine } from '../record.js';
import { readCursor, START, writeCursor, type SinkCursor } from './cursor.js';
import { createTransport, sinkName, type SinkItem, type SinkTransport } from './transports.js';

/** What a sink reports to its host (the runtime's logger and metrics). */
export interface SinkEvents {
  log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void;
  delivered(sink: string, lines: number): void;
  failed(sink: string): void;
  skipped(sink: string, lines: number): void;
}

export interface SinkOptions {
  /** The audit log the sink follows. */
  auditPath: string;
  /** Directory for the sink's cursor file. */
  cursorDir: string;
  events: SinkEvents;
  /** How often the file is checked for new lines when the sink is idle (ms, default 200). */
  pollMs?: number;
  /** First retry delay after a failed send (ms, default 250); doubles up to maxBackoffMs. */
  backoffMs?: number;
  /** Longest retry delay (ms, default 30 s). */
  maxBackoffMs?: number;
  /** Most lines per batch (default 200). */
  batch?: number;
  /** Replaces the transport (tests). */
  transport?: SinkTransport;
}

const READ_CHUNK = 1 << 20;
const CURSOR_EVERY_MS = 500;

export interface AuditSink {
  readonly name: string;
  /** `seq` of the last line the receiver took. */
  readonly deliveredSeq: number;
  /** Tries to deliver what is read until `graceMs`, saves the cursor and stops; the rest goes out after the next start. */
  stop(graceMs?: number): Promise<void>;
}

/** The cursor file of a sink: one per audit log and receiver. */
export function cursorPath(cursorDir: string, auditPath: string, config: AuditSinkConfig): string {
  const id = sha256Hex(`${auditPath}\n${config.type}\n${config.url}`).slice(0, 16);
  return join(cursorDir, `${config.type}-${id}.cursor`);
}

/**
 * Starts streaming the audit log to one receiver.
 *
 * @example
 * const sink = startAuditSink({ type: 'http', url: 'https://siem.example.com/in', headers: {}, queue: 10000 },
 *   { auditPath, cursorDir: join(stateDir, 'sinks'), events });
 * await sink.stop(2000);
 */
export function startAuditSink(config: AuditSinkConfig, options: SinkOptions): AuditSink {
  const name = sinkName(config);
  const { events } = options;
  const pollMs = options.pollMs ?? 200;
  const backoffMs = options.backoffMs ?? 250;
  const maxBackoffMs = options.maxBackoffMs ?? 30_000;
  const batchSize = options.batch ?? 200;
  const file = cursorPath(options.cursorDir, options.auditPath, config);
  const transport = options.transport ?? createTransport(config);

  const loaded = readCursor(file);
  if (loaded.problem !== undefined) events.log('warn', 'audit sink cursor unreadable; delivering from the first line', { sink: name, problem: loaded.problem });
  let cursor: SinkCursor = loaded.cursor;
  let savedSeq = cursor.seq;
  let savedAt = 0;
  const queue: (SinkItem & { hash: string })[] = [];
  let offset = 0;
  let identity: { dev: number; ino: number } | undefined;
  /** Highest seq seen while skipping delivered lines, to notice a log that was replaced by a shorter one. */
  let highestSeen = 0;
  let stopping = false;
  let wake: (() => void) | undefined;
  let failures = 0;
  let lastFailureLog = 0;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const restart = (why: string) => {
    events.log('warn', `audit sink starts over from the first line: ${why}`, { sink: name, cursor_seq: cursor.seq });
    cursor = START;
    offset = 0;
    highestSeen = 0;
    queue.length = 0;
  };

  /** Reads complete lines after `offset` into the queue, up to its bound. */
  async function fill(): Promise<void> {
    let info;
    try {
      info = await stat(options.auditPath);
    } catch {
      return; // not there yet
    }
    if (identity !== undefined && (identity.dev !== info.dev || identity.ino !== info.ino)) {
      identity = { dev: info.dev, ino: info.ino };
      return restart('the audit log was replaced');
    }
    identity = { dev: info.dev, ino: info.ino };
    if (info.size < offset) return restart('the audit log shrank');
    if (info.size === offset) {
      if (highestSeen > 0 && highestSeen < cursor.seq && queue.length === 0) restart(`the audit log ends at line ${highestSeen}, before the cursor (${cursor.seq})`);
      return;
    }
    const handle = await open(options.auditPath, 'r');
    try {
      while (offset < info.size && queue.length < config.queue) {
        const length = Math.min(READ_CHUNK, info.size - offset);
        const buf = Buffer.allocUnsafe(length);
        const { bytesRead } = await handle.read(buf, 0, length, offset);
        let from = 0;
        let skipped = 0;
        for (;;) {
          if (queue.length >= config.queue) break;
          const at = buf.indexOf(0x0a, from);
          if (at < 0 || at >= bytesRead) break;
          const line = buf.subarray(from, at);
          from = at + 1;
          const parsed = parseAuditLine(line.toString('utf8'));
          if (!parsed.ok) {
            skipped++;
            events.log('error', 'audit sink skips a line that is not a valid audit record; run `capframe audit verify`', { sink: name, offset: offset + from - line.length - 1, problem: parsed.problem });
            continue;
          }
          const { record } = parsed;
          const hash = sha256Hex(line);
          if (record.seq <= cursor.seq) {
            highestSeen = Math.max(highestSeen, record.seq);
            if (record.seq === cursor.seq && hash !== cursor.hash) {
              offset = 0;
              return restart(`line ${record.seq} is not the line the cursor was saved at`);
            }
            continue;
          }
          queue.push({ record, event: toOcsf(record, hash), hash });
        }
        if (skipped > 0) events.skipped(name, skipped);
        if (from === 0) break; // a line longer than the chunk or an unterminated tail: wait
        offset += from;
      }
    } finally {
      await handle.close();
    }
  }

  function saveCursor(force: boolean): void {
    if (cursor.seq === savedSeq) return;
    const now = Date.now();
    if (!force && now - savedAt < CURSOR_EVERY_MS) return;
    try {
      writeCursor(file, cursor);
      savedSeq = cursor.seq;
      savedAt = now;
    } catch (error) {
      events.log('error', 'audit sink cannot save its cursor; lines may be delivered again after a restart', { sink: name, error: (error as Error).message });
    }
  }

  const loop = (async () => {
    while (!stopping) {
      try {
        if (queue.length < config.queue) await fill();
      } catch (error) {
        events.log('error', 'audit sink cannot read the audit log', { sink: name, error: (error as Error).message });
      }
      if (queue.length === 0) {
        saveCursor(true);
        await sleep(pollMs);
        continue;
      }
      const batch = queue.slice(0, batchSize);
      try {
        await transport.send(batch);
      } catch (error) {
        failures++;
        events.failed(name);
        const now = Date.now();
        // The first failure of a run, then at most one line every 30 s.
        if (failures === 1 || now - lastFailureLog > 30_000) {
          lastFailureLog = now;
          events.log('warn', 'audit sink cannot deliver; retrying (the lines wait in the audit log)', { sink: name, pending_from_seq: batch[0]!.record.seq, error: (error as Error).message });
        }
        const delay = Math.min(maxBackoffMs, backoffMs * 2 ** Math.min(failures - 1, 16));
        await sleep(delay / 2 + Math.random() * (delay / 2));
        continue;
      }
      if (failures > 0) events.log('info', 'audit sink delivering again', { sink: name, after_failures: failures });
      failures = 0;
      queue.splice(0, batch.length);
      const last = batch[batch.length - 1]!;
      cursor = { seq: last.record.seq, hash: last.hash };
      events.delivered(name, batch.length);
      saveCursor(false);
    }
  })();

  return {
    name,
    get deliveredSeq() {
      return cursor.seq;
    },
    async stop(graceMs = 2000) {
      const deadline = Date.now() + graceMs;
      // Let the loop deliver what it can before the deadline.
      while (queue.length > 0 && failures === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      stopping = true;
      wake?.();
      await loop;
      transport.close();
      saveCursor(true);
    },
  };
}
