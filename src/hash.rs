//! PostgreSQL's own seeded 64-bit hashes, computed on this side.
//!
//! `validate` asks the server for `sum(hash_record_extended(row, 0))` per day instead of
//! reading every row back; the source side computes the same figure here, from the rows
//! the load would write. The server's hashes are Bob Jenkins' lookup3 (little-endian
//! build), with PostgreSQL's seeding and its per-type rules; tests in `tests/cli/validate.rs`
//! compare every function here with the server's on the same values.

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;
const GOLDEN: u32 = 0x9e37_79b9;
const INIT_BIAS: u32 = 3_923_095;

#[inline(always)]
fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

#[inline(always)]
fn last(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

fn start(len: u32, seed: u64) -> (u32, u32, u32) {
    let init = GOLDEN.wrapping_add(len).wrapping_add(INIT_BIAS);
    let (mut a, mut b, mut c) = (init, init, init);
    if seed != 0 {
        a = a.wrapping_add((seed >> 32) as u32);
        b = b.wrapping_add(seed as u32);
        mix(&mut a, &mut b, &mut c);
    }
    (a, b, c)
}

/// A tail of one to four bytes, little-endian, padded with zeros (byte by byte: a copy of a
/// variable length is a call to memcpy, for every value hashed).
#[inline(always)]
fn tail_word(b: &[u8]) -> u32 {
    match *b {
        [b0, b1, b2, b3, ..] => u32::from_le_bytes([b0, b1, b2, b3]),
        [b0, b1, b2] => u32::from_le_bytes([b0, b1, b2, 0]),
        [b0, b1] => u32::from_le_bytes([b0, b1, 0, 0]),
        [b0] => b0 as u32,
        [] => 0,
    }
}

/// `hash_bytes_extended` (`hash_any_extended`): lookup3 of a byte string.
pub fn bytes(key: &[u8], seed: u64) -> u64 {
    let (mut a, mut b, mut c) = start(key.len() as u32, seed);
    let (blocks, tail) = key.as_chunks::<12>();
    for block in blocks {
        // Little-endian words at fixed offsets of a 12-byte array: plain loads.
        let word = |i: usize| u32::from_le_bytes([block[i], block[i + 1], block[i + 2], block[i + 3]]);
        a = a.wrapping_add(word(0));
        b = b.wrapping_add(word(4));
        c = c.wrapping_add(word(8));
        mix(&mut a, &mut b, &mut c);
    }
    if !tail.is_empty() {
        a = a.wrapping_add(tail_word(&tail[..tail.len().min(4)]));
        if tail.len() > 4 {
            b = b.wrapping_add(tail_word(&tail[4..tail.len().min(8)]));
        }
        if tail.len() > 8 {
            // The low byte of c is left for the length (already in the initial value).
            c = c.wrapping_add(tail_word(&tail[8..]) << 8);
        }
    }
    last(&mut a, &mut b, &mut c);
    ((b as u64) << 32) | c as u64
}

/// `hash_bytes_uint32_extended`: lookup3 of one 32-bit word.
pub fn uint32(k: u32, seed: u64) -> u64 {
    let (mut a, mut b, mut c) = start(4, seed);
    a = a.wrapping_add(k);
    last(&mut a, &mut b, &mut c);
    ((b as u64) << 32) | c as u64
}

/// `hashint4extended`.
pub fn int4(v: i32, seed: u64) -> u64 {
    uint32(v as u32, seed)
}

/// `hashint8extended`: the high half folded into the low one, so that values an int4
/// can hold hash alike in both types.
pub fn int8(v: i64, seed: u64) -> u64 {
    let (lo, hi) = (v as u32, (v >> 32) as u32);
    uint32(if v >= 0 { lo ^ hi } else { lo ^ !hi }, seed)
}

/// `hashfloat8extended`: +0 and -0 hash as the seed; NaNs are one value (the server's).
pub fn float8(v: f64, seed: u64) -> u64 {
    if v == 0.0 {
        return seed;
    }
    let v = if v.is_nan() { f64::NAN } else { v };
    bytes(&v.to_le_bytes(), seed)
}

/// `timestamp_hash_extended`, from Unix microseconds.
pub fn timestamp(unix_micros: i64, seed: u64) -> u64 {
    int8(unix_micros - PG_EPOCH_OFFSET_MICROS, seed)
}

/// `hashtextextended` under a deterministic collation: the string's bytes.
pub fn text(v: &str, seed: u64) -> u64 {
    bytes(v.as_bytes(), seed)
}

/// `hashcharextended`, which `boolean` uses.
pub fn boolean(v: bool, seed: u64) -> u64 {
    uint32(v as u32, seed)
}

/// Days from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_OFFSET_DAYS: i32 = 10_957;

/// `hashint4extended` of a `date` (days since 2000-01-01), from Unix days.
pub fn date(unix_days: i32, seed: u64) -> u64 {
    int4(unix_days - PG_EPOCH_OFFSET_DAYS, seed)
}

/// `hash_numeric_extended` of a canonical decimal: lookup3 of its base-10000 digits (as
/// the server's native little-endian int16s) without leading or trailing zero groups,
/// XORed with the weight of the first; the sign and the scale are not hashed (1.0 and 1
/// hash alike, as they compare equal). Zero hashes as `seed - 1`.
pub fn numeric(canonical: &str, seed: u64) -> u64 {
    let g = crate::values::number::groups(canonical);
    if g.digits.is_empty() {
        return seed.wrapping_sub(1);
    }
    let digits: Vec<u8> = g.digits.iter().flat_map(|d| d.to_le_bytes()).collect();
    bytes(&digits, seed) ^ (g.weight as i64 as u64)
}

/// `jsonb_hash_extended`: every scalar (keys included) in jsonb's order, each folding the
/// running hash one bit to the left in both halves; the start of an array or an object
/// XORs in its flag. An empty array or object hashes as the seed.
pub fn jsonb(value: &crate::values::json::Jsonb, seed: u64) -> u64 {
    use crate::values::json::Jsonb;
    const JB_FARRAY: u64 = 0x4000_0000;
    const JB_FOBJECT: u64 = 0x2000_0000;
    fn rotate(h: u64) -> u64 {
        ((h << 1) & 0xffff_fffe_ffff_fffe) | ((h >> 31) & 0x0000_0001_0000_0001)
    }
    fn scalar(v: &Jsonb, hash: &mut u64, seed: u64) {
        let tmp = match v {
            Jsonb::Null => seed.wrapping_add(1),
            Jsonb::String(s) => bytes(s.as_bytes(), seed),
            Jsonb::Number(n) => numeric(n, seed),
            Jsonb::Bool(b) if seed != 0 => boolean(*b, seed),
            Jsonb::Bool(b) => {
                if *b {
                    2
                } else {
                    4
                }
            }
            Jsonb::Array(_) | Jsonb::Object(_) => unreachable!("containers are walked"),
        };
        *hash = rotate(*hash) ^ tmp;
    }
    fn walk(v: &Jsonb, hash: &mut u64, seed: u64) {
        match v {
            Jsonb::Array(items) => {
                *hash ^= (JB_FARRAY << 32) | JB_FARRAY;
                for item in items {
                    walk(item, hash, seed);
                }
            }
            Jsonb::Object(entries) => {
                *hash ^= (JB_FOBJECT << 32) | JB_FOBJECT;
                for (k, item) in entries {
                    scalar(&Jsonb::String(k.clone()), hash, seed);
                    walk(item, hash, seed);
                }
            }
            other => scalar(other, hash, seed),
        }
    }
    let mut hash = 0u64;
    match value {
        // An empty document hashes as the seed.
        Jsonb::Array(items) if items.is_empty() => return seed,
        Jsonb::Object(entries) if entries.is_empty() => return seed,
        // A scalar document is stored as a one-element "raw scalar" array.
        Jsonb::Array(_) | Jsonb::Object(_) => walk(value, &mut hash, seed),
        scalar_value => {
            hash ^= (JB_FARRAY << 32) | JB_FARRAY;
            scalar(scalar_value, &mut hash, seed);
        }
    }
    hash
}

/// One step of `hash_record_extended`: `result * 31 + element` (a NULL element is 0).
pub fn combine(result: u64, element: u64) -> u64 {
    (result << 5).wrapping_sub(result).wrapping_add(element)
}
