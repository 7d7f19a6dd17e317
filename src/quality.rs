//! Casts and data-quality rules: a text frame from `transform::parse` goes in, a frame with
//! typed columns and a `__reason` / `__detail` per row comes out. Each column is cast in
//! one pass over its text (the columns in parallel), with the casts that agree with
//! PostgreSQL's input functions (`transform::number`, `timestamp`, `json`). The first
//! failing rule names the reason, in this order (then in column order):
//!
//! 1. `malformed` / `bad_value` (from parsing: not a JSON object; a container or a NUL
//!    where a scalar belongs)
//! 2. `missing_required`: a required column null, absent or blank
//! 3. the casts: `bad_timestamp`, `bad_date`, `bad_number`, `bad_boolean`, and `bad_value`
//!    for a JSON value jsonb cannot store
//! 4. `out_of_range`: outside `min` / `max`; an integer must also be whole as written
//! 5. `not_allowed`, `pattern_mismatch`, `too_long`: the other rules of the contract
//! 6. `duplicate`: decided later across chunks, see `dedupe`
//!
//! A NaN number becomes NULL and the row is kept; `__nan` counts them per row.

use polars::prelude::*;
use rayon::prelude::*;

use crate::dataset::{Dataset, Field, Kind, OnNewKey};
use crate::transform::number::{self, Float, Int, NumericError};
use crate::transform::parse::{COL_DETAIL, COL_ISSUE, COL_LINE, COL_RECORD, COL_ROW};
use crate::transform::{json, timestamp};

pub const COL_REASON: &str = "__reason";
pub const COL_NAN: &str = "__nan";

pub use crate::reasons::*;

/// How much of an offending value a reject's detail quotes (the raw record is kept whole).
const QUOTE_CHARS: usize = 60;

/// A failed rule of one column, ranked: a lower rank is an earlier rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fail {
    Missing = 1,
    BadTimestamp,
    BadDate,
    BadNumber,
    BadBoolean,
    BadJson,
    OutOfRange,
    NotAllowed,
    Pattern,
    TooLong,
}

impl Fail {
    fn reason(self) -> &'static str {
        match self {
            Fail::Missing => MISSING_REQUIRED,
            Fail::BadTimestamp => BAD_TIMESTAMP,
            Fail::BadDate => BAD_DATE,
            Fail::BadNumber => BAD_NUMBER,
            Fail::BadBoolean => BAD_BOOLEAN,
            Fail::BadJson => BAD_VALUE,
            Fail::OutOfRange => OUT_OF_RANGE,
            Fail::NotAllowed => NOT_ALLOWED,
            Fail::Pattern => PATTERN_MISMATCH,
            Fail::TooLong => TOO_LONG,
        }
    }
}

/// One column cast: the typed column, its failures (row, rule) and its NaN rows.
struct Cast {
    column: Column,
    fails: Vec<(u32, Fail)>,
    nans: Vec<u32>,
}

