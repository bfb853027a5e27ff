//! Trusted keys, the revocation set, the verdict cache, and the one-call verify.
//!
//! Twin of `src/backend/js.ts`. The order of checks is part of the contract shared
//! with the TypeScript backend: parse (malformed_token) → key id (unknown_key) →
//! strict Ed25519 (bad_signature) → exp (expired) → nbf (not_yet_valid) →
//! revocation (revoked).

use ed25519_dalek::{Signature, VerifyingKey};
use rustc_hash::{FxHashMap, FxHashSet};
use sha2::{Digest, Sha256};

use crate::token::{parse, Parsed};

pub const OK: u32 = 0;
pub const MALFORMED: u32 = 1;
pub const BAD_SIGNATURE: u32 = 2;
pub const UNKNOWN_KEY: u32 = 3;
pub const EXPIRED: u32 = 4;
pub const NOT_YET_VALID: u32 = 5;
pub const REVOKED: u32 = 6;

/// What a verified token needs for re-checks on a cache hit.
struct Verdict {
    exp: u64,
    nbf: Option<u64>,
    cti: [u8; 16],
}

pub struct Verifier {
    keys: FxHashMap<[u8; 8], VerifyingKey>,
    revoked: FxHashSet<[u8; 16]>,
    /// Verified tokens by their exact bytes. A hit skips parsing and the signature,
    /// never the time and revocation checks.
    cache: FxHashMap<Box<[u8]>, Verdict>,
    cache_capacity: usize,
    /// Reused buffer for the COSE Sig_structure, so verify does not allocate.
    scratch: Vec<u8>,
}

/// The key id of a raw Ed25519 public key: the first 8 bytes of its SHA-256.
pub fn key_id(public_key: &[u8]) -> [u8; 8] {
    let digest = Sha256::digest(public_key);
    digest[..8].try_into().unwrap()
}

/// `verify_strict`: rejects S ≥ L, small-order A and small-order R.
pub fn verify_strict(key: &VerifyingKey, message: &[u8], signature: &[u8; 64]) -> bool {
    // from_bytes only splits R and S; the canonical-S check happens in verify_strict.
    let sig = Signature::from_bytes(signature);
    key.verify_strict(message, &sig).is_ok()
}

impl Verifier {
    pub fn new(cache_capacity: usize) -> Self {
        Verifier {
            keys: FxHashMap::default(),
            revoked: FxHashSet::default(),
            cache: FxHashMap::default(),
            cache_capacity,
            scratch: Vec::with_capacity(512),
        }
    }

    /// Trusts a 32-byte Ed25519 public key; returns its key id. Fails when the bytes
    /// are not the encoding of a curve point.
    pub fn add_key(&mut self, public_key: &[u8]) -> Result<[u8; 8], &'static str> {
        let bytes: [u8; 32] = public_key.try_into().map_err(|_| "public key must be 32 bytes")?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| "public key is not a valid Ed25519 point")?;
        let kid = key_id(&bytes);
        self.keys.insert(kid, key);
        Ok(kid)
    }

    pub fn remove_key(&mut self, kid: &[u8]) -> bool {
        let Ok(kid) = <[u8; 8]>::try_from(kid) else { return false };
        let removed = self.keys.remove(&kid).is_some();
        if removed {
            // Cached verdicts may rest on that key.
            self.cache.clear();
        }
        removed
    }

    pub fn revoke(&mut self, cti: [u8; 16]) -> bool {
        self.revoked.insert(cti)
    }

    pub fn is_revoked(&self, cti: &[u8; 16]) -> bool {
        self.revoked.contains(cti)
    }

    pub fn revoked_count(&self) -> usize {
        self.revoked.len()
    }

    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Verifies one token at time `now` (seconds since the epoch). Returns the code in
    /// the low byte and, for `MALFORMED`, the detail in the next byte.
    pub fn verify(&mut self, token: &[u8], now: f64) -> u32 {
        if let Some(v) = self.cache.get(token) {
            return self.time_and_revocation(v.exp, v.nbf, &v.cti, now);
        }
        let parsed = match parse(token) {
            Ok(p) => p,
            Err(detail) => return MALFORMED | (detail as u32) << 8,
        };
        let Some(key) = self.keys.get(&parsed.kid) else { return UNKNOWN_KEY };
        sig_structure(&mut self.scratch, &parsed);
        if !verify_strict(key, &self.scratch, &parsed.signature) {
            return BAD_SIGNATURE;
        }
        let code = self.time_and_revocation(parsed.exp, parsed.nbf, &parsed.cti, now);
        if code == OK {
            if self.cache.len() >= self.cache_capacity {
                // Bounded memory with no bookkeeping; a cold cache only costs speed.
                self.cache.clear();
            }
            self.cache.insert(token.into(), Verdict { exp: parsed.exp, nbf: parsed.nbf, cti: parsed.cti });
        }
        code
    }

    fn time_and_revocation(&self, exp: u64, nbf: Option<u64>, cti: &[u8; 16], now: f64) -> u32 {
        if now >= exp as f64 {
            EXPIRED
        } else if nbf.is_some_and(|nbf| now < nbf as f64) {
            NOT_YET_VALID
        } else if self.revoked.contains(cti) {
            REVOKED
        } else {
            OK
        }
    }
}

/// `["Signature1", protected, h'', payload]`, the bytes COSE_Sign1 signs.
fn sig_structure(out: &mut Vec<u8>, token: &Parsed<'_>) {
    out.clear();
    out.push(0x84);
    out.push(0x6a);
    out.extend_from_slice(b"Signature1");
    out.extend_from_slice(token.protected_item);
    out.push(0x40);
    push_head(out, 2, token.payload.len() as u64);
    out.extend_from_slice(token.payload);
}

fn push_head(out: &mut Vec<u8>, major: u8, len: u64) {
    let m = major << 5;
    match len {
        0..=23 => out.push(m | len as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, len as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(m | 26);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}
