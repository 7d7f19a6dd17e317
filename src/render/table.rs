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
        AnyValue::String(s) => object_list(s).unwrap_or_else(|| s.to_string()),
        AnyValue::StringOwned(s) => object_list(s).unwrap_or_else(|| s.to_string()),
        AnyValue::Float64(f) => readable_float(*f),
        AnyValue::Float32(f) => readable_float(*f as f64),
        AnyValue::Int64(i) => grouped(*i as i128),
        AnyValue::Int32(i) => grouped(*i as i128),
        AnyValue::UInt64(i) => grouped(*i as i128),
        AnyValue::UInt32(i) => grouped(*i as i128),
        other => other.to_string(),
    }
}

/// A double with the digits that mean something: its shortest round-trip form, unless that
/// shows float noise (`34.190000000000005`, the sum of doubles), then rounded to 12
/// significant digits (`34.19`). Not Polars' six-decimal display either.
pub fn readable_float(x: f64) -> String {
    let shortest = format!("{x}");
    let significant = shortest.chars().filter(|c| c.is_ascii_digit()).collect::<String>().trim_start_matches('0').len();
    if !x.is_finite() || significant <= 15 {
        return shortest;
    }
    let rounded: f64 = format!("{x:.11e}").parse().unwrap_or(x);
    format!("{rounded}")
}

/// An integer with thousands separators from five digits on (`12,345`; a year stays `2019`).
fn grouped(v: i128) -> String {
    let digits = v.unsigned_abs().to_string();
    if digits.len() < 5 {
        return v.to_string();
    }
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if v < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A JSON object (a `jsonb` column read as text, like the ledger's `rejected_by_reason`) as
/// `key: value` pairs, one a line; anything else as it is.
fn object_list(s: &str) -> Option<String> {
    if !s.starts_with('{') {
        return None;
    }
    let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(s).ok()?;
    let pairs: Vec<String> = map
        .iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(t) => format!("{k}: {t}"),
            other => format!("{k}: {other}"),
        })
        .collect();
    Some(if pairs.is_empty() { "(none)".to_string() } else { pairs.join("\n") })
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

/// A dataset's columns as a terminal table: where each value comes from, its type and rules;
/// a split log's, one table per table it splits into, after a line saying how it splits.
pub fn dataset(ds: &crate::dataset::Dataset) -> String {
    let Some(split) = &ds.split else { return columns(ds) };
    let tables: Vec<String> = split.tables.iter().map(|t| columns(t)).collect();
    format!(
        "{} ({}; input: {}): split by {} into {} tables, rejects in {}\n{}",
        ds.name,
        ds.source,
        ds.file,
        split.by.display(),
        split.tables.len(),
        ds.rejects_table(),
        tables.join("\n")
    )
}

fn columns(ds: &crate::dataset::Dataset) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    let mut title = format!("{} ({}", ds.name, ds.source);
    if let Some(day) = &ds.day_field {
        title.push_str(&format!("; day: {day}"));
    }
    if !ds.unique.is_empty() {
        title.push_str(&format!("; unique: {}", ds.unique.join(", ")));
    }
    if !ds.file.is_empty() {
        title.push_str(&format!("; input: {}", ds.file));
    }
    title.push(')');
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_people_can_read() {
        assert_eq!(readable_float(34.190000000000005), "34.19");
        assert_eq!(readable_float(-3.0100000000000002), "-3.01");
        assert_eq!(readable_float(0.1 + 0.2), "0.3");
        assert_eq!(readable_float(0.0305), "0.0305");
        assert_eq!(readable_float(1.0 / 3.0), "0.333333333333");
        assert_eq!(readable_float(1e300), format!("{}", 1e300));
        assert_eq!(grouped(2019), "2019");
        assert_eq!(grouped(19683), "19,683");
        assert_eq!(grouped(-1_234_567), "-1,234,567");
        assert_eq!(object_list(r#"{"duplicate": 62, "malformed": 65}"#).as_deref(), Some("duplicate: 62\nmalformed: 65"));
        assert_eq!(object_list("{not json"), None);
    }
}
