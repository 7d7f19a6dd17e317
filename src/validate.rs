//! What the source files say against what PostgreSQL holds.
//!
//! The source side is read with the load's own reader and rules (`pipeline::check_file`),
//! never a second implementation. Both sides reduce rows to the same figures: per day,
//! the rows and the sum of PostgreSQL's 64-bit row hash (`hash_record_extended`), an
//! order-independent digest of the contents, so an edited value is caught, not only a
//! missing row, and the day it sits on is named. The database computes its side in an
//! aggregate query next to the data (`pg::validation`) instead of sending every row back;
//! this side computes the same hashes with `pg::hash`. The two sides are worked out at
//! the same time (see `cmd::validate`).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use crate::dataset::Dataset;
use crate::error::Failure;
use crate::figures::{Day, Figures, MICROS_PER_DAY, NO_DAY};
pub use crate::figures::{SourceSide, SplitSource};
use crate::pg::validation::DatabaseSide;
use crate::pipeline::{check_file, Progress};
use crate::values::timestamp::day_of_micros;

/// One comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Check {
    pub table: String,
    pub check: String,
    pub expected: String,
    pub actual: String,
    pub diff: String,
    pub ok: bool,
}

fn count_check(table: &str, check: &str, expected: u64, actual: u64) -> Check {
    let diff = actual as i128 - expected as i128;
    Check {
        table: table.into(),
        check: check.into(),
        expected: expected.to_string(),
        actual: actual.to_string(),
        diff: if diff == 0 { String::new() } else { format!("{diff:+}") },
        ok: diff == 0,
    }
}

fn text_check(table: &str, check: &str, expected: &str, actual: &str) -> Check {
    let ok = expected == actual;
    Check {
        table: table.into(),
        check: check.into(),
        expected: expected.into(),
        actual: actual.into(),
        diff: if ok { String::new() } else { "differs".into() },
        ok,
    }
}

/// Reads a file as its load did (`superseding`: as a merge), reduced to figures.
pub fn read_source(ds: &'static Dataset, input: &crate::source::Input, superseding: bool, progress: &dyn Progress) -> Result<SourceSide> {
    let mut figures = Figures::default();
    let stats = read_with(ds, input, superseding, progress, |checked| {
        figures.add(ds, &checked.accepted)?;
        figures.remove(checked.retracted.iter().map(|r| (r.day, r.row_hash)));
        Ok(())
    })?;
    Ok(SourceSide { records: stats.records, rejected: stats.rejected, checksum: stats.checksum, loaded: figures })
}

/// Reads a file with the load's own code, each checked batch handed to `sink` (the first
/// error stops the reading and is returned).
fn read_with(
    ds: &'static Dataset,
    input: &crate::source::Input,
    superseding: bool,
    progress: &dyn Progress,
    mut sink: impl FnMut(crate::pipeline::Sorted) -> polars::prelude::PolarsResult<()>,
) -> Result<crate::stats::LoadStats> {
    if let crate::source::Input::File(path) = input {
        if !path.exists() {
            return Err(Failure::Input(format!("{}: no such file", path.display())).into());
        }
    }
    let mut failure = None;
    let stats = check_file(ds, input, superseding, progress, |checked| match sink(checked) {
        Ok(()) => true,
        Err(e) => {
            failure = Some(e);
            false
        }
    })?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(stats),
    }
}

/// Reads the file of a dataset of many tables (a split log, child tables) as its load did
/// (`superseding`: as a merge, a superseded record's rows and its child rows taken back),
/// reduced to each table's figures.
pub fn read_split_source(
    log: &'static Dataset,
    input: &crate::source::Input,
    superseding: bool,
    progress: &dyn Progress,
) -> Result<SplitSource> {
    let tables = log.tables();
    let mut figures: Vec<Figures> = tables.iter().map(|_| Figures::default()).collect();
    // A merge's file: each record's rows, by table, day and row hash, to take back should a
    // later record supersede it.
    let mut rows_of: std::collections::HashMap<u64, Vec<(usize, i64, u64)>> = Default::default();
    let sink = |checked: crate::pipeline::Sorted| -> polars::prelude::PolarsResult<()> {
        let (t, ds) = (checked.table, tables[checked.table]);
        figures[t].add(ds, &checked.accepted)?;
        if superseding && checked.accepted.height() > 0 {
            let days = crate::figures::days_of(ds, &checked.accepted)?;
            let hashes = crate::figures::row_hashes(ds, &checked.accepted)?;
            let records = checked.accepted.column(crate::frame::COL_RECORD)?.u64()?;
            for ((record, day), hash) in records.into_no_null_iter().zip(days).zip(hashes) {
                rows_of.entry(record).or_default().push((t, day, hash));
            }
        }
        for r in &checked.retracted {
            for (t, day, hash) in rows_of.remove(&r.record).unwrap_or_default() {
                figures[t].remove([(day, hash)]);
            }
        }
        Ok(())
    };
    let stats = read_with(log, input, superseding, progress, sink)?;
    Ok(SplitSource { records: stats.records, rejected: stats.rejected, checksum: stats.checksum, tables: figures })
}

