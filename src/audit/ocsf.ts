/**
 * Audit lines as OCSF events (Open Cybersecurity Schema Framework 1.6.0), for SIEMs:
 * class API Activity (6003, category Application Activity), activity Other (99) with the
 * MCP method as its name, and the `security_control` profile's disposition (Allowed /
 * Blocked). docs/telemetry.md maps every field.
 *
 * Why API Activity and not Authorization (3003): 3003 records privileges assigned to a
 * session at sign-in; a Capframe line records one API call (`tools/call`) and whether it
 * was let through, which is what 6003 and the disposition express.
 */
import type { AuditRecord } from './record.js';

export const OCSF_VERSION = '1.6.0';
const CLASS_UID = 6003;
const ACTIVITY_OTHER = 99;

/** The OCSF event of one audit line (only the attributes Capframe fills). */
export interface OcsfApiActivity {
  activity_id: 99;
  activity_name: string;
  category_uid: 6;
  category_name: 'Application Activity';
  class_uid: 6003;
  class_name: 'API Activity';
  type_uid: 600399;
  type_name: 'API Activity: Other';
  time: number;
  severity_id: number;
  severity: string;
  status_id: 1 | 2;
  status: 'Success' | 'Failure';
  status_code: string;
  status_detail: string;
  disposition_id?: 1 | 2;
  disposition?: 'Allowed' | 'Blocked';
  message: string;
  duration: number;
  actor: { user?: { name: string; uid: string; type: 'Other' }; app_name: string };
  api: { operation: string; service?: { name: string }; request: { uid: string }; response: { code?: number; error?: string; message: string } };
  resources: { type: string; name: string; uid: string }[];
  metadata: {
    version: string;
    uid: string;
    sequence: number;
    correlation_uid: string;
    original_time: string;
    log_name: string;
    log_provider: string;
    profiles: string[];
    product: { name: string; vendor_name: string };
  };
  unmapped: Record<string, unknown>;
}

/**
 * The OCSF event for an audit line. `lineSha256` is the SHA-256 (hex) of the line's exact
 * bytes — the next line's `prev` — and becomes the event's `metadata.uid`, so a receiver
 * can drop the duplicates an at-least-once sink may send.
 *
 * @example
 * const event = toOcsf(record, sha256Hex(line));
 * event.disposition; // 'Blocked' for a denial
 */
export function toOcsf(record: AuditRecord, lineSha256: string): OcsfApiActivity {
  const outcome = record.decision === 'outcome';
  const allowed = record.decision === 'allow';
  const tool = record.tool ?? '';
  const dot = tool.indexOf('.');
  const unmapped: Record<string, unknown> = {
    decision: record.decision,
    token_id: record.token_id,
    args_sha256: record.args_sha256,
    latency_us: record.latency_us,
    prev: record.prev,
  };
  if (record.args !== undefined) unmapped.args = record.args;
  if (record.args_omitted !== undefined) unmapped.args_omitted = record.args_omitted;
  if (record.of_seq !== undefined) unmapped.of_seq = record.of_seq;
  if (record.via !== undefined) unmapped.via = record.via;
  const event: OcsfApiActivity = {
    activity_id: ACTIVITY_OTHER,
    activity_name: outcome ? 'tools/call outcome' : 'tools/call',
    category_uid: 6,
    category_name: 'Application Activity',
    class_uid: CLASS_UID,
    class_name: 'API Activity',
    type_uid: 600399,
    type_name: 'API Activity: Other',
    time: Date.parse(record.time),
    // Denials and failed forwarded calls are what an analyst looks for first.
    severity_id: allowed ? 1 : 2,
    severity: allowed ? 'Informational' : 'Low',
    status_id: allowed ? 1 : 2,
    status: allowed ? 'Success' : 'Failure',
    status_code: record.code,
    status_detail: record.reason,
    message: `${record.decision} ${record.code}${record.tool === null ? '' : ` ${record.tool}`}: ${record.reason}`,
    duration: Math.round(record.latency_us / 1000),
    actor: { app_name: record.via === undefined ? 'capframe' : `capframe ${record.via}` },
    api: {
      operation: 'tools/call',
      request: { uid: String(record.of_seq ?? record.seq) },
      response: { message: record.reason, ...(!allowed && { error: record.code }) },
    },
    resources: record.tool === null ? [] : [{ type: 'mcp_tool', name: record.tool, uid: record.tool }],
    metadata: {
      version: OCSF_VERSION,
      uid: lineSha256,
      sequence: record.seq,
      correlation_uid: String(record.of_seq ?? record.seq),
      original_time: record.time,
      log_name: 'capframe-audit',
      log_provider: 'capframe',
      profiles: outcome ? [] : ['security_control'],
      product: { name: 'Capframe', vendor_name: 'Capframe' },
    },
    unmapped,
  };
  if (!outcome) {
    event.disposition_id = allowed ? 1 : 2;
    event.disposition = allowed ? 'Allowed' : 'Blocked';
  }
  if (record.agent !== null) event.actor.user = { name: record.agent, uid: record.agent, type: 'Other' };
  if (dot > 0) event.api.service = { name: tool.slice(0, dot) };
  return event;
}
