//! Validation results as a terminal table: expected / actual / diff per check.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Color, Table};

use crate::validate::Check;

pub fn table(checks: &[Check]) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["table", "check", "expected", "actual", "diff", ""]);
    for c in checks {
        let num = |v: &str| Cell::new(v).set_alignment(CellAlignment::Right);
        let status = if c.ok { Cell::new("ok").fg(Color::Green) } else { Cell::new("DIFF").fg(Color::Red) };
        t.add_row(vec![Cell::new(&c.table), Cell::new(&c.check), num(&c.expected), num(&c.actual), num(&c.diff), status]);
    }
    t.to_string()
}
