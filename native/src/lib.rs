//! Node bindings for the capframe hot path. Only small values cross the boundary:
//! byte slices in, integer codes out. The TypeScript wrapper in `src/backend/`
//! owns the public API; this file only adapts types.

#![deny(clippy::all)]

pub mod cbor;
pub mod proof;
pub mod token;
pub mod verifier;

#[cfg(test)]
mod props;

use napi::bindgen_prelude::{Buffer, Error, Result, Status, Uint32Array, Uint8ArraySlice};
use napi_derive::napi;

use verifier::Verifier;

const DEFAULT_CACHE_CAPACITY: u32 = 10_000;

fn invalid(msg: &str) -> Error {
    Error::new(Status::InvalidArg, msg.to_string())
}

fn cti(bytes: &[u8]) -> Result<[u8; 16]> {
    bytes.try_into().map_err(|_| invalid("token id (cti) must be 16 bytes"))
}

#[napi(js_name = "NativeVerifier")]
pub struct JsVerifier {
    inner: Verifier,
}

#[napi]
impl JsVerifier {
    /// `max_depth`: delegations accepted below the root (default 4); the TypeScript
    /// wrapper checks the range.
    #[napi(constructor)]
    pub fn new(cache_capacity: Option<u32>, max_depth: Option<u32>) -> Self {
        let capacity = cache_capacity.unwrap_or(DEFAULT_CACHE_CAPACITY) as usize;
        let depth = max_depth.map_or(verifier::DEFAULT_MAX_DEPTH, |d| d as usize);
        JsVerifier { inner: Verifier::new(capacity, depth) }
    }

    /// Trusts a raw 32-byte Ed25519 public key and returns its 8-byte key id.
    #[napi]
    pub fn add_key(&mut self, public_key: &[u8]) -> Result<Buffer> {
        self.inner.add_key(public_key).map(|kid| kid.to_vec().into()).map_err(invalid)
    }

    #[napi]
    pub fn remove_key(&mut self, kid: &[u8]) -> bool {
        self.inner.remove_key(kid)
    }

    /// Adds a 16-byte token id to the revocation set; true when it was new.
    #[napi]
    pub fn revoke(&mut self, id: &[u8]) -> Result<bool> {
        Ok(self.inner.revoke(cti(id)?))
    }

    /// Adds many ids at once: `ids` is their 16-byte concatenation.
    #[napi]
    pub fn revoke_many(&mut self, ids: &[u8]) -> Result<u32> {
        if !ids.len().is_multiple_of(16) {
            return Err(invalid("revocation list length must be a multiple of 16"));
        }
        let mut added = 0;
        for chunk in ids.chunks_exact(16) {
            added += u32::from(self.inner.revoke(chunk.try_into().unwrap()));
        }
        Ok(added)
    }

    #[napi]
    pub fn is_revoked(&self, id: &[u8]) -> Result<bool> {
        Ok(self.inner.is_revoked(&cti(id)?))
    }

    /// How many of the ids in a 16-byte-aligned concatenation are revoked: one
    /// boundary crossing for a whole delegation chain or a batch of lookups.
    #[napi]
    pub fn count_revoked(&self, ids: &[u8]) -> Result<u32> {
        if !ids.len().is_multiple_of(16) {
            return Err(invalid("id list length must be a multiple of 16"));
        }
        Ok(ids.chunks_exact(16).filter(|id| self.inner.is_revoked(&(*id).try_into().unwrap())).count() as u32)
    }

    #[napi]
    pub fn revoked_count(&self) -> u32 {
        self.inner.revoked_count() as u32
    }

    #[napi]
    pub fn clear_cache(&mut self) {
        self.inner.clear_cache();
    }

    /// Decode + chain walk + strict verify + expiry + revocation of one token at `now` (seconds).
    #[napi]
    pub fn verify(&mut self, token: &[u8], now: f64) -> u32 {
        self.inner.verify(token, now)
    }

    /// `verify` and then the holder proof for a call (see `Verifier::verify_proof`);
    /// on OK the proof's nonce is written to `nonce_out` (16 bytes).
    #[napi]
    #[allow(clippy::too_many_arguments)] // the boundary takes plain values, not a struct
    pub fn verify_proof(
        &mut self,
        token: &[u8],
        proof: &[u8],
        tool: String,
        args_hash: &[u8],
        audience: Option<String>,
        now_ms: f64,
        mut nonce_out: Uint8ArraySlice,
    ) -> Result<u32> {
        // SAFETY: JavaScript is not running while this synchronous call holds the slice,
        // and nothing else writes to this buffer.
        let out: &mut [u8; 16] = unsafe { nonce_out.as_mut() }.try_into().map_err(|_| invalid("nonceOut must be 16 bytes"))?;
        let call = verifier::Call { tool: tool.as_bytes(), args_hash, audience: audience.as_deref().map(str::as_bytes), now_ms };
        Ok(self.inner.verify_proof(token, proof, &call, out))
    }

    /// Verifies `offsets.len() - 1` tokens laid end to end in `tokens`; token `i`
    /// is `tokens[offsets[i]..offsets[i + 1]]`. One code per token, each what `verify`
    /// gives; the signatures are checked together (`Verifier::verify_batch`).
    #[napi]
    pub fn verify_batch(&mut self, tokens: &[u8], offsets: Uint32Array, now: f64) -> Result<Uint32Array> {
        let bounds: &[u32] = &offsets;
        let mut slices = Vec::with_capacity(bounds.len().saturating_sub(1));
        for pair in bounds.windows(2) {
            let (start, end) = (pair[0] as usize, pair[1] as usize);
            slices.push(tokens.get(start..end).ok_or_else(|| invalid("batch offsets out of range"))?);
        }
        Ok(Uint32Array::new(self.inner.verify_batch(&slices, now)))
    }
}

/// Strict Ed25519 verification of a raw message, for the RFC 8032 vectors.
#[napi]
pub fn ed25519_verify_strict(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let (Ok(pk), Ok(sig)) = (<[u8; 32]>::try_from(public_key), <[u8; 64]>::try_from(signature)) else {
        return false;
    };
    match ed25519_dalek::VerifyingKey::from_bytes(&pk) {
        Ok(key) => verifier::verify_strict(&key, message, &sig),
        Err(_) => false,
    }
}

#[napi(object)]
pub struct NativeInfo {
    pub crate_version: String,
    pub napi_version: u32,
}

#[napi]
pub fn native_info() -> NativeInfo {
    NativeInfo { crate_version: env!("CARGO_PKG_VERSION").to_string(), napi_version: 9 }
}
