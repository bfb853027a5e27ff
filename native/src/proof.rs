//! The holder proof (SPEC §5): a COSE_Sign1 signed by the token's holder key over a
//! deterministic CBOR map `{1: cti bstr(16), 2: tool tstr, 3: args-hash bstr(32),
//! 4: iat-ms uint, 5: nonce bstr(16), ? 6: aud tstr}`, at most 1 KiB.
//!
//! Twin of `src/token/proof-format.ts` (parsing) and of `verifyProof` in
//! `src/backend/js.ts` (the checks, in the same order).

use crate::cbor::{validate, Malformed, Reader};
use crate::token::{bstr, parse_envelope, text, uint, Envelope};

/// Proofs larger than this are refused before anything else is read.
pub const MAX_PROOF_BYTES: usize = 1024;
/// How far a proof's `iat` may be from the verifier's clock, either way.
pub const SKEW_MS: f64 = 60_000.0;

/// Why a proof is refused: the `bad_proof` detail codes shared with
/// `src/token/codes.ts` (`ProofFailure`). 2 (Missing) and 14 (NotPrintable) are
/// only reported by the TypeScript front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum ProofFailure {
    NotBound = 1,
    TooLarge = 3,
    Malformed = 4,
    WrongKey = 5,
    WrongToken = 6,
    WrongTool = 7,
    WrongArgs = 8,
    Stale = 9,
    WrongAudience = 10,
    UnexpectedAudience = 11,
    MissingAudience = 12,
    BadSignature = 13,
}

pub struct Proof<'a> {
    pub envelope: Envelope<'a>,
    pub cti: [u8; 16],
    pub tool: &'a [u8],
    pub args: [u8; 32],
    pub iat: u64,
    pub nonce: [u8; 16],
    pub aud: Option<&'a [u8]>,
}

pub fn parse_proof(bytes: &[u8]) -> Result<Proof<'_>, ProofFailure> {
    if bytes.len() > MAX_PROOF_BYTES {
        return Err(ProofFailure::TooLarge);
    }
    let envelope = parse_envelope(bytes).map_err(|_| ProofFailure::Malformed)?;
    fields(envelope).map_err(|_| ProofFailure::Malformed)
}

fn sized<const N: usize>(bytes: &[u8]) -> Result<[u8; N], Malformed> {
    bytes.try_into().map_err(|_| Malformed::WrongType)
}

fn fields(envelope: Envelope<'_>) -> Result<Proof<'_>, Malformed> {
    validate(envelope.payload)?;
    let mut r = Reader::new(envelope.payload);
    let n = match r.head()? {
        (5, n) => n,
        _ => return Err(Malformed::WrongType),
    };
    let (mut cti, mut tool, mut args, mut iat, mut nonce, mut aud) = (None, None, None, None, None, None);
    for _ in 0..n {
        match r.head()? {
            (0, 1) => cti = Some(sized::<16>(bstr(&mut r)?)?),
            (0, 2) => tool = Some(text(&mut r)?),
            (0, 3) => args = Some(sized::<32>(bstr(&mut r)?)?),
            (0, 4) => iat = Some(uint(&mut r)?),
            (0, 5) => nonce = Some(sized::<16>(bstr(&mut r)?)?),
            (0, 6) => aud = Some(text(&mut r)?),
            _ => return Err(Malformed::UnknownClaim),
        }
    }
    match (cti, tool, args, iat, nonce) {
        (Some(cti), Some(tool), Some(args), Some(iat), Some(nonce)) => Ok(Proof { envelope, cti, tool, args, iat, nonce, aud }),
        _ => Err(Malformed::MissingClaim),
    }
}

/// What a proof must match: the presented token and the call being made.
pub struct Expected<'a> {
    pub holder_kid: &'a [u8; 8],
    pub cti: &'a [u8; 16],
    pub tool: &'a [u8],
    pub args: &'a [u8],
    pub audience: Option<&'a [u8]>,
    pub now_ms: f64,
}

/// Every check but the signature, cheapest first, so junk proofs cost no signature
/// check. The caller verifies the signature last.
pub fn check_fields(p: &Proof<'_>, e: &Expected<'_>) -> Result<(), ProofFailure> {
    if &p.envelope.kid != e.holder_kid {
        return Err(ProofFailure::WrongKey);
    }
    if &p.cti != e.cti {
        return Err(ProofFailure::WrongToken);
    }
    if p.tool != e.tool {
        return Err(ProofFailure::WrongTool);
    }
    if p.args[..] != *e.args {
        return Err(ProofFailure::WrongArgs);
    }
    if (e.now_ms - p.iat as f64).abs() > SKEW_MS {
        return Err(ProofFailure::Stale);
    }
    match (p.aud, e.audience) {
        (Some(a), Some(b)) if a == b => Ok(()),
        (Some(_), Some(_)) => Err(ProofFailure::WrongAudience),
        (Some(_), None) => Err(ProofFailure::UnexpectedAudience),
        (None, Some(_)) => Err(ProofFailure::MissingAudience),
        (None, None) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_oversize_and_non_proofs() {
        assert_eq!(parse_proof(&[0u8; 1025]).err(), Some(ProofFailure::TooLarge));
        assert_eq!(parse_proof(&[]).err(), Some(ProofFailure::Malformed));
        assert_eq!(parse_proof(&[0xd2, 0x80]).err(), Some(ProofFailure::Malformed));
    }
}
