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

/// The placeholders of `sql`, read as PostgreSQL's lexer reads it with
/// `standard_conforming_strings` on (its default since 9.1).
pub fn placeholders(sql: &str) -> Vec<Placeholder> {
    placeholders_with(sql, true)
}

/// One loop, as the lexer it follows is one state machine. The placeholders of `sql`:
/// `:name` outside everything PostgreSQL's lexer (`scan.l`) reads
/// as one token or skips. Strings `'...'` (`''` inside), with `standard_strings` off also
/// backslash escapes; escape strings `E'...'` (`\'`, `\\`), `U&'...'`, `B'...'`, `X'...'`,
/// `N'...'`; quoted identifiers `"..."` and `U&"..."`; dollar quotes `$tag$ ... $tag$` (not
/// where `$` continues an identifier); `--` comments and nested `/* /* */ */` comments;
/// `::` casts and `:=`. An unterminated string or comment runs to the end, as the server
/// would refuse it anyway.
pub fn placeholders_with(sql: &str, standard_strings: bool) -> Vec<Placeholder> {
    let b = sql.as_bytes();
    let ident_start = |c: u8| c.is_ascii_alphabetic() || c == b'_' || c >= 0x80;
    let ident_cont = |c: u8| ident_start(c) || c.is_ascii_digit() || c == b'$';
    // The end (exclusive) of a quoted run opening at `i` with `q`; `escapes`: a backslash
    // takes the next byte with it.
    let quoted = |i: usize, q: u8, escapes: bool| -> usize {
        let mut j = i + 1;
        while j < b.len() {
            match b[j] {
                b'\\' if escapes => j += 2,
                c if c == q && b.get(j + 1) == Some(&q) => j += 2,
                c if c == q => return j + 1,
                _ => j += 1,
            }
        }
        b.len()
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' => i = quoted(i, b'\'', !standard_strings),
            b'"' => i = quoted(i, b'"', false),
            b'-' if b.get(i + 1) == Some(&b'-') => i = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'$' => {
                // `$tag$` or `$$` opens a dollar quote; `$1` is a parameter.
                let tag_end = b[i + 1..].iter().position(|&c| !(ident_cont(c) && c != b'$')).map(|n| i + 1 + n);
                match tag_end {
                    Some(e) if b[e] == b'$' && b.get(i + 1).is_none_or(|&c| !c.is_ascii_digit()) => {
                        let tag = &sql[i..=e];
                        i = sql[e + 1..].find(tag).map_or(b.len(), |n| e + 1 + n + tag.len());
                    }
                    _ => i += 1,
                }
            }
            b':' if matches!(b.get(i + 1), Some(b':') | Some(b'=')) => i += 2,
            b':' => {
                let start = i;
                let mut j = i + 1;
                if j < b.len() && ident_start(b[j]) && b[j] < 0x80 {
                    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                        j += 1;
                    }
                    out.push(Placeholder { start, end: j, name: sql[i + 1..j].to_string() });
                }
                i = j.max(i + 1);
            }
            c if ident_start(c) => {
                // An identifier or keyword, which may prefix a string: E'..', U&'..', B'..'.
                let start = i;
                while i < b.len() && ident_cont(b[i]) {
                    i += 1;
                }
                let word = &b[start..i];
                match (word, b.get(i), b.get(i + 1)) {
                    ([b'e' | b'E'], Some(b'\''), _) => i = quoted(i, b'\'', true),
                    ([b'b' | b'B' | b'x' | b'X' | b'n' | b'N'], Some(b'\''), _) => i = quoted(i, b'\'', !standard_strings),
                    ([b'u' | b'U'], Some(b'&'), Some(q @ (b'\'' | b'"'))) => i = quoted(i + 1, *q, false),
                    _ => {}
                }
            }
            c if c.is_ascii_digit() => {
                // A number (digits, a point, an exponent): never the start of a name.
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The placeholders, found as the server reading `sql` would find them, or why they cannot
/// be placed for certain.
pub fn placeholders_for_server(sql: &str, standard_strings: bool) -> Result<Vec<Placeholder>, String> {
    let found = placeholders_with(sql, standard_strings);
    // With the other reading of backslashes, a string may end elsewhere: a placeholder
    // placed by one reading could sit inside a string by the other. Refused, not guessed.
    if found != placeholders_with(sql, !standard_strings) {
        return Err("where a string ends depends on standard_conforming_strings (a backslash in a '...' string): \
                    write it as E'...' or without the backslash"
            .into());
    }
    Ok(found)
}

/// Replaces each placeholder with `replace(name)`.
pub fn substitute(sql: &str, replace: impl FnMut(&str) -> String) -> String {
    substitute_at(sql, &placeholders(sql), replace)
}

/// Replaces the placeholders found (`placeholders_for_server`) with `replace(name)`.
pub fn substitute_at(sql: &str, found: &[Placeholder], mut replace: impl FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut last = 0;
    for p in found {
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
    fn follows_the_servers_lexer() {
        // Escape strings, nested comments, dollar quotes after identifiers, unicode strings.
        assert_eq!(names(r"select E'it\'s :no' as note, :yes"), vec!["yes"]);
        assert_eq!(names(r"select e'\\', :yes"), vec!["yes"]);
        assert_eq!(names("select 1 /* /* */ :no */, :yes"), vec!["yes"]);
        assert_eq!(names("select U&'\\0041 :no', U&\":no\", N':no', B'1', X'1F', :yes"), vec!["yes"]);
        assert_eq!(names("select a$b$ :yes, $q$ :no $q$, $$:no$$"), vec!["yes"]);
        assert_eq!(names("select f(a := 1), x::text, :yes"), vec!["yes"]);
        assert_eq!(names("select 'a' ':no' , 1e5, :yes"), vec!["yes"]);
        // An identifier ending in e is not an escape string's prefix.
        assert_eq!(names("select some'x :no', :yes"), vec!["yes"]);
        // A backslash in a plain string: the two readings differ, so it is refused.
        assert!(placeholders_for_server(r"select 'it\'s :p'", true).is_err());
        assert_eq!(placeholders_for_server(r"select 'a\b', :p", true).map(|v| v.len()), Ok(1));
        assert_eq!(placeholders_with(r"select 'it\' :p'", false).len(), 0);
        assert_eq!(placeholders_with(r"select 'it\' :p'", true).len(), 1);
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
