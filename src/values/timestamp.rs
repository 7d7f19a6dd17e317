//! Text -> microseconds since the Unix epoch, UTC.
//!
//! Written by hand rather than with Polars' `strptime` because one column mixes formats
//! (`2019-05-13 14:23:41`, `2019-05-13T14:23:41.5Z`, `...+02:00`) and strptime takes one
//! format per column; this accepts exactly what PostgreSQL would store the same way.

/// Parses `YYYY-MM-DD[ T]HH:MM:SS[.fraction][Z|+HH[:MM]|-HH[:MM]]`, giving the value
/// PostgreSQL's `timestamptz` input gives for the same text (TimeZone UTC), or `None`
/// where it would refuse or where tier accepts less (see docs/contracts.md, "Casts"). A time without an
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
/// The seconds may be left out (`2019-05-13T14:23`), as the server allows.
fn parse_parts(s: &str) -> Option<(i64, Option<i64>)> {
    let b = crate::values::number::trim_pg(s).as_bytes();
    if b.len() < 16 || b.len() > MAX_LEN {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    if b[4] != b'-' || b[7] != b'-' || !(b[10] == b' ' || b[10] == b'T' || b[10] == b't') || b[13] != b':' {
        return None;
    }
    let (second, mut rest) = match b.get(16) {
        Some(b':') if b.len() >= 19 => (digits(&b[17..19])?, &b[19..]),
        Some(b':') => return None,
        _ => (0, &b[16..]),
    };
    let with_seconds = b.len() >= 19 && b[16] == b':';
    if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 24 || minute > 59 || second > 60 {
        return None;
    }
    let mut micros: i64 = 0;
    if let Some((&b'.', frac)) = rest.split_first() {
        // A fraction belongs to the seconds (the server reads `14:23.5` as minutes and seconds).
        if !with_seconds {
            return None;
        }
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

/// How a contract's `timestamp` or `date` column writes its values (`format`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// `YYYY-MM-DD[ T]HH:MM[:SS[.f]][zone]` (and `YYYY-MM-DD` for a date): the default.
    Iso,
    /// Seconds, milliseconds or microseconds since 1970-01-01 UTC, as a number or numeric
    /// text, exactly (a fraction rounds to the microsecond, half to even).
    Epoch(EpochUnit),
    /// RFC 2822 / 1123, as HTTP and mail headers write them: `Tue, 19 Jul 2022 16:29:36 GMT`.
    Rfc2822,
    /// A strftime pattern (`%d/%m/%Y %H:%M`), naive values read in the column's zone.
    Pattern(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnit {
    Seconds,
    Millis,
    Micros,
}

impl EpochUnit {
    /// Digits between the unit and a microsecond.
    fn shift(self) -> usize {
        match self {
            EpochUnit::Seconds => 6,
            EpochUnit::Millis => 3,
            EpochUnit::Micros => 0,
        }
    }
}

impl Format {
    /// A contract's `format`, or why it is not one; `date` says the column is a date (a
    /// pattern must then name a day, a timestamp's a day too: the time may be left out).
    pub fn named(name: &str) -> Result<Format, String> {
        let format = match name {
            "iso" | "iso8601" => Format::Iso,
            "epoch_s" => Format::Epoch(EpochUnit::Seconds),
            "epoch_ms" => Format::Epoch(EpochUnit::Millis),
            "epoch_us" => Format::Epoch(EpochUnit::Micros),
            "rfc2822" => Format::Rfc2822,
            p if p.contains('%') => Format::Pattern(p.to_string()),
            other => {
                return Err(format!(
                    "format {other:?}: one of \"iso\", \"epoch_s\", \"epoch_ms\", \"epoch_us\", \"rfc2822\" or a strftime pattern such as \"%d/%m/%Y %H:%M\""
                ))
            }
        };
        if let Format::Pattern(p) = &format {
            use chrono::format::{Item, StrftimeItems};
            if StrftimeItems::new(p).any(|item| matches!(item, Item::Error)) {
                return Err(format!("format {p:?}: not a strftime pattern chrono reads (see its `format::strftime` specifiers)"));
            }
            // A pattern must name a whole day: a known instant written with it reads back
            // to the same day.
            let known = chrono::DateTime::parse_from_rfc3339("2019-05-13T14:23:41.123456+02:00").expect("a valid instant");
            let written = known.format(p).to_string();
            if parse_pattern(&written, p).map(|(date, _, _)| date) != Some(known.date_naive()) {
                return Err(format!("format {p:?} does not name a whole day (a year, a month and a day): {written:?} does not read back"));
            }
        }
        Ok(format)
    }

    /// The name a contract writes.
    pub fn name(&self) -> &str {
        match self {
            Format::Iso => "iso",
            Format::Epoch(EpochUnit::Seconds) => "epoch_s",
            Format::Epoch(EpochUnit::Millis) => "epoch_ms",
            Format::Epoch(EpochUnit::Micros) => "epoch_us",
            Format::Rfc2822 => "rfc2822",
            Format::Pattern(p) => p,
        }
    }
}

/// The instants tier stores: years 1 to 9999, as the ISO form allows.
const FIRST_MICROS: i64 = -62_135_596_800_000_000;
const LAST_MICROS: i64 = 253_402_300_799_999_999;

/// A timestamp written in `format`, as microseconds since 1970 UTC; naive values (ISO
/// without an offset, a pattern without `%z`) are read in `zone`, else UTC.
pub fn parse_timestamp(text: &str, format: &Format, zone: Option<&Zone>) -> Option<i64> {
    let local = |naive: i64, offset: Option<i64>| match (offset, zone) {
        (Some(o), _) => Some(naive - o * 1_000_000),
        (None, Some(z)) => z.to_utc(naive),
        (None, None) => Some(naive),
    };
    let us = match format {
        Format::Iso => {
            let (naive, offset) = parse_parts(text)?;
            local(naive, offset)?
        }
        Format::Epoch(unit) => parse_epoch(text, *unit)?,
        Format::Rfc2822 => parse_rfc2822(text)?,
        Format::Pattern(p) => {
            let (date, micros_of_day, offset) = parse_pattern(crate::values::number::trim_pg(text), p)?;
            let (y, m, d) = date_parts(date);
            let naive = days_from_civil(y, m, d) * 86_400_000_000 + micros_of_day;
            local(naive, offset.map(i64::from))?
        }
    };
    (FIRST_MICROS..=LAST_MICROS).contains(&us).then_some(us)
}

/// A date written in `format`, as days since 1970-01-01: the day as written (an epoch's
/// day in UTC; a time or zone in the text is read past, as the server's `date` input does).
pub fn parse_date_as(text: &str, format: &Format) -> Option<i32> {
    match format {
        Format::Iso => parse_date(text),
        Format::Epoch(_) | Format::Rfc2822 => {
            let us = match format {
                Format::Epoch(unit) => parse_epoch(text, *unit)?,
                _ => rfc2822_parts(text).map(|(naive, _)| naive)?,
            };
            (FIRST_MICROS..=LAST_MICROS).contains(&us).then(|| us.div_euclid(86_400_000_000) as i32)
        }
        Format::Pattern(p) => {
            let (date, _, _) = parse_pattern(crate::values::number::trim_pg(text), p)?;
            let (y, m, d) = date_parts(date);
            (1..=9999).contains(&y).then(|| days_from_civil(y, m, d) as i32)
        }
    }
}

fn date_parts(date: chrono::NaiveDate) -> (i64, u32, u32) {
    use chrono::Datelike;
    (date.year() as i64, date.month(), date.day())
}

/// An epoch in `unit` (a JSON number or numeric text, exponent allowed) -> microseconds,
/// exactly: the decimal's point moved, the rest rounded half to even.
pub fn parse_epoch(text: &str, unit: EpochUnit) -> Option<i64> {
    let canonical = crate::values::number::parse_numeric(text).ok()?;
    let (negative, body) = match canonical.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, canonical.as_str()),
    };
    let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
    let shift = unit.shift();
    let (moved, rest) = match fraction.len() > shift {
        true => fraction.split_at(shift),
        false => (fraction, ""),
    };
    let digits = format!("{whole}{moved:0<shift$}");
    if digits.trim_start_matches('0').len() > 19 {
        return None;
    }
    let mut micros: i128 = digits.parse().ok()?;
    // Half to even: above a half up, a half exactly to the even neighbour.
    let rest = rest.trim_end_matches('0');
    let round_up = match rest.as_bytes().first() {
        Some(b'6'..=b'9') => true,
        Some(b'5') => rest.len() > 1 || micros % 2 == 1,
        _ => false,
    };
    micros += round_up as i128;
    if negative {
        micros = -micros;
    }
    i64::try_from(micros).ok()
}

/// RFC 2822 (and RFC 1123, its HTTP form): `[Day, ]DD Mon YYYY HH:MM[:SS] zone`, the zone an
/// offset (`+0200`), `GMT`, `UT`, `UTC`, `Z` or a North American zone (`EST` ... `PDT`). A
/// day name must be the date's; two-digit years, military zones and fractions are refused.
pub fn parse_rfc2822(text: &str) -> Option<i64> {
    let (naive, offset) = rfc2822_parts(text)?;
    Some(naive - offset * 1_000_000)
}

fn rfc2822_parts(text: &str) -> Option<(i64, i64)> {
    let t = crate::values::number::trim_pg(text);
    if t.len() > MAX_LEN {
        return None;
    }
    let (weekday, rest) = match t.split_once(',') {
        Some((name, rest)) => (Some(name.trim_matches([' ', '\t'])), rest),
        None => (None, t),
    };
    let mut words = rest.split([' ', '\t']).filter(|w| !w.is_empty());
    let day: u32 = number_of(words.next()?, 1, 2)?;
    let month_name = words.next()?;
    let month = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month_name))? as u32 + 1;
    let year: u32 = number_of(words.next()?, 4, 4)?;
    let clock = words.next()?;
    let zone = words.next()?;
    if words.next().is_some() {
        return None;
    }
    let mut hms = clock.split(':');
    let hour: u32 = number_of(hms.next()?, 2, 2)?;
    let minute: u32 = number_of(hms.next()?, 2, 2)?;
    let second: u32 = match hms.next() {
        Some(s) => number_of(s, 2, 2)?,
        None => 0,
    };
    if hms.next().is_some() || year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let offset: i64 = match zone.as_bytes() {
        [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 15 || m > 59 {
                return None;
            }
            let secs = (h * 3600 + m * 60) as i64;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => 3600 * NAMED_ZONES.iter().find(|(name, _)| name.eq_ignore_ascii_case(zone))?.1,
    };
    let days = days_from_civil(year as i64, month, day);
    if let Some(name) = weekday {
        // 1970-01-01 was a Thursday.
        let actual = WEEKDAYS[(days + 3).rem_euclid(7) as usize];
        if !actual.eq_ignore_ascii_case(name) {
            return None;
        }
    }
    Some(((days * 86_400 + (hour * 3600 + minute * 60 + second) as i64) * 1_000_000, offset))
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
/// RFC 2822's named zones, in hours east of UTC (as the server's default abbreviations read them).
const NAMED_ZONES: [(&str, i64); 12] = [
    ("GMT", 0),
    ("UT", 0),
    ("UTC", 0),
    ("Z", 0),
    ("EST", -5),
    ("EDT", -4),
    ("CST", -6),
    ("CDT", -5),
    ("MST", -7),
    ("MDT", -6),
    ("PST", -8),
    ("PDT", -7),
];

/// Digits only, `min` to `max` of them.
fn number_of(word: &str, min: usize, max: usize) -> Option<u32> {
    (min..=max).contains(&word.len()).then(|| digits(word.as_bytes())).flatten()
}

/// A text read with a strftime pattern, strictly (all of it, nothing left over): the day,
/// the time of day in microseconds (midnight when the pattern has none; a fraction rounds
/// half to even) and the offset in seconds when the pattern gives one.
fn parse_pattern(text: &str, pattern: &str) -> Option<(chrono::NaiveDate, i64, Option<i32>)> {
    use chrono::format::{parse, Parsed, StrftimeItems};
    use chrono::Timelike;
    if text.len() > MAX_LEN {
        return None;
    }
    let mut p = Parsed::new();
    parse(&mut p, text, StrftimeItems::new(pattern)).ok()?;
    if p.timestamp().is_some() {
        // `%s`: seconds since the epoch, whatever else the pattern says.
        let t = p.to_datetime_with_timezone(&chrono::Utc).ok()?;
        let us = t.timestamp_micros();
        return Some((t.date_naive(), us.rem_euclid(86_400_000_000), Some(0)));
    }
    if p.hour_div_12().is_none() && p.hour_mod_12().is_none() {
        p.set_hour(0).ok()?;
    }
    if p.minute().is_none() {
        p.set_minute(0).ok()?;
    }
    let date = p.to_naive_date().ok()?;
    let time = p.to_naive_time().ok()?;
    let nanos = time.nanosecond() as i64; // past 10^9 in a leap second
    let micros = nanos / 1000 + ((nanos % 1000 > 500 || (nanos % 1000 == 500 && (nanos / 1000) % 2 == 1)) as i64);
    let of_day = time.num_seconds_from_midnight() as i64 * 1_000_000 + micros;
    Some((date, of_day, p.offset()))
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
    /// chrono-tz's tables end with 2099; past it the server goes on with the zone's current
    /// rule, so a later year is read as the year of 2072-2099 with its calendar (leap year
    /// and weekday of 1 January): the same rule gives the same offsets there.
    ///
    /// Before 1900 a zone's clocks were local mean time, which tzdata builds give
    /// differently (chrono-tz's Europe/Oslo is Berlin's, the server's may be Oslo's own):
    /// a naive time from then is refused rather than stored at an offset the server may
    /// not share.
    fn to_utc(&self, local: i64) -> Option<i64> {
        let (year, _, _) = civil_from_days(local.div_euclid(86_400_000_000));
        if year < 1900 && self.0 != chrono_tz::UTC {
            return None;
        }
        if year <= 2099 {
            return self.to_utc_by_table(local);
        }
        let starts = |y: i64| days_from_civil(y, 1, 1);
        let leap = |y: i64| days_from_civil(y + 1, 1, 1) - starts(y) == 366;
        let twin = (2072..=2099).find(|&y| leap(y) == leap(year) && (starts(y) - starts(year)).rem_euclid(7) == 0)?;
        let shift = (starts(twin) - starts(year)) * 86_400_000_000;
        Some(self.to_utc_by_table(local + shift)? - shift)
    }

    fn to_utc_by_table(&self, local: i64) -> Option<i64> {
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
/// reads that form; other forms the server reads are refused (see docs/contracts.md, "Casts").
pub fn parse_date(s: &str) -> Option<i32> {
    let b = crate::values::number::trim_pg(s).as_bytes();
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

/// An instant as `YYYY-MM-DDTHH:MM:SS[.f]Z` (the fraction's trailing zeros left out).
pub fn instant_text(us: i64) -> String {
    let (y, m, d) = civil_from_days(us.div_euclid(86_400_000_000));
    let of_day = us.rem_euclid(86_400_000_000);
    let (secs, micros) = (of_day / 1_000_000, of_day % 1_000_000);
    let fraction = match micros {
        0 => String::new(),
        _ => format!(".{micros:06}").trim_end_matches('0').to_string(),
    };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{fraction}Z", secs / 3600, secs / 60 % 60, secs % 60)
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
    fn iso_without_seconds() {
        assert_eq!(parse_micros("2019-05-13T14:23"), Some(T0 - 41_000_000));
        assert_eq!(parse_micros("2019-05-13 14:23Z"), Some(T0 - 41_000_000));
        assert_eq!(parse_micros("2019-05-13 16:23+02:00"), Some(T0 - 41_000_000));
        for bad in ["2019-05-13 14:23.5", "2019-05-13 14:2", "2019-05-13 14:23:4", "2019-05-13 14:"] {
            assert_eq!(parse_micros(bad), None, "{bad}");
        }
    }

    #[test]
    fn epochs_are_exact() {
        use EpochUnit::*;
        assert_eq!(parse_epoch("1557757421", Seconds), Some(T0));
        assert_eq!(parse_epoch(" 1557757421123 ", Millis), Some(T0 + 123_000));
        assert_eq!(parse_epoch("1557757421123456", Micros), Some(T0 + 123_456));
        assert_eq!(parse_epoch("1.557757421e9", Seconds), Some(T0));
        assert_eq!(parse_epoch("1557757421.5", Seconds), Some(T0 + 500_000));
        // Far from 1970 a double would drift; the decimal does not.
        assert_eq!(parse_epoch("253402300799.999999", Seconds), Some(LAST_MICROS));
        // A fraction of a microsecond rounds half to even.
        assert_eq!(parse_epoch("1557757421.0000005", Seconds), Some(T0));
        assert_eq!(parse_epoch("1557757421.0000015", Seconds), Some(T0 + 2));
        assert_eq!(parse_epoch("1557757421.00000150001", Seconds), Some(T0 + 2));
        assert_eq!(parse_epoch("1557757421.0000025", Seconds), Some(T0 + 2));
        assert_eq!(parse_epoch("1557757421.00000251", Seconds), Some(T0 + 3));
        assert_eq!(parse_epoch("-1.5", Micros), Some(-2));
        assert_eq!(parse_epoch("-2.5", Micros), Some(-2));
        assert_eq!(parse_epoch("-0.4", Millis), Some(-400));
        for bad in ["NaN", "", "abc", "1e400", "12:00"] {
            assert_eq!(parse_epoch(bad, Seconds), None, "{bad}");
        }
        // Beyond year 9999: refused as a timestamp.
        assert_eq!(parse_timestamp("253402300800", &Format::Epoch(Seconds), None), None);
        assert_eq!(parse_date_as("1557757421", &Format::Epoch(Seconds)), parse_date("2019-05-13"));
        assert_eq!(parse_date_as("-1", &Format::Epoch(Micros)), parse_date("1969-12-31"));
    }

    #[test]
    fn rfc2822_as_http_writes_it() {
        let t = |s: &str| parse_timestamp(s, &Format::Rfc2822, None);
        assert_eq!(t("Mon, 13 May 2019 14:23:41 GMT"), Some(T0));
        assert_eq!(t("13 May 2019 16:23:41 +0200"), Some(T0));
        assert_eq!(t("Mon,13 may 2019 10:23:41 EDT"), Some(T0));
        assert_eq!(t("Mon, 13 May 2019 14:23 UT"), Some(T0 - 41_000_000));
        assert_eq!(t(" Mon, 13 May 2019 14:23:41 Z "), Some(T0));
        for bad in [
            "Tue, 13 May 2019 14:23:41 GMT",
            "Mon, 13 May 19 14:23:41 GMT",
            "Mon, 13 May 2019 14:23:41",
            "Mon, 13 May 2019 14:23:41 A",
            "Mon, 13 May 2019 14:23:41.5 GMT",
            "Mon, 32 May 2019 14:23:41 GMT",
            "Mon, 13 Mai 2019 14:23:41 GMT",
            "Mon, 13 May 2019 14:23:41 GMT extra",
            "2019-05-13 14:23:41",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
        assert_eq!(parse_date_as("Mon, 13 May 2019 23:30:00 -0500", &Format::Rfc2822), parse_date("2019-05-13"));
    }

    #[test]
    fn patterns_read_strictly() {
        let f = |p: &str| Format::named(p).unwrap();
        let dmy = f("%d/%m/%Y %H:%M");
        assert_eq!(parse_timestamp("13/05/2019 14:23", &dmy, None), Some(T0 - 41_000_000));
        let oslo = Zone::named("Europe/Oslo").unwrap();
        assert_eq!(parse_timestamp("13/05/2019 16:23", &dmy, Some(&oslo)), Some(T0 - 41_000_000));
        for bad in ["13/05/2019 14:23 x", "13/05/2019", "32/05/2019 14:23", "13/13/2019 14:23", "2019-05-13 14:23"] {
            assert_eq!(parse_timestamp(bad, &dmy, None), None, "{bad}");
        }
        let zoned = f("%Y-%m-%d %H:%M:%S%.f %z");
        assert_eq!(parse_timestamp("2019-05-13 16:23:41.5 +0200", &zoned, Some(&oslo)), Some(T0 + 500_000));
        // A date pattern in a timestamp column is midnight; in a date column, the day.
        assert_eq!(parse_timestamp("13.05.2019", &f("%d.%m.%Y"), None), parse_micros("2019-05-13 00:00:00"));
        assert_eq!(parse_date_as("13.05.2019 14:23", &f("%d.%m.%Y %H:%M")), parse_date("2019-05-13"));
        for bad in ["%H:%M", "%d/%m", "nothing", "%Q"] {
            assert!(Format::named(bad).is_err(), "{bad}");
        }
        for name in ["iso", "epoch_s", "epoch_ms", "epoch_us", "rfc2822", "%d/%m/%Y"] {
            assert_eq!(Format::named(name).unwrap().name(), name);
        }
        assert_eq!(instant_text(T0 + 5), "2019-05-13T14:23:41.000005Z");
        assert_eq!(instant_text(-1_000_000), "1969-12-31T23:59:59Z");
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
            "2019-05-13 14:23:41 Z",
            "2019/05/13 14:23:41",
            "２019-05-13 14:23:41",
        ] {
            assert_eq!(parse_micros(bad), None, "{bad}");
        }
    }
}
