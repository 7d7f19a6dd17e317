//! The end-of-load summary: one row per table.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

use crate::quality::REASONS;
use crate::stats::LoadStats;

pub fn table(all: &[LoadStats]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["table", "file", "records", "loaded", "rejected", "by reason", "warnings", "seconds", "rows/s"]);
    for s in all {
        // Most rejected first, so the rule that rejected the most leads.
        let mut counts: Vec<(&str, u64)> = REASONS.iter().filter_map(|r| s.rejected.get(*r).map(|n| (*r, *n))).collect();
        counts.sort_by_key(|c| std::cmp::Reverse(c.1));
        let by_reason: Vec<String> = counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
        let mut warnings = Vec::new();
        if s.nan_as_null > 0 {
            warnings.push(format!("NaN->NULL {}", s.nan_as_null));
        }
        if s.extra_keys > 0 {
            warnings.push(format!("unknown keys {}", s.extra_keys));
        }
        for w in &s.check_warnings {
            warnings.push(format!("check {w}"));
        }
        let num = |v: String| Cell::new(v).set_alignment(CellAlignment::Right);
        t.add_row(vec![
            Cell::new(&s.table),
            Cell::new(match &s.offsets {
                // A topic's batch: its partition and offsets.
                Some(o) => format!("{}/{} @{}..{}", o.topic, o.partition, o.first, o.last),
                None => std::path::Path::new(&s.file).file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(),
            }),
            num(s.records.to_string()),
            // A merge's loaded rows, split by what they did to the table.
            num(match &s.merged {
                Some(m) => format!("{}\n+{} new\n~{} updated\n={} unchanged", s.loaded, m.inserted, m.updated, m.unchanged),
                // A split log's rows, by table.
                None if !s.tables.is_empty() => std::iter::once(s.loaded.to_string())
                    .chain(s.tables.iter().map(|t| format!("{} {}", t.table, t.loaded)))
                    .collect::<Vec<_>>()
                    .join("\n"),
                None => s.loaded.to_string(),
            }),
            num(s.rejected_total().to_string()),
            Cell::new(if by_reason.is_empty() { "-".to_string() } else { by_reason.join("\n") }),
            Cell::new(if warnings.is_empty() { "-".to_string() } else { warnings.join("\n") }),
            num(format!("{:.2}", s.seconds)),
            num(format!("{:.0}", s.rows_per_second())),
        ]);
    }
    t.to_string()
}
