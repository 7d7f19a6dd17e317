//! What one load did, as counted by the pipeline and recorded in the `tier_loads` ledger.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadStats {
    pub table: String,
    pub file: String,
    pub file_size: u64,
    pub checksum: String,
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
    pub figures: Option<crate::validate::Figures>,
}

impl LoadStats {
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// The per-day figures as the ledger keeps them: `{"columns": "...", "days": [[day, rows,
    /// "digest"], ...]}` (day: days since 1970-01-01, null for rows without one; the digest as
    /// text, exact; columns: the contract's columns the digests cover, see
    /// `validate::Figures::columns_of`).
    pub fn figures_json(&self) -> Option<String> {
        let figures = self.figures.as_ref()?;
        let days: Vec<serde_json::Value> = figures
            .days
            .iter()
            .map(|(day, d)| {
                let day = (*day != crate::validate::NO_DAY).then_some(*day);
                serde_json::json!([day, d.rows, d.digest.to_string()])
            })
            .collect();
        Some(serde_json::json!({ "columns": figures.columns, "days": days }).to_string())
    }

    pub fn warnings_json(&self) -> serde_json::Value {
        serde_json::json!({ "nan_as_null": self.nan_as_null, "extra_keys": self.extra_keys })
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

pub fn unix_seconds(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or(Duration::ZERO).as_secs_f64()
}
