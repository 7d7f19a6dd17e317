//! `[[check]]`: a measure of the table judged against thresholds or its own past (see
//! `checks`), each mistake located in the contract:
//!
//! ```toml
//! [[check]]
//! name = "events per day"
//! metric = "row_count"      # or missing_share(col), duplicate_share(col, ...), ...
//! per = "day"
//! warn = "< 1000"
//! fail = "< 100"
//! anomaly = { window = 28, sensitivity = 3 }
//!
//! [[check]]
//! name = "no ride ends before it starts"
//! sql = "select * from {table} where received_time < original_timestamp"
//! fail = "> 0"              # the rows the query returns
//! ```

use serde::Deserialize;
use toml::Spanned;

use super::{is_identifier, Errors};
use crate::checks::{Anomaly, DeclaredCheck, Measure, Metric, Threshold};
use crate::dataset::{Field, Kind};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    name: Spanned<String>,
    metric: Option<Spanned<String>>,
    sql: Option<Spanned<String>>,
    per: Option<Spanned<String>>,
    warn: Option<Spanned<String>>,
    fail: Option<Spanned<String>>,
    references: Option<Spanned<String>>,
    anomaly: Option<Spanned<RawAnomaly>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnomaly {
    window: usize,
    sensitivity: f64,
}

/// Whose rejects a table's `reject_share` would measure.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Rejects {
    /// Its own: a dataset's table, or a split log's file (measured once, for the log).
    Own,
    /// Its log's, which keeps one rejects table for all its tables: a kind's or a child's
    /// file cannot say which of them are its own.
    OfTheLog,
}

