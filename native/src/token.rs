//! The capframe token envelope: COSE_Sign1 (tag 18) around a CWT claims map.
//!
//! Twin of `src/token/parse.ts`. Parsing is strict and happens entirely before any
//! signature work: the size limit, then deterministic-CBOR validation of the whole
//! token, then the envelope shape, the protected header and every claim's type.

use crate::cbor::{validate, Malformed, Reader, Result};

/// Tokens larger than this are rejected before anything else is read.
pub const MAX_TOKEN_BYTES: usize = 8192;
/// Largest claim integer accepted, so both backends compare times exactly.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The parts of a structurally valid token that verification needs.
pub struct Parsed<'a> {
    /// The protected header as it appears in the token: a bstr item, head included.
    pub protected_item: &'a [u8],
    pub kid: [u8; 8],
    pub payload: &'a [u8],
    pub signature: [u8; 64],
    pub exp: u64,
    pub nbf: Option<u64>,
    pub cti: [u8; 16],
}

pub fn parse(token: &[u8]) -> Result<Parsed<'_>> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Malformed::TooLarge);
    }
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
    let claims = claims(payload)?;
    Ok(Parsed { protected_item, kid, payload, signature, exp: claims.exp, nbf: claims.nbf, cti: claims.cti })
}

/// The whole token is one well-formed item; the only tag allowed is the outer 18.
fn check_well_formed(token: &[u8]) -> Result<()> {
    let mut r = Reader::new(token);
    if r.peek()? >> 5 == 6 {
        if r.head()? != (6, 18) {
            return Err(Malformed::UnexpectedTag);
        }
    }
    r.item(0)?;
    if !r.at_end() {
        return Err(Malformed::TrailingBytes);
    }
    Ok(())
}

fn bstr<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    match r.head()? {
        (2, len) => r.take(len),
        _ => Err(Malformed::WrongType),
    }
}

fn text<'a>(r: &mut Reader<'a>) -> Result<&'a [u8]> {
    match r.head()? {
        (3, len) => r.take(len),
        _ => Err(Malformed::WrongType),
    }
}

fn uint(r: &mut Reader<'_>) -> Result<u64> {
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

struct Claims {
    exp: u64,
    nbf: Option<u64>,
    cti: [u8; 16],
}

/// Checks every claim's type. Keys arrive in canonical order (validated), so the
/// first error found is the same one the TypeScript backend reports.
fn claims(payload: &[u8]) -> Result<Claims> {
    validate(payload)?;
    let mut r = Reader::new(payload);
    let n = match r.head()? {
        (5, n) => n,
        _ => return Err(Malformed::WrongType),
    };
    let (mut iss, mut exp, mut iat, mut cti, mut tool, mut nbf) = (false, None, false, None, false, None);
    for _ in 0..n {
        match r.head()? {
            (0, key @ 1..=3) => {
                text(&mut r)?;
                iss |= key == 1;
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
            (0, 8) => {
                if r.peek()? >> 5 != 5 {
                    return Err(Malformed::WrongType);
                }
                r.item(1)?;
            }
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
                if name == b"tool" {
                    if text(&mut r)?.is_empty() {
                        return Err(Malformed::WrongType);
                    }
                    tool = true;
                } else {
                    r.item(1)?;
                }
            }
            _ => return Err(Malformed::UnknownClaim),
        }
    }
    match (iss, exp, iat, cti, tool) {
        (true, Some(exp), true, Some(cti), true) => Ok(Claims { exp, nbf, cti }),
        _ => Err(Malformed::MissingClaim),
    }
}
