//! Trusted keys, the revocation set, the verdict cache, and the one-call verify of a
//! token with its whole delegation chain.
//!
//! Twin of `src/backend/js.ts` and `src/token/chain.ts`. The order of checks is part
//! of the contract shared with the TypeScript backend:
//!
//! 1. the chain's structure, link by link from the presented token (link 0) up to
//!    the root: parse link i (malformed_token at i); with its child: the parent names
//!    a holder key (ParentUnbound), the child's kid is that key's id (WrongSigner),
//!    the child expires no later (OutlivesParent) — at i − 1; when link i carries
//!    `prf`: it names a holder key (ChildUnbound), its `iss` is the hex id of its
//!    signer (WrongIssuer), its parent is within the depth limit (TooDeep) — at i;
//! 2. the root's key id names a trusted key (unknown_key);
//! 3. strict Ed25519: the root with the trusted key, then each child with its
//!    parent's holder key, root to presented token (bad_signature);
//! 4. per link, root to presented token: exp (expired), nbf (not_yet_valid),
//!    revocation (revoked).
//!
//! Results are packed: code | detail << 8 | link << 16.

use ed25519_dalek::{Signature, VerifyingKey};
use rustc_hash::{FxHashMap, FxHashSet};
use sha2::{Digest, Sha256};

use crate::proof::{check_fields, parse_proof, Expected, ProofFailure};
use crate::token::{parse, Envelope, Parsed};

pub const OK: u32 = 0;
pub const MALFORMED: u32 = 1;
pub const BAD_SIGNATURE: u32 = 2;
pub const UNKNOWN_KEY: u32 = 3;
pub const EXPIRED: u32 = 4;
pub const NOT_YET_VALID: u32 = 5;
pub const REVOKED: u32 = 6;
pub const DELEGATION_INVALID: u32 = 7;
pub const BAD_PROOF: u32 = 8;

/// `delegation_invalid` details, shared with `src/token/codes.ts` (`Delegation`).
/// 7 (ToolNotSubset) and 8 (CapabilityChanged) are checked in TypeScript for both
/// backends.
pub mod delegation {
    pub const TOO_DEEP: u32 = 1;
    pub const CHILD_UNBOUND: u32 = 2;
    pub const PARENT_UNBOUND: u32 = 3;
    pub const WRONG_SIGNER: u32 = 4;
    pub const WRONG_ISSUER: u32 = 5;
    pub const OUTLIVES_PARENT: u32 = 6;
}

/// Delegations accepted below the root unless told otherwise (SPEC §5).
pub const DEFAULT_MAX_DEPTH: usize = 4;

pub fn pack(code: u32, detail: u32, link: usize) -> u32 {
    code | detail << 8 | (link as u32) << 16
}

/// What one link needs for the re-checks on a cache hit.
struct LinkTimes {
    exp: u64,
    nbf: Option<u64>,
    cti: [u8; 16],
}

/// A verified token: its links (presented token first) and what a proof needs.
struct Verdict {
    links: Box<[LinkTimes]>,
    holder: Option<[u8; 32]>,
    /// The holder key decompressed and its key id, on the first proof, then reused.
    holder_key: Option<(VerifyingKey, [u8; 8])>,
}

pub struct Verifier {
    keys: FxHashMap<[u8; 8], VerifyingKey>,
    revoked: FxHashSet<[u8; 16]>,
    /// Verified tokens by their exact bytes. A hit skips parsing and the signatures,
    /// never the time and revocation checks of any link.
    cache: FxHashMap<Box<[u8]>, Verdict>,
    cache_capacity: usize,
    max_depth: usize,
    /// Reused buffer for the COSE Sig_structure, so verify does not allocate for it.
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

/// True when `iss` is exactly the lowercase hex of `kid`.
fn is_hex_of(iss: &[u8], kid: &[u8; 8]) -> bool {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    iss.len() == 16 && kid.iter().enumerate().all(|(i, b)| iss[2 * i] == HEX[(b >> 4) as usize] && iss[2 * i + 1] == HEX[(b & 15) as usize])
}

/// Step 1: every link parsed, presented token first, and checked against its
/// neighbours; or the packed result of the first problem.
pub fn parse_chain(token: &[u8], max_depth: usize) -> Result<Vec<Parsed<'_>>, u32> {
    let mut links: Vec<Parsed<'_>> = Vec::with_capacity(2);
    let mut bytes = Some(token);
    while let Some(b) = bytes {
        let i = links.len();
        let link = parse(b).map_err(|detail| pack(MALFORMED, detail as u32, i))?;
        if let Some(child) = links.last() {
            let Some(holder) = link.holder else { return Err(pack(DELEGATION_INVALID, delegation::PARENT_UNBOUND, i - 1)) };
            if child.envelope.kid != key_id(&holder) {
                return Err(pack(DELEGATION_INVALID, delegation::WRONG_SIGNER, i - 1));
            }
            if child.exp > link.exp {
                return Err(pack(DELEGATION_INVALID, delegation::OUTLIVES_PARENT, i - 1));
            }
        }
        if link.prf.is_some() {
            if link.holder.is_none() {
                return Err(pack(DELEGATION_INVALID, delegation::CHILD_UNBOUND, i));
            }
            if !is_hex_of(link.iss, &link.envelope.kid) {
                return Err(pack(DELEGATION_INVALID, delegation::WRONG_ISSUER, i));
            }
            if i + 1 > max_depth {
                return Err(pack(DELEGATION_INVALID, delegation::TOO_DEEP, i));
            }
        }
        bytes = link.prf;
        links.push(link);
    }
    Ok(links)
}

