//! What the source files say against what PostgreSQL holds.
//!
//! The source side is read with the load's own reader and rules (`pipeline::check_file`),
//! never a second implementation. The database side is read back through connectorx.
//! Both sides reduce rows to the same figures: counts, rows per day, and an
//! order-independent digest of the loaded rows' contents (the sum of the per-row digests
//! the duplicate check uses), so an edited value is caught, not only a missing row.
//! The two sides are read at the same time (see `cmd::validate`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::Result;
use polars::prelude::*;
use postgres::Client;

use crate::dataset::Dataset;
use crate::error::Failure;
use crate::pg::connect::{describe, ident};
use crate::pg::load::LEDGER;
use crate::pipeline::{check_file, Progress};
use crate::quality::row_digests;
use crate::read;
use crate::transform::timestamp::day_of_micros;

/// Rows reduced to what validation compares.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Figures {
    pub rows: u64,
    pub per_day: BTreeMap<String, u64>,
    pub digest: u128,
}

impl Figures {
    pub fn add(&mut self, ds: &Dataset, df: &DataFrame) -> PolarsResult<()> {
        let digests = row_digests(ds, df)?;
        self.add_digested(ds, df, &digests)
    }

    /// Like `add`, with the rows' digests already computed (the duplicate check has them).
    pub fn add_digested(&mut self, ds: &Dataset, df: &DataFrame, digests: &[u128]) -> PolarsResult<()> {
        self.rows += df.height() as u64;
        for d in digests {
            self.digest = self.digest.wrapping_add(*d);
        }
        let days = df.column(ds.day_field)?.datetime()?.physical();
        for us in days.into_iter().flatten() {
            *self.per_day.entry(day_of_micros(us)).or_default() += 1;
        }
        Ok(())
    }
}

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

/// What the file says: the load's counts plus the figures of the accepted rows.
pub struct SourceSide {
    pub records: u64,
    pub rejected: BTreeMap<String, u64>,
    pub checksum: String,
    pub loaded: Figures,
}

