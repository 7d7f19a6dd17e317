//! Casts and data-quality rules: a text frame from `transform::parse` goes in, a frame with
//! typed columns and a `__reason` / `__detail` per row comes out. Each column is cast in
//! one pass over its text (the columns in parallel), with the casts that agree with
//! PostgreSQL's input functions (`values::number`, `timestamp`, `json`). The first
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
use crate::transform::parse::{COL_DETAIL, COL_ISSUE, COL_LINE, COL_RECORD, COL_ROW};
use crate::values::number::{self, Float, Int, NumericError};
use crate::values::{json, timestamp};

pub use crate::frame::{COL_NAN, COL_REASON};

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
    // And the NaN the parse stored as JSON `null` inside values kept as JSON.
    if let Ok(parsed_nan) = parsed.column(COL_NAN) {
        for (count, n) in nan_count.iter_mut().zip(parsed_nan.u32()?) {
            *count += n.unwrap_or(0);
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
    let mut c = Casting { field, fails: Vec::new(), nans: Vec::new() };
    let column = match field.kind {
        Kind::Text => c.text(text),
        Kind::Integer | Kind::Bigint => c.integer(text)?,
        Kind::Double => c.double(text),
        Kind::Numeric => c.numeric(text),
        Kind::Boolean => c.typed(text, BooleanChunkedBuilder::new(c.name(), text.len()), Fail::BadBoolean, number::parse_bool),
        Kind::Timestamp => {
            let zone = field.timezone.as_deref().map(|z| timestamp::Zone::named(z).expect("checked by the contract"));
            let builder = PrimitiveChunkedBuilder::<Int64Type>::new(c.name(), text.len());
            let column = c.typed(text, builder, Fail::BadTimestamp, |v| timestamp::parse_timestamp(v, &field.format, zone.as_ref()));
            column.datetime_from_micros()?
        }
        Kind::Date => {
            let builder = PrimitiveChunkedBuilder::<Int32Type>::new(c.name(), text.len());
            c.typed(text, builder, Fail::BadDate, |v| timestamp::parse_date_as(v, &field.format)).i32()?.clone().into_date().into_column()
        }
        Kind::Json => c.json(text),
    };
    Ok(Cast { column, fails: c.fails, nans: c.nans })
}

/// One column's cast under way: its field, and the failures and NaNs found so far.
struct Casting<'a> {
    field: &'a Field,
    fails: Vec<(u32, Fail)>,
    nans: Vec<u32>,
}

/// The builders `Casting::typed` fills.
trait Append<T> {
    fn push(&mut self, value: Option<T>);
    fn done(self) -> Column;
}

impl Append<bool> for BooleanChunkedBuilder {
    fn push(&mut self, value: Option<bool>) {
        self.append_option(value)
    }
    fn done(self) -> Column {
        self.finish().into_column()
    }
}

impl<T: PolarsNumericType> Append<T::Native> for PrimitiveChunkedBuilder<T> {
    fn push(&mut self, value: Option<T::Native>) {
        self.append_option(value)
    }
    fn done(self) -> Column {
        self.finish().into_column()
    }
}

/// A column of microseconds as timestamps.
trait DatetimeFromMicros {
    fn datetime_from_micros(self) -> PolarsResult<Column>;
}

impl DatetimeFromMicros for Column {
    fn datetime_from_micros(self) -> PolarsResult<Column> {
        Ok(self.i64()?.clone().into_datetime(TimeUnit::Microseconds, None).into_column())
    }
}

