//! A split log's chunk -> its records by table: each record's kind read (the value at the
//! log's `split_by`), the record handed to its kind's table, the catch-all, or the rejects.
//! Nothing is copied: each table's records are spans in the chunk's buffer.
//! A record that is not a JSON object is a `malformed` reject here, as a table would say.

use std::borrow::Cow;

use rayon::prelude::*;

use crate::dataset::{Dataset, Split};
use crate::reasons::{BAD_VALUE, MALFORMED, UNROUTED};
use crate::source::Span;
use crate::transform::record::{parse_record, Cell, KeyHints};

/// Records per parallel task, as in `parse`.
const TASK_RECORDS: usize = 2048;

/// A record no table takes: where it is, the reason and what it says.
pub struct Refused {
    pub span: Span,
    pub reason: &'static str,
    pub detail: String,
}

/// A chunk's records by table (their spans, in the chunk's buffer).
pub struct Routed {
    /// `(table, its records)` for each table that takes some, in table order.
    pub parts: Vec<(usize, Vec<Span>)>,
    pub refused: Vec<Refused>,
}

/// Routes the records at `spans` in `buf` to the tables of `split`.
pub fn route(ds: &Dataset, split: &Split, buf: &[u8], spans: Vec<Span>) -> Routed {
    // A top-level kind is found by scanning the keys up to it; the spellings it may have.
    let head = match &split.by {
        crate::dataset::Key::Plain(k) => Some(k.clone()),
        crate::dataset::Key::Pointer(parts) if parts.len() == 1 => Some(parts[0].clone()),
        _ => None,
    };
    let spellings: Vec<Vec<u8>> = head.iter().flat_map(|h| crate::dataset::key_spellings(&ds.prefix, h)).map(String::into_bytes).collect();
    let bytes = |span: &Span| &buf[span.start..span.end];
    // Each record's table, read on every core (as records are parsed).
    let routes: Vec<Result<usize, (&'static str, String)>> = spans
        .par_chunks(TASK_RECORDS)
        .flat_map_iter(|spans| {
            let mut cells: Vec<Cell> = Vec::with_capacity(1);
            let mut hints = KeyHints::default();
            // Where the last record had its kind key: an export's records share their layout.
            let mut last_at: Option<usize> = None;
            spans
                .iter()
                .map(|span| {
                    let b = bytes(span);
                    let kind = match span.damage {
                        Some(d) => return Err((MALFORMED, d.describe().to_string())),
                        None => match last_at.and_then(|at| kind_at(b, at, &spellings)) {
                            Some(kind) => kind,
                            None => match scan_kind(b, &spellings, &mut last_at) {
                                Some(kind) => kind,
                                None => kind_of(split.router, b, &mut cells, &mut hints)?.map(Cow::Owned),
                            },
                        },
                    };
                    split.route(kind.as_deref()).ok_or_else(|| {
                        let detail = match kind {
                            Some(k) => format!("{} is {k:?}: no table of {} takes it", split.by.display(), ds.name),
                            None => format!("no {} (a text) to route it by", split.by.display()),
                        };
                        (UNROUTED, detail)
                    })
                })
                .collect::<Vec<_>>()
        })
        .collect();
    // All to one table: the spans are that table's as they are.
    let first = routes.first().and_then(|r| r.as_ref().ok()).copied();
    if let Some(only) = first.filter(|&t| routes.iter().all(|r| r.as_ref().is_ok_and(|x| *x == t))) {
        return Routed { parts: vec![(only, spans)], refused: Vec::new() };
    }
    let mut parts: Vec<Vec<Span>> = (0..split.tables.len()).map(|_| Vec::new()).collect();
    let mut refused = Vec::new();
    for (span, r) in spans.into_iter().zip(routes) {
        match r {
            Ok(t) => parts[t].push(span),
            Err((reason, detail)) => refused.push(Refused { span, reason, detail }),
        }
    }
    let parts = parts.into_iter().enumerate().filter(|(_, s)| !s.is_empty()).collect();
    Routed { parts, refused }
}

/// A record's kind found by scanning its top-level keys up to the first of `spellings`,
/// values skipped unparsed: `Some(None)` when it has none (or not a text there: no kind),
/// `None` when the scan cannot tell (an escape in a key, a token it does not know, bytes that
/// are not JSON): the full parse decides then. Whether the rest of the record is JSON, and
/// the key not there twice, its table's parse decides, as for any record.
/// The kind of a record whose key is at `at` (its opening quote), as the last record's was,
/// if that can be told without scanning the keys before it: the record opens at its first
/// byte, nothing before `at` opens a container (so `at` is at the top level, whatever the
/// strings hold), the byte before the key (past blanks) is that `{` or a `,` (so `at` opens
/// a key, not a string's end: a string's closing quote is followed by `:`, `,`, `}` or `]`,
/// never by a spelling, which starts with a letter or a digit), and one of `spellings` is
/// there whole. `None`: scan (`scan_kind`).
fn kind_at<'a>(b: &'a [u8], at: usize, spellings: &[Vec<u8>]) -> Option<Option<Cow<'a, str>>> {
    if b.first() != Some(&b'{') || b.get(at) != Some(&b'"') || memchr::memchr2(b'{', b'[', &b[1..at]).is_some() {
        return None;
    }
    let before = b[..at].iter().rposition(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))?;
    if !matches!(b[before], b'{' | b',') {
        return None;
    }
    let key = spellings.iter().find(|s| {
        s.first().is_some_and(u8::is_ascii_alphanumeric) && b[at + 1..].starts_with(s) && b.get(at + 1 + s.len()) == Some(&b'"')
    })?;
    let mut i = at + 2 + key.len();
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    if b.get(i) != Some(&b':') {
        return None;
    }
    i += 1;
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
        i += 1;
    }
    kind_value(b, i)
}

