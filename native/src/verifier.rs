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

    /// `verify` at `call.now_ms / 1000`, then the holder proof for `call`. On OK the
    /// proof's nonce is written to `nonce_out`.
    pub fn verify_proof(&mut self, token: &[u8], proof: &[u8], call: &Call<'_>, nonce_out: &mut [u8; 16]) -> u32 {
        let code = self.verify(token, call.now_ms / 1000.0);
        if code != OK {
            return code;
        }
        // An OK verify always leaves the token in the cache (a full cache is cleared
        // first); if it somehow is not, refuse rather than guess.
        let Some(verdict) = self.cache.get_mut(token) else { return pack(BAD_PROOF, ProofFailure::NotBound as u32, 0) };
        match check_proof(verdict, proof, call, &mut self.scratch, nonce_out) {
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

/// The call a proof must be for: the tool exactly, the SHA-256 of the arguments'
/// canonical JSON, the verifier's audience (if it names one), the time in ms.
pub struct Call<'a> {
    pub tool: &'a [u8],
    pub args_hash: &'a [u8],
    pub audience: Option<&'a [u8]>,
    pub now_ms: f64,
}

fn check_proof(verdict: &mut Verdict, proof: &[u8], call: &Call<'_>, scratch: &mut Vec<u8>, nonce_out: &mut [u8; 16]) -> Result<(), ProofFailure> {
    let Some(holder) = verdict.holder else { return Err(ProofFailure::NotBound) };
    let p = parse_proof(proof)?;
    let expected = |kid| Expected { holder_kid: kid, cti: &verdict.links[0].cti, tool: call.tool, args: call.args_hash, audience: call.audience, now_ms: call.now_ms };
    if verdict.holder_key.is_none() {
        match VerifyingKey::from_bytes(&holder) {
            Ok(key) => verdict.holder_key = Some((key, key_id(&holder))),
            Err(_) => {
                // A holder key that is not a curve point verifies no proof; the other
                // checks still come first, as in the TypeScript backend.
                check_fields(&p, &expected(&key_id(&holder)))?;
                return Err(ProofFailure::BadSignature);
            }
        }
    }
    let (key, kid) = verdict.holder_key.as_ref().unwrap();
    check_fields(&p, &expected(kid))?;
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

#[cfg(test)]
mod tests {
    //! The chain walker and the proof checks on hand-built tokens: each rule of the
    //! order stated at the top of this file, and the cache's re-checks.
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    const NOW: u64 = 1_800_000_000;

    fn head(out: &mut Vec<u8>, major: u8, n: u64) {
        if n > 0xffff_ffff {
            out.push(major << 5 | 27);
            out.extend_from_slice(&n.to_be_bytes());
        } else {
            push_head(out, major, n);
        }
    }
    fn bytes(out: &mut Vec<u8>, b: &[u8]) {
        head(out, 2, b.len() as u64);
        out.extend_from_slice(b);
    }
    fn text(out: &mut Vec<u8>, t: &str) {
        head(out, 3, t.len() as u64);
        out.extend_from_slice(t.as_bytes());
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// What a test token says; `None` leaves a claim out.
    #[derive(Clone)]
    struct Spec {
        iss: String,
        exp: u64,
        nbf: Option<u64>,
        cti: u8,
        holder: Option<[u8; 32]>,
        tool: &'static str,
        prf: Option<Vec<u8>>,
    }

    fn root(cti: u8, holder: Option<u8>) -> Spec {
        Spec { iss: "capframe".into(), exp: NOW + 3600, nbf: None, cti, holder: holder.map(|s| key(s).verifying_key().to_bytes()), tool: "payments.*", prf: None }
    }

    /// A child of `parent` (signed by `signer`), bound to `holder`.
    fn child(parent: &[u8], signer: u8, cti: u8, holder: u8) -> Spec {
        let kid = key_id(&key(signer).verifying_key().to_bytes());
        Spec {
            iss: kid.iter().map(|b| format!("{b:02x}")).collect(),
            exp: NOW + 600,
            nbf: None,
            cti,
            holder: Some(key(holder).verifying_key().to_bytes()),
            tool: "payments.refund",
            prf: Some(parent.to_vec()),
        }
    }

    fn payload(s: &Spec) -> Vec<u8> {
        let mut p = Vec::new();
        let n = 5 + usize::from(s.nbf.is_some()) + usize::from(s.holder.is_some()) + usize::from(s.prf.is_some());
        head(&mut p, 5, n as u64);
        head(&mut p, 0, 1);
        text(&mut p, &s.iss);
        head(&mut p, 0, 4);
        head(&mut p, 0, s.exp);
        if let Some(nbf) = s.nbf {
            head(&mut p, 0, 5);
            head(&mut p, 0, nbf);
        }
        head(&mut p, 0, 6);
        head(&mut p, 0, NOW - 10);
        head(&mut p, 0, 7);
        bytes(&mut p, &[s.cti; 16]);
        if let Some(x) = s.holder {
            head(&mut p, 0, 8);
            p.extend_from_slice(&[0xa1, 0x01, 0xa3, 0x01, 0x01, 0x20, 0x06, 0x21]);
            bytes(&mut p, &x);
        }
        if let Some(prf) = &s.prf {
            text(&mut p, "prf");
            bytes(&mut p, prf);
        }
        text(&mut p, "tool");
        text(&mut p, s.tool);
        p
    }

    /// COSE_Sign1 of `payload` with the protected kid of `kid_of`, signed by `signer`.
    fn sign1(payload: &[u8], kid_of: u8, signer: u8) -> Vec<u8> {
        let mut protected = vec![0xa2, 0x01, 0x27, 0x04, 0x48];
        protected.extend_from_slice(&key_id(&key(kid_of).verifying_key().to_bytes()));
        let mut protected_item = Vec::new();
        bytes(&mut protected_item, &protected);
        let envelope = Envelope { protected_item: &protected_item, kid: [0; 8], payload, signature: [0; 64] };
        let mut msg = Vec::new();
        sig_structure(&mut msg, &envelope);
        let sig = key(signer).sign(&msg).to_bytes();
        let mut t = vec![0xd2, 0x84];
        t.extend_from_slice(&protected_item);
        t.push(0xa0);
        bytes(&mut t, payload);
        bytes(&mut t, &sig);
        t
    }

    fn token(s: &Spec, signer: u8) -> Vec<u8> {
        sign1(&payload(s), signer, signer)
    }

    const ISSUER: u8 = 7;

    fn verifier(max_depth: usize) -> Verifier {
        let mut v = Verifier::new(16, max_depth);
        v.add_key(&key(ISSUER).verifying_key().to_bytes()).unwrap();
        v
    }

    /// planner (1) → executor (2) → sub-executor (3): each token and its holder seed.
    fn chain(len: usize) -> Vec<Vec<u8>> {
        let mut tokens = vec![token(&root(1, Some(1)), ISSUER)];
        for i in 1..len as u8 {
            let parent = tokens.last().unwrap().clone();
            tokens.push(token(&child(&parent, i, 1 + i, 1 + i), i));
        }
        tokens
    }

    #[test]
    fn verifies_a_chain_in_one_call() {
        let mut v = verifier(DEFAULT_MAX_DEPTH);
        for t in chain(5) {
            assert_eq!(v.verify(&t, NOW as f64), OK);
        }
    }

    #[test]
    fn refuses_a_chain_deeper_than_the_limit() {
        let tokens = chain(6);
        assert_eq!(verifier(4).verify(&tokens[4], NOW as f64), OK);
        // Five delegations: the link whose parent would be the sixth token fails.
        assert_eq!(verifier(4).verify(&tokens[5], NOW as f64), pack(DELEGATION_INVALID, delegation::TOO_DEEP, 4));
        assert_eq!(verifier(0).verify(&tokens[1], NOW as f64), pack(DELEGATION_INVALID, delegation::TOO_DEEP, 0));
        assert_eq!(verifier(5).verify(&tokens[5], NOW as f64), OK);
    }

    #[test]
    fn structural_rules_before_any_signature() {
        let parent = token(&root(1, Some(1)), ISSUER);
        let t = |s: &Spec, kid_of: u8, signer: u8| sign1(&payload(s), kid_of, signer);
        let mut v = verifier(4);

        let mut unbound = child(&parent, 1, 2, 2);
        unbound.holder = None;
        assert_eq!(v.verify(&t(&unbound, 1, 1), NOW as f64), pack(DELEGATION_INVALID, delegation::CHILD_UNBOUND, 0));

        let bare_parent = token(&root(1, None), ISSUER);
        assert_eq!(v.verify(&t(&child(&bare_parent, 1, 2, 2), 1, 1), NOW as f64), pack(DELEGATION_INVALID, delegation::PARENT_UNBOUND, 0));

        // Signed by a stranger under the stranger's own kid: not the parent's holder.
        assert_eq!(v.verify(&t(&child(&parent, 9, 2, 2), 9, 9), NOW as f64), pack(DELEGATION_INVALID, delegation::WRONG_SIGNER, 0));

        let mut wrong_iss = child(&parent, 1, 2, 2);
        wrong_iss.iss = "capframe".into();
        assert_eq!(v.verify(&t(&wrong_iss, 1, 1), NOW as f64), pack(DELEGATION_INVALID, delegation::WRONG_ISSUER, 0));

        let mut late = child(&parent, 1, 2, 2);
        late.exp = NOW + 3601;
        assert_eq!(v.verify(&t(&late, 1, 1), NOW as f64), pack(DELEGATION_INVALID, delegation::OUTLIVES_PARENT, 0));
        late.exp = NOW + 3600;
        assert_eq!(v.verify(&t(&late, 1, 1), NOW as f64), OK);

        // A malformed parent is malformed at link 1.
        let broken = t(&child(&parent[..parent.len() - 1], 1, 2, 2), 1, 1);
        assert_eq!(v.verify(&broken, NOW as f64), pack(MALFORMED, crate::cbor::Malformed::Truncated as u32, 1));
    }

    #[test]
    fn signatures_from_the_root_down() {
        let mut v = verifier(4);
        // The holder's kid, but a stranger's signature.
        let parent = token(&root(1, Some(1)), ISSUER);
        assert_eq!(v.verify(&sign1(&payload(&child(&parent, 1, 2, 2)), 1, 9), NOW as f64), pack(BAD_SIGNATURE, 0, 0));
        // A root from an untrusted issuer.
        let foreign = token(&root(1, Some(1)), 9);
        assert_eq!(v.verify(&token(&child(&foreign, 1, 2, 2), 1), NOW as f64), pack(UNKNOWN_KEY, 0, 1));
        // A tampered root under a good child: the child's signature covers the root's
        // bytes, but the root is checked first.
        let mut tampered = parent.clone();
        let n = tampered.len();
        tampered[n - 70] ^= 1;
        assert_eq!(v.verify(&token(&child(&tampered, 1, 2, 2), 1), NOW as f64), pack(BAD_SIGNATURE, 0, 1));
    }

    #[test]
    fn time_and_revocation_of_every_link_also_on_cache_hits() {
        let tokens = chain(3);
        let mut v = verifier(4);
        let leaf = &tokens[2];
        assert_eq!(v.verify(leaf, NOW as f64), OK);
        assert_eq!(v.verify(leaf, (NOW + 600) as f64), pack(EXPIRED, 0, 1));
        v.revoke([2; 16]); // the executor's token, the leaf's parent
        assert_eq!(v.verify(leaf, NOW as f64), pack(REVOKED, 0, 1));
        v.revoke([1; 16]); // the root: reported first, root to leaf
        assert_eq!(v.verify(leaf, NOW as f64), pack(REVOKED, 0, 2));
        let mut early = root(1, Some(1));
        early.nbf = Some(NOW + 60);
        let mut fresh = verifier(4);
        assert_eq!(fresh.verify(&token(&child(&token(&early, ISSUER), 1, 2, 2), 1), NOW as f64), pack(NOT_YET_VALID, 0, 1));
    }

    /// A proof payload `{1: cti, 2: tool, 3: args, 4: iat, 5: nonce}` signed by `signer`.
    fn proof(cti: u8, tool: &str, args: [u8; 32], iat: u64, signer: u8, kid_of: u8) -> Vec<u8> {
        let mut p = vec![0xa5, 0x01];
        bytes(&mut p, &[cti; 16]);
        p.push(0x02);
        text(&mut p, tool);
        p.push(0x03);
        bytes(&mut p, &args);
        p.push(0x04);
        head(&mut p, 0, iat);
        p.push(0x05);
        bytes(&mut p, &[0x5a; 16]);
        sign1(&p, kid_of, signer)
    }

    #[test]
    fn proofs_by_the_last_links_holder() {
        let tokens = chain(3);
        let leaf = &tokens[2];
        let args = [0xaa; 32];
        let now_ms = (NOW * 1000) as f64;
        let mut v = verifier(4);
        let mut nonce = [0u8; 16];
        let call = Call { tool: b"payments.refund", args_hash: &args, audience: None, now_ms };
        let check = |v: &mut Verifier, p: &[u8], nonce: &mut [u8; 16]| v.verify_proof(leaf, p, &call, nonce);
        assert_eq!(check(&mut v, &proof(3, "payments.refund", args, NOW * 1000, 3, 3), &mut nonce), OK);
        assert_eq!(nonce, [0x5a; 16]);
        let bad = |why: ProofFailure| pack(BAD_PROOF, why as u32, 0);
        // By the executor (an earlier link's holder), not the sub-executor.
        assert_eq!(check(&mut v, &proof(3, "payments.refund", args, NOW * 1000, 2, 2), &mut nonce), bad(ProofFailure::WrongKey));
        assert_eq!(check(&mut v, &proof(3, "payments.refund", args, NOW * 1000, 2, 3), &mut nonce), bad(ProofFailure::BadSignature));
        assert_eq!(check(&mut v, &proof(2, "payments.refund", args, NOW * 1000, 3, 3), &mut nonce), bad(ProofFailure::WrongToken));
        assert_eq!(check(&mut v, &proof(3, "payments.charge", args, NOW * 1000, 3, 3), &mut nonce), bad(ProofFailure::WrongTool));
        assert_eq!(check(&mut v, &proof(3, "payments.refund", [0xab; 32], NOW * 1000, 3, 3), &mut nonce), bad(ProofFailure::WrongArgs));
        assert_eq!(check(&mut v, &proof(3, "payments.refund", args, NOW * 1000 - 60_000, 3, 3), &mut nonce), OK);
        assert_eq!(check(&mut v, &proof(3, "payments.refund", args, NOW * 1000 - 60_001, 3, 3), &mut nonce), bad(ProofFailure::Stale));
        assert_eq!(check(&mut v, &proof(3, "payments.refund", args, NOW * 1000 + 60_001, 3, 3), &mut nonce), bad(ProofFailure::Stale));
        let p = proof(3, "payments.refund", args, NOW * 1000, 3, 3);
        let for_svc = Call { audience: Some(b"svc"), ..call };
        assert_eq!(v.verify_proof(leaf, &p, &for_svc, &mut nonce), bad(ProofFailure::MissingAudience));
        // The chain is checked first: a revoked root wins over a good proof.
        v.revoke([1; 16]);
        assert_eq!(check(&mut v, &p, &mut nonce), pack(REVOKED, 0, 2));
        // A token without cnf takes no proof.
        let mut bare = verifier(4);
        let unbound = token(&root(1, None), ISSUER);
        assert_eq!(bare.verify_proof(&unbound, &p, &call, &mut nonce), bad(ProofFailure::NotBound));
    }
}