impl Verifier {
    pub fn new(cache_capacity: usize, max_depth: usize) -> Self {
        Verifier {
            keys: FxHashMap::default(),
            revoked: FxHashSet::default(),
            cache: FxHashMap::default(),
            cache_capacity,
            max_depth,
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

    /// Verifies one token and its chain at time `now` (seconds since the epoch).
    pub fn verify(&mut self, token: &[u8], now: f64) -> u32 {
        if let Some(v) = self.cache.get(token) {
            return self.time_and_revocation(&v.links, now);
        }
        self.verify_fresh(token, now)
    }

    /// `verify` at `now_ms / 1000`, then the holder proof for a call of `tool` whose
    /// arguments hash to `args_hash`, at a verifier naming `audience`. On OK the
    /// proof's nonce is written to `nonce_out`.
    pub fn verify_proof(&mut self, token: &[u8], proof: &[u8], tool: &[u8], args_hash: &[u8], audience: Option<&[u8]>, now_ms: f64, nonce_out: &mut [u8; 16]) -> u32 {
        let code = self.verify(token, now_ms / 1000.0);
        if code != OK {
            return code;
        }
        // An OK verify always leaves the token in the cache (a full cache is cleared
        // first); if it somehow is not, refuse rather than guess.
        let Some(verdict) = self.cache.get_mut(token) else { return pack(BAD_PROOF, ProofFailure::NotBound as u32, 0) };
        match check_proof(verdict, proof, tool, args_hash, audience, now_ms, &mut self.scratch, nonce_out) {
            Ok(()) => OK,
            Err(why) => pack(BAD_PROOF, why as u32, 0),
        }
    }

    fn verify_fresh(&mut self, token: &[u8], now: f64) -> u32 {
        let links = match parse_chain(token, self.max_depth) {
            Ok(links) => links,
            Err(code) => return code,
        };
        let last = links.len() - 1;
        let root = &links[last];
        let Some(key) = self.keys.get(&root.envelope.kid) else { return pack(UNKNOWN_KEY, 0, last) };
        sig_structure(&mut self.scratch, &root.envelope);
        if !verify_strict(key, &self.scratch, &root.envelope.signature) {
            return pack(BAD_SIGNATURE, 0, last);
        }
        for i in (0..last).rev() {
            // parse_chain saw that every parent names a holder key; one that is not a
            // curve point cannot have signed anything.
            let signer = links[i + 1].holder.and_then(|h| VerifyingKey::from_bytes(&h).ok());
            sig_structure(&mut self.scratch, &links[i].envelope);
            if !signer.is_some_and(|k| verify_strict(&k, &self.scratch, &links[i].envelope.signature)) {
                return pack(BAD_SIGNATURE, 0, i);
            }
        }
        let times: Box<[LinkTimes]> = links.iter().map(|l| LinkTimes { exp: l.exp, nbf: l.nbf, cti: l.cti }).collect();
        let code = self.time_and_revocation(&times, now);
        if code == OK {
            if self.cache.len() >= self.cache_capacity {
                // Bounded memory with no bookkeeping; a cold cache only costs speed.
                self.cache.clear();
            }
            self.cache.insert(token.into(), Verdict { links: times, holder: links[0].holder, holder_key: None });
        }
        code
    }

    /// Expiry, nbf and revocation of every link, from the root down to the presented token.
    fn time_and_revocation(&self, links: &[LinkTimes], now: f64) -> u32 {
        for (i, v) in links.iter().enumerate().rev() {
            if now >= v.exp as f64 {
                return pack(EXPIRED, 0, i);
            }
            if v.nbf.is_some_and(|nbf| now < nbf as f64) {
                return pack(NOT_YET_VALID, 0, i);
            }
            if self.revoked.contains(&v.cti) {
                return pack(REVOKED, 0, i);
            }
        }
        OK
    }
}

#[allow(clippy::too_many_arguments)]
fn check_proof(
    verdict: &mut Verdict,
    proof: &[u8],
    tool: &[u8],
    args_hash: &[u8],
    audience: Option<&[u8]>,
    now_ms: f64,
    scratch: &mut Vec<u8>,
    nonce_out: &mut [u8; 16],
) -> Result<(), ProofFailure> {
    let Some(holder) = verdict.holder else { return Err(ProofFailure::NotBound) };
    let p = parse_proof(proof)?;
    if verdict.holder_key.is_none() {
        // A holder key that is not a curve point verifies no proof.
        let key = VerifyingKey::from_bytes(&holder).ok();
        match key {
            Some(key) => verdict.holder_key = Some((key, key_id(&holder))),
            None => {
                let expected = Expected { holder_kid: &key_id(&holder), cti: &verdict.links[0].cti, tool, args: args_hash, audience, now_ms };
                check_fields(&p, &expected)?;
                return Err(ProofFailure::BadSignature);
            }
        }
    }
    let (key, kid) = verdict.holder_key.as_ref().unwrap();
    let expected = Expected { holder_kid: kid, cti: &verdict.links[0].cti, tool, args: args_hash, audience, now_ms };
    check_fields(&p, &expected)?;
    sig_structure(scratch, &p.envelope);
    if !verify_strict(key, scratch, &p.envelope.signature) {
        return Err(ProofFailure::BadSignature);
    }
    nonce_out.copy_from_slice(&p.nonce);
    Ok(())
}

/// `["Signature1", protected, h'', payload]`, the bytes COSE_Sign1 signs.
fn sig_structure(out: &mut Vec<u8>, envelope: &Envelope<'_>) {
    out.clear();
    out.push(0x84);
    out.push(0x6a);
    out.extend_from_slice(b"Signature1");
    out.extend_from_slice(envelope.protected_item);
    out.push(0x40);
    push_head(out, 2, envelope.payload.len() as u64);
    out.extend_from_slice(envelope.payload);
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
