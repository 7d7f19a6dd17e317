//! Casts and data-quality rules, as columnar Polars passes over a parsed frame.
//!
//! Pure functions of frames: a text frame from `transform::parse` goes in, a frame with
//! typed columns and a `__reason` / `__detail` per row comes out. The first failing rule
//! names the reason, in this order:
//!
//! 1. `malformed` / `bad_value` (from parsing: not a JSON object; a container or a NUL
//!    where a scalar belongs)
//! 2. `missing_required`: a required field null, absent or blank
//! 3. `bad_timestamp`, then `bad_number`: present but not castable (an infinite number
//!    is not a number a measure can hold)
//! 4. `out_of_range`: see `dataset::Range`; an integer must also be a whole number as
//!    written (`4.0` is, `4.9999999999999999` is not)
//! 5. `duplicate`: decided later across chunks, see `dedupe`
//!
//! A NaN measure becomes NULL and the row is kept; `__nan` counts them per row.

use polars::prelude::*;

use crate::dataset::{Dataset, Kind, Range};
use crate::transform::parse::{COL_DETAIL, COL_ISSUE, COL_LINE, COL_ROW};
use crate::transform::{number, timestamp};

pub const COL_REASON: &str = "__reason";
pub const COL_NAN: &str = "__nan";

pub const MISSING_REQUIRED: &str = "missing_required";
pub const BAD_TIMESTAMP: &str = "bad_timestamp";
pub const BAD_NUMBER: &str = "bad_number";
pub const OUT_OF_RANGE: &str = "out_of_range";
pub const DUPLICATE: &str = "duplicate";

/// Every reason a row can be rejected for, in rule order.
pub const REASONS: [&str; 7] = [
    crate::transform::parse::MALFORMED,
    crate::transform::parse::BAD_VALUE,
    MISSING_REQUIRED,
    BAD_TIMESTAMP,
    BAD_NUMBER,
    OUT_OF_RANGE,
    DUPLICATE,
];

/// How much of an offending value a reject's detail quotes (the raw record is kept whole).
const QUOTE_CHARS: i64 = 60;

/// One failing condition: when `cond` holds, the row is rejected for `reason`.
struct Check {
    cond: Expr,
    reason: &'static str,
    detail: Expr,
}

