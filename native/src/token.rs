//! The capframe token envelope: COSE_Sign1 (tag 18) around a CWT claims map.
//!
//! Twin of `src/token/parse.ts`. Parsing is strict and happens entirely before any
//! signature work: the size limit, then deterministic-CBOR validation of the whole
//! token, then the envelope shape, the protected header and every claim's type —
//! `cnf` down to its last byte. A parent token in `prf` is only checked to be a byte
//! string here; the chain walk in `verifier.rs` parses it as a token of its own.

use crate::cbor::{validate, Malformed, Reader, Result};

/// Tokens larger than this are rejected before anything else is read.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// Largest claim integer accepted, so both backends compare times exactly.
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// A COSE_Sign1 taken apart: what a signature check needs.
pub struct Envelope<'a> {
    /// The protected header as it appears in the token: a bstr item, head included.
    pub protected_item: &'a [u8],
    pub kid: [u8; 8],
    pub payload: &'a [u8],
    pub signature: [u8; 64],
}

/// The parts of a structurally valid token that verification needs.
pub struct Parsed<'a> {
    pub envelope: Envelope<'a>,
    /// The `iss` claim's UTF-8 bytes.
    pub iss: &'a [u8],
    pub exp: u64,
    pub nbf: Option<u64>,
    pub cti: [u8; 16],
    /// The raw Ed25519 key of `cnf`, when the token is holder-bound.
    pub holder: Option<[u8; 32]>,
    /// The parent token's bytes (`prf`), when the token is delegated.
    pub prf: Option<&'a [u8]>,
}

pub fn parse(token: &[u8]) -> Result<Parsed<'_>> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Malformed::TooLarge);
    }
    let envelope = parse_envelope(token)?;
    let c = claims(envelope.payload)?;
    Ok(Parsed { envelope, iss: c.iss, exp: c.exp, nbf: c.nbf, cti: c.cti, holder: c.holder, prf: c.prf })
}

/// The COSE_Sign1 envelope shared by tokens and holder proofs: one well-formed
/// deterministic item, tag 18, `[protected {1: -8, 4: kid}, {}, payload, 64-byte
/// signature]`. The caller checks the size first.
pub fn parse_envelope(token: &[u8]) -> Result<Envelope<'_>> {
    check_well_formed(token)?;

    let mut r = Reader::new(token);
    if r.peek()? != 0xd2 {
        return Err(Malformed::WrongType);
    }
    r.pos += 1;
    if r.head()? != (4, 4) {
        return Err(Malformed::WrongType);
    }
    let start = r.pos;
    let protected = bstr(&mut r)?;
    let protected_item = &token[start..r.pos];
    match r.head()? {
        (5, 0) => {}
        (5, _) => return Err(Malformed::BadHeader),
        _ => return Err(Malformed::WrongType),
    }
    let payload = bstr(&mut r)?;
    let signature: [u8; 64] = bstr(&mut r)?.try_into().map_err(|_| Malformed::WrongType)?;

    let kid = protected_header(protected)?;
    Ok(Envelope { protected_item, kid, payload, signature })
}

/// The whole token is one well-formed item; the only tag allowed is the outer 18.
fn check_well_formed(token: &[u8]) -> Result<()> {
    let mut r = Reader::new(token);
    if r.peek()? >> 5 == 6 && r.head()? != (6, 18) {
        return Err(Malformed::UnexpectedTag);
    }
    r.item(0)?;
    if !r.at_end() {
        return Err(Malformed::TrailingBytes);
    }
    Ok(())
}

pub fn bstr<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    match r.head()? {
        (2, len) => r.take(len),
        _ => Err(Malformed::WrongType),
    }
}

pub fn text<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    match r.head()? {
        (3, len) => r.take(len),
        _ => Err(Malformed::WrongType),
    }
}

pub fn uint(r: &mut Reader<'_>) -> Result<u64> {
    match r.head()? {
        (0, v) if v <= MAX_SAFE_INTEGER => Ok(v),
        _ => Err(Malformed::WrongType),
    }
}

/// Exactly `{1: -8, 4: kid}` with an 8-byte kid.
fn protected_header(bytes: &[u8]) -> Result<[u8; 8]> {
    validate(bytes)?;
    let mut r = Reader::new(bytes);
    let n = match r.head()? {
        (5, n) => n,
        _ => return Err(Malformed::BadHeader),
    };
    let (mut alg, mut kid) = (false, None);
    for _ in 0..n {
        match r.head()? {
            (0, 1) => {
                if r.head()? != (1, 7) {
                    return Err(Malformed::UnsupportedAlg);
                }
                alg = true;
            }
            (0, 4) => match r.head()? {
                (2, 8) => kid = Some(<[u8; 8]>::try_from(r.take(8)?).unwrap()),
                _ => return Err(Malformed::BadHeader),
            },
            _ => return Err(Malformed::BadHeader),
        }
    }
    match (alg, kid) {
        (true, Some(kid)) => Ok(kid),
        _ => Err(Malformed::BadHeader),
    }
}

struct Claims<'a> {
    iss: &'a [u8],
    exp: u64,
    nbf: Option<u64>,
    cti: [u8; 16],
    holder: Option<[u8; 32]>,
    prf: Option<&'a [u8]>,
}