/// Casts every declared column and decides each row's reason (null when accepted).
pub fn check(ds: &'static Dataset, parsed: DataFrame) -> PolarsResult<DataFrame> {
    let mut parsed = parsed;
    parsed.rechunk_mut();
    let n = parsed.height();
    let casts: Vec<Cast> =
        ds.fields.par_iter().map(|field| cast_column(field, parsed.column(&field.name)?.str()?)).collect::<PolarsResult<_>>()?;

    // The first failing rule of each row: the lowest rank, then the first column.
    let mut first: Vec<Option<(Fail, usize)>> = vec![None; n];
    let mut nan_count = vec![0u32; n];
    for (f, cast) in casts.iter().enumerate() {
        for &(row, fail) in &cast.fails {
            let slot = &mut first[row as usize];
            if slot.is_none_or(|(best, _)| fail < best) {
                *slot = Some((fail, f));
            }
        }
        for &row in &cast.nans {
            nan_count[row as usize] += 1;
        }
    }
    let issues = parsed.column(COL_ISSUE)?.str()?;
    let issue_details = parsed.column(COL_DETAIL)?.str()?;
    // on_new_key = "reject": a record with a key no column reads, when nothing else is wrong
    // with it (the detail naming the keys is filled in with the raw record, see `split`).
    let unknown = match ds.on_new_key {
        OnNewKey::Reject => Some(parsed.column(crate::transform::parse::COL_EXTRA)?.u32()?.clone()),
        _ => None,
    };
    let mut reasons = StringChunkedBuilder::new(COL_REASON.into(), n);
    let mut details = StringChunkedBuilder::new(COL_DETAIL.into(), n);
    for (row, fail) in first.iter().enumerate() {
        match (issues.get(row), fail) {
            (Some(issue), _) => {
                reasons.append_value(issue);
                details.append_option(issue_details.get(row));
            }
            (None, Some((fail, f))) => {
                let field = &ds.fields[*f];
                let raw = parsed.column(&field.name)?.str()?.get(row);
                reasons.append_value(fail.reason());
                details.append_value(detail(field, *fail, raw));
            }
            (None, None) if unknown.as_ref().is_some_and(|u| u.get(row).unwrap_or(0) > 0) => {
                reasons.append_value(UNKNOWN_KEY);
                details.append_null();
            }
            (None, None) => {
                reasons.append_null();
                details.append_null();
            }
        }
    }
    let mut columns: Vec<Column> = casts.into_iter().map(|c| c.column).collect();
    columns.push(parsed.column(COL_ROW)?.clone());
    columns.push(parsed.column(COL_LINE)?.clone());
    columns.push(parsed.column(COL_RECORD)?.clone());
    columns.push(reasons.finish().into_column());
    columns.push(details.finish().into_column());
    columns.push(Column::new(COL_NAN.into(), nan_count));
    DataFrame::new(columns)
}

/// What a failed rule says, quoting the offending value.
fn detail(field: &Field, fail: Fail, raw: Option<&str>) -> String {
    let name = &field.name;
    let quoted: String = raw.unwrap_or_default().chars().take(QUOTE_CHARS).collect();
    let r = &field.rules;
    match fail {
        Fail::Missing => match raw {
            // A NaN (stored as NULL) in a required number column.
            Some(_) => format!("{name} is required but '{quoted}' is stored as NULL"),
            None => format!("{name} is missing"),
        },
        Fail::BadTimestamp => match &field.format {
            timestamp::Format::Iso => format!("{name}: not a timestamp '{quoted}'"),
            other => format!("{name}: not a timestamp in format {} '{quoted}'", other.name()),
        },
        Fail::BadDate => match &field.format {
            timestamp::Format::Iso => format!("{name}: not a date (YYYY-MM-DD) '{quoted}'"),
            other => format!("{name}: not a date in format {} '{quoted}'", other.name()),
        },
        Fail::BadNumber if matches!(field.kind, Kind::Integer | Kind::Bigint) => {
            format!("{name}: not an {} '{quoted}'", field.kind.sql_type())
        }
        Fail::BadNumber => format!("{name}: not a finite number '{quoted}'"),
        Fail::BadBoolean => format!("{name}: not a boolean '{quoted}'"),
        Fail::BadJson => format!("{name}: {}", json::parse(raw.unwrap_or("null")).err().unwrap_or_default()),
        Fail::OutOfRange => {
            let whole = matches!(field.kind, Kind::Integer | Kind::Bigint);
            let range = match (&r.min, &r.max) {
                (Some(lo), Some(hi)) if whole => format!("a whole number from {lo} to {hi}"),
                (Some(lo), Some(hi)) => format!("in [{lo}, {hi}]"),
                (Some(lo), None) if lo.trim_start_matches(['0', '.']).is_empty() => "not negative".to_string(),
                (Some(lo), None) => format!("at least {lo}"),
                (None, Some(hi)) => format!("at most {hi}"),
                (None, None) => "a whole number".to_string(),
            };
            format!("{name}: must be {range}, got '{quoted}'")
        }
        Fail::NotAllowed => format!("{name}: '{quoted}' is not one of {}", few(&r.allowed)),
        Fail::Pattern => format!("{name}: '{quoted}' does not match {}", r.pattern.as_deref().unwrap_or_default()),
        Fail::TooLong => format!("{name}: longer than {} characters", r.max_length.unwrap_or_default()),
    }
}

