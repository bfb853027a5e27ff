/**
 * An MCP client transport over a child process's stdin/stdout, like the SDK's
 * StdioClientTransport, with one difference that matters in front of an untrusted
 * server: every message it reads is capped. The SDK's transport buffers a line without
 * limit and tears the connection down when its buffer overflows, failing every call in
 * flight; here a message over `maxMessageBytes` is skipped and only the request it
 * answered fails (`result_too_large`). A message that is not valid JSON-RPC fails its
 * request (`malformed_result`) when its id can be read. The child keeps running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough } from 'node:stream';

import { getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { ErrorCode, JSONRPCMessageSchema, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';

import { BoundedLineReader, IdScanner, type LineEvent } from './bounded-lines.js';

/** Default cap on one message from an upstream: 8 MiB (the policy's `max_result_bytes`). */
export const DEFAULT_MAX_RESULT_BYTES = 8 * 1024 * 1024;

/**
 * The `data` of the JSON-RPC error this transport delivers in place of an answer it
 * refused. Only this process can create one (an upstream's own error `data` is parsed
 * JSON, never an instance of this class), so a caller can tell the proxy's verdict on
 * an answer from an error the upstream sent.
 */
export class RefusedAnswer {
  constructor(
    readonly code: 'result_too_large' | 'malformed_result',
    readonly reason: string,
  ) {}
}

/** Thrown by `send` when the message cannot have reached the child (it is not running). */
export class NotSentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotSentError';
  }
}

export interface StdioUpstreamParameters {
  command: string;
  args?: string[];
  /** Added to the SDK's safe default environment (PATH, HOME, …), not to the whole parent environment. */
  env?: Record<string, string>;
  cwd?: string;
  /** Largest message accepted from the child, in bytes (default {@link DEFAULT_MAX_RESULT_BYTES}). */
  maxMessageBytes?: number;
}

/**
 * @example
 * const transport = new StdioUpstreamTransport({ command: 'node', args: ['server.js'], maxMessageBytes: 8 << 20 });
 * transport.stderr.on('data', (chunk) => process.stderr.write(chunk));
 * await new Client({ name: 'capframe', version: '1' }).connect(transport);
 */
export class StdioUpstreamTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;

  /** The child's stderr, piped (never inherited); available before start() so nothing early is lost. */
  readonly stderr = new PassThrough();
  private child: ChildProcess | undefined;
  private childPid: number | undefined;
  private readonly reader: BoundedLineReader;
  private readonly maxMessageBytes: number;

  constructor(private readonly params: StdioUpstreamParameters) {
    this.maxMessageBytes = params.maxMessageBytes ?? DEFAULT_MAX_RESULT_BYTES;
    this.reader = new BoundedLineReader(this.maxMessageBytes, (event) => this.onLine(event));
  }

  /** The child's pid once started; kept after it exits, so a caller can still make sure it is gone. */
  get pid(): number | undefined {
    return this.childPid;
  }

  start(): Promise<void> {
    if (this.child !== undefined) throw new Error('StdioUpstreamTransport already started');
    return new Promise((resolve, reject) => {
      const child = spawn(this.params.command, this.params.args ?? [], {
        env: { ...getDefaultEnvironment(), ...this.params.env },
        stdio: ['pipe', 'pipe', 'pipe'],
        shell: false,
        windowsHide: true,
        ...(this.params.cwd !== undefined && { cwd: this.params.cwd }),
      });
      this.child = child;
      this.childPid = child.pid;
      child.on('error', (error) => {
        reject(error);
        this.onerror?.(error);
      });
      child.on('spawn', () => resolve());
      child.on('close', () => {
        this.child = undefined;
        this.reader.reset();
        this.onclose?.();
      });
      child.stdin!.on('error', (error) => this.onerror?.(error));
      child.stdout!.on('error', (error) => this.onerror?.(error));
      child.stdout!.on('data', (chunk: Buffer) => this.reader.push(chunk));
      child.stderr!.pipe(this.stderr);
    });
  }

  /**
   * Writes one message. Resolves once the bytes are in the pipe; rejects with
   * NotSentError when they never got there (the child is not running, or the write
   * failed, e.g. EPIPE from a child that just died), so the caller knows the child
   * cannot have seen the message.
   */
  send(message: JSONRPCMessage): Promise<void> {
    const stdin = this.child?.stdin;
    if (stdin === undefined || stdin === null || stdin.destroyed || !stdin.writable) {
      return Promise.reject(new NotSentError('the upstream process is not running'));
    }
    return new Promise((resolve, reject) => {
      stdin.write(`${JSON.stringify(message)}\n`, (error) => {
        if (error) reject(new NotSentError(`the message could not be written to the upstream process: ${error.message}`));
        else resolve();
      });
    });
  }

  /** SIGKILLs the child if it is still running (it has not emitted 'close'). */
  kill(): void {
    const child = this.child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  /** Ends stdin, then SIGTERM after 2 s and SIGKILL after 2 s more, as the SDK's transport does. */
  async close(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
    const wait = (): Promise<void> => Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())]);
    try {
      child.stdin?.end();
    } catch {
      // Already gone.
    }
    await wait();
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await wait();
    }
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }

  private onLine(event: LineEvent): void {
    if (event.kind === 'oversize') {
      this.refuse(event.id, new RefusedAnswer('result_too_large', `the answer is larger than max_result_bytes (${this.maxMessageBytes} bytes; skipped ${event.bytes})`));
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(event.text);
    } catch {
      const scanner = new IdScanner();
      scanner.feed(Buffer.from(event.text, 'utf8'));
      this.refuse(scanner.id(), new RefusedAnswer('malformed_result', 'the answer is not valid JSON'));
      return;
    }
    const parsed = JSONRPCMessageSchema.safeParse(json);
    if (parsed.success) {
      this.onmessage?.(parsed.data);
      return;
    }
    // A response we cannot use: fail its request rather than let it wait for its timeout.
    const msg = typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined;
    const id = msg !== undefined && ('result' in msg || 'error' in msg) && (typeof msg.id === 'string' || typeof msg.id === 'number') ? msg.id : undefined;
    this.refuse(id, new RefusedAnswer('malformed_result', 'the answer is not a valid JSON-RPC message'));
  }

  /** Fails request `id` with `refusal`, or reports the message when it names no request. */
  private refuse(id: string | number | undefined, refusal: RefusedAnswer): void {
    if (id === undefined) {
      this.onerror?.(new Error(`upstream message dropped: ${refusal.reason}, and it names no request id`));
      return;
    }
    this.onmessage?.({ jsonrpc: '2.0', id, error: { code: ErrorCode.InternalError, message: `${refusal.code}: ${refusal.reason}`, data: refusal } });
  }
}
