//! Saved SQL files: `:name` placeholders and the `-- title:` / `-- chart:` header comments.
//!
//! connectorx takes SQL text, not bound parameters, so a value is turned into a literal by
//! PostgreSQL itself (`quote_literal` over a bound parameter, see `pg::quote`) and only
//! that literal is put in place of the placeholder. This module finds the placeholders,
//! skipping strings, quoted identifiers, comments, dollar quotes and `::` casts.

use std::collections::BTreeMap;

/// A placeholder: byte range in the SQL and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    pub start: usize,
    pub end: usize,
    pub name: String,
}

pub fn placeholders(sql: &str) -> Vec<Placeholder> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => {
                let q = b[i];
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                i = sql[i..].find('\n').map(|n| i + n).unwrap_or(b.len());
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..].find("*/").map(|n| i + 2 + n + 2).unwrap_or(b.len());
            }
            b'$' => {
                // $tag$ ... $tag$ (a positional $1 has a digit, not a tag)
                let tag_end = sql[i + 1..].find(|c: char| !(c.is_alphanumeric() || c == '_')).map(|n| i + 1 + n);
                match tag_end {
                    Some(e) if b[e] == b'$' && !b[i + 1..e].first().is_some_and(u8::is_ascii_digit) => {
                        let tag = &sql[i..=e];
                        i = sql[e + 1..].find(tag).map(|n| e + 1 + n + tag.len()).unwrap_or(b.len());
                    }
                    _ => i += 1,
                }
            }
            b':' if b.get(i + 1) == Some(&b':') => i += 2,
            b':' => {
                let start = i;
                let mut j = i + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                if j > i + 1 && !b[i + 1].is_ascii_digit() {
                    out.push(Placeholder { start, end: j, name: sql[i + 1..j].to_string() });
                }
                i = j;
            }
            _ => i += 1,
        }
    }
    out
}

/// Replaces each placeholder with `replace(name)`.
pub fn substitute(sql: &str, mut replace: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for p in placeholders(sql) {
        out.push_str(&sql[last..p.start]);
        out.push_str(&replace(&p.name));
        last = p.end;
    }
    out.push_str(&sql[last..]);
    out
}

/// `name=value` arguments; a name given twice is an error.
pub fn parse_params(args: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut map = BTreeMap::new();
    for a in args {
        let (k, v) = a.split_once('=').ok_or_else(|| format!("--param {a:?}: expected name=value"))?;
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("--param {a:?}: a name is letters, digits and _"));
        }
        if map.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("--param {k} given twice"));
        }
    }
    Ok(map)
}

/// The header comments of a saved query: `-- title: ...`, `-- chart: line x=day y=events`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Header {
    pub title: Option<String>,
    pub chart: Option<ChartSpec>,
    /// The other leading comment lines, as a description.
    pub description: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChartSpec {
    pub kind: ChartKind,
    pub x: String,
    pub y: String,
    /// One line or bar group per value of this column (`series=city`), with a legend.
    pub series: Option<String>,
    /// How rows sharing an x value combine (`agg=sum|mean|max`, default sum).
    pub agg: Agg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Sum,
    Mean,
    Max,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChartKind {
    Line,
    Bar,
}

pub fn header(sql: &str) -> Header {
    let mut h = Header::default();
    for line in sql.lines() {
        let Some(comment) = line.trim().strip_prefix("--") else {
            if line.trim().is_empty() {
                continue;
            }
            break;
        };
        let comment = comment.trim();
        if let Some(t) = comment.strip_prefix("title:") {
            h.title = Some(t.trim().to_string());
        } else if let Some(c) = comment.strip_prefix("chart:") {
            h.chart = parse_chart(c);
        } else if !comment.is_empty() {
            h.description.push(comment.to_string());
        }
    }
    h
}

fn parse_chart(spec: &str) -> Option<ChartSpec> {
    let mut words = spec.split_whitespace();
    let kind = match words.next()? {
        "line" => ChartKind::Line,
        "bar" => ChartKind::Bar,
        _ => return None,
    };
    let (mut x, mut y, mut series, mut agg) = (None, None, None, Agg::Sum);
    for w in words {
        match w.split_once('=') {
            Some(("x", v)) => x = Some(v.to_string()),
            Some(("y", v)) => y = Some(v.to_string()),
            Some(("series", v)) => series = Some(v.to_string()),
            Some(("agg", "mean")) => agg = Agg::Mean,
            Some(("agg", "max")) => agg = Agg::Max,
            _ => {}
        }
    }
    Some(ChartSpec { kind, x: x?, y: y?, series, agg })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        placeholders(sql).into_iter().map(|p| p.name).collect()
    }

    #[test]
    fn finds_placeholders_outside_strings_comments_and_casts() {
        assert_eq!(names("select * from t where a = :city and b::date = :day"), vec!["city", "day"]);
        assert_eq!(names("select ':no', \":no\", $$ :no $$, $x$ :no $x$ -- :no\n/* :no */ , :yes"), vec!["yes"]);
        assert_eq!(names("select 'it''s :no' , :a1_b"), vec!["a1_b"]);
        assert_eq!(names("select x[1:2], $1, :3"), Vec::<String>::new());
    }

    #[test]
    fn substitutes_in_place() {
        let out = substitute("where a = :x and b = :y::int", |n| format!("'{n}'"));
        assert_eq!(out, "where a = 'x' and b = 'y'::int");
    }

    #[test]
    fn params_are_name_value_pairs() {
        let p = parse_params(&["city=Oslo".into(), "q=a=b".into()]).unwrap();
        assert_eq!(p["q"], "a=b");
        assert!(parse_params(&["nope".into()]).is_err());
        assert!(parse_params(&["a b=1".into()]).is_err());
        assert!(parse_params(&["a=1".into(), "a=2".into()]).is_err());
    }

    #[test]
    fn header_comments() {
        let h = header("-- title: Events per day\n-- One row per day.\n-- chart: line x=day y=events\nselect 1\n-- chart: bar x=a y=b");
        assert_eq!(h.title.as_deref(), Some("Events per day"));
        assert_eq!(h.chart, Some(ChartSpec { kind: ChartKind::Line, x: "day".into(), y: "events".into(), series: None, agg: Agg::Sum }));
        assert_eq!(header("-- chart: line x=a y=b series=city").chart.unwrap().series.as_deref(), Some("city"));
        assert_eq!(header("-- chart: bar x=a y=b agg=max").chart.unwrap().agg, Agg::Max);
        assert_eq!(h.description, vec!["One row per day."]);
    }
}
