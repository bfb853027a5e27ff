/** The hash-chained audit log (SPEC §8) and the canonical JSON it hashes with. */
export { MAX_CANONICAL_DEPTH, canonicalJson, fingerprintJson, sha256Hex } from './canonical-json.js';
export { GENESIS_PREV, MAX_AUDIT_LINE_BYTES_WRITTEN, parseAuditLine, type AuditRecord, type ParsedLine } from './record.js';
export { tailAuditLog, type TailOptions } from './tail.js';
export { MAX_AUDIT_LINE_BYTES, verifyAuditLog, type AuditVerification } from './verify.js';
export { MAX_NAME_CHARS, MAX_REASON_CHARS, openAuditLog, type AuditEntry, type AuditLog, type AuditLogOptions } from './writer.js';
