//! Text -> microseconds since the Unix epoch, UTC.
//!
//! Written by hand rather than with Polars' `strptime` because one column mixes formats
//! (`2019-05-13 14:23:41`, `2019-05-13T14:23:41.5Z`, `...+02:00`) and strptime takes one
//! format per column; this accepts exactly what PostgreSQL would store the same way.

/// Parses `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z|+HH[:MM]|-HH[:MM]]`, giving the value
/// PostgreSQL's `timestamptz` input gives for the same text (TimeZone UTC), or `None`
/// where it would refuse or where tier accepts less (see the README). A time without an
/// offset is UTC. The fraction rounds as the server rounds it: parsed as a double, scaled
/// to microseconds and rounded half to even. Second 60 (a leap second) rolls over to the
/// next minute, and `24:00:00` is the next midnight, as in PostgreSQL; a time of day past
/// 24:00:00 (`23:59:60.5`) is refused, as there. Years 1 to 9999.
pub fn parse_micros(s: &str) -> Option<i64> {
    let (naive, offset) = parse_parts(s)?;
    Some(naive - offset.unwrap_or(0) * 1_000_000)
}

/// Like `parse_micros`, with naive input (no offset) read as local time in `zone`, as the
/// server reads it with that TimeZone: a time that a change to summer time skips is read
/// with the offset before the change, one that the change back repeats as the later one.
pub fn parse_micros_in(s: &str, zone: &Zone) -> Option<i64> {
    let (naive, offset) = parse_parts(s)?;
    match offset {
        Some(o) => Some(naive - o * 1_000_000),
        None => zone.to_utc(naive),
    }
}

