import { join, resolve } from 'node:path';

import type { Command } from 'commander';

import { exportAuditLog, parseSince, type ExportFormat } from '../../audit/export.js';
import type { AuditRecord } from '../../audit/record.js';
import { tailAuditLog } from '../../audit/tail.js';
import { verifyAuditLog } from '../../audit/verify.js';
import { CapframeError } from '../../errors.js';
import { loadPolicy } from '../../policy/index.js';
import { EXIT_DENIED, EXIT_OK, out } from '../exit.js';
import type { SetExit } from './index.js';

interface LogOptions {
  log?: string;
  policy?: string;
  stateDir?: string;
}

/**
 * The audit log to read: `--log`, else the policy's `audit.path` or `<state_dir>/audit.log`
 * (`--policy`), else `audit.log` in `--state-dir`, `CAPFRAME_STATE_DIR` or `.capframe`
 * — the same state-directory rule as the other commands.
 */
async function resolveLogPath(opts: LogOptions): Promise<string> {
  if (opts.log !== undefined) return resolve(opts.log);
  if (opts.policy !== undefined) {
    const policy = await loadPolicy(opts.policy);
    return policy.audit.path ?? join(policy.stateDir, 'audit.log');
  }
  return resolve(opts.stateDir ?? process.env.CAPFRAME_STATE_DIR ?? '.capframe', 'audit.log');
}

function addLogOptions(command: Command): Command {
  return command
    .option('--log <file>', 'audit log file (default: audit.log in the state directory)')
    .option('--policy <file>', "policy file (its audit.path, or audit.log in its state_dir)")
    .option('--state-dir <dir>', 'state directory (default .capframe)');
}

export function registerAudit(program: Command, setExit: SetExit): void {
  const audit = program.command('audit').description('check, follow or export the hash-chained audit log');

  addLogOptions(
    audit
      .command('verify')
      .description('check the hash chain: OK <n> lines (exit 0), or BROKEN line <k>: <problem> (exit 2)'),
  ).action(async (opts: LogOptions) => {
    const result = await verifyAuditLog(await resolveLogPath(opts));
    if (result.ok) {
      out(`OK ${result.lines} lines`);
      setExit(EXIT_OK);
    } else {
      out(`BROKEN line ${result.line}: ${result.problem}`);
      setExit(EXIT_DENIED);
    }
  });

  addLogOptions(
    audit
      .command('tail')
      .description('print the last records (one line each), and with --follow new ones as they are written'),
  )
    .option('-n, --lines <n>', 'how many existing records to print', '10')
    .option('-f, --follow', 'keep printing records as they are appended (stop with Ctrl-C)')
    .option('--json', 'print the raw JSON lines')
    .action(async (opts: LogOptions & { lines: string; follow?: boolean; json?: boolean }) => {
      if (!/^\d+$/.test(opts.lines)) {
        throw new CapframeError('invalid_argument', `-n expects a non-negative integer, got "${opts.lines}"`);
      }
      const path = await resolveLogPath(opts);
      const stop = new AbortController();
      const onSignal = (): void => stop.abort();
      // A closed pipe (`| head`) ends the tail quietly instead of crashing on EPIPE.
      const onStdoutError = (): void => stop.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      process.stdout.on('error', onStdoutError);
      try {
        await tailAuditLog(path, {
          follow: opts.follow === true,
          lines: Number(opts.lines),
          signal: stop.signal,
          onRecord: (record, line) => {
            if (stop.signal.aborted) return;
            out(opts.json === true ? line : record === null ? `INVALID ${printable(line)}` : formatRecord(record));
          },
        });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.stdout.off('error', onStdoutError);
      }
      setExit(EXIT_OK);
    });

  addLogOptions(
    audit
      .command('export')
      .description('print the log as OCSF events (API Activity, one JSON object per line) or as its raw JSON lines'),
  )
    .requiredOption('--format <format>', 'ocsf or jsonl')
    .option('--since <seq|time>', 'from this seq (a whole number) or time (ISO 8601) on')
    .action(async (opts: LogOptions & { format: string; since?: string }) => {
      if (opts.format !== 'ocsf' && opts.format !== 'jsonl') {
        throw new CapframeError('invalid_argument', `--format expects ocsf or jsonl, got "${opts.format}"`);
      }
      const since = opts.since === undefined ? undefined : parseSince(opts.since);
      const path = await resolveLogPath(opts);
      // A closed pipe (`| head`) ends the export quietly.
      let closed = false;
      const onStdoutError = (): void => {
        closed = true;
      };
      process.stdout.on('error', onStdoutError);
      try {
        await exportAuditLog(path, { format: opts.format as ExportFormat, ...(since !== undefined && { since }) }, (text) => {
          if (!closed) process.stdout.write(text);
        });
      } finally {
        process.stdout.off('error', onStdoutError);
      }
      setExit(EXIT_OK);
    });
}

/**
 * `<time> <decision> <code> agent=… tool=… token=… <latency>µs [of=<seq>]`, one line per record
 * (`of=` on outcome lines: the seq of the call's decision line).
 * Exported for tests.
 */
export function formatRecord(record: AuditRecord): string {
  return [
    record.time,
    record.decision.padEnd(5),
    printable(record.code),
    `agent=${printable(record.agent)}`,
    `tool=${printable(record.tool)}`,
    `token=${printable(record.token_id)}`,
    `${record.latency_us}µs`,
    ...(record.of_seq !== undefined ? [`of=${record.of_seq}`] : []),
  ].join(' ');
}

// Agents choose tool names and arguments: never let their text reach a terminal raw
// (escape sequences, bidi overrides) or blur the space-separated columns.
const PLAIN = /^[^\s"\\\p{C}]+$/u;
const UNSAFE = /[\p{C}\p{Zl}\p{Zp}]/gu;

function printable(value: string | null): string {
  if (value === null) return '-';
  if (value !== '' && PLAIN.test(value)) return value;
  return JSON.stringify(value).replace(UNSAFE, (ch) =>
    Array.from({ length: ch.length }, (_, i) => `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
  );
}