/// The values a detail names: a few, and how many more (a list of thousands, once per reject,
/// made gigabytes of details).
fn few(values: &[String]) -> String {
    const SHOWN: usize = 5;
    let shown: Vec<String> = values.iter().take(SHOWN).map(|v| v.chars().take(QUOTE_CHARS).collect()).collect();
    match values.len().checked_sub(SHOWN) {
        Some(more) if more > 0 => format!("{} (and {more} more)", shown.join(", ")),
        _ => shown.join(", "),
    }
}

/// Casts one text column to its declared type and runs its rules.
fn cast_column(field: &Field, text: &StringChunked) -> PolarsResult<Cast> {
    let mut fails = Vec::new();
    let mut nans = Vec::new();
    let name = field.name.as_str().into();
    let required = field.required;
    // Per value: the cast, or a failure; `None` input is absent.
    let each = |row: usize, v: Option<&str>, fails: &mut Vec<(u32, Fail)>| -> Option<()> {
        if v.is_none() && required {
            fails.push((row as u32, Fail::Missing));
        }
        v.map(|_| ())
    };
    // NaN is stored as NULL: in a required column, that is a missing value.
    let nan = |row: usize, nans: &mut Vec<u32>, fails: &mut Vec<(u32, Fail)>| {
        nans.push(row as u32);
        if required {
            fails.push((row as u32, Fail::Missing));
        }
    };
    let rules = &field.rules;
    let in_range = |value: &str| {
        rules.min.as_deref().is_none_or(|lo| number::cmp_decimal(value, lo) != std::cmp::Ordering::Less)
            && rules.max.as_deref().is_none_or(|hi| number::cmp_decimal(value, hi) != std::cmp::Ordering::Greater)
    };
    let allowed = |value: &str, numeric: bool| {
        rules.allowed.is_empty() || rules.allowed.iter().any(|a| if numeric { number::cmp_decimal(a, value).is_eq() } else { a == value })
    };
    let column = match field.kind {
        Kind::Text => {
            let pattern = rules.pattern.as_deref().map(|p| regex::Regex::new(p).expect("checked by the contract"));
            for (row, v) in text.iter().enumerate() {
                let Some(()) = each(row, v, &mut fails) else { continue };
                let v = v.expect("present");
                if !allowed(v, false) {
                    fails.push((row as u32, Fail::NotAllowed));
                } else if pattern.as_ref().is_some_and(|p| !p.is_match(v)) {
                    fails.push((row as u32, Fail::Pattern));
                } else if rules.max_length.is_some_and(|m| v.chars().count() > m) {
                    fails.push((row as u32, Fail::TooLong));
                }
            }
            text.clone().with_name(name).into_column()
        }
        Kind::Integer | Kind::Bigint => {
            let bits = if field.kind == Kind::Integer { 32 } else { 64 };
            let ruled = rules.min.is_some() || rules.max.is_some() || !rules.allowed.is_empty();
            let mut out = PrimitiveChunkedBuilder::<Int64Type>::new(name, text.len());
            for (row, v) in text.iter().enumerate() {
                let value = each(row, v, &mut fails).and_then(|()| match number::parse_int(v.expect("present"), bits) {
                    Int::Value(i) => {
                        if ruled {
                            let t = i.to_string();
                            if !in_range(&t) {
                                fails.push((row as u32, Fail::OutOfRange));
                            } else if !allowed(&t, true) {
                                fails.push((row as u32, Fail::NotAllowed));
                            }
                        }
                        Some(i)
                    }
                    Int::NaN => {
                        nan(row, &mut nans, &mut fails);
                        None
                    }
                    Int::NotWhole => {
                        fails.push((row as u32, Fail::OutOfRange));
                        None
                    }
                    Int::Invalid => {
                        fails.push((row as u32, Fail::BadNumber));
                        None
                    }
                });
                out.append_option(value);
            }
            let column = out.finish().into_column();
            if bits == 32 {
                column.cast(&DataType::Int32)?
            } else {
                column
            }
        }
        Kind::Double => {
            let mut out = PrimitiveChunkedBuilder::<Float64Type>::new(name, text.len());
            // The bounds compare with the value as stored (a double), exactly. A double that
            // differs from the bound's nearest double compares with the bound as with that
            // double (none lies between them); only an equal one needs the exact decimals,
            // which are the bound's nearest double's, so they are worked out once (a value
            // on a bound is common: a humidity of 1).
            let near = |b: &Option<String>| {
                b.as_deref().map(|t| t.parse::<f64>().expect("a decimal from the contract")).map(|x| (x, in_range(&exact_decimal(x))))
            };
            let (lo, hi) = (near(&rules.min), near(&rules.max));
            let out_of_range = |x: f64| {
                let below = lo.is_some_and(|(lo, lo_in)| x < lo || (x == lo && !lo_in));
                let above = hi.is_some_and(|(hi, hi_in)| x > hi || (x == hi && !hi_in));
                below || above
            };
            for (row, v) in text.iter().enumerate() {
                let value = each(row, v, &mut fails).and_then(|()| match number::parse_float(v.expect("present")) {
                    Float::Value(x) => {
                        if out_of_range(x) {
                            fails.push((row as u32, Fail::OutOfRange));
                        }
                        Some(x)
                    }
                    Float::NaN => {
                        nan(row, &mut nans, &mut fails);
                        None
                    }
                    Float::Invalid => {
                        fails.push((row as u32, Fail::BadNumber));
                        None
                    }
                });
                out.append_option(value);
            }
            out.finish().into_column()
        }
        Kind::Numeric => {
            let mut out = StringChunkedBuilder::new(name, text.len());
            for (row, v) in text.iter().enumerate() {
                let value = each(row, v, &mut fails).and_then(|()| match number::parse_numeric(v.expect("present")) {
                    Ok(canonical) => {
                        if !in_range(&canonical) {
                            fails.push((row as u32, Fail::OutOfRange));
                        } else if !allowed(&canonical, true) {
                            fails.push((row as u32, Fail::NotAllowed));
                        }
                        Some(canonical)
                    }
                    Err(NumericError::NaN) => {
                        nan(row, &mut nans, &mut fails);
                        None
                    }
                    Err(NumericError::Invalid) => {
                        fails.push((row as u32, Fail::BadNumber));
                        None
                    }
                });
                out.append_option(value);
            }
            out.finish().into_column()
        }
        Kind::Boolean => {
            let mut out = BooleanChunkedBuilder::new(name, text.len());
            for (row, v) in text.iter().enumerate() {
                let value = each(row, v, &mut fails).and_then(|()| {
                    let b = number::parse_bool(v.expect("present"));
                    if b.is_none() {
                        fails.push((row as u32, Fail::BadBoolean));
                    }
                    b
                });
                out.append_option(value);
            }
            out.finish().into_column()
        }
        Kind::Timestamp => {
            let zone = field.timezone.as_deref().map(|z| timestamp::Zone::named(z).expect("checked by the contract"));
            let mut out = PrimitiveChunkedBuilder::<Int64Type>::new(name, text.len());
            for (row, v) in text.iter().enumerate() {
                let value = each(row, v, &mut fails).and_then(|()| {
                    let t = timestamp::parse_timestamp(v.expect("present"), &field.format, zone.as_ref());
                    if t.is_none() {
                        fails.push((row as u32, Fail::BadTimestamp));
                    }
                    t
                });
                out.append_option(value);
            }
            out.finish().into_datetime(TimeUnit::Microseconds, None).into_column()
        }
        Kind::Date => {
            let mut out = PrimitiveChunkedBuilder::<Int32Type>::new(name, text.len());
            for (row, v) in text.iter().enumerate() {
                let value = each(row, v, &mut fails).and_then(|()| {
                    let d = timestamp::parse_date_as(v.expect("present"), &field.format);
                    if d.is_none() {
                        fails.push((row as u32, Fail::BadDate));
                    }
                    d
                });
                out.append_option(value);
            }
            out.finish().into_date().into_column()
        }
        Kind::Json => {
            for (row, v) in text.iter().enumerate() {
                let Some(()) = each(row, v, &mut fails) else { continue };
                if json::parse(v.expect("present")).is_err() {
                    fails.push((row as u32, Fail::BadJson));
                }
            }
            // Kept as sent: jsonb reads the same text (a row that fails is rejected whole).
            text.clone().with_name(name).into_column()
        }
    };
    Ok(Cast { column, fails, nans })
}