impl Casting<'_> {
    fn name(&self) -> PlSmallStr {
        self.field.name.as_str().into()
    }

    fn fail(&mut self, row: usize, fail: Fail) {
        self.fails.push((row as u32, fail));
    }

    /// The value of a row, or `None` when absent (a required column then fails).
    fn present<'v>(&mut self, row: usize, v: Option<&'v str>) -> Option<&'v str> {
        if v.is_none() && self.field.required {
            self.fail(row, Fail::Missing);
        }
        v
    }

    /// A NaN, stored as NULL: in a required column, that is a missing value.
    fn nan(&mut self, row: usize) {
        self.nans.push(row as u32);
        if self.field.required {
            self.fail(row, Fail::Missing);
        }
    }

    /// Within `min` and `max`, compared exactly (a canonical decimal).
    fn in_range(&self, value: &str) -> bool {
        let rules = &self.field.rules;
        rules.min.as_deref().is_none_or(|lo| number::cmp_decimal(value, lo) != std::cmp::Ordering::Less)
            && rules.max.as_deref().is_none_or(|hi| number::cmp_decimal(value, hi) != std::cmp::Ordering::Greater)
    }

    /// One of `allowed` (numbers compared as numbers), or no list.
    fn allowed(&self, value: &str, numeric: bool) -> bool {
        let allowed = &self.field.rules.allowed;
        allowed.is_empty() || allowed.iter().any(|a| if numeric { number::cmp_decimal(a, value).is_eq() } else { a == value })
    }

    /// A type whose only rule is its cast: each present value parsed, or `bad`.
    fn typed<T, B: Append<T>>(&mut self, text: &StringChunked, mut out: B, bad: Fail, parse: impl Fn(&str) -> Option<T>) -> Column {
        for (row, v) in text.iter().enumerate() {
            let value = self.present(row, v).and_then(|v| {
                let parsed = parse(v);
                if parsed.is_none() {
                    self.fail(row, bad);
                }
                parsed
            });
            out.push(value);
        }
        out.done()
    }

    /// Text is stored as sent; `allowed`, `pattern` and `max_length` are checked.
    fn text(&mut self, text: &StringChunked) -> Column {
        let rules = &self.field.rules;
        let pattern = rules.pattern.as_deref().map(|p| regex::Regex::new(p).expect("checked by the contract"));
        for (row, v) in text.iter().enumerate() {
            let Some(v) = self.present(row, v) else { continue };
            if !self.allowed(v, false) {
                self.fail(row, Fail::NotAllowed);
            } else if pattern.as_ref().is_some_and(|p| !p.is_match(v)) {
                self.fail(row, Fail::Pattern);
            } else if rules.max_length.is_some_and(|m| v.chars().count() > m) {
                self.fail(row, Fail::TooLong);
            }
        }
        text.clone().with_name(self.name()).into_column()
    }

    /// Integers, whole as written and within their type, then the bounds and `allowed`.
    fn integer(&mut self, text: &StringChunked) -> PolarsResult<Column> {
        let bits = if self.field.kind == Kind::Integer { 32 } else { 64 };
        let rules = &self.field.rules;
        let ruled = rules.min.is_some() || rules.max.is_some() || !rules.allowed.is_empty();
        let mut out = PrimitiveChunkedBuilder::<Int64Type>::new(self.name(), text.len());
        for (row, v) in text.iter().enumerate() {
            let value = self.present(row, v).and_then(|v| match number::parse_int(v, bits) {
                Int::Value(i) => {
                    if ruled {
                        let t = i.to_string();
                        if !self.in_range(&t) {
                            self.fail(row, Fail::OutOfRange);
                        } else if !self.allowed(&t, true) {
                            self.fail(row, Fail::NotAllowed);
                        }
                    }
                    Some(i)
                }
                Int::NaN => {
                    self.nan(row);
                    None
                }
                Int::NotWhole => {
                    self.fail(row, Fail::OutOfRange);
                    None
                }
                Int::Invalid => {
                    self.fail(row, Fail::BadNumber);
                    None
                }
            });
            out.append_option(value);
        }
        let column = out.finish().into_column();
        match bits {
            32 => column.cast(&DataType::Int32),
            _ => Ok(column),
        }
    }

    /// Doubles, correctly rounded, then the bounds.
    fn double(&mut self, text: &StringChunked) -> Column {
        // The bounds compare with the value as stored (a double), exactly. A double that
        // differs from the bound's nearest double compares with the bound as with that
        // double (none lies between them); only an equal one needs the exact decimals,
        // which are the bound's nearest double's, so they are worked out once (a value on a
        // bound is common: a humidity of 1).
        let near = |b: &Option<String>| {
            b.as_deref().map(|t| t.parse::<f64>().expect("a decimal from the contract")).map(|x| (x, self.in_range(&exact_decimal(x))))
        };
        let (lo, hi) = (near(&self.field.rules.min), near(&self.field.rules.max));
        let out_of_range = |x: f64| {
            let below = lo.is_some_and(|(lo, lo_in)| x < lo || (x == lo && !lo_in));
            let above = hi.is_some_and(|(hi, hi_in)| x > hi || (x == hi && !hi_in));
            below || above
        };
        let mut out = PrimitiveChunkedBuilder::<Float64Type>::new(self.name(), text.len());
        for (row, v) in text.iter().enumerate() {
            let value = self.present(row, v).and_then(|v| match number::parse_float(v) {
                Float::Value(x) => {
                    if out_of_range(x) {
                        self.fail(row, Fail::OutOfRange);
                    }
                    Some(x)
                }
                Float::NaN => {
                    self.nan(row);
                    None
                }
                Float::Invalid => {
                    self.fail(row, Fail::BadNumber);
                    None
                }
            });
            out.append_option(value);
        }
        out.finish().into_column()
    }

    /// Decimals kept exactly with their scale, then the bounds and `allowed`.
    fn numeric(&mut self, text: &StringChunked) -> Column {
        let mut out = StringChunkedBuilder::new(self.name(), text.len());
        for (row, v) in text.iter().enumerate() {
            let value = self.present(row, v).and_then(|v| match number::parse_numeric(v) {
                Ok(canonical) => {
                    if !self.in_range(&canonical) {
                        self.fail(row, Fail::OutOfRange);
                    } else if !self.allowed(&canonical, true) {
                        self.fail(row, Fail::NotAllowed);
                    }
                    Some(canonical)
                }
                Err(NumericError::NaN) => {
                    self.nan(row);
                    None
                }
                Err(NumericError::Invalid) => {
                    self.fail(row, Fail::BadNumber);
                    None
                }
            });
            out.append_option(value);
        }
        out.finish().into_column()
    }

    /// JSON kept as sent (jsonb reads the same text); what jsonb cannot store fails.
    fn json(&mut self, text: &StringChunked) -> Column {
        for (row, v) in text.iter().enumerate() {
            let Some(v) = self.present(row, v) else { continue };
            if json::parse(v).is_err() {
                self.fail(row, Fail::BadJson);
            }
        }
        text.clone().with_name(self.name()).into_column()
    }
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
