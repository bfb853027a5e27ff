//! Property tests (proptest) for the parsers: no input makes them panic, every
//! canonical encoding is accepted and no non-canonical one is, and what a token
//! says is what the parser reads back. The verifier's own properties (batches,
//! mutated tokens) are in `verifier.rs`, next to its token builders.

use proptest::prelude::*;

use crate::cbor::{validate, Malformed, MAX_DEPTH};
use crate::proof::parse_proof;
use crate::token::parse;
use crate::verifier::parse_chain;

/// A CBOR data item of the kinds tokens carry.
#[derive(Debug, Clone)]
enum Val {
    Uint(u64),
    Neg(u64),
    Bytes(Vec<u8>),
    Text(String),
    Array(Vec<Val>),
    Map(Vec<(Val, Val)>),
    Simple(u8),
}

fn val() -> impl Strategy<Value = Val> {
    let leaf = prop_oneof![
        any::<u64>().prop_map(Val::Uint),
        (0u64..1 << 20).prop_map(Val::Uint),
        any::<u64>().prop_map(Val::Neg),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Val::Bytes),
        ".{0,20}".prop_map(Val::Text),
        prop::sample::select(vec![20u8, 21, 22]).prop_map(Val::Simple),
    ];
    leaf.prop_recursive(5, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Val::Array),
            prop::collection::vec((inner.clone(), inner), 0..8).prop_map(Val::Map),
        ]
    })
}

/// How an item head is written: shortest (canonical), one size wider, or indefinite.
#[derive(Clone, Copy, PartialEq)]
enum Form {
    Shortest,
    Wider,
    Indefinite,
}

struct Encoder {
    out: Vec<u8>,
    /// Head number (in write order) to write in `form`; the rest are shortest.
    target: usize,
    form: Form,
    seen: usize,
    /// Whether the head at `target` was written in `form`.
    applied: bool,
}

impl Encoder {
    fn head(&mut self, major: u8, arg: u64, may_be_indefinite: bool) {
        let here = self.seen;
        self.seen += 1;
        let m = major << 5;
        let form = if here == self.target { self.form } else { Form::Shortest };
        if form == Form::Indefinite && may_be_indefinite {
            self.out.push(m | 31);
            self.applied = true;
            return;
        }
        let width = match arg {
            0..=23 => 0,
            24..=0xff => 1,
            0x100..=0xffff => 2,
            0x1_0000..=0xffff_ffff => 3,
            _ => 4,
        };
        let width = if form == Form::Wider && width < 4 {
            self.applied = true;
            width + 1
        } else {
            width
        };
        match width {
            0 => self.out.push(m | arg as u8),
            1 => self.out.extend_from_slice(&[m | 24, arg as u8]),
            2 => {
                self.out.push(m | 25);
                self.out.extend_from_slice(&(arg as u16).to_be_bytes());
            }
            3 => {
                self.out.push(m | 26);
                self.out.extend_from_slice(&(arg as u32).to_be_bytes());
            }
            _ => {
                self.out.push(m | 27);
                self.out.extend_from_slice(&arg.to_be_bytes());
            }
        }
    }

