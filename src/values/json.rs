//! A `json` column's value as PostgreSQL's `jsonb` holds it: object keys sorted (shorter
//! first, then bytewise) with the last of duplicate keys kept, numbers as `numeric`. Used
//! to check a value the server would refuse (a `\u0000` escape, a number out of
//! `numeric`'s range) and to hash it as `jsonb_hash_extended` does (see `pg::hash`).

use serde_json::value::RawValue;

use crate::values::number;

#[derive(Debug, Clone, PartialEq)]
pub enum Jsonb {
    Null,
    Bool(bool),
    /// Canonical decimal text (see `number::parse_numeric`).
    Number(String),
    String(String),
    Array(Vec<Jsonb>),
    /// Sorted as jsonb sorts keys, duplicates removed (the last value kept).
    Object(Vec<(String, Jsonb)>),
}

/// How deep a value may nest. The server's jsonb goes deeper (its limit is its stack), so a
/// deeper value is a `bad_value` reject here rather than a different value.
pub const MAX_DEPTH: usize = 512;

/// Parses a JSON value (valid JSON: it came out of a parsed record) as jsonb would store
/// it, or says why the server would refuse it (or tier does, past `MAX_DEPTH` levels).
/// One pass over the text with a stack of open containers: no recursion that input drives,
/// and no level read twice.
pub fn parse(text: &str) -> Result<Jsonb, String> {
    // serde_json checks the syntax without recursing (it skips a raw value iteratively).
    let _: &RawValue = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let b = text.as_bytes();
    let mut open: Vec<Open> = Vec::new();
    let mut i = 0;
    loop {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n' | b',' | b':') {
            i += 1;
        }
        let value = match b.get(i) {
            None => return Err("invalid JSON: the value ends early".into()),
            Some(b'[') | Some(b'{') => {
                if open.len() == MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} levels, which tier does not store"));
                }
                open.push(if b[i] == b'[' { Open::Array(Vec::new()) } else { Open::Object(Vec::new(), None) });
                i += 1;
                continue;
            }
            Some(b']') | Some(b'}') => {
                i += 1;
                match open.pop() {
                    Some(Open::Array(items)) => Jsonb::Array(items),
                    Some(Open::Object(entries, _)) => Jsonb::Object(sorted(entries)),
                    None => return Err("invalid JSON: a closer with nothing open".into()),
                }
            }
            Some(b'"') => {
                let (end, escaped) = string_end(b, i).ok_or("invalid JSON: a string that does not end")?;
                // Without escapes the text is the string (the syntax check refused raw
                // control characters); with them, serde reads it.
                let s: String = match escaped {
                    false => text[i + 1..end].to_string(),
                    true => serde_json::from_str(&text[i..=end]).map_err(|e| format!("invalid JSON: {e}"))?,
                };
                i = end + 1;
                if escaped && s.contains('\0') {
                    return Err("a \\u0000 escape, which jsonb cannot store".into());
                }
                if let Some(Open::Object(_, key @ None)) = open.last_mut() {
                    *key = Some(s);
                    continue;
                }
                Jsonb::String(s)
            }
            Some(_) => {
                let start = i;
                while i < b.len() && !matches!(b[i], b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n') {
                    i += 1;
                }
                match &text[start..i] {
                    "null" => Jsonb::Null,
                    "true" => Jsonb::Bool(true),
                    "false" => Jsonb::Bool(false),
                    number => {
                        Jsonb::Number(number::parse_numeric(number).map_err(|_| format!("the number {number} is out of numeric's range"))?)
                    }
                }
            }
        };
        match open.last_mut() {
            None => return Ok(value),
            Some(Open::Array(items)) => items.push(value),
            Some(Open::Object(entries, key)) => entries.push((key.take().ok_or("invalid JSON: a value without a key")?, value)),
        }
    }
}

/// A container being read.
enum Open {
    Array(Vec<Jsonb>),
    /// Its entries so far and the key read for the next value.
    Object(Vec<(String, Jsonb)>, Option<String>),
}

/// The closing quote of the string opening at `start`, and whether the string has escapes.
fn string_end(b: &[u8], start: usize) -> Option<(usize, bool)> {
    let (mut i, mut escaped) = (start + 1, false);
    while i < b.len() {
        match b[i] {
            b'\\' => (i, escaped) = (i + 2, true),
            b'"' => return Some((i, escaped)),
            _ => i += 1,
        }
    }
    None
}

/// An object's entries in jsonb's key order (shorter first, then bytewise); a stable sort
/// keeps duplicates in input order, and the last of each run wins.
fn sorted(mut entries: Vec<(String, Jsonb)>) -> Vec<(String, Jsonb)> {
    entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes())));
    let mut deduped: Vec<(String, Jsonb)> = Vec::with_capacity(entries.len());
    for (k, v) in entries {
        match deduped.last_mut() {
            Some(last) if last.0 == k => last.1 = v,
            _ => deduped.push((k, v)),
        }
    }
    deduped
}

impl Drop for Jsonb {
    /// Dropped level by level: the compiler's own drop would recurse once per level.
    fn drop(&mut self) {
        let mut pending: Vec<Jsonb> = match self {
            Jsonb::Array(items) if !items.is_empty() => std::mem::take(items),
            Jsonb::Object(entries) if !entries.is_empty() => std::mem::take(entries).into_iter().map(|(_, v)| v).collect(),
            _ => return,
        };
        while let Some(mut v) = pending.pop() {
            match &mut v {
                Jsonb::Array(items) => pending.append(items),
                Jsonb::Object(entries) => pending.extend(std::mem::take(entries).into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_sorted_as_jsonb_sorts_them() {
        let v = parse(r#"{"bb": 1, "a": [true, null, "x"], "b": 2.50, "a": 3e2}"#).unwrap();
        assert_eq!(
            v,
            Jsonb::Object(vec![
                ("a".into(), Jsonb::Number("300".into())),
                ("b".into(), Jsonb::Number("2.50".into())),
                ("bb".into(), Jsonb::Number("1".into())),
            ])
        );
        assert!(parse(r#"{"a": "nul\u0000"}"#).unwrap_err().contains("u0000"));
        assert!(parse("1e100000").is_err());
        assert_eq!(parse("\"\\u00fc\"").unwrap(), Jsonb::String("ü".into()));
        // Strings with escapes are read by serde, the others as written.
        assert_eq!(
            parse(r#"{"k\"": "a\tb", "plain": "ü x"}"#).unwrap(),
            Jsonb::Object(vec![("k\"".into(), Jsonb::String("a\tb".into())), ("plain".into(), Jsonb::String("ü x".into()))])
        );
        assert!(parse("\"a\u{1}b\"").is_err(), "a raw control character is not JSON");
        assert_eq!(
            parse(r#" [ {"k" : "v,]}"} , -0.0 ] "#).unwrap(),
            Jsonb::Array(vec![Jsonb::Object(vec![("k".into(), Jsonb::String("v,]}".into()))]), Jsonb::Number("0.0".into())])
        );
        assert_eq!(parse("{}").unwrap(), Jsonb::Object(vec![]));
    }

    #[test]
    fn deep_values_are_refused_without_recursing() {
        let at_limit = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&at_limit).is_ok());
        let objects = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert!(parse(&objects).is_ok());
        for deep in
            [format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)), format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000))]
        {
            // On a thread with a small stack: nothing here may recurse per level.
            let err = std::thread::Builder::new().stack_size(64 << 10).spawn(move || parse(&deep)).unwrap().join().unwrap().unwrap_err();
            assert!(err.contains("nested deeper than 512 levels"), "{err}");
        }
    }
}