/// `found`: where the key that gave the kind starts (its opening quote), for `kind_at`.
fn scan_kind<'a>(b: &'a [u8], spellings: &[Vec<u8>], found: &mut Option<usize>) -> Option<Option<Cow<'a, str>>> {
    if spellings.is_empty() {
        return None;
    }
    let ws = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        i
    };
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(i + 1);
    if b.get(i) == Some(&b'}') {
        return Some(None);
    }
    loop {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let key_at = i;
        let end = i + 1 + quote_or_escape(&b[i + 1..])?;
        if b[end] != b'"' {
            return None;
        }
        let key = &b[i + 1..end];
        i = ws(end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(i + 1);
        if spellings.iter().any(|s| s.as_slice() == key) {
            *found = Some(key_at);
            return kind_value(b, i);
        }
        i = ws(skip_value(b, i)?);
        match b.get(i) {
            Some(b',') => i = ws(i + 1),
            Some(b'}') => return Some(None),
            _ => return None,
        }
    }
}

/// The kind a value at `i` gives: a text's own (unescaped), a number's or a boolean's as
/// written; none for null, an object or an array. `None`: the scan cannot tell.
fn kind_value(b: &[u8], i: usize) -> Option<Option<Cow<'_, str>>> {
    match *b.get(i)? {
        b'"' => {
            // A plain text (no escape, no control character) is the bytes up to its quote.
            let len = b[i + 1..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
            if b[i + 1 + len] == b'"' {
                return Some(Some(Cow::Borrowed(std::str::from_utf8(&b[i + 1..i + 1 + len]).ok()?)));
            }
            let end = string_end(b, i)?;
            let kind: String = serde_json::from_str(std::str::from_utf8(&b[i..end]).ok()?).ok()?;
            // A NUL is no text PostgreSQL stores: no kind, as the full parse says.
            Some((!kind.contains('\0')).then_some(Cow::Owned(kind)))
        }
        b'{' | b'[' => Some(None),
        _ => {
            let end = i + b[i..].iter().position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))?;
            let token = std::str::from_utf8(&b[i..end]).ok()?;
            match token {
                "null" => Some(None),
                "true" | "false" => Some(Some(Cow::Borrowed(token))),
                t if crate::transform::record::is_json_number(t.as_bytes()) => Some(Some(Cow::Borrowed(t))),
                _ => None,
            }
        }
    }
}

/// Where the first `"` or `\` is: keys and values are short, where a plain loop beats a
/// vectorised search's setup.
fn quote_or_escape(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'"' || c == b'\\')
}

/// Just past the string that starts at `i` (its closing quote), escapes skipped.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    loop {
        j += quote_or_escape(&b[j..])?;
        match b[j] {
            b'"' => return Some(j + 1),
            _ => j += 2,
        }
    }
}

/// Just past the value that starts at `i`: a string, a container (its brackets counted,
/// strings in it skipped), or a token up to the next delimiter.
fn skip_value(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => Some(i + b[i..].iter().position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n'))?),
    }
}

