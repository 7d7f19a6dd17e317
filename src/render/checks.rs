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

/// Declared checks' evaluations as JUnit XML: a test suite per dataset, a test case per
/// evaluation (`check [day]`); a failed check is a `<failure>`, a warning a passing case
/// saying so in `<system-out>` (JUnit has no warnings).
pub fn junit(all: &[crate::checks::Evaluation]) -> String {
    use crate::checks::Outcome;
    let mut datasets: Vec<&str> = all.iter().map(|e| e.dataset.as_str()).collect();
    datasets.dedup();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n");
    for ds in datasets {
        let cases: Vec<&crate::checks::Evaluation> = all.iter().filter(|e| e.dataset == ds).collect();
        let failures = cases.iter().filter(|e| e.outcome == Outcome::Fail).count();
        out.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\">\n",
            xml(&format!("tier checks: {ds}")),
            cases.len()
        ));
        for e in cases {
            let name = match &e.group {
                Some(day) => format!("{} [{day}]", e.check),
                None => e.check.clone(),
            };
            let value = e.value.map_or("none".to_string(), |v| v.to_string());
            out.push_str(&format!("    <testcase classname=\"{}\" name=\"{}\">\n", xml(ds), xml(&name)));
            match e.outcome {
                Outcome::Fail => {
                    out.push_str(&format!("      <failure type=\"fail\" message=\"{}\">value {}</failure>\n", xml(&e.detail), xml(&value)))
                }
                Outcome::Warn => {
                    out.push_str(&format!("      <system-out>warn: {} (value {})</system-out>\n", xml(&e.detail), xml(&value)))
                }
                Outcome::Pass => {}
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Text as XML character data or an attribute value.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot hold at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
