//! Strict validation of deterministic CBOR (RFC 8949 §4.2.1), borrowing the input.
//!
//! This is the twin of `src/lib/cbor/validate.ts`: both walk the bytes in the same
//! order and report the same first error, so the two backends agree on every input
//! (checked by the shared vectors in `test/vectors/`).
//!
//! Rules: shortest-form heads, definite lengths only, map keys strictly ascending in
//! bytewise order of their encodings (so no duplicates), no tags, only `false`,
//! `true`, `null` and finite floats in their shortest exact form as simple values,
//! UTF-8 text, nesting at most [`MAX_DEPTH`].

/// Maximum nesting of arrays and maps (the outermost container counts as 1).
pub const MAX_DEPTH: u32 = 16;

/// Why a byte string is not an acceptable token. The discriminants are the wire
/// "detail" codes shared with the TypeScript backend (`src/token/codes.ts`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Malformed {
    TooLarge = 1,
    Truncated = 2,
    TrailingBytes = 3,
    IndefiniteLength = 4,
    DuplicateKey = 5,
    UnsortedKeys = 6,
    NonShortest = 7,
    TooDeep = 8,
    UnexpectedTag = 9,
    WrongType = 10,
    BadHeader = 11,
    UnsupportedAlg = 12,
    UnknownClaim = 13,
    MissingClaim = 14,
    InvalidCbor = 15,
    InvalidUtf8 = 16,
    // 17 is NotPrintable, which only the TypeScript front end reports.
    /// `cnf` is not exactly `{1: {1: 1, -1: 6, -2: x}}` with a canonical 32-byte x
    /// that is not of small order.
    BadHolderKey = 18,
}

pub type Result<T> = core::result::Result<T, Malformed>;

/// A borrowing cursor over CBOR bytes.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }

    pub fn peek(&self) -> Result<u8> {
        self.buf.get(self.pos).copied().ok_or(Malformed::Truncated)
    }

    pub fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let n = usize::try_from(n).map_err(|_| Malformed::Truncated)?;
        let end = self.pos.checked_add(n).ok_or(Malformed::Truncated)?;
        let slice = self.buf.get(self.pos..end).ok_or(Malformed::Truncated)?;
        self.pos = end;
        Ok(slice)
    }

    /// Reads an item head and returns `(major type, argument)`, enforcing the
    /// shortest form. Major type 7 (simple values and floats) is not handled here.
    pub fn head(&mut self) -> Result<(u8, u64)> {
        let b = self.take(1)?[0];
        let (major, ai) = (b >> 5, b & 0x1f);
        let arg = match ai {
            0..=23 => u64::from(ai),
            24 => {
                let v = u64::from(self.take(1)?[0]);
                if v < 24 {
                    return Err(Malformed::NonShortest);
                }
                v
            }
            25 => {
                let v = u64::from(u16::from_be_bytes(self.take(2)?.try_into().unwrap()));
                if v <= 0xff {
                    return Err(Malformed::NonShortest);
                }
                v
            }
            26 => {
                let v = u64::from(u32::from_be_bytes(self.take(4)?.try_into().unwrap()));
                if v <= 0xffff {
                    return Err(Malformed::NonShortest);
                }
                v
            }
            27 => {
                let v = u64::from_be_bytes(self.take(8)?.try_into().unwrap());
                if v <= 0xffff_ffff {
                    return Err(Malformed::NonShortest);
                }
                v
            }
            31 if (2..=5).contains(&major) => return Err(Malformed::IndefiniteLength),
            _ => return Err(Malformed::InvalidCbor),
        };
        Ok((major, arg))
    }

    /// Validates one complete data item. `depth` is the nesting of the enclosing
    /// container (0 at the top level).
    pub fn item(&mut self, depth: u32) -> Result<()> {
        let b = self.peek()?;
        let (major, ai) = (b >> 5, b & 0x1f);
        if major == 7 {
            self.pos += 1;
            return self.simple(ai);
        }
        if major == 6 {
            // Tags are only meaningful around the COSE envelope, handled by the caller.
            self.head()?;
            return Err(Malformed::UnexpectedTag);
        }
        let (_, arg) = self.head()?;
        match major {
            0 | 1 => Ok(()),
            2 => self.take(arg).map(|_| ()),
            3 => {
                let s = self.take(arg)?;
                core::str::from_utf8(s).map(|_| ()).map_err(|_| Malformed::InvalidUtf8)
            }
            4 => {
                let depth = nest(depth)?;
                for _ in 0..arg {
                    self.item(depth)?;
                }
                Ok(())
            }
            _ => {
                let depth = nest(depth)?;
                let mut prev: Option<&[u8]> = None;
                for _ in 0..arg {
                    let start = self.pos;
                    self.item(depth)?;
                    let key = &self.buf[start..self.pos];
                    if let Some(p) = prev {
                        match p.cmp(key) {
                            core::cmp::Ordering::Equal => return Err(Malformed::DuplicateKey),
                            core::cmp::Ordering::Greater => return Err(Malformed::UnsortedKeys),
                            core::cmp::Ordering::Less => {}
                        }
                    }
                    prev = Some(key);
                    self.item(depth)?;
                }
                Ok(())
            }
        }
    }

    fn simple(&mut self, ai: u8) -> Result<()> {
        match ai {
            20..=22 => Ok(()),
            25 => {
                let bits = u16::from_be_bytes(self.take(2)?.try_into().unwrap());
                // Exponent all ones: infinity or NaN, which JSON arguments never hold.
                if bits & 0x7c00 == 0x7c00 {
                    return Err(Malformed::InvalidCbor);
                }
                Ok(())
            }
            26 => {
                let v = f32::from_be_bytes(self.take(4)?.try_into().unwrap());
                if !v.is_finite() {
                    return Err(Malformed::InvalidCbor);
                }
                if fits_f16(f64::from(v)) {
                    return Err(Malformed::NonShortest);
                }
                Ok(())
            }
            27 => {
                let v = f64::from_be_bytes(self.take(8)?.try_into().unwrap());
                if !v.is_finite() {
                    return Err(Malformed::InvalidCbor);
                }
                if (v as f32) as f64 == v {
                    return Err(Malformed::NonShortest);
                }
                Ok(())
            }
            31 => Err(Malformed::InvalidCbor), // a "break" outside an indefinite item
            _ => Err(Malformed::InvalidCbor),  // undefined and unassigned simple values
        }
    }
}

