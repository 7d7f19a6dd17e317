//! A lake table's snapshots as a terminal table (`tier lake show`).

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};

use crate::lake::maintenance::SnapshotInfo;

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
