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
//!
//! `verify_batch` gives, token for token, the answer `verify` gives; see its comment
//! for how the random-linear-combination check is kept as strict as `verify_strict`.

use ed25519_dalek::{Signature, VerifyingKey};
use rustc_hash::{FxHashMap, FxHashSet};
use sha2::{Digest, Sha256};

use crate::proof::{check_fields, parse_proof, Expected, ProofFailure};
use crate::token::{is_canonical_encoding, is_small_order_encoding, parse, Envelope, Parsed};

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

/// A trusted issuer key, and whether tokens it signed may join a batch.
struct Trusted {
    key: VerifyingKey,
    /// Not of small order and torsion-free (in the prime-order subgroup). Only then does
    /// the batch equation say what `verify_strict` says; a key that is not (no honest
    /// key generator makes one) is verified one token at a time.
    batchable: bool,
}

/// Tokens per batch equation: enough to amortize the multiscalar multiplication, few
/// enough that one bad token costs a bounded re-verification.
pub const BATCH_CHUNK: usize = 64;

pub struct Verifier {
    keys: FxHashMap<[u8; 8], Trusted>,
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
        let point = key.to_edwards();
        let batchable = !point.is_small_order() && point.is_torsion_free();
        self.keys.insert(kid, Trusted { key, batchable });
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
        let Some(trusted) = self.keys.get(&root.envelope.kid) else { return pack(UNKNOWN_KEY, 0, last) };
        sig_structure(&mut self.scratch, &root.envelope);
        if !verify_strict(&trusted.key, &self.scratch, &root.envelope.signature) {
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
        let holder = links[0].holder;
        self.settle(token, times, holder, now)
    }

    /// Time and revocation of a token whose signatures are good; caches it when OK.
    fn settle(&mut self, token: &[u8], times: Box<[LinkTimes]>, holder: Option<[u8; 32]>, now: f64) -> u32 {
        let code = self.time_and_revocation(&times, now);
        if code == OK {
            if self.cache.len() >= self.cache_capacity {
                // Bounded memory with no bookkeeping; a cold cache only costs speed.
                self.cache.clear();
            }
            self.cache.insert(token.into(), Verdict { links: times, holder, holder_key: None });
        }
        code
    }

    /// `verify` of every token, with the signatures of fresh single-link tokens checked
    /// together, [`BATCH_CHUNK`] at a time, by ed25519-dalek's batch verification (one
    /// random linear combination and one multiscalar multiplication per chunk). Returns,
    /// token for token, exactly what `verify` would.
    ///
    /// Exactness. The batch equation is not `verify_strict`, so a token joins a batch
    /// only when nothing but the signature equation is left to decide: its key is trusted
    /// and torsion-free (checked once, in `add_key`), S < L (dalek refuses the chunk
    /// otherwise), and R is a canonical encoding of a point that is not of small order
    /// (compared as bytes, before any curve arithmetic). Everything else — delegation
    /// chains, whose holder keys are anyone's choice, included — is verified one token
    /// at a time. A chunk that fails is re-verified token by token, so every code is the
    /// one `verify` gives. What remains between the two equations is a torsion component
    /// in R: R is hashed into the challenge, so nobody can add one to a signature made by
    /// someone else (the chunk then fails and the token is refused alone); only the
    /// holder of the trusted issuer key could sign with one. Testing every R for torsion
    /// costs a scalar multiplication, more than the batch saves.
    pub fn verify_batch(&mut self, tokens: &[&[u8]], now: f64) -> Vec<u32> {
        let mut codes = vec![OK; tokens.len()];
        let mut chunk = Chunk::default();
        for (i, token) in tokens.iter().enumerate() {
            if let Some(v) = self.cache.get(*token) {
                codes[i] = self.time_and_revocation(&v.links, now);
                continue;
            }
            let joined = match parse_chain(token, self.max_depth) {
                Err(code) => {
                    codes[i] = code;
                    continue;
                }
                Ok(links) if links.len() == 1 => match self.keys.get(&links[0].envelope.kid) {
                    None => {
                        codes[i] = pack(UNKNOWN_KEY, 0, 0);
                        continue;
                    }
                    Some(trusted) if trusted.batchable && r_may_join(&links[0].envelope.signature) => {
                        chunk.push(i, &links[0], trusted.key);
                        true
                    }
                    Some(_) => false,
                },
                Ok(_) => false,
            };
            if !joined {
                codes[i] = self.verify_fresh(token, now);
            } else if chunk.len() == BATCH_CHUNK {
                self.finish_chunk(&mut chunk, tokens, now, &mut codes);
            }
        }
        self.finish_chunk(&mut chunk, tokens, now, &mut codes);
        codes
    }

