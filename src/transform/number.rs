//! Text -> numbers, giving the value PostgreSQL's own input functions (`float8in`,
//! `int4in`, `int8in`) give for the same text, or a refusal. tier casts before binary
//! COPY, so a cast that is more lenient or rounds differently would store other values
//! than `COPY ... (FORMAT text)` of the same export. Where tier deliberately accepts less
//! or more than the server (the README's "Casts" section lists it), it says so here.

/// PostgreSQL's whitespace: `isspace` in the C locale, which its input functions skip
/// around a value. Not Unicode's: a no-break space makes the server refuse a number.
pub fn trim_pg(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0B' | '\x0C'))
}

/// What a numeric text is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Float {
    Value(f64),
    /// `NaN` in any case or sign: stored as NULL and counted (tier's policy).
    NaN,
    /// Not a number, infinite, or out of a double's range (overflow and underflow to
    /// zero; the server refuses both, and tier refuses infinities as measures).
    Invalid,
}

/// `float8in` for a decimal number: `[+-]digits[.digits][e[+-]digits]` with optional
/// digits on one side of the point. Hexadecimal floats and `Infinity`, which the server
/// also reads, are refused.
pub fn parse_float(text: &str) -> Float {
    let t = trim_pg(text);
    if t.eq_ignore_ascii_case("nan") || t.eq_ignore_ascii_case("-nan") || t.eq_ignore_ascii_case("+nan") {
        return Float::NaN;
    }
    if !is_decimal(t.as_bytes()) {
        return Float::Invalid;
    }
    match t.parse::<f64>() {
        Ok(v) if v.is_infinite() => Float::Invalid,
        // strtod reports ERANGE when a non-zero number rounds to zero; the server refuses it.
        Ok(v) if v == 0.0 && has_nonzero_mantissa(t.as_bytes()) => Float::Invalid,
        Ok(v) => Float::Value(v),
        Err(_) => Float::Invalid,
    }
}

/// What an integer text is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Int {
    Value(i64),
    NaN,
    /// A number, but not a whole one as written (`3.5`, `4.9999999999999999`).
    NotWhole,
    /// Not a number, or a whole number outside the type's range.
    Invalid,
}

/// `int4in` / `int8in` (`bits` 32 or 64): `[+-]digits`. tier's policy adds JSON numbers
/// whose value as written is whole (`4.0`, `4e0`, `40e-1`), which exports of float columns
/// write; decided from the digits, never from a rounded double.
pub fn parse_int(text: &str, bits: u32) -> Int {
    let t = trim_pg(text);
    if t.eq_ignore_ascii_case("nan") || t.eq_ignore_ascii_case("-nan") || t.eq_ignore_ascii_case("+nan") {
        return Int::NaN;
    }
    let b = t.as_bytes();
    if !is_decimal(b) {
        return Int::Invalid;
    }
    let (negative, body) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let (mantissa, exponent) = match body.iter().position(|c| matches!(c, b'e' | b'E')) {
        Some(e) => (&body[..e], std::str::from_utf8(&body[e + 1..]).ok().and_then(|x| x.parse::<i64>().ok())),
        None => (body, Some(0)),
    };
    let (whole, fraction) = match mantissa.iter().position(|&c| c == b'.') {
        Some(p) => (&mantissa[..p], &mantissa[p + 1..]),
        None => (mantissa, &b""[..]),
    };
    let digits: Vec<u8> = whole.iter().chain(fraction).copied().collect();
    let Some(exponent) = exponent else {
        // An exponent too large for i64: zero if the digits are, else out of any range.
        return if digits.iter().all(|&d| d == b'0') { Int::Value(0) } else { Int::Invalid };
    };
    // value = digits * 10^scale
    let scale = exponent.saturating_sub(fraction.len() as i64);
    let significant = digits.iter().position(|&d| d != b'0').map_or(&digits[..0], |p| &digits[p..]);
    let integer: &[u8] = if scale < 0 {
        let cut = scale.unsigned_abs().min(significant.len() as u64) as usize;
        let (keep, dropped) = significant.split_at(significant.len() - cut);
        if dropped.iter().any(|&d| d != b'0') {
            return Int::NotWhole;
        }
        keep
    } else {
        significant
    };
    let zeros = if scale > 0 && !integer.is_empty() { scale as u64 } else { 0 };
    if integer.len() as u64 + zeros > 19 {
        return Int::Invalid;
    }
    let mut value: i128 = 0;
    for &d in integer {
        value = value * 10 + (d - b'0') as i128;
    }
    for _ in 0..zeros {
        value *= 10;
    }
    if negative {
        value = -value;
    }
    let (min, max) = if bits == 32 { (i32::MIN as i128, i32::MAX as i128) } else { (i64::MIN as i128, i64::MAX as i128) };
    if value < min || value > max {
        return Int::Invalid;
    }
    Int::Value(value as i64)
}

