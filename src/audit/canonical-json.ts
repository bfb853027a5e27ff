/** The audit log hashes with RFC 8785 canonical JSON, which lives in `lib/` (holder proofs use it too). */
export { MAX_CANONICAL_DEPTH, canonicalJson, fingerprintJson, sha256Hex } from '../lib/canonical-json.js';
