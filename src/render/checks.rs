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

/// Declared checks' evaluations: each that warned or failed, then per check how many of
/// its groups (days) passed.
pub fn evaluations(all: &[crate::checks::Evaluation]) -> String {
    use crate::checks::Outcome;
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(vec!["table", "check", "day", "value", "warn", "fail", "", "why"]);
    let mut passed: Vec<(&str, &str, usize, usize)> = Vec::new();
    for e in all {
        match passed.iter_mut().find(|p| p.0 == e.dataset && p.1 == e.check) {
            Some(p) => p.3 += 1,
            None => passed.push((&e.dataset, &e.check, 0, 1)),
        }
        if e.outcome == Outcome::Pass {
            if let Some(p) = passed.iter_mut().find(|p| p.0 == e.dataset && p.1 == e.check) {
                p.2 += 1;
            }
            continue;
        }
        let status = match e.outcome {
            Outcome::Fail => Cell::new("FAIL").fg(Color::Red),
            _ => Cell::new("warn").fg(Color::Yellow),
        };
        t.add_row(vec![
            Cell::new(&e.dataset),
            Cell::new(&e.check),
            Cell::new(e.group.as_deref().unwrap_or("-")),
            Cell::new(e.value.map_or("-".to_string(), |v| format!("{v}"))).set_alignment(CellAlignment::Right),
            Cell::new(e.warn.as_deref().unwrap_or("")),
            Cell::new(e.fail.as_deref().unwrap_or("")),
            status,
            Cell::new(&e.detail),
        ]);
    }
    for (dataset, check, ok, of) in passed {
        let status = if ok == of { Cell::new("ok").fg(Color::Green) } else { Cell::new("") };
        t.add_row(vec![
            Cell::new(dataset),
            Cell::new(check),
            Cell::new(""),
            Cell::new(""),
            Cell::new(""),
            Cell::new(""),
            status,
            Cell::new(format!("{ok} of {of} passed")),
        ]);
    }
    t.to_string()
}