/// Casts every declared field and decides each row's reason (null when accepted).
pub fn check(ds: &'static Dataset, parsed: DataFrame) -> PolarsResult<DataFrame> {
    let mut casts = Vec::new();
    let mut missing = Vec::new();
    let mut bad_ts = Vec::new();
    let mut bad_num = Vec::new();
    let mut out_of_range = Vec::new();
    let mut nans = Vec::new();

    for field in ds.fields {
        let name = field.name;
        let raw = col(name);
        // The parser already turned blank values of these fields into nulls.
        let absent = raw.clone().is_null();
        if field.required {
            missing.push(Check { cond: absent.clone(), reason: MISSING_REQUIRED, detail: lit(format!("{name} is missing")) });
        }
        let present = absent.not();
        let quoted = |what: &str| {
            concat_str([lit(format!("{name}: {what} '")), raw.clone().str().slice(lit(0), lit(QUOTE_CHARS)), lit("'")], "", true)
        };
        match field.kind {
            Kind::Text => casts.push(raw.clone()),
            Kind::Timestamp => {
                let parsed = raw.clone().map(parse_timestamps, GetOutput::from_type(DataType::Datetime(TimeUnit::Microseconds, None)));
                bad_ts.push(Check {
                    cond: present.clone().and(parsed.clone().is_null()),
                    reason: BAD_TIMESTAMP,
                    detail: quoted("not a timestamp"),
                });
                casts.push(
                    when(present).then(parsed).otherwise(lit(NULL).cast(DataType::Datetime(TimeUnit::Microseconds, None))).alias(name),
                );
            }
            Kind::Float => {
                let number = raw.clone().map(parse_floats, GetOutput::from_type(DataType::Float64));
                let is_nan = number.clone().is_nan().fill_null(lit(false));
                bad_num.push(Check {
                    cond: present.clone().and(number.clone().is_null()),
                    reason: BAD_NUMBER,
                    detail: quoted("not a finite number"),
                });
                nans.push(is_nan.clone().cast(DataType::UInt32));
                let value = when(is_nan).then(lit(NULL).cast(DataType::Float64)).otherwise(number);
                let (range_fail, range_text) = match field.range {
                    Range::None => (lit(false), String::new()),
                    Range::Between(lo, hi) => (value.clone().lt(lit(lo)).or(value.clone().gt(lit(hi))), format!("in [{lo}, {hi}]")),
                    Range::NonNegative => (value.clone().lt(lit(0.0)), "not negative".to_string()),
                };
                out_of_range.push(Check {
                    cond: range_fail.fill_null(lit(false)),
                    reason: OUT_OF_RANGE,
                    detail: quoted(&format!("must be {range_text}, got")),
                });
                casts.push(value.alias(name));
            }
            Kind::Int => {
                // Whether the text is a whole number is decided from its digits (see
                // `number::parse_int`), so the class and the value are read separately.
                let class = raw.clone().map(int_classes, GetOutput::from_type(DataType::UInt32));
                let value = raw.clone().map(int_values, GetOutput::from_type(DataType::Int64));
                bad_num.push(Check {
                    cond: present.clone().and(class.clone().eq(lit(INT_INVALID))),
                    reason: BAD_NUMBER,
                    detail: quoted("not an integer"),
                });
                nans.push(class.clone().eq(lit(INT_NAN)).fill_null(lit(false)).cast(DataType::UInt32));
                let mut range_fail = class.clone().eq(lit(INT_NOT_WHOLE));
                if let Range::Between(lo, hi) = field.range {
                    range_fail = range_fail.or(value.clone().lt(lit(lo)).or(value.clone().gt(lit(hi))));
                } else if field.range == Range::NonNegative {
                    range_fail = range_fail.or(value.clone().lt(lit(0)));
                }
                let range_text = match field.range {
                    Range::Between(lo, hi) => format!("a whole number from {lo} to {hi}"),
                    Range::NonNegative => "a whole number, not negative".to_string(),
                    Range::None => "a whole number".to_string(),
                };
                out_of_range.push(Check {
                    cond: range_fail.fill_null(lit(false)),
                    reason: OUT_OF_RANGE,
                    detail: quoted(&format!("must be {range_text}, got")),
                });
                casts.push(value.cast(DataType::Int32).alias(name));
            }
        }
    }

    let checks: Vec<Check> = [missing, bad_ts, bad_num, out_of_range].into_iter().flatten().collect();
    // Fold from the last rule backwards so the first failing rule wins.
    let null_text = || lit(NULL).cast(DataType::String);
    let (mut r_acc, mut d_acc) = (null_text(), null_text());
    for c in checks.into_iter().rev() {
        r_acc = when(c.cond.clone()).then(lit(c.reason)).otherwise(r_acc);
        d_acc = when(c.cond).then(c.detail).otherwise(d_acc);
    }
    let reason = when(col(COL_ISSUE).is_not_null()).then(col(COL_ISSUE)).otherwise(r_acc).alias(COL_REASON);
    let detail = when(col(COL_ISSUE).is_not_null()).then(col(COL_DETAIL)).otherwise(d_acc).alias(COL_DETAIL);
    let nan_count = nans.into_iter().reduce(|a, b| a + b).unwrap_or(lit(0u32));

    // One chunk per column: Polars 0.49 splits multi-chunk frames in projections and
    // then trips over its own hoisted literal columns (a height-1 column, a shape error).
    let mut parsed = parsed;
    parsed.rechunk_mut();

    // Pass 1, every row: casts, reasons, NaN counts. `when` evaluates all its branches on
    // all rows, so the details (string building) are left to pass 2.
    let mut select = casts;
    select.extend([col(COL_ROW), col(COL_LINE), reason, nan_count.cast(DataType::UInt32).alias(COL_NAN)]);
    let mut checked = parsed.clone().lazy().select(select).collect()?;

    // Pass 2, rejected rows only (usually few): the detail that says what was wrong.
    let rejected = checked.column(COL_REASON)?.str()?.is_not_null();
    let details = parsed.filter(&rejected)?.lazy().select([detail]).collect()?;
    let mut details = details.column(COL_DETAIL)?.str()?.into_iter();
    let detail_column: StringChunked =
        rejected.into_iter().map(|r| if r == Some(true) { details.next().flatten() } else { None }).collect();
    checked.with_column(detail_column.with_name(COL_DETAIL.into()).into_column())?;
    Ok(checked)
}