    fn finish_chunk(&mut self, chunk: &mut Chunk, tokens: &[&[u8]], now: f64, codes: &mut [u32]) {
        if chunk.len() == 0 {
            return;
        }
        if chunk.len() > 1 && chunk.verify() {
            for (n, &i) in chunk.index.iter().enumerate() {
                let times = Box::new([chunk.times[n].take().unwrap()]);
                codes[i] = self.settle(tokens[i], times, chunk.holder[n], now);
            }
        } else {
            // One token, or a chunk with at least one bad signature: token by token, so
            // each gets exactly its own answer.
            for &i in &chunk.index {
                codes[i] = self.verify_fresh(tokens[i], now);
            }
        }
        chunk.clear();
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

/// R may join a batch: a canonical encoding (y < p) of a point not of small order.
/// `verify_strict` refuses the others; the batch equation alone would not.
fn r_may_join(signature: &[u8; 64]) -> bool {
    let r: &[u8; 32] = signature[..32].try_into().unwrap();
    is_canonical_encoding(r) && !is_small_order_encoding(r)
}

/// The signatures waiting for one batch equation, with what settling each needs.
#[derive(Default)]
struct Chunk {
    index: Vec<usize>,
    /// Every Sig_structure laid end to end; message n is `messages[ends[n - 1]..ends[n]]`.
    messages: Vec<u8>,
    ends: Vec<usize>,
    signatures: Vec<Signature>,
    keys: Vec<VerifyingKey>,
    times: Vec<Option<LinkTimes>>,
    holder: Vec<Option<[u8; 32]>>,
}

impl Chunk {
    fn len(&self) -> usize {
        self.index.len()
    }

    fn push(&mut self, i: usize, link: &Parsed<'_>, key: VerifyingKey) {
        append_sig_structure(&mut self.messages, &link.envelope);
        self.ends.push(self.messages.len());
        self.index.push(i);
        self.signatures.push(Signature::from_bytes(&link.envelope.signature));
        self.keys.push(key);
        self.times.push(Some(LinkTimes { exp: link.exp, nbf: link.nbf, cti: link.cti }));
        self.holder.push(link.holder);
    }

    /// One random linear combination of every signature equation (dalek derives the
    /// coefficients from all inputs); true when all of them hold.
    fn verify(&self) -> bool {
        let mut start = 0;
        let messages: Vec<&[u8]> = self
            .ends
            .iter()
            .map(|&end| {
                let m = &self.messages[start..end];
                start = end;
                m
            })
            .collect();
        ed25519_dalek::verify_batch(&messages, &self.signatures, &self.keys).is_ok()
    }

    fn clear(&mut self) {
        self.index.clear();
        self.messages.clear();
        self.ends.clear();
        self.signatures.clear();
        self.keys.clear();
        self.times.clear();
        self.holder.clear();
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
    append_sig_structure(out, envelope);
}

fn append_sig_structure(out: &mut Vec<u8>, envelope: &Envelope<'_>) {
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

    /// `verify` of each token by a fresh verifier: the answer a batch must give.
    fn singles(tokens: &[Vec<u8>], setup: impl Fn(&mut Verifier)) -> Vec<u32> {
        tokens
            .iter()
            .map(|t| {
                let mut v = verifier(4);
                setup(&mut v);
                v.verify(t, NOW as f64)
            })
            .collect()
    }

    fn batch(tokens: &[Vec<u8>], setup: impl Fn(&mut Verifier)) -> Vec<u32> {
        let mut v = verifier(4);
        setup(&mut v);
        let slices: Vec<&[u8]> = tokens.iter().map(|t| &t[..]).collect();
        v.verify_batch(&slices, NOW as f64)
    }

    /// A valid token with its signature's R moved by a torsion point (R + T), S kept:
    /// what anyone holding the token could try.
    fn torsion_r(t: &[u8], which: usize) -> Vec<u8> {
        use curve25519_dalek::{constants::EIGHT_TORSION, edwards::CompressedEdwardsY};
        let mut out = t.to_vec();
        let at = out.len() - 64;
        let r = CompressedEdwardsY(out[at..at + 32].try_into().unwrap()).decompress().unwrap();
        out[at..at + 32].copy_from_slice((r + EIGHT_TORSION[which]).compress().as_bytes());
        out
    }

    fn with_byte(t: &[u8], from_end: usize, xor: u8) -> Vec<u8> {
        let mut out = t.to_vec();
        let n = out.len();
        out[n - from_end] ^= xor;
        out
    }

    /// Valid, tampered, foreign, expired, revoked, malformed and chained tokens, and
    /// the signatures the batch equation alone would accept but `verify_strict` does not.
    fn mixed() -> Vec<Vec<u8>> {
        let good: Vec<Vec<u8>> = (10..30).map(|c| token(&root(c, None), ISSUER)).collect();
        let mut expired = root(40, None);
        expired.exp = NOW;
        let mut early = root(41, None);
        early.nbf = Some(NOW + 5);
        let mut all = good.clone();
        all.extend([
            with_byte(&good[0], 1, 1),              // S
            with_byte(&good[1], 40, 0x10),          // R
            with_byte(&good[2], 70, 1),             // payload
            token(&root(42, None), 9),              // an untrusted key
            sign1(&payload(&root(43, None)), ISSUER, 9), // the issuer's kid, another key's signature
            token(&expired, ISSUER),
            token(&early, ISSUER),
            token(&root(99, None), ISSUER), // revoked by the setup below
            good[3][..good[3].len() - 1].to_vec(),
            vec![0xd2],
            good[4].clone(), // a repeat
        ]);
        for which in 1..8 {
            all.push(torsion_r(&good[5 + which], which));
        }
        // S + L: the same point, a non-canonical scalar.
        let mut high_s = good[19].clone();
        let n = high_s.len();
        let s = curve25519_dalek::scalar::Scalar::from_bytes_mod_order(high_s[n - 32..].try_into().unwrap());
        let mut wide = [0u8; 33];
        let mut carry = 0u16;
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        for i in 0..32 {
            let sum = u16::from(s.as_bytes()[i]) + u16::from(L[i]) + carry;
            wide[i] = sum as u8;
            carry = sum >> 8;
        }
        if carry == 0 && wide[31] < 0x80 {
            high_s[n - 32..].copy_from_slice(&wide[..32]);
            all.push(high_s);
        }
        // R the identity (small order), S = k·a: the equation holds, strict refuses it.
        all.push(small_order_r_token());
        // Chains go one by one.
        all.extend(chain(3));
        let mut broken_chain = chain(2).pop().unwrap();
        let n = broken_chain.len();
        broken_chain[n - 1] ^= 1;
        all.push(broken_chain);
        all
    }

    /// A token signed with R = identity and S = k·a, which satisfies [S]B = R + [k]A.
    fn small_order_r_token() -> Vec<u8> {
        use sha2::Sha512;
        let signer = key(ISSUER);
        let p = payload(&root(50, None));
        let mut t = sign1(&p, ISSUER, ISSUER);
        let n = t.len();
        let mut identity = [0u8; 32];
        identity[0] = 1;
        t[n - 64..n - 32].copy_from_slice(&identity);
        // k = H(R || A || Sig_structure)
        let parsed = parse(&t).unwrap();
        let mut msg = Vec::new();
        sig_structure(&mut msg, &parsed.envelope);
        let mut h = Sha512::new();
        h.update(identity);
        h.update(signer.verifying_key().as_bytes());
        h.update(&msg);
        let k = curve25519_dalek::scalar::Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let s = k * signer.to_scalar();
        t[n - 32..].copy_from_slice(s.as_bytes());
        t
    }

    #[test]
    fn a_batch_answers_token_for_token_what_verify_answers() {
        let tokens = mixed();
        let revoke = |v: &mut Verifier| {
            v.revoke([99; 16]);
        };
        let expected = singles(&tokens, revoke);
        assert_eq!(batch(&tokens, revoke), expected);
        // The torsion-moved R, the small-order R and S + L are refused, as alone.
        assert!(expected[tokens.len() - 13..tokens.len() - 4].iter().all(|&c| c == pack(BAD_SIGNATURE, 0, 0)));
        // In chunks, with the bad ones spread over several, and all good ones alone.
        let many: Vec<Vec<u8>> = (0..3).flat_map(|_| tokens.iter().cloned()).collect();
        assert_eq!(batch(&many, revoke), singles(&many, revoke));
        let good: Vec<Vec<u8>> = (0..150).map(|c| token(&root(c as u8, None), ISSUER)).collect();
        assert!(batch(&good, |_| {}).iter().all(|&c| c == OK));
        // Each odd one alone among good tokens, so no other failure hides it.
        for odd in &tokens[tokens.len() - 13..tokens.len() - 4] {
            let mut set = good[..8].to_vec();
            set.insert(3, odd.clone());
            let codes = batch(&set, |_| {});
            assert_eq!(codes[3], pack(BAD_SIGNATURE, 0, 0));
            assert!(codes.iter().enumerate().all(|(i, &c)| i == 3 || c == OK));
        }
    }

    #[test]
    fn a_key_with_torsion_never_joins_a_batch() {
        use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
        let mut v = Verifier::new(16, 4);
        let odd = (ED25519_BASEPOINT_POINT + EIGHT_TORSION[1]).compress();
        let kid = v.add_key(odd.as_bytes()).unwrap();
        assert!(!v.keys[&kid].batchable);
        let kid = v.add_key(&key(ISSUER).verifying_key().to_bytes()).unwrap();
        assert!(v.keys[&kid].batchable);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(300))]

            /// Any selection of the mixed tokens, in any order, answered as one by one.
            #[test]
            fn batches_answer_as_singles(picks in prop::collection::vec(any::<prop::sample::Index>(), 0..140)) {
                let pool = mixed();
                let tokens: Vec<Vec<u8>> = picks.iter().map(|i| pool[i.index(pool.len())].clone()).collect();
                let revoke = |v: &mut Verifier| { v.revoke([99; 16]); };
                prop_assert_eq!(batch(&tokens, revoke), singles(&tokens, revoke));
            }

            /// A changed byte string is never accepted, alone or in a batch of good tokens.
            #[test]
            fn mutated_tokens_are_refused(seed in 0u8..20, kind in 0u8..5, at in any::<prop::sample::Index>(), byte in any::<u8>(), extra in prop::collection::vec(any::<u8>(), 1..8)) {
                let base = token(&root(seed, Some(seed)), ISSUER);
                let i = at.index(base.len());
                let mut t = base.clone();
                match kind {
                    0 => t[i] ^= 1 << (byte % 8),
                    1 => t[i] = if t[i] == byte { !byte } else { byte },
                    2 => t.insert(i, byte),
                    3 => { t.remove(i); }
                    _ => { t.truncate(i); t.extend_from_slice(&extra); }
                }
                prop_assume!(t != base);
                prop_assert_ne!(verifier(4).verify(&t, NOW as f64), OK);
                let mut set: Vec<Vec<u8>> = (100..104).map(|c| token(&root(c, None), ISSUER)).collect();
                set.push(t);
                let codes = batch(&set, |_| {});
                prop_assert_ne!(codes[4], OK);
                prop_assert!(codes[..4].iter().all(|&c| c == OK));
            }

            /// What a token says is what the parser reads back.
            #[test]
            fn claims_round_trip(exp in NOW..(1u64 << 53), nbf in proptest::option::of(0..NOW), cti in any::<u8>(), holder in proptest::option::of(1u8..200), iss in "[a-z]{1,30}") {
                let mut spec = root(cti, holder);
                spec.exp = exp;
                spec.nbf = nbf;
                spec.iss = iss.clone();
                let t = token(&spec, ISSUER);
                let p = parse(&t).unwrap();
                prop_assert_eq!(p.exp, exp);
                prop_assert_eq!(p.nbf, nbf);
                prop_assert_eq!(p.cti, [cti; 16]);
                prop_assert_eq!(p.holder, holder.map(|h| key(h).verifying_key().to_bytes()));
                prop_assert_eq!(p.iss, iss.as_bytes());
                prop_assert!(p.prf.is_none());
                prop_assert_eq!(verifier(4).verify(&t, NOW as f64), OK);
            }
        }
    }
}
