//! A DataFrame as a terminal table: column types in the header, numbers right-aligned,
//! NULL shown as such, long results cut with a note.

use comfy_table::{presets::UTF8_FULL_CONDENSED, Cell, CellAlignment, Table};
use polars::prelude::*;

/// Renders up to `limit` rows (0 = all). Returns the table and, when rows were cut, a note.
pub fn frame(df: &DataFrame, limit: usize) -> (String, Option<String>) {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    t.set_header(df.get_columns().iter().map(|c| Cell::new(format!("{}\n{}", c.name(), type_name(c.dtype())))));
    let shown = if limit == 0 { df.height() } else { df.height().min(limit) };
    for i in 0..shown {
        let row: Vec<Cell> = df
            .get_columns()
            .iter()
            .map(|c| {
                let v = c.get(i).unwrap_or(AnyValue::Null);
                let cell = Cell::new(value_text(&v));
                if c.dtype().is_primitive_numeric() {
                    cell.set_alignment(CellAlignment::Right)
                } else {
                    cell
                }
            })
            .collect();
        t.add_row(row);
    }
    let note = (shown < df.height()).then(|| format!("showing {shown} of {} rows (--limit 0 shows all)", df.height()));
    (t.to_string(), note)
}

/// A cell's text: strings without quotes, NULL spelled out.
pub fn value_text(v: &AnyValue) -> String {
    match v {
        AnyValue::Null => "NULL".to_string(),
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        // Every digit that round-trips, not Polars' six-decimal display.
        AnyValue::Float64(f) => f.to_string(),
        AnyValue::Float32(f) => f.to_string(),
        other => other.to_string(),
    }
}

/// SQL-ish names for Polars types.
pub fn type_name(dt: &DataType) -> String {
    match dt {
        DataType::String => "text".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "integer".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "real".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        // read::query_frame hands timestamptz over as UTC without the zone tag
        DataType::Datetime(_, _) => "timestamp (UTC)".into(),
        other => other.to_string(),
    }
}

/// A dataset's columns as a terminal table: where each value comes from, its type and rules.
pub fn dataset(ds: &crate::dataset::Dataset) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    let mut title = format!("{} ({}", ds.name, ds.source);
    if let Some(day) = &ds.day_field {
        title.push_str(&format!("; day: {day}"));
    }
    if !ds.unique.is_empty() {
        title.push_str(&format!("; unique: {}", ds.unique.join(", ")));
    }
    title.push_str(&format!("; input: {})", ds.file));
    t.set_header(["column", "key", "type", "required", "rules"]);
    for f in &ds.fields {
        let r = &f.rules;
        let mut rules = Vec::new();
        if let Some(m) = &r.min {
            rules.push(format!("min {m}"));
        }
        if let Some(m) = &r.max {
            rules.push(format!("max {m}"));
        }
        if !r.allowed.is_empty() {
            rules.push(format!("allowed {}", r.allowed.join("|")));
        }
        if let Some(p) = &r.pattern {
            rules.push(format!("pattern {p}"));
        }
        if let Some(m) = r.max_length {
            rules.push(format!("max_length {m}"));
        }
        if let Some(z) = &f.timezone {
            rules.push(format!("timezone {z}"));
        }
        let key = format!("{}{}", if matches!(f.key, crate::dataset::Key::Plain(_)) { ds.prefix.as_str() } else { "" }, f.key.display());
        t.add_row([
            f.name.clone(),
            key,
            f.kind.name().to_string(),
            if f.required { "yes".into() } else { String::new() },
            rules.join(", "),
        ]);
    }
    format!("{title}\n{t}")
}
