/**
 * The OpenTelemetry side of call tracing, loaded only when an OTLP endpoint is set
 * (tracing.ts): the official SDK's tracer provider with a batch processor and the
 * OTLP/HTTP (JSON) exporter, which reads the standard OTEL_EXPORTER_OTLP_* variables
 * itself, and the W3C trace-context propagator.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapGetter, defaultTextMapSetter, trace, type Span } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_ERROR_TYPE, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

import type { CallSpan, CallTracing } from './tracing.js';

/** Builds the tracing; spans are exported in batches in the background. */
export function createOtelTracing(): CallTracing {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: process.env.OTEL_SERVICE_NAME ?? 'capframe' }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter())],
  });
  const tracer = provider.getTracer('capframe');
  const propagator = new W3CTraceContextPropagator();

  return {
    start(tool, traceparent) {
      const parent = traceparent === undefined ? ROOT_CONTEXT : propagator.extract(ROOT_CONTEXT, { traceparent }, defaultTextMapGetter);
      const span: Span = tracer.startSpan(`tools/call ${tool}`, { kind: SpanKind.SERVER, attributes: { 'mcp.method.name': 'tools/call', 'capframe.tool': tool } }, parent);
      const carrier: Record<string, string> = {};
      propagator.inject(trace.setSpan(parent, span), carrier, defaultTextMapSetter);
      const call: CallSpan = {
        traceparent: carrier.traceparent,
        decided(d) {
          span.setAttributes({ 'capframe.decision': d.allowed ? 'allow' : 'deny', 'capframe.code': d.code });
          if (d.agent !== null) span.setAttribute('capframe.agent', d.agent);
          if (d.tokenId !== null) span.setAttribute('capframe.token_id', d.tokenId);
        },
        end(outcome) {
          span.setAttribute('capframe.upstream.outcome', outcome.code);
          if (outcome.server !== undefined) span.setAttribute('capframe.upstream.server', outcome.server);
          if (outcome.code !== 'ok' && outcome.code !== 'not_forwarded') {
            span.setAttribute(ATTR_ERROR_TYPE, outcome.code);
            span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.code });
          }
          span.end();
        },
      };
      return call;
    },
    shutdown: () => provider.shutdown(),
  };
}
