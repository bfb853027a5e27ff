/**
 * Tracing of `tools/call` as the proxy sees it: one span per call, with the decision and
 * the upstream outcome, and W3C trace context carried from the caller to the upstream.
 *
 * This module is what the hot path sees. It imports no OpenTelemetry code: the SDK is
 * loaded (otel.ts) only when an OTLP endpoint is configured, so the CLI's start-up and a
 * call with tracing off pay for nothing but one `undefined` check.
 */
import type { Logger } from '../proxy/log.js';

/** What the span of one call records. */
export interface CallSpan {
  /** The `traceparent` to send upstream: this span as the parent. */
  readonly traceparent: string | undefined;
  /** The decision, once audited. */
  decided(decision: { allowed: boolean; code: string; agent: string | null; tokenId: string | null }): void;
  /** Ends the span with what became of the call: `ok`, `not_forwarded`, or an upstream outcome code. */
  end(outcome: { code: string; server?: string }): void;
}

export interface CallTracing {
  /** Starts the span of a `tools/call`, as a child of `traceparent` when the caller sent one. */
  start(tool: string, traceparent: string | undefined): CallSpan;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

/** A W3C `traceparent` (version 00), the only form passed on: anything else is dropped. */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/;

/** `value` if it is a well-formed W3C traceparent, else undefined. */
export function validTraceparent(value: unknown): string | undefined {
  return typeof value === 'string' && value.length === 55 && TRACEPARENT.test(value) ? value : undefined;
}

/** Whether the environment asks for trace export (OTLP/HTTP). */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none') return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT);
}

/**
 * The tracing of this process, or undefined when no OTLP endpoint is configured (or the
 * SDK cannot start: tracing is an aid, never a reason not to serve).
 *
 * @example
 * const tracing = await startTracing(log); // OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4318
 * const span = tracing?.start('database.query', request.headers.traceparent);
 */
export async function startTracing(log: Logger, env: NodeJS.ProcessEnv = process.env): Promise<CallTracing | undefined> {
  if (!tracingConfigured(env)) return undefined;
  try {
    const { createOtelTracing } = await import('./otel.js');
    const tracing = createOtelTracing();
    log.info('tracing: exporting a span per tools/call over OTLP/HTTP', { endpoint: env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT });
    return tracing;
  } catch (error) {
    log.error('tracing could not start; serving without it', { error: (error as Error).message });
    return undefined;
  }
}
