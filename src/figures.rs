//! Rows reduced to what validation compares: per day, the rows and the sum of PostgreSQL's
//! 64-bit row hash (`hash_record_extended`), an order-independent digest of the contents,
//! so an edited value is caught, not only a missing row, and the day it sits on is named.
//! The load records these figures in its ledger, the duplicate check computes the row
//! hashes beside its digests, and validate compares a file's with the database's. No I/O.

use std::collections::BTreeMap;

use polars::prelude::*;

use crate::dataset::Dataset;
use crate::hash;
use crate::rows::{self, Cell};
use crate::values::json;

pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// One day's rows, reduced.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Day {
    pub rows: u64,
    /// The sum of the rows' hashes (as PostgreSQL's signed bigints, summed exactly).
    pub digest: i128,
}

/// Rows reduced to what validation compares, by day (days since 1970-01-01).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Figures {
    pub days: BTreeMap<i64, Day>,
    /// The columns (and types) the row hashes covered, set by `add`.
    pub columns: String,
}

impl Figures {
    /// The columns a dataset's row hashes cover, as the ledger records them: figures recorded
    /// under another contract (a column added, a type changed) are not comparable.
    pub fn columns_of(ds: &Dataset) -> String {
        ds.fields.iter().map(|f| format!("{} {}", f.name, f.kind.name())).collect::<Vec<_>>().join(", ")
    }

    pub fn rows(&self) -> u64 {
        self.days.values().map(|d| d.rows).sum()
    }

    pub fn digest(&self) -> i128 {
        self.days.values().map(|d| d.digest).sum()
    }

    /// Adds a frame of rows with the dataset's declared columns. The row hashes come from
    /// the `COL_ROW_HASH` column the duplicate check leaves, else they are computed.
    pub fn add(&mut self, ds: &Dataset, df: &DataFrame) -> PolarsResult<()> {
        self.columns = Figures::columns_of(ds);
        if df.height() == 0 {
            return Ok(());
        }
        let hashes: Vec<u64> = match df.column(COL_ROW_HASH) {
            Ok(c) => c.u64()?.into_iter().map(|h| h.unwrap_or_default()).collect(),
            Err(_) => row_hashes(ds, df)?,
        };
        for (day, h) in days_of(ds, df)?.into_iter().zip(hashes) {
            let day = self.days.entry(day).or_default();
            day.rows += 1;
            day.digest += h as i64 as i128;
        }
        Ok(())
    }
}

impl Figures {
    /// Takes back rows added before (a merge's superseded rows), by day and row hash.
    pub fn remove(&mut self, rows: impl IntoIterator<Item = (i64, u64)>) {
        for (at, row_hash) in rows {
            let day = self.days.entry(at).or_default();
            day.rows -= 1;
            day.digest -= row_hash as i64 as i128;
            if day.rows == 0 {
                self.days.remove(&at);
            }
        }
    }

    /// Takes away another set of figures (rows a merge left or took over).
    pub fn subtract(&mut self, other: &Figures) {
        for (d, o) in &other.days {
            let day = self.days.entry(*d).or_default();
            day.rows = day.rows.saturating_sub(o.rows);
            day.digest -= o.digest;
            if day.rows == 0 && day.digest == 0 {
                self.days.remove(d);
            }
        }
    }
}

/// Each row's day (days since 1970-01-01) by the dataset's `day` column; without one, or
/// for a NULL day, `NO_DAY`: the rows form one group.
pub fn days_of(ds: &Dataset, df: &DataFrame) -> PolarsResult<Vec<i64>> {
    let Some(day) = &ds.day_field else { return Ok(vec![NO_DAY; df.height()]) };
    let column = df.column(day)?;
    Ok(match column.dtype() {
        DataType::Date => column.date()?.physical().into_iter().map(|d| d.map_or(NO_DAY, i64::from)).collect(),
        _ => column.datetime()?.physical().into_iter().map(|us| us.map_or(NO_DAY, |us| us.div_euclid(MICROS_PER_DAY))).collect(),
    })
}

/// The group of rows with no day (a dataset without `day`, or a NULL day).
pub const NO_DAY: i64 = i64::MIN;

pub use crate::frame::COL_ROW_HASH;

/// The seed of the row hashes. Not 0: under seed 0 PostgreSQL hashes a float's 0.0 like a
/// NULL (both 0), so an edit between the two would not change the digest.
pub const ROW_HASH_SEED: u64 = 1;