    fn item(&mut self, v: &Val) {
        let indefinite_at = self.seen == self.target && self.form == Form::Indefinite;
        match v {
            Val::Uint(n) => self.head(0, *n, false),
            Val::Neg(n) => self.head(1, *n, false),
            Val::Bytes(b) => {
                self.head(2, b.len() as u64, true);
                self.body(indefinite_at, 0x40 | b.len() as u8, b);
            }
            Val::Text(t) => {
                self.head(3, t.len() as u64, true);
                self.body(indefinite_at, 0x60 | t.len() as u8, t.as_bytes());
            }
            Val::Array(items) => {
                self.head(4, items.len() as u64, true);
                for i in items {
                    self.item(i);
                }
                if indefinite_at {
                    self.out.push(0xff);
                }
            }
            Val::Map(pairs) => {
                // Canonical order: by the keys' encodings, no duplicates.
                let mut encoded: Vec<(Vec<u8>, &Val)> = pairs.iter().map(|(k, v)| (canonical(k), v)).collect();
                encoded.sort_by(|a, b| a.0.cmp(&b.0));
                encoded.dedup_by(|a, b| a.0 == b.0);
                self.head(5, encoded.len() as u64, true);
                for (key, value) in encoded {
                    // Keys are written as encoded (shortest), but counted like any head,
                    // so `target` may fall inside one.
                    let mut sub = Encoder { out: Vec::new(), target: self.target.wrapping_sub(self.seen), form: self.form, seen: 0, applied: false };
                    sub.item(&decode_back(&key));
                    self.seen += sub.seen;
                    self.applied |= sub.applied;
                    self.out.extend_from_slice(&sub.out);
                    self.item(value);
                }
                if indefinite_at {
                    self.out.push(0xff);
                }
            }
            Val::Simple(s) => {
                self.seen += 1;
                self.out.push(0xe0 | s);
            }
        }
    }

    /// A string's bytes; inside an indefinite string, as one definite chunk.
    fn body(&mut self, indefinite: bool, _short_head: u8, bytes: &[u8]) {
        if indefinite && self.applied {
            let major = self.out[self.out.len() - 1] >> 5;
            let mut chunk = Encoder { out: Vec::new(), target: usize::MAX, form: Form::Shortest, seen: 0, applied: false };
            chunk.head(major, bytes.len() as u64, false);
            self.out.extend_from_slice(&chunk.out);
            self.out.extend_from_slice(bytes);
            self.out.push(0xff);
        } else {
            self.out.extend_from_slice(bytes);
        }
    }
}

fn canonical(v: &Val) -> Vec<u8> {
    encode(v, usize::MAX, Form::Shortest).0
}

fn encode(v: &Val, target: usize, form: Form) -> (Vec<u8>, bool) {
    let mut e = Encoder { out: Vec::new(), target, form, seen: 0, applied: false };
    e.item(v);
    (e.out, e.applied)
}

/// Keys are kept as values; re-derived from their canonical bytes for re-encoding.
fn decode_back(bytes: &[u8]) -> Val {
    fn item(b: &[u8], at: &mut usize) -> Val {
        let first = b[*at];
        *at += 1;
        let (major, ai) = (first >> 5, first & 31);
        let arg = match ai {
            0..=23 => u64::from(ai),
            24..=27 => {
                let n = 1usize << (ai - 24);
                let mut v = 0u64;
                for i in 0..n {
                    v = v << 8 | u64::from(b[*at + i]);
                }
                *at += n;
                v
            }
            _ => unreachable!(),
        };
        match major {
            0 => Val::Uint(arg),
            1 => Val::Neg(arg),
            2 | 3 => {
                let s = b[*at..*at + arg as usize].to_vec();
                *at += arg as usize;
                if major == 2 {
                    Val::Bytes(s)
                } else {
                    Val::Text(String::from_utf8(s).unwrap())
                }
            }
            4 => Val::Array((0..arg).map(|_| item(b, at)).collect()),
            5 => Val::Map((0..arg).map(|_| (item(b, at), item(b, at))).collect()),
            _ => Val::Simple(ai),
        }
    }
    item(bytes, &mut 0)
}

