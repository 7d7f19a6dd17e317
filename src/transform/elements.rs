//! A record's array -> its elements, each as the bytes of a record of its own (a child
//! table's rows are parsed from them as records are, keys relative to the element).

use std::borrow::Cow;

use serde::de::Deserializer;
use serde_json::value::RawValue;

use crate::dataset::Key;
use crate::reasons::{BAD_VALUE, MALFORMED};
use crate::transform::record::{quote_bare_tokens, Entries};

/// The elements of the array at `array` in `record` (its top-level keys may carry `prefix`):
/// none when the key is absent or null; an error (reason, detail) when the value there is
/// not an array, or the record not JSON. Elements keep the record's bytes exactly, bare
/// `NaN` tokens included, so each is read as the record would be.
pub fn array_elements(record: &[u8], array: &Key, prefix: &str, name: &str) -> Result<Option<Vec<Vec<u8>>>, (&'static str, String)> {
    let (text, quoted_at): (Cow<'_, [u8]>, Vec<usize>) = match quote_bare_tokens(record) {
        Some((patched, at)) => (Cow::Owned(patched), at),
        None => (Cow::Borrowed(record), Vec::new()),
    };
    let text = std::str::from_utf8(&text).map_err(|e| (MALFORMED, format!("invalid UTF-8: {e}")))?;
    let invalid = |e: serde_json::Error| (MALFORMED, format!("invalid JSON: {e}"));
    let entries = serde_json::Deserializer::from_str(text).deserialize_map(Entries).map_err(invalid)?;
    let (head, rest): (&str, &[String]) = match array {
        Key::Plain(k) => (k.as_str(), &[]),
        Key::Pointer(parts) => (parts[0].as_str(), &parts[1..]),
        _ => return Ok(None),
    };
    let Some((_, mut value)) = entries.iter().rev().find(|(k, _)| crate::dataset::spells(prefix, head, k)) else { return Ok(None) };
    for step in rest {
        if !value.get().starts_with('{') {
            return Ok(None);
        }
        let inner = serde_json::Deserializer::from_str(value.get()).deserialize_map(Entries).map_err(invalid)?;
        match inner.into_iter().rev().find(|(k, _)| k == step) {
            Some((_, v)) => value = v,
            None => return Ok(None),
        }
    }
    let found = value.get();
    match found.as_bytes()[0] {
        b'n' => return Ok(None),
        b'[' => {}
        b'{' => return Err((BAD_VALUE, format!("{name}: expected an array, found an object"))),
        _ => return Err((BAD_VALUE, format!("{name}: expected an array, found {found:.40}"))),
    }
    let items: Vec<&RawValue> = serde_json::from_str(found).map_err(invalid)?;
    Ok(Some(
        items
            .into_iter()
            .map(|item| {
                let start = item.get().as_ptr() as usize - text.as_ptr() as usize;
                unpatched(item.get().as_bytes(), start, &quoted_at)
            })
            .collect(),
    ))
}

/// An element's bytes as the record had them: the quotes `quote_bare_tokens` put around
/// bare tokens (opening quotes at `quoted_at`, offsets in the patched text) taken out.
fn unpatched(element: &[u8], start: usize, quoted_at: &[usize]) -> Vec<u8> {
    let end = start + element.len();
    let inside: Vec<usize> = quoted_at.iter().copied().filter(|&at| at >= start && at < end).collect();
    if inside.is_empty() {
        return element.to_vec();
    }
    let mut out = Vec::with_capacity(element.len());
    let mut i = 0;
    while i < element.len() {
        if inside.contains(&(start + i)) {
            // `"TOKEN"`: the token without its quotes.
            let close = element[i + 1..].iter().position(|&c| c == b'"').map_or(element.len(), |p| i + 1 + p);
            out.extend_from_slice(&element[i + 1..close]);
            i = close + 1;
            continue;
        }
        out.push(element[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elements(record: &str, key: &str) -> Result<Option<Vec<String>>, (&'static str, String)> {
        array_elements(record.as_bytes(), &Key::parse(key), "e.", "c")
            .map(|o| o.map(|v| v.into_iter().map(|b| String::from_utf8(b).unwrap()).collect()))
    }

    #[test]
    fn an_array_splits_into_its_elements_as_written() {
        let r = r#"{"e.p": {"commits": [{"sha": "a", "n": NaN}, 2, "x", null, [1]]}, "t": [ ]}"#;
        assert_eq!(elements(r, "/p/commits").unwrap().unwrap(), vec![r#"{"sha": "a", "n": NaN}"#, "2", "\"x\"", "null", "[1]"]);
        assert_eq!(elements(r, "t").unwrap().unwrap(), Vec::<String>::new());
        assert_eq!(elements(r, "/p/none").unwrap(), None);
        assert_eq!(elements(r, "/t/x").unwrap(), None);
        assert_eq!(elements(r#"{"t": null}"#, "t").unwrap(), None);
        assert_eq!(elements(r#"{"t": {"a": 1}}"#, "t").unwrap_err().0, BAD_VALUE);
        assert_eq!(elements(r#"{"t": 3}"#, "t").unwrap_err(), (BAD_VALUE, "c: expected an array, found 3".to_string()));
        assert_eq!(elements(r#"{"t": [1,}"#, "t").unwrap_err().0, MALFORMED);
    }
}