/// A record's kind: the text at the router's one field (`None` when absent, null, or not
/// a text: such a record has no kind), or why the record is not an object at all.
pub fn kind_of<'a>(
    router: &'static Dataset,
    bytes: &'a [u8],
    cells: &mut Vec<Cell<'a>>,
    hints: &mut KeyHints,
) -> Result<Option<String>, (&'static str, String)> {
    match parse_record(router, bytes, cells, hints) {
        Ok(_) => Ok(match cells.first() {
            Some(Cell::Text(t)) => Some(t.to_string()),
            _ => None,
        }),
        // An object or array (or a NUL) where the kind belongs: the record has no kind.
        Err((reason, _)) if reason == BAD_VALUE => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::Key;

    /// The scan gives the kind the full parse gives, wherever that parse reads one.
    #[test]
    fn the_scan_and_the_parse_agree_on_a_record_s_kind() {
        let router: &'static Dataset = Box::leak(Box::new(Dataset::router(Key::parse("/type"), "e.")));
        let spellings = vec![b"e.type".to_vec(), b"type".to_vec()];
        let records = [
            r#"{"type": "push", "a": 1}"#,
            r#"{"a": {"type": "x", "b": [1, {"c": "}"}]}, "e.type": "issues"}"#,
            r#"{"a": "q\"uote", "type": "p\u00fcsh"}"#,
            r#"{"type": 12}"#,
            r#"{"type": -1.5e3}"#,
            r#"{"type": true}"#,
            r#"{"type": null}"#,
            r#"{"type": {"name": "x"}}"#,
            r#"{"type": ["x"]}"#,
            r#"{"type": "nul\u0000"}"#,
            r#"{"type": NaN}"#,
            r#"{"type": tru}"#,
            r#"{"other": 1}"#,
            r#"{}"#,
            r#"{"ty\u0070e": "escaped key"}"#,
            r#"{"a": [1, 2, "]", {"x": "\\"}], "type": "after"}"#,
            r#"{"a": 1,, "type": "x"}"#,
            r#"[1, 2]"#,
            r#"{"type": "a", "type": "b"}"#,
            "{\"type\"\t:\n\"spaced\"\r}",
            r#"{"type": "unfinished"#,
            r#"{"a": "x, \"type\": \"fake\"", "type": "real"}"#,
            r#"{"a": "x ,", "type": "after a comma in a string"}"#,
            r#"{"a": {"type": "nested"}, "type": "top"}"#,
            r#"{"a": "{", "type": "after a brace in a string"}"#,
            r#"{"a":"b","type":"tight"}"#,
            r#" {"type": "leading blank"}"#,
            "{\"type\": \"raw\u{1}control\"}",
            r#"{"type": "tab\tescaped"}"#,
        ];
        let (mut scanned, mut remembered) = (0, 0);
        for r in records {
            let mut cells = Vec::new();
            let full = kind_of(router, r.as_bytes(), &mut cells, &mut KeyHints::default());
            let mut found = None;
            let scan = scan_kind(r.as_bytes(), &spellings, &mut found);
            if let (Ok(kind), Some(seen)) = (&full, &scan) {
                assert_eq!(kind.as_deref(), seen.as_deref(), "{r}");
            }
            scanned += scan.is_some() as usize;
            // Whatever offset a record before left: a kind read there is the record's own.
            for at in 0..r.len() {
                if let (Ok(kind), Some(seen)) = (&full, kind_at(r.as_bytes(), at, &spellings)) {
                    assert_eq!(kind.as_deref(), seen.as_deref(), "{r} at {at}");
                    remembered += 1;
                }
            }
        }
        assert!(scanned > 12 && remembered > 12, "{scanned} {remembered}");
        let mut found = None;
        assert_eq!(scan_kind(br#"{"a": 1, "type": "b"}"#, &spellings, &mut found), Some(Some(Cow::Borrowed("b"))));
        assert_eq!(found, Some(9));
        // The next record laid out alike is read at that offset, without a scan.
        assert_eq!(kind_at(br#"{"a": 2, "type": "c"}"#, 9, &spellings), Some(Some(Cow::Borrowed("c"))));
        assert_eq!(kind_at(br#"{"a": {}, "type": "c"}"#, 10, &spellings), None);
    }

    /// A kind key twice is a malformed record in its table, whichever path reads it.
    #[test]
    fn a_kind_key_twice_is_malformed_in_the_table() {
        let mut ds = Dataset::router(Key::parse("a"), "");
        ds.also_known(&Key::parse("/type"));
        let ds: &'static Dataset = Box::leak(Box::new(ds));
        for r in [r#"{"type": "x", "a": 1, "type": "y"}"#, r#"{"type": "x", "a": {"b": 1}, "type": "y"}"#] {
            let mut cells = Vec::new();
            let parsed = crate::transform::record::parse_record(ds, r.as_bytes(), &mut cells, &mut KeyHints::default());
            assert_eq!(parsed.map_err(|e| e.0), Err(MALFORMED), "{r}");
        }
    }
}