/// The checks of a table with these columns and day column, every mistake in `errors`.
/// `inherited` are checks declared for it elsewhere (its log's file), listed first; a check
/// here of the same name is a mistake.
pub(super) fn read(
    raw: Vec<Spanned<RawCheck>>,
    inherited: &[DeclaredCheck],
    fields: &[Field],
    day: Option<&str>,
    rejects: Rejects,
    errors: &mut Errors,
) -> Vec<DeclaredCheck> {
    let mut checks: Vec<DeclaredCheck> = inherited.to_vec();
    for spanned in raw {
        let whole = spanned.span();
        let c = spanned.into_inner();
        let name = c.name.get_ref().trim().to_string();
        if name.is_empty() {
            errors.fail(c.name.span(), "a check's name must not be empty".into());
        } else if inherited.iter().any(|k| k.name == name) {
            errors.fail(c.name.span(), format!("check {name:?} is declared in the log's file too (it checks every table of the log)"));
        } else if checks.iter().any(|k| k.name == name) {
            errors.fail(c.name.span(), format!("duplicate check {name:?}"));
        }
        let references = c.references.as_ref().and_then(|r| match parse_reference(r.get_ref()) {
            Some(pair) => Some(pair),
            None => {
                errors.fail(r.span(), format!("references {:?}: a table and its column, such as \"weather(city)\"", r.get_ref()));
                None
            }
        });
        let measure = match (&c.metric, &c.sql) {
            (Some(m), None) => {
                let pair = references.as_ref().map(|(t, col)| (t.as_str(), col.as_str()));
                match Metric::parse(m.get_ref(), pair) {
                    Ok(Metric::RejectShare(_)) if rejects == Rejects::OfTheLog => {
                        errors.fail(
                            m.span(),
                            "reject_share measures the whole load's rejects, which name no table: declare it in the log's (or the dataset's) own checks".into(),
                        );
                        None
                    }
                    Ok(metric) => {
                        check_columns(&metric, m, fields, errors);
                        Some(Measure::Metric(metric))
                    }
                    Err(e) => {
                        errors.fail(m.span(), e);
                        None
                    }
                }
            }
            (None, Some(sql)) if !sql.get_ref().trim().is_empty() => Some(Measure::Sql(sql.get_ref().clone())),
            (None, Some(sql)) => {
                errors.fail(sql.span(), "sql must not be empty".into());
                None
            }
            (Some(_), Some(sql)) => {
                errors.fail(sql.span(), "a check has a metric or sql, not both".into());
                None
            }
            (None, None) => {
                errors.fail(whole.clone(), format!("check {name:?}: give it a metric (one of {}) or sql", Metric::SYNTAX));
                None
            }
        };
        if let (Some(r), Some(measure)) = (&c.references, &measure) {
            if !matches!(measure, Measure::Metric(Metric::UnmatchedShare { .. })) {
                errors.fail(r.span(), "references goes with metric = \"unmatched_share(col)\"".into());
            }
        }
        let per_day = match &c.per {
            None => false,
            Some(p) if p.get_ref() == "day" => {
                if day.is_none() {
                    errors.fail(p.span(), "per = \"day\" needs the contract's `day` column".into());
                }
                if matches!(measure, Some(Measure::Metric(Metric::RejectShare(_)))) {
                    errors.fail(p.span(), "reject_share is per load, not per day: a reject has no day".into());
                }
                if matches!(measure, Some(Measure::Sql(_))) {
                    errors.fail(p.span(), "a sql check counts its query's rows over the whole table, not per day".into());
                }
                true
            }
            Some(p) => {
                errors.fail(p.span(), format!("per {:?}: \"day\", or leave it out for the whole table", p.get_ref()));
                false
            }
        };
        let threshold = |t: &Option<Spanned<String>>, errors: &mut Errors| {
            t.as_ref().and_then(|t| match Threshold::parse(t.get_ref()) {
                Ok(threshold) => Some(threshold),
                Err(e) => {
                    errors.fail(t.span(), e);
                    None
                }
            })
        };
        let (warn, fail) = (threshold(&c.warn, errors), threshold(&c.fail, errors));
        let anomaly = c.anomaly.as_ref().and_then(|a| {
            let RawAnomaly { window, sensitivity } = *a.get_ref();
            if window < 3 || !(sensitivity.is_finite() && sensitivity > 0.0) {
                errors.fail(a.span(), "anomaly: window of 3 or more past values, sensitivity above 0".into());
                return None;
            }
            Some(Anomaly { window, sensitivity })
        });
        if c.warn.is_none() && c.fail.is_none() && c.anomaly.is_none() {
            errors.fail(whole, format!("check {name:?} judges nothing: give it warn, fail or anomaly"));
        }
        if let Some(measure) = measure {
            checks.push(DeclaredCheck { name, measure, per_day, warn, fail, anomaly });
        }
    }
    checks
}

/// `table(column)`, both plain identifiers.
fn parse_reference(text: &str) -> Option<(String, String)> {
    let (table, rest) = text.trim().split_once('(')?;
    let column = rest.strip_suffix(')')?.trim();
    let table = table.trim();
    (is_identifier(table) && is_identifier(column)).then(|| (table.to_string(), column.to_string()))
}

/// The metric's columns exist, and are of a type it can measure.
fn check_columns(metric: &Metric, at: &Spanned<String>, fields: &[Field], errors: &mut Errors) {
    for column in metric.columns() {
        let Some(field) = fields.iter().find(|f| f.name == column) else {
            errors.fail(at.span(), format!("no column {column:?} in this table"));
            continue;
        };
        let fits = match metric {
            Metric::Avg(_) | Metric::Sum(_) | Metric::Min(_) | Metric::Max(_) => field.kind.is_numeric(),
            Metric::Freshness(_) => matches!(field.kind, Kind::Timestamp | Kind::Date),
            _ => true,
        };
        if !fits {
            errors.fail(
                at.span(),
                format!(
                    "{column} is {}: this metric measures {}",
                    field.kind.name(),
                    match metric {
                        Metric::Freshness(_) => "timestamp and date columns",
                        _ => "number columns",
                    }
                ),
            );
        }
    }
}