fn parse_floats(c: Column) -> PolarsResult<Option<Column>> {
    let ca = c.str()?;
    let out: Float64Chunked = ca
        .iter()
        .map(|s| match number::parse_float(s?) {
            number::Float::Value(v) => Some(v),
            number::Float::NaN => Some(f64::NAN),
            number::Float::Invalid => None,
        })
        .collect();
    Ok(Some(out.with_name(ca.name().clone()).into_column()))
}

const INT_OK: u32 = 0;
const INT_NAN: u32 = 1;
const INT_NOT_WHOLE: u32 = 2;
const INT_INVALID: u32 = 3;

fn int_classes(c: Column) -> PolarsResult<Option<Column>> {
    let ca = c.str()?;
    let out: UInt32Chunked = ca
        .iter()
        .map(|s| match s.map(|s| number::parse_int(s, 32)) {
            None | Some(number::Int::Value(_)) => INT_OK,
            Some(number::Int::NaN) => INT_NAN,
            Some(number::Int::NotWhole) => INT_NOT_WHOLE,
            Some(number::Int::Invalid) => INT_INVALID,
        })
        .map(Some)
        .collect();
    Ok(Some(out.with_name(ca.name().clone()).into_column()))
}

fn int_values(c: Column) -> PolarsResult<Option<Column>> {
    let ca = c.str()?;
    let out: Int64Chunked = ca
        .iter()
        .map(|s| match number::parse_int(s?, 32) {
            number::Int::Value(v) => Some(v),
            _ => None,
        })
        .collect();
    Ok(Some(out.with_name(ca.name().clone()).into_column()))
}

fn parse_timestamps(c: Column) -> PolarsResult<Option<Column>> {
    let ca = c.str()?;
    let out: Int64Chunked = ca.iter().map(|s| s.and_then(timestamp::parse_micros)).collect();
    let out = out.with_name(ca.name().clone()).into_datetime(TimeUnit::Microseconds, None);
    Ok(Some(out.into_column()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dataset::{TRACK_EVENTS, WEATHER};
    use crate::transform::parse::COL_EXTRA;

    /// A parsed-looking frame: text columns for the named fields, nulls for the rest.
    pub(crate) fn frame(ds: &'static Dataset, rows: &[&[(&str, Option<&str>)]]) -> DataFrame {
        let n = rows.len();
        let mut cols: Vec<Column> = ds
            .fields
            .iter()
            .map(|f| {
                let vals: Vec<Option<&str>> = rows.iter().map(|r| r.iter().find(|(k, _)| *k == f.name).and_then(|(_, v)| *v)).collect();
                Column::new(f.name.into(), vals)
            })
            .collect();
        cols.push(Column::new(COL_ROW.into(), (0..n as u32).collect::<Vec<_>>()));
        cols.push(Column::new(COL_LINE.into(), (1..=n as u64).collect::<Vec<_>>()));
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
        ];
        let refs: Vec<&[(&str, Option<&str>)]> = rows.iter().map(|r| r.as_slice()).collect();
        let out = check(&WEATHER, frame(&WEATHER, &refs)).unwrap();
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
        ];
        assert_eq!(r, expect.iter().map(|e| e.map(str::to_string)).collect::<Vec<_>>());
        // Never rounded, unlike the original's DECIMAL(6,2).
        assert_eq!(out.column("precipintensity").unwrap().f64().unwrap().get(0), Some(0.0305));
        assert_eq!(out.column("visibility").unwrap().f64().unwrap().get(10), Some(10.12));
        // NaN is stored as NULL and counted.
        assert_eq!(out.column("windspeed").unwrap().f64().unwrap().get(7), None);
        assert_eq!(out.column(COL_NAN).unwrap().u32().unwrap().get(7), Some(2));
        let detail = out.column(COL_DETAIL).unwrap().str().unwrap().get(5).unwrap().to_string();
        assert!(detail.contains("humidity") && detail.contains("1.5"), "{detail}");
        assert_eq!(out.column("date_time").unwrap().dtype(), &DataType::Datetime(TimeUnit::Microseconds, None));
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
        let refs: Vec<&[(&str, Option<&str>)]> = rows.iter().map(|r| r.as_slice()).collect();
        let out = check(&TRACK_EVENTS, frame(&TRACK_EVENTS, &refs)).unwrap();
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
}