/// Compares a split log's two sides: the file against the log's ledger entry and rejects
/// (under the log's name), then each table's rows against the file's rows for it.
pub fn compare_split(log: &Dataset, source: &SplitSource, tables: &[(&'static Dataset, DatabaseSide)]) -> Vec<Check> {
    let t = log.name.as_str();
    let short = |c: &str| c.chars().take(16).collect::<String>();
    let Some((_, first)) = tables.first() else { return Vec::new() };
    let mut checks = vec![text_check(
        t,
        "source checksum (file vs tier_loads)",
        &short(&source.checksum),
        &first.load.as_ref().map(|l| short(&l.checksum)).unwrap_or_else(|| "no load recorded".into()),
    )];
    if let Some(l) = &first.load {
        checks.push(count_check(t, "records (file vs tier_loads)", source.records, l.records as u64));
    }
    let mut rejected = source.rejected.clone();
    // Records turned away (a child table's rows went with their records).
    let turned_away: u64 = tables.iter().filter(|(ds, _)| !ds.is_child()).map(|(_, db)| db.turned_away.rows()).sum();
    if turned_away > 0 {
        *rejected.entry(crate::quality::DUPLICATE.to_string()).or_default() += turned_away;
    }
    if !first.rejects_exist {
        checks.push(text_check(t, "rejects table exists", "yes", "missing"));
    }
    checks.push(count_check(t, "rejected rows", rejected.values().sum(), first.rejected.values().sum()));
    let reasons: BTreeSet<&String> = rejected.keys().chain(first.rejected.keys()).collect();
    for r in reasons {
        let (e, a) = (rejected.get(r).copied().unwrap_or(0), first.rejected.get(r).copied().unwrap_or(0));
        checks.push(count_check(t, &format!("  rejected: {r}"), e, a));
    }
    for ((ds, db), figures) in tables.iter().zip(&source.tables) {
        let name = ds.name.as_str();
        if !db.table_exists {
            checks.push(text_check(name, "table exists", "yes", "missing"));
            continue;
        }
        checks.push(columns_check(ds, &db.columns));
        let mut expected = figures.clone();
        expected.subtract(&db.elsewhere);
        expected.subtract(&db.turned_away);
        checks.push(count_check(name, "loaded rows", expected.rows(), db.loaded.rows()));
        checks.extend(content_checks(name, &expected, &db.loaded));
    }
    checks
}

/// Compares one table's two sides, check by check.
pub fn compare(ds: &Dataset, source: &SourceSide, db: &DatabaseSide) -> Vec<Check> {
    let t = ds.name.as_str();
    let mut expected = source.loaded.clone();
    expected.subtract(&db.elsewhere);
    expected.subtract(&db.turned_away);
    // Rows turned away for a key already in the table are duplicates the file alone does
    // not show.
    let mut rejected = source.rejected.clone();
    if db.turned_away.rows() > 0 {
        *rejected.entry(crate::quality::DUPLICATE.to_string()).or_default() += db.turned_away.rows();
    }
    let mut checks = Vec::new();
    let short = |c: &str| c.chars().take(16).collect::<String>();
    checks.push(text_check(
        t,
        "source checksum (file vs tier_loads)",
        &short(&source.checksum),
        &db.load.as_ref().map(|l| short(&l.checksum)).unwrap_or_else(|| "no load recorded".into()),
    ));
    if !db.table_exists {
        checks.push(text_check(t, "table exists", "yes", "missing"));
        return checks;
    }
    checks.push(columns_check(ds, &db.columns));
    if let Some(l) = &db.load {
        checks.push(count_check(t, "records (file vs tier_loads)", source.records, l.records as u64));
    }
    checks.push(count_check(t, "loaded rows", expected.rows(), db.loaded.rows()));
    if !db.rejects_exist {
        checks.push(text_check(t, "rejects table exists", "yes", "missing"));
    }
    checks.push(count_check(t, "rejected rows", rejected.values().sum(), db.rejected.values().sum()));
    let reasons: BTreeSet<&String> = rejected.keys().chain(db.rejected.keys()).collect();
    for r in reasons {
        let (e, a) = (rejected.get(r).copied().unwrap_or(0), db.rejected.get(r).copied().unwrap_or(0));
        checks.push(count_check(t, &format!("  rejected: {r}"), e, a));
    }
    checks.extend(content_checks(t, &expected, &db.loaded));
    checks
}

/// Rows per day and the content digest of one table: what the file says against what it holds.
fn content_checks(t: &str, expected: &Figures, actual: &Figures) -> Vec<Check> {
    let mut checks = Vec::new();
    let (expected, actual) = (&expected.days, &actual.days);
    let days: BTreeSet<&i64> = expected.keys().chain(actual.keys()).collect();
    let get = |m: &BTreeMap<i64, Day>, d: &i64| m.get(d).copied().unwrap_or_default();
    let differing: Vec<&i64> = days.iter().copied().filter(|d| get(expected, d).rows != get(actual, d).rows).collect();
    let mut days_check = count_check(t, "days with rows", expected.len() as u64, actual.len() as u64);
    if !differing.is_empty() {
        days_check.ok = false;
        days_check.diff = format!("{} days differ", differing.len());
    }
    checks.push(days_check);
    for d in differing {
        checks.push(count_check(t, &format!("  rows on {}", day_name(*d)), get(expected, d).rows, get(actual, d).rows));
    }
    let expected_digest: i128 = expected.values().map(|d| d.digest).sum();
    let actual_digest: i128 = actual.values().map(|d| d.digest).sum();
    let mut digest = text_check(t, "content digest", &digest_text(expected_digest), &digest_text(actual_digest));
    // Days with the same rows but other contents: an edited value.
    let edited: Vec<String> = days
        .iter()
        .filter(|d| get(expected, d).rows == get(actual, d).rows && get(expected, d).digest != get(actual, d).digest)
        .map(|d| day_name(**d))
        .collect();
    if !edited.is_empty() {
        digest.ok = false;
        let shown: Vec<&str> = edited.iter().take(5).map(String::as_str).collect();
        let more = if edited.len() > 5 { format!(" and {} more", edited.len() - 5) } else { String::new() };
        digest.diff = format!("contents differ on {}{more}", shown.join(", "));
    }
    checks.push(digest);
    checks
}

/// The table's columns against the contract's: a column the contract does not declare (left
/// alone by loads), one it declares that the table lacks, or one of another type.
fn columns_check(ds: &Dataset, table: &[(String, String)]) -> Check {
    let mut problems = Vec::new();
    for f in &ds.fields {
        match table.iter().find(|(name, _)| *name == f.name) {
            None => problems.push(format!("missing {}", f.name)),
            Some((_, ty)) if ty != f.kind.catalog_type() => problems.push(format!("{} is {ty}, declared {}", f.name, f.kind.name())),
            Some(_) => {}
        }
    }
    for (name, _) in table {
        if name != "load_id" && ds.field(name).is_none() {
            problems.push(format!("undeclared {name}"));
        }
    }
    let mut check = count_check(&ds.name, "columns (contract vs table)", ds.fields.len() as u64 + 1, table.len() as u64);
    if !problems.is_empty() {
        check.ok = false;
        check.diff = problems.join("; ");
    }
    check
}

fn day_name(day: i64) -> String {
    if day == NO_DAY {
        return "(no day)".to_string();
    }
    day_of_micros(day * MICROS_PER_DAY)
}

/// A digest sum, whole (the sum of signed 64-bit hashes, as the server prints it).
fn digest_text(sum: i128) -> String {
    sum.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::prelude::*;

    fn frame(cities: &[&str], micros: &[i64], humidity: &[Option<f64>]) -> DataFrame {
        let mut cols: Vec<Column> = Vec::new();
        for f in &crate::contract::example("weather").fields {
            let n = cities.len();
            cols.push(match f.name.as_str() {
                "city" => Column::new("city".into(), cities.to_vec()),
                "date_time" => Int64Chunked::new("date_time".into(), micros).into_datetime(TimeUnit::Microseconds, None).into_column(),
                "humidity" => Column::new("humidity".into(), humidity.to_vec()),
                "preciptype" => Column::new("preciptype".into(), vec![None::<&str>; n]),
                other => Column::new(other.into(), vec![None::<f64>; n]),
            });
        }
        DataFrame::new(cols).unwrap()
    }

    #[test]
    fn figures_ignore_order_and_catch_edits() {
        let day = 86_400_000_000i64;
        let a = frame(&["Oslo", "Rome"], &[0, day], &[Some(0.5), None]);
        let b = frame(&["Rome", "Oslo"], &[day, 0], &[None, Some(0.5)]);
        let edited = frame(&["Rome", "Oslo"], &[day, 0], &[None, Some(0.51)]);
        let fig = |df: &DataFrame| {
            let mut f = Figures::default();
            f.add(crate::contract::example("weather"), df).unwrap();
            f
        };
        assert_eq!(fig(&a), fig(&b));
        assert_ne!(fig(&a).digest(), fig(&edited).digest());
        assert_eq!(fig(&a).days[&1], fig(&edited).days[&1]);
        assert_ne!(fig(&a).days[&0], fig(&edited).days[&0]);
        assert_eq!(fig(&a).days.iter().map(|(d, f)| (*d, f.rows)).collect::<Vec<_>>(), vec![(0, 1), (1, 1)]);
    }
}