/// Checks every claim's type. Keys arrive in canonical order (validated), so the
/// first error found is the same one the TypeScript backend reports.
fn claims(payload: &[u8]) -> Result<Claims<'_>> {
    validate(payload)?;
    let mut r = Reader::new(payload);
    let n = match r.head()? {
        (5, n) => n,
        _ => return Err(Malformed::WrongType),
    };
    let (mut iss, mut exp, mut iat, mut cti, mut tool, mut nbf) = (None, None, false, None, false, None);
    let (mut holder, mut prf) = (None, None);
    for _ in 0..n {
        match r.head()? {
            (0, key @ 1..=3) => {
                let value = text(&mut r)?;
                if key == 1 {
                    iss = Some(value);
                }
            }
            (0, 4) => exp = Some(uint(&mut r)?),
            (0, 5) => nbf = Some(uint(&mut r)?),
            (0, 6) => {
                uint(&mut r)?;
                iat = true;
            }
            (0, 7) => {
                let id = bstr(&mut r)?;
                cti = Some(<[u8; 16]>::try_from(id).map_err(|_| Malformed::WrongType)?);
            }
            (0, 8) => holder = Some(holder_key(&mut r).map_err(|_| Malformed::BadHolderKey)?),
            (3, len) => {
                let name = r.take(len)?;
                let expected_major = match name {
                    b"cap" => 3,
                    b"prf" => 2,
                    b"tool" => 3,
                    b"when" => 4,
                    _ => return Err(Malformed::UnknownClaim),
                };
                if r.peek()? >> 5 != expected_major {
                    return Err(Malformed::WrongType);
                }
                match name {
                    b"tool" => {
                        if text(&mut r)?.is_empty() {
                            return Err(Malformed::WrongType);
                        }
                        tool = true;
                    }
                    b"prf" => prf = Some(bstr(&mut r)?),
                    _ => r.item(1)?,
                }
            }
            _ => return Err(Malformed::UnknownClaim),
        }
    }
    match (iss, exp, iat, cti, tool) {
        (Some(iss), Some(exp), true, Some(cti), true) => Ok(Claims { iss, exp, nbf, cti, holder, prf }),
        _ => Err(Malformed::MissingClaim),
    }
}

/// The item heads of `{1: {1: 1, -1: 6, -2: h'<32 bytes>'}}`, in order.
const HOLDER_KEY_HEADS: [(u8, u64); 9] = [(5, 1), (0, 1), (5, 3), (0, 1), (0, 1), (1, 0), (0, 6), (1, 1), (2, 32)];

/// `cnf`, RFC 8747 with an RFC 8037 OKP key, exactly: `{1: {1: 1, -1: 6, -2: x}}` —
/// one member (COSE_Key), whose members are kty OKP, crv Ed25519 and a 32-byte x
/// that is a canonical encoding (y < p) and not of small order. Anything else, extra
/// members included, is refused: a key we read differently from another
/// implementation is no binding.
fn holder_key(r: &mut Reader<'_>) -> Result<[u8; 32]> {
    for expected in HOLDER_KEY_HEADS {
        if r.head()? != expected {
            return Err(Malformed::BadHolderKey);
        }
    }
    let x: [u8; 32] = r.take(32)?.try_into().unwrap();
    if !is_canonical_encoding(&x) || is_small_order_encoding(&x) {
        return Err(Malformed::BadHolderKey);
    }
    Ok(x)
}

/// True when y (the sign bit cleared) is below p = 2^255 − 19.
pub fn is_canonical_encoding(x: &[u8; 32]) -> bool {
    !(x[31] & 0x7f == 0x7f && x[1..31].iter().all(|&b| b == 0xff) && x[0] >= 0xed)
}

/// y coordinates (little-endian, sign bit cleared) of every small-order point
/// encoding; the same list as `src/lib/ed25519.ts`.
const SMALL_ORDER_Y: [[u8; 32]; 7] = [
    [0; 32],
    {
        let mut y = [0u8; 32];
        y[0] = 1;
        y
    },
    high_y(0xec),
    high_y(0xed),
    high_y(0xee),
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
        0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
        0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05,
    ],
];

/// p − 1, p and p + 1 differ from 2^255 − 1 only in the low byte.
const fn high_y(low: u8) -> [u8; 32] {
    let mut y = [0xffu8; 32];
    y[0] = low;
    y[31] = 0x7f;
    y
}

pub fn is_small_order_encoding(x: &[u8; 32]) -> bool {
    let mut y = *x;
    y[31] &= 0x7f;
    SMALL_ORDER_Y.contains(&y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_key_encodings() {
        let mut y = [0u8; 32];
        assert!(is_small_order_encoding(&y));
        y[0] = 1;
        y[31] = 0x80; // the sign bit does not matter
        assert!(is_small_order_encoding(&y));
        assert!(is_canonical_encoding(&high_y(0xec)));
        assert!(!is_canonical_encoding(&high_y(0xed)));
        let mut max = [0xffu8; 32];
        assert!(!is_canonical_encoding(&max));
        max[31] = 0x7e;
        assert!(is_canonical_encoding(&max));
        assert!(!is_small_order_encoding(&[3u8; 32]));
    }
}