fn nest(depth: u32) -> Result<u32> {
    if depth >= MAX_DEPTH {
        Err(Malformed::TooDeep)
    } else {
        Ok(depth + 1)
    }
}

/// True when the finite `v` is exactly representable as an IEEE 754 half.
pub fn fits_f16(v: f64) -> bool {
    if v == 0.0 {
        return true;
    }
    let bits = v.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let mantissa = bits & ((1u64 << 52) - 1);
    if !(-24..=15).contains(&exp) {
        return false;
    }
    // Normal halves keep 10 fraction bits; subnormals keep fewer as the exponent falls.
    let kept = if exp >= -14 { 10 } else { 10 - (-14 - exp) };
    mantissa & ((1u64 << (52 - kept)) - 1) == 0
}

/// Validates `buf` as exactly one well-formed deterministic item with no tags.
pub fn validate(buf: &[u8]) -> Result<()> {
    let mut r = Reader::new(buf);
    r.item(0)?;
    if !r.at_end() {
        return Err(Malformed::TrailingBytes);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_fit() {
        assert!(fits_f16(0.5));
        assert!(fits_f16(65504.0));
        assert!(!fits_f16(65505.0));
        assert!(fits_f16(5.960464477539063e-8)); // smallest subnormal half
        assert!(!fits_f16(0.1));
        assert!(!fits_f16(100000.0));
    }

    #[test]
    fn rejects_non_canonical_forms() {
        assert_eq!(validate(&[0x18, 0x05]), Err(Malformed::NonShortest));
        assert_eq!(validate(&[0x9f, 0xff]), Err(Malformed::IndefiniteLength));
        assert_eq!(validate(&[0xa2, 0x01, 0x00, 0x01, 0x00]), Err(Malformed::DuplicateKey));
        assert_eq!(validate(&[0xa2, 0x02, 0x00, 0x01, 0x00]), Err(Malformed::UnsortedKeys));
        assert_eq!(validate(&[0x01, 0x01]), Err(Malformed::TrailingBytes));
        assert_eq!(validate(&[0xc1, 0x01]), Err(Malformed::UnexpectedTag));
        assert_eq!(validate(&[0x62, 0xff, 0xfe]), Err(Malformed::InvalidUtf8));
        assert_eq!(validate(&[0xf7]), Err(Malformed::InvalidCbor));
        assert_eq!(validate(&[0xfa, 0x3f, 0x00, 0x00, 0x00]), Err(Malformed::NonShortest));
        let deep = [0x81u8; 17];
        let mut v = deep.to_vec();
        v.push(0x00);
        assert_eq!(validate(&v), Err(Malformed::TooDeep));
        assert_eq!(validate(&v[1..]), Ok(()));
    }
}