/// `hash_record_extended(row, ROW_HASH_SEED)` of each row, as the server computes it over
/// the declared columns in declared order (a NULL counts as 0).
pub fn row_hashes(ds: &Dataset, df: &DataFrame) -> PolarsResult<Vec<u64>> {
    let fields: Vec<&crate::dataset::Field> = ds.fields.iter().collect();
    rows::fold(&fields, df, 0u64, |h, cell| *h = hash::combine(*h, cell_hash(cell)))
}

/// One cell's element of `hash_record_extended(row, ROW_HASH_SEED)` (a NULL is 0).
pub fn cell_hash(cell: Cell<'_>) -> u64 {
    const S: u64 = ROW_HASH_SEED;
    let element = match cell {
        Cell::Text(v) => v.map(|v| hash::text(v, S)),
        Cell::Integer(v) => v.map(|v| hash::int4(v, S)),
        Cell::Bigint(v) => v.map(|v| hash::int8(v, S)),
        Cell::Double(v) => v.map(|v| hash::float8(v, S)),
        Cell::Numeric(v) => v.map(|v| hash::numeric(v, S)),
        Cell::Boolean(v) => v.map(|v| hash::boolean(v, S)),
        Cell::Timestamp(v) => v.map(|v| hash::timestamp(v, S)),
        Cell::Date(v) => v.map(|v| hash::date(v, S)),
        // Accepted rows hold values jsonb can store (the cast checked).
        Cell::Json(v) => v.and_then(|v| json::parse(v).ok()).map(|j| hash::jsonb(&j, S)),
    };
    element.unwrap_or(0)
}

/// What the file says: the load's counts plus the figures of the accepted rows.
pub struct SourceSide {
    pub records: u64,
    pub rejected: BTreeMap<String, u64>,
    pub checksum: String,
    pub loaded: Figures,
}

/// What the file says of a split log: the load's counts plus each table's figures (in
/// `Dataset::tables` order).
pub struct SplitSource {
    pub records: u64,
    pub rejected: BTreeMap<String, u64>,
    pub checksum: String,
    pub tables: Vec<Figures>,
}

/// One day's figures as the ledger writes them: the day (days since 1970-01-01, null for
/// rows without one), the rows, and the digest as text (exact, past a double's precision).
pub type DayEntry = (Option<i64>, u64, String);

/// A load's figures as the ledger's `figures` column keeps them (JSON): the columns the row
/// hashes cover (see `Figures::columns_of`) and the rows the file's checks accepted, per
/// day; a keyed append adds `turned_away` (rows whose key the table held), a merge
/// `unchanged` (rows equal to the table's) and `taken` (`[load, day, rows, digest]` of the
/// rows it replaced). Written by the load, read by validate: one type for both.
/// What a merge replaced: the earlier load, the day, its rows and their digest.
pub type TakenEntry = (i64, Option<i64>, u64, String);

#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LedgerFigures {
    pub columns: String,
    pub days: Vec<DayEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turned_away: Option<Vec<DayEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unchanged: Option<Vec<DayEntry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken: Option<Vec<TakenEntry>>,
}

impl LedgerFigures {
    /// Figures as day entries.
    pub fn entries(figures: &Figures) -> Vec<DayEntry> {
        figures.days.iter().map(|(day, d)| ((*day != NO_DAY).then_some(*day), d.rows, d.digest.to_string())).collect()
    }

    /// Day entries as figures (of `columns`); `None` if a digest is not a number.
    pub fn figures(entries: &[DayEntry], columns: &str) -> Option<Figures> {
        let mut figures = Figures { columns: columns.to_string(), ..Figures::default() };
        for (day, rows, digest) in entries {
            figures.days.insert(day.unwrap_or(NO_DAY), Day { rows: *rows, digest: digest.parse().ok()? });
        }
        Some(figures)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_figures_keep_their_json_shape() {
        let mut figures = Figures { columns: "a integer".into(), ..Figures::default() };
        figures.days.insert(18_000, Day { rows: 2, digest: -170_141_183_460_469_231_731_687_303_715_884_105_727 });
        figures.days.insert(NO_DAY, Day { rows: 1, digest: 5 });
        let record = LedgerFigures { columns: figures.columns.clone(), days: LedgerFigures::entries(&figures), ..LedgerFigures::default() };
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(json, r#"{"columns":"a integer","days":[[null,1,"5"],[18000,2,"-170141183460469231731687303715884105727"]]}"#);
        let back: LedgerFigures = serde_json::from_str(&json).unwrap();
        assert_eq!(LedgerFigures::figures(&back.days, &back.columns), Some(figures));
        // Older entries without the optional parts read as none.
        let old: LedgerFigures = serde_json::from_str(r#"{"columns": "x", "days": []}"#).unwrap();
        assert_eq!(old.turned_away, None);
    }
}