fn depth(v: &Val) -> u32 {
    match v {
        Val::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Val::Map(pairs) => 1 + pairs.iter().map(|(k, v)| depth(k).max(depth(v))).max().unwrap_or(0),
        _ => 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, max_global_rejects: 200_000, ..ProptestConfig::default() })]

    /// No byte string makes a parser panic.
    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = validate(&bytes);
        let _ = parse(&bytes);
        let _ = parse_chain(&bytes, 16);
        let _ = parse_proof(&bytes);
    }

    /// Nor does a byte string that starts like a token.
    #[test]
    fn token_shaped_input_never_panics(tail in prop::collection::vec(any::<u8>(), 0..300), head in prop::sample::select(vec![&[0xd2u8, 0x84][..], &[0xd2, 0x84, 0x4d, 0xa2, 0x01, 0x27, 0x04, 0x48][..], &[0xa5, 0x01, 0x50][..]])) {
        let mut bytes = head.to_vec();
        bytes.extend_from_slice(&tail);
        let _ = parse(&bytes);
        let _ = parse_chain(&bytes, 16);
        let _ = parse_proof(&bytes);
    }

    /// Every canonical encoding is accepted, to its last byte.
    #[test]
    fn canonical_encodings_are_accepted(v in val()) {
        prop_assume!(depth(&v) <= MAX_DEPTH);
        let bytes = canonical(&v);
        prop_assert_eq!(validate(&bytes), Ok(()));
        // Re-encoding what was read gives the same bytes.
        prop_assert_eq!(canonical(&decode_back(&bytes)), bytes.clone());
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert_eq!(validate(&longer), Err(Malformed::TrailingBytes));
    }

    /// A head one size wider than needed, anywhere, is refused as non-shortest.
    #[test]
    fn wider_heads_are_refused(v in val(), at in any::<prop::sample::Index>()) {
        prop_assume!(depth(&v) <= MAX_DEPTH);
        let heads = { let mut e = Encoder { out: Vec::new(), target: usize::MAX, form: Form::Shortest, seen: 0, applied: false }; e.item(&v); e.seen };
        let (bytes, applied) = encode(&v, at.index(heads), Form::Wider);
        prop_assume!(applied);
        prop_assert_eq!(validate(&bytes), Err(Malformed::NonShortest));
    }

    /// An indefinite length, anywhere it could be written, is refused.
    #[test]
    fn indefinite_lengths_are_refused(v in val(), at in any::<prop::sample::Index>()) {
        prop_assume!(depth(&v) <= MAX_DEPTH);
        let heads = { let mut e = Encoder { out: Vec::new(), target: usize::MAX, form: Form::Shortest, seen: 0, applied: false }; e.item(&v); e.seen };
        let (bytes, applied) = encode(&v, at.index(heads), Form::Indefinite);
        prop_assume!(applied);
        prop_assert_eq!(validate(&bytes), Err(Malformed::IndefiniteLength));
    }

    /// Map keys out of order or repeated are refused.
    #[test]
    fn unordered_or_repeated_keys_are_refused(pairs in prop::collection::vec((val(), val()), 2..6), swap in any::<prop::sample::Index>()) {
        let mut encoded: Vec<(Vec<u8>, Vec<u8>)> = pairs.iter().map(|(k, v)| (canonical(k), canonical(v))).collect();
        prop_assume!(pairs.iter().all(|(k, v)| depth(k) < MAX_DEPTH && depth(v) < MAX_DEPTH));
        encoded.sort();
        encoded.dedup_by(|a, b| a.0 == b.0);
        prop_assume!(encoded.len() >= 2);
        let i = swap.index(encoded.len() - 1);
        // Either the neighbours swapped, or a key written twice.
        let mut swapped = encoded.clone();
        swapped.swap(i, i + 1);
        let mut repeated = encoded.clone();
        repeated[i + 1].0 = repeated[i].0.clone();
        for (pairs, expected) in [(swapped, Malformed::UnsortedKeys), (repeated, Malformed::DuplicateKey)] {
            let mut bytes = Vec::new();
            let mut e = Encoder { out: Vec::new(), target: usize::MAX, form: Form::Shortest, seen: 0, applied: false };
            e.head(5, pairs.len() as u64, false);
            bytes.extend_from_slice(&e.out);
            for (k, v) in &pairs {
                bytes.extend_from_slice(k);
                bytes.extend_from_slice(v);
            }
            prop_assert_eq!(validate(&bytes), Err(expected));
        }
    }
}
