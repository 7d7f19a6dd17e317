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

fn word(bytes: &[u8]) -> u32 {
    // Little-endian, short tails padded with zeros.
    let mut w = [0u8; 4];
    w[..bytes.len()].copy_from_slice(bytes);
    u32::from_le_bytes(w)
}

/// `hash_bytes_extended` (`hash_any_extended`): lookup3 of a byte string.
pub fn bytes(key: &[u8], seed: u64) -> u64 {
    let (mut a, mut b, mut c) = start(key.len() as u32, seed);
    let mut blocks = key.chunks_exact(12);
    for block in &mut blocks {
        a = a.wrapping_add(word(&block[0..4]));
        b = b.wrapping_add(word(&block[4..8]));
        c = c.wrapping_add(word(&block[8..12]));
        mix(&mut a, &mut b, &mut c);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        a = a.wrapping_add(word(&tail[..tail.len().min(4)]));
        if tail.len() > 4 {
            b = b.wrapping_add(word(&tail[4..tail.len().min(8)]));
        }
        if tail.len() > 8 {
            // The low byte of c is left for the length (already in the initial value).
            c = c.wrapping_add(word(&tail[8..]) << 8);
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

/// One step of `hash_record_extended`: `result * 31 + element` (a NULL element is 0).
pub fn combine(result: u64, element: u64) -> u64 {
    (result << 5).wrapping_sub(result).wrapping_add(element)
}