/// The local time as microseconds (as if UTC), and the offset in seconds when one is given.
fn parse_parts(s: &str) -> Option<(i64, Option<i64>)> {
    let b = crate::transform::number::trim_pg(s).as_bytes();
    if b.len() < 19 || b.len() > MAX_LEN {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if b[4] != b'-' || b[7] != b'-' || !(b[10] == b' ' || b[10] == b'T' || b[10] == b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 24 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros: i64 = 0;
    if let Some((&b'.', frac)) = rest.split_first() {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        // PostgreSQL: `rint(strtod(".ddd") * 1000000)`. Rust's parse rounds correctly, as
        // strtod does, so `.1234565` -> 123456 and `.0000005` -> 0, like the server.
        let fraction: f64 = std::str::from_utf8(&rest[..=n]).ok()?.parse().ok()?;
        micros = (fraction * 1_000_000.0).round_ties_even() as i64;
        rest = &frac[n..];
    }
    // Hour 24 and second 60 are allowed, but the time of day may not pass 24:00:00 (the
    // server's `time_overflows`): 23:59:60.5 is refused, 12:30:60.5 is 12:31:00.5.
    if ((hour * 60 + minute) * 60 + second) as i64 * 1_000_000 + micros > 86_400_000_000 {
        return None;
    }
    let offset_seconds: Option<i64> = match rest {
        [] => None,
        [b'Z'] | [b'z'] => Some(0),
        [sign @ (b'+' | b'-'), tz @ ..] => {
            let (h, m) = match tz {
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?),
                _ => return None,
            };
            if h > 15 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i64;
            Some(if *sign == b'+' { secs } else { -secs })
        }
        _ => return None,
    };
    let days = days_from_civil(year as i64, month, day);
    let seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    Some((seconds * 1_000_000 + micros, offset_seconds))
}

/// Longer texts are refused: the server's own limit is about this size (its field buffer),
/// and nothing longer is a timestamp an export writes.
const MAX_LEN: usize = 64;

/// A time zone naive timestamps are read in.
pub struct Zone(chrono_tz::Tz);

impl Zone {
    pub fn named(name: &str) -> Option<Zone> {
        name.parse::<chrono_tz::Tz>().ok().map(Zone)
    }

    /// Local microseconds (as if UTC) -> UTC microseconds, resolved as PostgreSQL does.
    fn to_utc(&self, local: i64) -> Option<i64> {
        use chrono::{Offset, TimeZone};
        let naive = chrono::DateTime::from_timestamp_micros(local)?.naive_utc();
        let offset = match self.0.offset_from_local_datetime(&naive) {
            chrono::LocalResult::Single(o) => o.fix(),
            chrono::LocalResult::Ambiguous(_, later) => later.fix(),
            // Skipped by a change to summer time: the offset in force before the change.
            chrono::LocalResult::None => self.0.offset_from_utc_datetime(&(naive - chrono::Duration::hours(24))).fix(),
        };
        Some(local - offset.local_minus_utc() as i64 * 1_000_000)
    }
}

/// Whether a contract's `timezone` names a zone tier knows.
pub fn is_zone(name: &str) -> bool {
    Zone::named(name).is_some()
}

/// `YYYY-MM-DD` -> days since 1970-01-01 (years 1 to 9999), as the server's `date` input
/// reads that form; other forms the server reads are refused (see the README).
pub fn parse_date(s: &str) -> Option<i32> {
    let b = crate::transform::number::trim_pg(s).as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some(days_from_civil(year as i64, month, day) as i32)
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32))
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The UTC calendar day of an instant, as `YYYY-MM-DD`.
pub fn day_of_micros(us: i64) -> String {
    let (y, m, d) = civil_from_days(us.div_euclid(86_400_000_000));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Year, month, day of a day count since 1970-01-01 (inverse of `days_from_civil`).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_557_757_421_000_000; // 2019-05-13 14:23:41 UTC

    #[test]
    fn export_format_and_iso_variants() {
        assert_eq!(parse_micros("2019-05-13 14:23:41"), Some(T0));
        assert_eq!(parse_micros("2019-05-13T14:23:41Z"), Some(T0));
        assert_eq!(parse_micros(" 2019-05-13T14:23:41.5 "), Some(T0 + 500_000));
        assert_eq!(parse_micros("2019-05-13T14:23:41.1234567Z"), Some(T0 + 123_457));
        // Rounded as the server rounds: the fraction as a double, half to even.
        assert_eq!(parse_micros("2019-05-13 14:23:41.0000005"), Some(T0));
        assert_eq!(parse_micros("2019-05-13 14:23:41.1234565"), Some(T0 + 123_456));
        assert_eq!(parse_micros("2019-05-13 14:23:41.1234574999999999999999"), Some(T0 + 123_458));
        assert_eq!(parse_micros("2019-05-13 14:23:40.9999996"), Some(T0));
        // ASCII whitespace only, as the server trims it.
        assert_eq!(parse_micros("\t2019-05-13 14:23:41\x0b"), Some(T0));
        assert_eq!(parse_micros("\u{a0}2019-05-13 14:23:41"), None);
        assert_eq!(parse_micros("2019-05-13 14:23:41\u{3000}"), None);
        assert_eq!(parse_micros("2019-05-13T16:23:41+02:00"), Some(T0));
        assert_eq!(parse_micros("2019-05-13T12:23:41-0200"), Some(T0));
        assert_eq!(parse_micros("1970-01-01 00:00:00"), Some(0));
    }

    #[test]
    fn zones_and_dates() {
        let oslo = Zone::named("Europe/Oslo").unwrap();
        let at = |s: &str| parse_micros_in(s, &oslo);
        assert_eq!(at("2019-06-04 14:00:00"), parse_micros("2019-06-04 12:00:00"));
        assert_eq!(at("2019-06-04 14:00:00Z"), parse_micros("2019-06-04 14:00:00"));
        // As the server resolves them: the repeated hour as the later, the skipped one with
        // the offset before the change.
        assert_eq!(at("2019-10-27 02:30:00"), parse_micros("2019-10-27 01:30:00"));
        assert_eq!(at("2019-03-31 02:30:00"), parse_micros("2019-03-31 01:30:00"));
        assert!(Zone::named("Mars/Base").is_none());
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date(" 2019-02-29"), None);
        assert_eq!(parse_date("2019-05-13 00:00:00"), None);
    }

    #[test]
    fn days_round_trip() {
        assert_eq!(day_of_micros(T0), "2019-05-13");
        assert_eq!(day_of_micros(-1), "1969-12-31");
        for d in [-800_000i64, -1, 0, 59, 18_000, 2_900_000] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn leap_second_rolls_over_and_calendar_is_checked() {
        assert_eq!(parse_micros("2016-12-31 23:59:60"), parse_micros("2017-01-01 00:00:00"));
        assert_eq!(parse_micros("2019-02-29 00:00:00"), None);
        assert!(parse_micros("2020-02-29 00:00:00").is_some());
        assert!(parse_micros("0001-01-01 00:00:00").is_some());
        assert!(parse_micros("9999-12-31 23:59:59").is_some());
        assert_eq!(parse_micros("0000-01-01 00:00:00"), None);
        // The server refuses a leap second with a fraction, and takes 24:00:00 as midnight.
        assert_eq!(parse_micros("2016-12-31 23:59:60.5"), None);
        assert_eq!(parse_micros("2016-12-31 12:30:60.5"), parse_micros("2016-12-31 12:31:00.5"));
        assert_eq!(parse_micros("2016-12-31 23:59:60.0000004"), parse_micros("2017-01-01 00:00:00"));
        assert_eq!(parse_micros("2019-05-12 24:00:00"), parse_micros("2019-05-13 00:00:00"));
        assert_eq!(parse_micros("2019-05-12 24:00:01"), None);
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for bad in [
            "",
            "2019-05-13",
            "yesterday",
            "2019-13-01 00:00:00",
            "2019-05-13 25:00:00",
            "2019-05-13 14:23:41.",
            "2019-05-13 14:23:41 UTC",
            "2019/05/13 14:23:41",
            "２019-05-13 14:23:41",
        ] {
            assert_eq!(parse_micros(bad), None, "{bad}");
        }
    }
}