/// A double as exact decimal text (every finite double is a finite decimal), so that a
/// bound like `max = 1` compares with the value stored, never with a rounded print.
fn exact_decimal(x: f64) -> String {
    let s = format!("{x:.1100}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::contract::example;
    use crate::transform::parse::COL_EXTRA;

    /// A parsed-looking frame: text columns for the named fields, nulls for the rest.
    pub(crate) fn frame(ds: &'static Dataset, rows: &[&[(&str, Option<&str>)]]) -> DataFrame {
        let n = rows.len();
        let mut cols: Vec<Column> = ds
            .fields
            .iter()
            .map(|f| {
                let vals: Vec<Option<&str>> = rows.iter().map(|r| r.iter().find(|(k, _)| *k == f.name).and_then(|(_, v)| *v)).collect();
                Column::new(f.name.as_str().into(), vals)
            })
            .collect();
        cols.push(Column::new(COL_ROW.into(), (0..n as u32).collect::<Vec<_>>()));
        cols.push(Column::new(COL_LINE.into(), (1..=n as u64).collect::<Vec<_>>()));
        cols.push(Column::new(COL_RECORD.into(), (1..=n as u64).collect::<Vec<_>>()));
        cols.push(Column::new(COL_ISSUE.into(), vec![None::<&str>; n]));
        cols.push(Column::new(COL_DETAIL.into(), vec![None::<&str>; n]));
        cols.push(Column::new(COL_EXTRA.into(), vec![0u32; n]));
        DataFrame::new(cols).unwrap()
    }

    pub(crate) fn reasons(df: &DataFrame) -> Vec<Option<String>> {
        df.column(COL_REASON).unwrap().str().unwrap().into_iter().map(|s| s.map(str::to_string)).collect()
    }

    const GOOD_WEATHER: [(&str, Option<&str>); 2] = [("city", Some("Zurich")), ("date_time", Some("2019-06-04 14:05:13"))];

    pub(crate) fn weather(extra: &[(&'static str, Option<&'static str>)]) -> Vec<(&'static str, Option<&'static str>)> {
        let mut v = GOOD_WEATHER.to_vec();
        for e in extra {
            v.retain(|(k, _)| k != &e.0);
            v.push(*e);
        }
        v
    }

    #[test]
    fn weather_rules_in_order() {
        let rows = [
            weather(&[("humidity", Some("0.43")), ("precipintensity", Some("0.0305"))]),
            weather(&[("city", None)]),
            weather(&[("date_time", None)]),
            weather(&[("date_time", Some("soon"))]),
            weather(&[("humidity", Some("wet"))]),
            weather(&[("humidity", Some("1.5"))]),
            weather(&[("windspeed", Some("-1"))]),
            weather(&[("windspeed", Some("NaN")), ("temperature", Some("nan"))]),
            weather(&[("temperature", Some("1e400"))]),
            weather(&[("date_time", Some("soon")), ("humidity", Some("7"))]),
            weather(&[("visibility", Some("10.12"))]),
            // Underflow is out of a double's range for the server, and so a reject here.
            weather(&[("precipintensity", Some("1e-400"))]),
            weather(&[("precipintensity", Some("-2e-324"))]),
            weather(&[("temperature", Some("Infinity"))]),
            // Bounds compare with the stored double exactly: 1.0000000000000001 is 1.0.
            weather(&[("humidity", Some("1.0000000000000001"))]),
            weather(&[("humidity", Some("1.000000000000001"))]),
            weather(&[("humidity", Some("-0.0"))]),
            weather(&[("humidity", Some("-4.9e-324"))]),
        ];
        let ws = example("weather");
        let refs: Vec<&[(&str, Option<&str>)]> = rows.iter().map(|r| r.as_slice()).collect();
        let out = check(ws, frame(ws, &refs)).unwrap();
        let r = reasons(&out);
        let expect = [
            None,
            Some(MISSING_REQUIRED),
            Some(MISSING_REQUIRED),
            Some(BAD_TIMESTAMP),
            Some(BAD_NUMBER),
            Some(OUT_OF_RANGE),
            Some(OUT_OF_RANGE),
            None,
            Some(BAD_NUMBER),
            Some(BAD_TIMESTAMP),
            None,
            Some(BAD_NUMBER),
            Some(BAD_NUMBER),
            Some(BAD_NUMBER),
            None,
            Some(OUT_OF_RANGE),
            None,
            Some(OUT_OF_RANGE),
        ];
        assert_eq!(r, expect.iter().map(|e| e.map(str::to_string)).collect::<Vec<_>>());
        // Never rounded, unlike the original's DECIMAL(6,2).
        assert_eq!(out.column("precipintensity").unwrap().f64().unwrap().get(0), Some(0.0305));
        assert_eq!(out.column("visibility").unwrap().f64().unwrap().get(10), Some(10.12));
        // NaN is stored as NULL and counted.
        assert_eq!(out.column("windspeed").unwrap().f64().unwrap().get(7), None);
        assert_eq!(out.column(COL_NAN).unwrap().u32().unwrap().get(7), Some(2));
        let detail = out.column(COL_DETAIL).unwrap().str().unwrap().get(5).unwrap().to_string();
        assert!(detail.contains("humidity") && detail.contains("1.5") && detail.contains("[0, 1]"), "{detail}");
        let detail = out.column(COL_DETAIL).unwrap().str().unwrap().get(6).unwrap().to_string();
        assert!(detail.contains("not negative"), "{detail}");
        assert_eq!(out.column("date_time").unwrap().dtype(), &DataType::Datetime(TimeUnit::Microseconds, None));
    }

    #[test]
    fn a_detail_names_a_few_allowed_values() {
        let codes: Vec<String> = (0..5000).map(|i| format!("c{i}")).collect();
        assert_eq!(few(&codes), "c0, c1, c2, c3, c4 (and 4995 more)");
        assert_eq!(few(&codes[..5]), "c0, c1, c2, c3, c4");
        assert_eq!(few(&codes[..2]), "c0, c1");
    }

    #[test]
    fn rating_must_be_a_whole_number_from_one_to_five() {
        let base = [
            ("anonymous_id", Some("a")),
            ("event_name", Some("e")),
            ("original_timestamp", Some("2019-05-13 14:23:41")),
            ("sent_time", Some("2019-05-13T14:23:46Z")),
            ("received_time", Some("2019-05-13 14:23:46")),
        ];
        let rows: Vec<Vec<(&str, Option<&str>)>> = [
            None,
            Some("5"),
            Some("\"3\""),
            Some("3.5"),
            Some("0"),
            Some("6"),
            Some("4.0"),
            Some("4.9999999999999999"),
            Some("5.0000000000000001"),
            Some("40e-1"),
            Some("99999999999"),
            Some("NaN"),
        ]
        .iter()
        .map(|rating| {
            let mut r = base.to_vec();
            r.push(("properties_rating", *rating));
            r
        })
        .collect();
        let te = example("track_events");
        let refs: Vec<&[(&str, Option<&str>)]> = rows.iter().map(|r| r.as_slice()).collect();
        let out = check(te, frame(te, &refs)).unwrap();
        let r = reasons(&out);
        assert_eq!(r[0], None);
        assert_eq!(r[1], None);
        assert_eq!(r[2].as_deref(), Some(BAD_NUMBER));
        assert_eq!(r[3].as_deref(), Some(OUT_OF_RANGE));
        assert_eq!(r[4].as_deref(), Some(OUT_OF_RANGE));
        assert_eq!(r[5].as_deref(), Some(OUT_OF_RANGE));
        assert_eq!(r[6], None);
        assert_eq!(out.column("properties_rating").unwrap().i32().unwrap().get(6), Some(4));
        // Whole or not as written, not as the nearest double (which is 5.0 for both).
        assert_eq!(r[7].as_deref(), Some(OUT_OF_RANGE));
        assert_eq!(r[8].as_deref(), Some(OUT_OF_RANGE));
        assert_eq!(r[9], None);
        assert_eq!(out.column("properties_rating").unwrap().i32().unwrap().get(9), Some(4));
        // Too large for an integer: the server refuses it, so does tier.
        assert_eq!(r[10].as_deref(), Some(BAD_NUMBER));
        assert_eq!(r[11], None);
        assert_eq!(out.column("properties_rating").unwrap().i32().unwrap().get(11), None);
        assert_eq!(out.column(COL_NAN).unwrap().u32().unwrap().get(11), Some(1));
        assert_eq!(out.column("sent_time").unwrap().datetime().unwrap().physical().get(0), Some(1_557_757_426_000_000));
    }

    #[test]
    fn every_type_and_rule() {
        let ds = crate::dataset::tests::from_toml(
            "name = \"t\"\n\
             [[column]]\nname = \"code\"\ntype = \"text\"\nallowed = [\"a\", \"b\"]\n\
             [[column]]\nname = \"email\"\ntype = \"text\"\npattern = \"^[^@]+@[^@]+$\"\nmax_length = 12\n\
             [[column]]\nname = \"n\"\ntype = \"bigint\"\nmin = -5\nallowed = [-5, 7, 9223372036854775807]\n\
             [[column]]\nname = \"amount\"\ntype = \"numeric\"\nmax = \"99.99\"\n\
             [[column]]\nname = \"ok\"\ntype = \"boolean\"\n\
             [[column]]\nname = \"day\"\ntype = \"date\"\n\
             [[column]]\nname = \"at\"\ntype = \"timestamp\"\ntimezone = \"Europe/Oslo\"\n\
             [[column]]\nname = \"doc\"\ntype = \"json\"\n",
        );
        type Row<'a> = Vec<(&'a str, Option<&'a str>)>;
        let cases: Vec<(Row, Option<&str>)> = vec![
            (vec![("code", Some("a")), ("email", Some("x@y.z")), ("n", Some("9223372036854775807")), ("amount", Some("99.990"))], None),
            (vec![("code", Some("c"))], Some(NOT_ALLOWED)),
            (vec![("email", Some("nope"))], Some(PATTERN_MISMATCH)),
            (vec![("email", Some("long.name@example.org"))], Some(TOO_LONG)),
            (vec![("n", Some("8"))], Some(NOT_ALLOWED)),
            (vec![("n", Some("-6"))], Some(OUT_OF_RANGE)),
            (vec![("n", Some("9223372036854775808"))], Some(BAD_NUMBER)),
            (vec![("amount", Some("99.991"))], Some(OUT_OF_RANGE)),
            (vec![("amount", Some("1e2000"))], Some(BAD_NUMBER)),
            (vec![("ok", Some("yes")), ("day", Some("2019-05-13")), ("at", Some("2019-06-04 14:00:00"))], None),
            (vec![("ok", Some("maybe"))], Some(BAD_BOOLEAN)),
            (vec![("day", Some("13.05.2019"))], Some(BAD_DATE)),
            (vec![("at", Some("later"))], Some(BAD_TIMESTAMP)),
            (vec![("doc", Some("{\"a\": [1, 2]}"))], None),
            (vec![("doc", Some("{\"a\": \"\\u0000\"}"))], Some(BAD_VALUE)),
            // The first rule in rule order wins, whatever the column order.
            (vec![("code", Some("c")), ("ok", Some("maybe"))], Some(BAD_BOOLEAN)),
        ];
        let rows: Vec<&[(&str, Option<&str>)]> = cases.iter().map(|(r, _)| r.as_slice()).collect();
        let out = check(ds, frame(ds, &rows)).unwrap();
        let got = reasons(&out);
        for (i, (row, want)) in cases.iter().enumerate() {
            assert_eq!(got[i].as_deref(), *want, "{row:?}: {:?}", out.column(COL_DETAIL).unwrap().str().unwrap().get(i));
        }
        assert_eq!(out.column("amount").unwrap().str().unwrap().get(0), Some("99.990"));
        assert_eq!(out.column("n").unwrap().i64().unwrap().get(0), Some(i64::MAX));
        assert_eq!(out.column("ok").unwrap().bool().unwrap().get(9), Some(true));
        assert_eq!(out.column("day").unwrap().date().unwrap().physical().get(9), Some(18029));
        assert_eq!(out.column("at").unwrap().datetime().unwrap().physical().get(9), Some(1_559_649_600_000_000));
    }
}
