//! Text -> numbers, giving the value PostgreSQL's own input functions (`float8in`,
//! `int4in`, `int8in`) give for the same text, or a refusal. tier casts before binary
//! COPY, so a cast that is more lenient or rounds differently would store other values
//! than `COPY ... (FORMAT text)` of the same export. Where tier deliberately accepts less
//! or more than the server (docs/contracts.md, "Casts", lists it), it says so here.

/// PostgreSQL's whitespace: `isspace` in the C locale, which its input functions skip
/// around a value. Not Unicode's: a no-break space makes the server refuse a number.
pub fn trim_pg(s: &str) -> &str {
    // By byte (all six are ASCII, which never occurs inside a multi-byte character), and
    // most values have nothing to trim.
    let space = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0B' | b'\x0C');
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) if !space(first) && !space(last) => s,
        _ => {
            let start = b.iter().position(|c| !space(c)).unwrap_or(b.len());
            let end = b.iter().rposition(|c| !space(c)).map_or(start, |e| e + 1);
            &s[start..end]
        }
    }
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
    // The common case, plain digits that fit: no exponent or fraction to weigh.
    let digits_from = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    if b.len() > digits_from && b.len() - digits_from <= 18 && b[digits_from..].iter().all(u8::is_ascii_digit) {
        let v: i64 = t.parse().expect("at most 18 digits fit");
        let fits = bits == 64 || i32::try_from(v).is_ok();
        return if fits { Int::Value(v) } else { Int::Invalid };
    }
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

/// Why a numeric text is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericError {
    NaN,
    Invalid,
}

/// The most digits before or after the point, and the largest exponent, tier takes for a
/// `numeric`: the server's own limits are higher (131072 and 16383 digits), no export needs more.
const NUMERIC_MAX_DIGITS: usize = 1000;

/// `numeric_in` for a decimal number: the value's canonical text as the server prints it
/// (`1.50` stays `1.50`, `1.5e1` is `15`, `-0.0` is `0.0`), or why not. `NaN` is stored as
/// NULL (tier's policy, as for doubles); `Infinity` is refused.
pub fn parse_numeric(text: &str) -> Result<String, NumericError> {
    let t = trim_pg(text);
    if t.eq_ignore_ascii_case("nan") || t.eq_ignore_ascii_case("-nan") || t.eq_ignore_ascii_case("+nan") {
        return Err(NumericError::NaN);
    }
    let b = t.as_bytes();
    if !is_decimal(b) {
        return Err(NumericError::Invalid);
    }
    let (negative, body) = match b[0] {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    let (mantissa, exponent) = match body.iter().position(|c| matches!(c, b'e' | b'E')) {
        Some(e) => {
            let exp = std::str::from_utf8(&body[e + 1..]).ok().and_then(|x| x.parse::<i64>().ok()).ok_or(NumericError::Invalid)?;
            (&body[..e], exp)
        }
        None => (body, 0),
    };
    if exponent.unsigned_abs() > NUMERIC_MAX_DIGITS as u64 {
        return Err(NumericError::Invalid);
    }
    let (whole, fraction) = match mantissa.iter().position(|&c| c == b'.') {
        Some(p) => (&mantissa[..p], &mantissa[p + 1..]),
        None => (mantissa, &b""[..]),
    };
    // Move the point by the exponent: digits = whole ++ fraction, point after `point` digits.
    let digits: Vec<u8> = whole.iter().chain(fraction).copied().collect();
    let point = whole.len() as i64 + exponent;
    let scale = (fraction.len() as i64 - exponent).max(0) as usize;
    let (int_part, frac_part): (Vec<u8>, Vec<u8>) = if point <= 0 {
        let mut f = vec![b'0'; (-point) as usize];
        f.extend_from_slice(&digits);
        (Vec::new(), f)
    } else if point as usize >= digits.len() {
        let mut i = digits.clone();
        i.resize(point as usize, b'0');
        (i, Vec::new())
    } else {
        (digits[..point as usize].to_vec(), digits[point as usize..].to_vec())
    };
    let mut frac_part = frac_part;
    frac_part.resize(scale, b'0'); // trailing digits past the scale are zeros by construction
    let int_part: &[u8] = match int_part.iter().position(|&d| d != b'0') {
        Some(p) => &int_part[p..],
        None => b"0",
    };
    if int_part.len() > NUMERIC_MAX_DIGITS || scale > NUMERIC_MAX_DIGITS {
        return Err(NumericError::Invalid);
    }
    let zero = int_part == b"0" && frac_part.iter().all(|&d| d == b'0');
    let mut out = String::with_capacity(int_part.len() + scale + 2);
    if negative && !zero {
        out.push('-');
    }
    out.push_str(std::str::from_utf8(int_part).expect("ASCII digits"));
    if scale > 0 {
        out.push('.');
        out.push_str(std::str::from_utf8(&frac_part).expect("ASCII digits"));
    }
    Ok(out)
}

/// A canonical decimal (see `parse_numeric`) in PostgreSQL's base-10000 form: sign, the
/// weight of the first group, the display scale, and the groups without leading or
/// trailing zero groups (what the server stores, hashes and sends).
pub struct Groups {
    pub negative: bool,
    pub weight: i16,
    pub scale: u16,
    pub digits: Vec<i16>,
}

pub fn groups(canonical: &str) -> Groups {
    let (negative, body) = match canonical.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, canonical),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    let int_part = int_part.trim_start_matches('0');
    let pad_left = (4 - int_part.len() % 4) % 4;
    let mut all: Vec<u8> = std::iter::repeat_n(b'0', pad_left).chain(int_part.bytes()).collect();
    let int_groups = all.len() / 4;
    all.extend(frac_part.bytes());
    all.resize(all.len().div_ceil(4) * 4, b'0');
    let mut digits: Vec<i16> = all.chunks(4).map(|g| g.iter().fold(0i16, |acc, d| acc * 10 + (d - b'0') as i16)).collect();
    let mut weight = int_groups as i16 - 1;
    let lead = digits.iter().take_while(|&&d| d == 0).count();
    digits.drain(..lead);
    weight -= lead as i16;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    if digits.is_empty() {
        weight = 0;
    }
    Groups { negative: negative && !digits.is_empty(), weight, scale: frac_part.len() as u16, digits }
}

