//! A lake table's snapshots (`tier lake show`) and its days against the database's (`tier
//! lake check`) as terminal tables.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

use crate::lake::maintenance::{DayCheck, SnapshotInfo};

pub fn table(name: &str, snapshots: &[SnapshotInfo]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["table", "snapshot", "committed", "operation", "load", "added rows", "rows", ""]);
    let number = |n: Option<i64>| Cell::new(n.map(|n| n.to_string()).unwrap_or_default()).set_alignment(CellAlignment::Right);
    for s in snapshots {
        t.add_row([
            Cell::new(name),
            Cell::new(s.snapshot),
            Cell::new(&s.committed),
            Cell::new(&s.operation),
            number(s.load),
            number(s.added_records),
            number(s.total_records),
            Cell::new(if s.current { "current" } else { "" }),
        ]);
    }
    t.to_string()
}

pub fn days(name: &str, days: &[DayCheck]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(["table", "day", "lake rows", "table rows", ""]);
    let number = |n: u64| Cell::new(n).set_alignment(CellAlignment::Right);
    for d in days {
        t.add_row([
            Cell::new(name),
            Cell::new(d.day.as_deref().unwrap_or("-")),
            number(d.lake_rows),
            number(d.table_rows),
            Cell::new(if d.agrees() { "ok" } else { "DIFFERS" }),
        ]);
    }
    t.to_string()
}
