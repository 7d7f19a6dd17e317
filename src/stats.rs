//! What one load did, as counted by the pipeline and recorded in the `tier_loads` ledger.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadStats {
    pub table: String,
    pub file: String,
    pub file_size: u64,
    pub checksum: String,
    /// An object's ETag (loads from object storage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    pub records: u64,
    pub loaded: u64,
    /// Rejected rows per reason (only reasons that occurred).
    pub rejected: BTreeMap<String, u64>,
    /// NaN measures stored as NULL (rows kept).
    pub nan_as_null: u64,
    /// Keys the dataset does not declare, summed over records (ignored).
    pub extra_keys: u64,
    pub seconds: f64,
    /// The loaded rows per day, as `validate` compares them (recorded in the ledger).
    #[serde(skip)]
    pub figures: Option<crate::figures::Figures>,
    /// A keyed append's rows turned away because the table held their key (counted as
    /// `duplicate` rejects; the ledger keeps their figures for validate).
    #[serde(skip)]
    pub key_repeats: Option<crate::figures::Figures>,
    /// Columns this load added for new keys (`on_new_key = "evolve"`): name and type.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schema_changes: Vec<SchemaChange>,
    /// What a merge did with the rows (a merge only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
    /// A split log's tables: what each was given (empty for a dataset of one table).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<TableStats>,
    /// The lake's snapshot of each table this load committed (an Iceberg lake).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lake_snapshots: Vec<LakeSnapshot>,
    /// The declared checks that warned on this load's table (each `check: why`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub check_warnings: Vec<String>,
    /// The Kafka offsets this load read (a load from a topic).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offsets: Option<OffsetRange>,
}

/// A range of one Kafka partition's offsets, both ends included, as a load read it and the
/// ledger records it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OffsetRange {
    pub topic: String,
    pub partition: i32,
    pub first: i64,
    pub last: i64,
}

/// One table's snapshot in the Iceberg lake, committed with the load.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LakeSnapshot {
    pub table: String,
    pub snapshot: i64,
}

/// One table of a split log's load.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableStats {
    pub table: String,
    pub loaded: u64,
    /// Its rows per day, as `validate` compares them (recorded in the ledger).
    #[serde(skip)]
    pub figures: Option<crate::figures::Figures>,
    /// Its rows turned away because it held their key (a keyed append).
    #[serde(skip)]
    pub key_repeats: Option<crate::figures::Figures>,
    /// What a merge did with its rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merged: Option<Merged>,
}

/// A column a load added to its table for a new key.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SchemaChange {
    /// The table of a load of many (a split log's, a child table).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    pub column: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The key it reads.
    pub key: String,
}

/// A merge's outcome: rows whose key was new, rows that changed an existing row, rows equal
/// to the row already there (left as it was, still under its earlier load).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Merged {
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// The unchanged rows per day (validate leaves them out of this load's rows).
    #[serde(skip)]
    pub unchanged_figures: crate::figures::Figures,
    /// The earlier rows the updates replaced, per load that held them and day.
    #[serde(skip)]
    pub taken: Vec<(i64, i64, crate::figures::Day)>,
}

impl Merged {
    /// The days the merge took earlier rows from (None: rows without a day).
    pub fn taken_days(&self) -> Vec<Option<i32>> {
        let mut days: Vec<Option<i32>> =
            self.taken.iter().map(|(_, day, _)| (*day != crate::figures::NO_DAY).then_some(*day as i32)).collect();
        days.sort_unstable();
        days.dedup();
        days
    }
}

impl LoadStats {
    /// What a merge did to the `i`th table of the load (`Dataset::tables`).
    pub fn merged_of(&self, i: usize) -> Option<&Merged> {
        match self.tables.len() {
            0 | 1 => self.merged.as_ref(),
            _ => self.tables.get(i).and_then(|t| t.merged.as_ref()),
        }
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// The figures as the ledger keeps them (`figures::LedgerFigures`, as JSON).
    pub fn figures_json(&self) -> Option<String> {
        let figures = self.figures.as_ref()?;
        serde_json::to_string(&ledger_figures(figures, self.key_repeats.as_ref(), self.merged.as_ref())).ok()
    }

    /// A split log's tables as the ledger keeps them: name, rows given, figures.
    pub fn tables_json(&self) -> Option<String> {
        use crate::figures::LedgerFigures;
        if self.tables.is_empty() {
            return None;
        }
        let tables: Vec<serde_json::Value> = self
            .tables
            .iter()
            .map(|t| {
                let figures: Option<LedgerFigures> =
                    t.figures.as_ref().map(|f| ledger_figures(f, t.key_repeats.as_ref(), t.merged.as_ref()));
                serde_json::json!({ "table": t.table, "loaded": t.loaded, "figures": figures })
            })
            .collect();
        serde_json::to_string(&tables).ok()
    }

    /// Rows the load wrote as new (all of a replace's or an append's; a merge's new keys).
    pub fn inserted(&self) -> u64 {
        self.merged.as_ref().map_or(self.loaded, |m| m.inserted)
    }

    pub fn warnings_json(&self) -> serde_json::Value {
        match self.check_warnings.is_empty() {
            true => serde_json::json!({ "nan_as_null": self.nan_as_null, "extra_keys": self.extra_keys }),
            false => serde_json::json!({ "nan_as_null": self.nan_as_null, "extra_keys": self.extra_keys, "checks": self.check_warnings }),
        }
    }

    pub fn rows_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.records as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// The reason that rejected the most rows, if any.
    pub fn top_reason(&self) -> Option<(&str, u64)> {
        self.rejected.iter().max_by_key(|(_, n)| **n).map(|(r, n)| (r.as_str(), *n))
    }
}

/// One table's figures as the ledger keeps them (see `figures::LedgerFigures`).
fn ledger_figures(
    figures: &crate::figures::Figures,
    key_repeats: Option<&crate::figures::Figures>,
    merged: Option<&Merged>,
) -> crate::figures::LedgerFigures {
    use crate::figures::LedgerFigures;
    LedgerFigures {
        columns: figures.columns.clone(),
        days: LedgerFigures::entries(figures),
        turned_away: key_repeats.map(LedgerFigures::entries),
        unchanged: merged.map(|m| LedgerFigures::entries(&m.unchanged_figures)),
        taken: merged.map(|m| {
            m.taken
                .iter()
                .map(|(load, day, d)| (*load, (*day != crate::figures::NO_DAY).then_some(*day), d.rows, d.digest.to_string()))
                .collect()
        }),
    }
}

pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}