/// Compares two canonical decimals exactly.
pub fn cmp_decimal(a: &str, b: &str) -> std::cmp::Ordering {
    let sign = |s: &str| match (s.starts_with('-'), s.bytes().any(|c| matches!(c, b'1'..=b'9'))) {
        (_, false) => 0,
        (true, true) => -1,
        (false, true) => 1,
    };
    let (sa, sb) = (sign(a), sign(b));
    if sa != sb {
        return sa.cmp(&sb);
    }
    let magnitude = |s: &str| -> (String, String) {
        let s = s.trim_start_matches('-');
        let (i, f) = s.split_once('.').unwrap_or((s, ""));
        (i.trim_start_matches('0').to_string(), f.trim_end_matches('0').to_string())
    };
    let ((ia, fa), (ib, fb)) = (magnitude(a), magnitude(b));
    let by_magnitude = ia.len().cmp(&ib.len()).then_with(|| ia.cmp(&ib)).then_with(|| fa.cmp(&fb));
    if sa < 0 {
        by_magnitude.reverse()
    } else {
        by_magnitude
    }
}

/// `boolin`: `true`/`false`, `yes`/`no` and their prefixes, `on`, `off`, `1`, `0`, in any case.
pub fn parse_bool(text: &str) -> Option<bool> {
    let t = trim_pg(text);
    let prefix_of = |word: &str, min: usize| t.len() >= min && t.len() <= word.len() && word[..t.len()].eq_ignore_ascii_case(t);
    match t.as_bytes().first()? {
        b't' | b'T' if prefix_of("true", 1) => Some(true),
        b'f' | b'F' if prefix_of("false", 1) => Some(false),
        b'y' | b'Y' if prefix_of("yes", 1) => Some(true),
        b'n' | b'N' if prefix_of("no", 1) => Some(false),
        b'o' | b'O' if t.eq_ignore_ascii_case("on") => Some(true),
        b'o' | b'O' if prefix_of("off", 2) => Some(false),
        b'1' if t.len() == 1 => Some(true),
        b'0' if t.len() == 1 => Some(false),
        _ => None,
    }
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
    fn trims_the_servers_whitespace_only() {
        for (text, trimmed) in [
            ("1", "1"),
            ("", ""),
            (" \t\n\r\x0b\x0c", ""),
            (" 1", "1"),
            ("1\n", "1"),
            ("\x0c é \x0b", "é"),
            ("a b", "a b"),
            ("\u{a0}1\u{a0}", "\u{a0}1\u{a0}"),
        ] {
            assert_eq!(trim_pg(text), trimmed, "{text:?}");
        }
    }

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

    #[test]
    fn numerics_keep_their_scale() {
        for (text, canonical) in [
            ("1.50", "1.50"),
            ("1.5e1", "15"),
            ("1.55e1", "15.5"),
            ("1e-3", "0.001"),
            ("-0", "0"),
            ("-0.00", "0.00"),
            ("+007.10", "7.10"),
            (".5", "0.5"),
            ("5.", "5"),
            ("12e2", "1200"),
            ("-1.2345e-2", "-0.012345"),
            (" 3 ", "3"),
        ] {
            assert_eq!(parse_numeric(text).as_deref(), Ok(canonical), "{text}");
        }
        assert_eq!(parse_numeric("NaN"), Err(NumericError::NaN));
        for bad in ["", "x", "Infinity", "1e1001", "0x1", "1_0", "\u{a0}1"] {
            assert_eq!(parse_numeric(bad), Err(NumericError::Invalid), "{bad}");
        }
        let g = groups("12345.6789");
        assert_eq!((g.weight, g.scale, g.digits.as_slice()), (1, 4, &[1, 2345, 6789][..]));
        let g = groups("0.000012");
        assert_eq!((g.weight, g.scale, g.digits.as_slice()), (-2, 6, &[1200][..]));
        let g = groups("-100000000");
        assert_eq!((g.negative, g.weight, g.digits.as_slice()), (true, 2, &[1][..]));
        assert!(groups("0.00").digits.is_empty());
        use std::cmp::Ordering::*;
        assert_eq!(cmp_decimal("1.0", "1"), Equal);
        assert_eq!(cmp_decimal("-2", "1"), Less);
        assert_eq!(cmp_decimal("-2", "-10"), Greater);
        assert_eq!(cmp_decimal("0.10", "0.09"), Greater);
        assert_eq!(cmp_decimal("100", "99.999"), Greater);
        assert_eq!(cmp_decimal("0", "-0.0"), Equal);
    }

    #[test]
    fn booleans_as_boolin_reads_them() {
        for t in ["t", "TRUE", "tr", "yes", "Y", "on", "1", " true "] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["f", "false", "FAL", "no", "n", "off", "of", "0"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for bad in ["", "o", "truex", "2", "oui", "yess", "onn"] {
            assert_eq!(parse_bool(bad), None, "{bad}");
        }
    }
}
