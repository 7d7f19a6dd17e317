//! A `json` column's value as PostgreSQL's `jsonb` holds it: object keys sorted (shorter
//! first, then bytewise) with the last of duplicate keys kept, numbers as `numeric`. Used
//! to check a value the server would refuse (a `\u0000` escape, a number out of
//! `numeric`'s range) and to hash it as `jsonb_hash_extended` does (see `pg::hash`).

use serde::de::Deserializer;
use serde_json::value::RawValue;

use crate::transform::number;
use crate::transform::record::Entries;

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

/// Parses a JSON value (valid JSON: it came out of a parsed record) as jsonb would store
/// it, or says why the server would refuse it.
pub fn parse(text: &str) -> Result<Jsonb, String> {
    let raw: &RawValue = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    tree(raw)
}

fn tree(raw: &RawValue) -> Result<Jsonb, String> {
    let text = raw.get();
    Ok(match text.as_bytes()[0] {
        b'n' => Jsonb::Null,
        b't' => Jsonb::Bool(true),
        b'f' => Jsonb::Bool(false),
        b'"' => {
            let s: String = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
            if s.contains('\0') {
                return Err("a \\u0000 escape, which jsonb cannot store".into());
            }
            Jsonb::String(s)
        }
        b'[' => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
            Jsonb::Array(items.into_iter().map(tree).collect::<Result<_, _>>()?)
        }
        b'{' => {
            let mut entries = serde_json::Deserializer::from_str(text)
                .deserialize_map(Entries)
                .map_err(|e| format!("invalid JSON: {e}"))?
                .into_iter()
                .map(|(k, v)| {
                    let k = k.into_owned();
                    if k.contains('\0') {
                        return Err("a \\u0000 escape, which jsonb cannot store".to_string());
                    }
                    Ok((k, tree(v)?))
                })
                .collect::<Result<Vec<_>, _>>()?;
            // jsonb's key order; a stable sort keeps duplicates in input order, and the
            // last of each run wins.
            entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes())));
            let mut deduped: Vec<(String, Jsonb)> = Vec::with_capacity(entries.len());
            for (k, v) in entries {
                match deduped.last_mut() {
                    Some(last) if last.0 == k => last.1 = v,
                    _ => deduped.push((k, v)),
                }
            }
            Jsonb::Object(deduped)
        }
        _ => Jsonb::Number(number::parse_numeric(text).map_err(|_| format!("the number {text} is out of numeric's range"))?),
    })
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
    }
}
