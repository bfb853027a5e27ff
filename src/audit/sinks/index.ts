/** Audit sinks (`audit.sinks`): every audit line streamed as OCSF to syslog or HTTP receivers. */
export { cursorPath, startAuditSink, type AuditSink, type SinkEvents, type SinkOptions } from './runner.js';
export { createTransport, sinkName, syslogFrame, type SinkItem, type SinkTransport } from './transports.js';