/// `[+-]?(d+(.d*)?|.d+)([eE][+-]?d+)?`: the decimal forms both `strtod` and Rust read.
fn is_decimal(b: &[u8]) -> bool {
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let int_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

fn has_nonzero_mantissa(b: &[u8]) -> bool {
    b.iter().take_while(|c| !matches!(c, b'e' | b'E')).any(|c| matches!(c, b'1'..=b'9'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_as_the_server_reads_them() {
        assert_eq!(parse_float("10.12"), Float::Value(10.12));
        assert_eq!(parse_float(" -0.5e-3\n"), Float::Value(-0.0005));
        assert_eq!(parse_float("1."), Float::Value(1.0));
        assert_eq!(parse_float(".5"), Float::Value(0.5));
        assert_eq!(parse_float("+3"), Float::Value(3.0));
        assert_eq!(parse_float("4.9e-324"), Float::Value(4.9e-324)); // a denormal: kept
        for bad in ["", ".", "e5", "1e", "1e+", "0x10", "1_000", "inf", "Infinity", "-Infinity", "1e400", "1e-400", "2e-324", "1,5"] {
            assert_eq!(parse_float(bad), Float::Invalid, "{bad:?}");
        }
        assert_eq!(parse_float("0e-400"), Float::Value(0.0));
        for nan in ["NaN", "nan", "-NaN"] {
            assert_eq!(parse_float(nan), Float::NaN);
        }
        // Unicode whitespace is not the server's whitespace.
        for bad in ["\u{a0}1", "1\u{2028}", "\u{3000}1"] {
            assert_eq!(parse_float(bad), Float::Invalid, "{bad:?}");
        }
        assert_eq!(parse_float("\x0b1\x0c"), Float::Value(1.0));
    }

    #[test]
    fn integers_are_decided_from_the_text() {
        assert_eq!(parse_int("5", 32), Int::Value(5));
        assert_eq!(parse_int(" +5 ", 32), Int::Value(5));
        assert_eq!(parse_int("-0", 32), Int::Value(0));
        assert_eq!(parse_int("4.0", 32), Int::Value(4));
        assert_eq!(parse_int("4e0", 32), Int::Value(4));
        assert_eq!(parse_int("40e-1", 32), Int::Value(4));
        assert_eq!(parse_int("0.5e1", 32), Int::Value(5));
        assert_eq!(parse_int("4.9999999999999999", 32), Int::NotWhole);
        assert_eq!(parse_int("5.0000000000000001", 32), Int::NotWhole);
        assert_eq!(parse_int("3.5", 32), Int::NotWhole);
        assert_eq!(parse_int("2147483647", 32), Int::Value(2147483647));
        assert_eq!(parse_int("2147483648", 32), Int::Invalid);
        assert_eq!(parse_int("-2147483648", 32), Int::Value(-2147483648));
        assert_eq!(parse_int("9223372036854775807", 64), Int::Value(i64::MAX));
        assert_eq!(parse_int("9223372036854775808", 64), Int::Invalid);
        assert_eq!(parse_int("-9223372036854775808", 64), Int::Value(i64::MIN));
        assert_eq!(parse_int("1e999999999999999999999", 64), Int::Invalid);
        assert_eq!(parse_int("0e999999999999999999999", 64), Int::Value(0));
        assert_eq!(parse_int("1e-999999999999999999999", 64), Int::Invalid);
        assert_eq!(parse_int("NaN", 32), Int::NaN);
        for bad in ["", "x", "1e", "0x10", "1_0", "\u{a0}5", "٣", "Infinity"] {
            assert_eq!(parse_int(bad, 32), Int::Invalid, "{bad:?}");
        }
    }
}