pub fn read_source(ds: &'static Dataset, path: &Path, progress: &dyn Progress) -> Result<SourceSide> {
    if !path.exists() {
        return Err(Failure::Input(format!("{}: no such file", path.display())).into());
    }
    let mut figures = Figures::default();
    let mut failure = None;
    let stats = check_file(ds, path, progress, |checked| match figures.add_digested(ds, &checked.accepted, &checked.accepted_digests) {
        Ok(()) => true,
        Err(e) => {
            failure = Some(e);
            false
        }
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok(SourceSide { records: stats.records, rejected: stats.rejected, checksum: stats.checksum, loaded: figures })
}

/// The ledger entry the comparison is made against.
pub struct LoadRecord {
    id: i64,
    checksum: String,
    records: i64,
    append: bool,
}

/// What PostgreSQL holds for one table.
pub struct DatabaseSide {
    load: Option<LoadRecord>,
    table_exists: bool,
    rejects_exist: bool,
    loaded: Figures,
    rejected: BTreeMap<String, u64>,
}

/// Reads one table's side: the ledger entry for the file with `checksum` (else the table's
/// latest load), the rows' figures through connectorx from `url`, and the rejects.
pub fn read_database(ds: &'static Dataset, client: &mut Client, url: &str, schema: &str, checksum: &str) -> Result<DatabaseSide> {
    let t = ds.name;
    let s = ident(schema);
    let db = |e: postgres::Error| Failure::Database(describe(&e));
    let exists = |client: &mut Client, table: &str| -> Result<bool> {
        let row = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{s}.{}", ident(table))]).map_err(db)?;
        Ok(row.get(0))
    };
    let load = if exists(client, LEDGER)? {
        let sql = format!(
            "SELECT id, checksum, records, mode = 'append' FROM {s}.{LEDGER} WHERE table_name = $1 AND status = 'ok'
             ORDER BY (checksum = $2) DESC, id DESC LIMIT 1"
        );
        client.query_opt(&sql, &[&t, &checksum]).map_err(db)?.map(|r| LoadRecord {
            id: r.get(0),
            checksum: r.get(1),
            records: r.get(2),
            append: r.get(3),
        })
    } else {
        None
    };
    let mut side = DatabaseSide {
        load,
        table_exists: exists(client, t)?,
        rejects_exist: false,
        loaded: Figures::default(),
        rejected: BTreeMap::new(),
    };
    if !side.table_exists {
        return Ok(side);
    }
    // In append mode the table holds many files: compare this file's rows only.
    let scope = match &side.load {
        Some(l) if l.append => format!(" WHERE load_id = {}", l.id),
        _ => String::new(),
    };
    let columns: Vec<String> = ds.fields.iter().map(|f| ident(f.name)).collect();
    let frame = read::query_frame(url, &format!("SELECT {} FROM {s}.{}{scope}", columns.join(", "), ident(t)), true, schema)?;
    side.loaded.add(ds, &frame)?;
    side.rejects_exist = exists(client, &ds.rejects_table())?;
    if side.rejects_exist {
        let sql = format!("SELECT reason, count(*) FROM {s}.{}{scope} GROUP BY reason", ident(&ds.rejects_table()));
        for row in client.query(&sql, &[]).map_err(db)? {
            side.rejected.insert(row.get(0), row.get::<_, i64>(1) as u64);
        }
    }
    Ok(side)
}

/// Compares one table's two sides, check by check.
pub fn compare(ds: &Dataset, source: &SourceSide, db: &DatabaseSide) -> Vec<Check> {
    let t = ds.name;
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
    if let Some(l) = &db.load {
        checks.push(count_check(t, "records (file vs tier_loads)", source.records, l.records as u64));
    }
    checks.push(count_check(t, "loaded rows", source.loaded.rows, db.loaded.rows));
    if !db.rejects_exist {
        checks.push(text_check(t, "rejects table exists", "yes", "missing"));
    }
    checks.push(count_check(t, "rejected rows", source.rejected.values().sum(), db.rejected.values().sum()));
    let reasons: BTreeSet<&String> = source.rejected.keys().chain(db.rejected.keys()).collect();
    for r in reasons {
        let (e, a) = (source.rejected.get(r).copied().unwrap_or(0), db.rejected.get(r).copied().unwrap_or(0));
        checks.push(count_check(t, &format!("  rejected: {r}"), e, a));
    }
    let (expected_days, actual_days) = (&source.loaded.per_day, &db.loaded.per_day);
    let days: BTreeSet<&String> = expected_days.keys().chain(actual_days.keys()).collect();
    let differing: Vec<&String> = days.iter().copied().filter(|d| expected_days.get(*d) != actual_days.get(*d)).collect();
    let mut days_check = count_check(t, "days with rows", expected_days.len() as u64, actual_days.len() as u64);
    if !differing.is_empty() {
        days_check.ok = false;
        days_check.diff = format!("{} days differ", differing.len());
    }
    checks.push(days_check);
    for d in differing {
        let (e, a) = (expected_days.get(d).copied().unwrap_or(0), actual_days.get(d).copied().unwrap_or(0));
        checks.push(count_check(t, &format!("  rows on {d}"), e, a));
    }
    checks.push(text_check(t, "content digest", &format!("{:032x}", source.loaded.digest), &format!("{:032x}", db.loaded.digest)));
    checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::WEATHER;

    fn frame(cities: &[&str], micros: &[i64], humidity: &[Option<f64>]) -> DataFrame {
        let mut cols: Vec<Column> = Vec::new();
        for f in WEATHER.fields {
            let n = cities.len();
            cols.push(match f.name {
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
            f.add(&WEATHER, df).unwrap();
            f
        };
        assert_eq!(fig(&a), fig(&b));
        assert_ne!(fig(&a).digest, fig(&edited).digest);
        assert_eq!(fig(&a).per_day, BTreeMap::from([("1970-01-01".to_string(), 1), ("1970-01-02".to_string(), 1)]));
    }
}
