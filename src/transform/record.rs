//! One record's bytes -> one text cell per declared field, or the reason it cannot be.
//!
//! Two parsers give the same answers: a fast path for the flat objects exports almost
//! always hold, and serde_json for everything else (escapes, nesting, errors). No Polars
//! here: the fuzz target (fuzz/) builds this module on its own.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::dataset::{self, Dataset, Kind};

/// Reasons a record fails before any column is cast (stored in `<table>_rejects`).
pub use crate::reasons::{BAD_VALUE, MALFORMED};

/// A parsed cell: absent/null, text, or a JSON container where a scalar belongs.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Text(Cow<'a, str>),
    Container(&'static str),
}

/// What parsing a record says besides its cells.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Parsed {
    /// Keys it had that the dataset does not declare.
    pub extra: u32,
    /// The export's bare `NaN` inside values kept as JSON, stored as JSON `null` (counted
    /// with the NaN numbers stored as NULL).
    pub nan: u32,
}

/// Parses one record into `cells` (one per declared field). Errors carry a reason and a
/// detail.
pub fn parse_record<'a>(
    ds: &'static Dataset,
    bytes: &'a [u8],
    cells: &mut Vec<Cell<'a>>,
    hints: &mut KeyHints,
) -> Result<Parsed, (&'static str, String)> {
    if let Some(result) = parse_flat(ds, bytes, cells, hints) {
        return result.map(|extra| Parsed { extra, nan: 0 });
    }
    match parse_json(ds, bytes, cells) {
        Ok(extra) => check_cells(ds, cells).map(|_| Parsed { extra, nan: 0 }),
        Err(first_error) => {
            cells.clear();
            // The export writes bare NaN (and hostile files Infinity): quote such tokens so
            // they reach the numeric cast as text, which knows what to do with them.
            let Some((patched, quoted_at)) = quote_bare_tokens(bytes) else {
                return Err((MALFORMED, first_error));
            };
            let nulls;
            let mut owned_cells = Vec::with_capacity(ds.fields.len());
            let extra = parse_json(ds, &patched, &mut owned_cells).map_err(|_| (MALFORMED, first_error.clone()))?;
            // Numbers may be written as the bare tokens: a number column reads them (NaN is
            // NULL). In a value kept as JSON (a `json` column's, the other keys'), however
            // deep, a NaN is JSON `null`, as a NaN number is NULL. Anywhere else (a text, a
            // timestamp, an Infinity in JSON) they are not JSON, and loading them as the text
            // "NaN" would invent a value.
            let (spans, rest_spans) = value_spans(ds, &patched);
            let fields = ds.fields.iter().zip(spans).filter_map(|(f, span)| Some((f, span?)));
            let rest = rest_spans.into_iter().filter_map(|span| ds.rest_field().map(|r| (&ds.fields[r], span)));
            let mut nulled = Vec::new();
            for (field, (start, end)) in fields.chain(rest) {
                for &at in quoted_at.iter().filter(|&&at| at >= start && at < end) {
                    let token = patched[at + 1..].split(|&c| c == b'"').next().unwrap_or_default();
                    match field.kind {
                        k if k.is_numeric() && at == start => {}
                        Kind::Json if matches!(token, b"NaN" | b"-NaN") => nulled.push((at, token.len() + 2)),
                        _ => return Err((MALFORMED, bare_token_detail(&field.name, &String::from_utf8_lossy(token)))),
                    }
                }
            }
            if !nulled.is_empty() {
                nulled.sort_unstable();
                nulls = with_nulls(&patched, &nulled);
                owned_cells.clear();
                parse_json(ds, &nulls, &mut owned_cells).map_err(|_| (MALFORMED, first_error))?;
            }
            check_cells(ds, &owned_cells)?;
            cells.extend(owned_cells.into_iter().map(|c| match c {
                Cell::Text(t) => Cell::Text(Cow::Owned(t.into_owned())),
                Cell::Null => Cell::Null,
                Cell::Container(k) => Cell::Container(k),
            }));
            Ok(Parsed { extra, nan: nulled.len() as u32 })
        }
    }
}

/// The fast path (one piece: its cursor and cells stay in registers across the loop, the
/// hottest code of a load), for what exports almost always hold: one flat object whose keys have
/// no escapes and whose values are strings without escapes or control characters,
/// numbers, `true` / `false` / `null`, or the bare NaN-family tokens. Anything else
/// (escapes, nesting, invalid UTF-8, a syntax error) returns `None` and goes through
/// serde_json, so both paths give the same cells and the same errors; the tests compare
/// them. About three times faster than serde_json on the exports.
pub fn parse_flat<'a>(
    ds: &'static Dataset,
    b: &'a [u8],
    cells: &mut Vec<Cell<'a>>,
    hints: &mut KeyHints,
) -> Option<Result<u32, (&'static str, String)>> {
    let ws = |mut i: usize| {
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        i
    };
    // UTF-8 is checked once per record (SIMD) rather than once per value: every value is
    // then a slice of `text` cut at ASCII bytes, so it is valid too. A record that is not
    // UTF-8 goes the slow way, which says where.
    let text = simdutf8::basic::from_utf8(b).ok()?;
    // Likewise control characters, which JSON strings cannot hold: looked for in the whole
    // record at once (a loop the compiler vectorises), and in each string only when the
    // record has some (a record across lines, whose line breaks are whitespace).
    let controls = b.iter().fold(0u8, |seen, &c| seen | (c < 0x20) as u8) != 0;
    let string_end = crate::search::Two::new(b'"', b'\\');
    cells.clear();
    cells.resize_with(ds.fields.len(), || Cell::Null);
    hints.clear_seen(ds.fields.len());
    let mut extra = 0u32;
    let mut duplicate: Option<&str> = None;
    // Keys read though no column reads them, seen so far (more: the slow path decides).
    let mut known_seen: [Option<&str>; 4] = [None; 4];
    let mut i = ws(0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(i + 1);
    let mut position = 0;
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key_end = i + 1 + string_end.find(&b[i + 1..])?;
            if b[key_end] != b'"' {
                return None;
            }
            let key = plain_str(text, i + 1, key_end, controls)?;
            i = ws(key_end + 1);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = ws(i + 1);
            let field = hints.lookup(ds, position, key);
            position += 1;
            let (cell, end) = match *b.get(i)? {
                b'"' => {
                    let close = i + 1 + string_end.find(&b[i + 1..])?;
                    if b[close] != b'"' {
                        return None;
                    }
                    // A `json` column keeps the value as JSON: the string with its quotes.
                    // A control character makes the record malformed either way, as
                    // serde_json says (the slow path).
                    let body = match field {
                        Some(f) if ds.fields[f].kind == Kind::Json => plain_str(text, i, close + 1, controls)?,
                        _ => plain_str(text, i + 1, close, controls)?,
                    };
                    (Cell::Text(Cow::Borrowed(body)), close + 1)
                }
                b'{' | b'[' => return None,
                _ => {
                    let end = i + b[i..].iter().position(|c| matches!(c, b',' | b'}' | b' ' | b'\t' | b'\r' | b'\n'))?;
                    let token = text.get(i..end)?;
                    let cell = match token {
                        "null" => Cell::Null,
                        "true" | "false" => Cell::Text(Cow::Borrowed(token)),
                        // A NaN kept as JSON is `null`, counted: the slow path says so.
                        "NaN" | "-NaN" if field.is_some_and(|f| ds.fields[f].kind == Kind::Json) => return None,
                        "NaN" | "-NaN" | "Infinity" | "-Infinity" => {
                            if let Some(f) = field.filter(|&f| !ds.fields[f].kind.is_numeric()) {
                                cells.clear();
                                return Some(Err((MALFORMED, bare_token_detail(&ds.fields[f].name, token))));
                            }
                            Cell::Text(Cow::Borrowed(token))
                        }
                        t if is_json_number(t.as_bytes()) => Cell::Text(Cow::Borrowed(t)),
                        _ => return None,
                    };
                    (cell, end)
                }
            };
            match field {
                Some(f) if !hints.see(f) => {
                    duplicate.get_or_insert(key);
                }
                Some(f) => cells[f] = cell,
                // A key that leads to nested columns holds a scalar here: the columns below
                // it are absent, one whose pointer names the key itself (`/type`) takes it.
                None => match ds.nested_fields(key) {
                    Some(nested) => {
                        // Seen twice, a key is a duplicate, wherever its columns are (a key
                        // no column reads, such as a split log's kind, too).
                        match nested.first() {
                            Some(&f) if !hints.see(f) => {
                                duplicate.get_or_insert(key);
                            }
                            Some(_) => {}
                            None if known_seen.contains(&Some(key)) => {
                                duplicate.get_or_insert(key);
                            }
                            None => *known_seen.iter_mut().find(|k| k.is_none())? = Some(key),
                        }
                        for &f in nested {
                            if matches!(&ds.fields[f].key, dataset::Key::Pointer(parts) if parts.len() == 1) {
                                cells[f] = cell.clone();
                            }
                        }
                    }
                    // Kept whole in a column of the other keys: serde_json writes it.
                    None if ds.rest_field().is_some() => return None,
                    None => extra += 1,
                },
            }
            i = ws(end);
            match b.get(i) {
                Some(b',') => i = ws(i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    if ws(i) != b.len() {
        return None;
    }
    if let Some(key) = duplicate {
        cells.clear();
        return Some(Err((MALFORMED, format!("key {key:?} appears twice"))));
    }
    // No cell here needs `check_cells`: a container or a string with a control character
    // (NUL among them) took the slow path above.
    Some(Ok(extra))
}

/// The records of one export list their keys in the same order, so per key position the
/// last key seen there (and its field) is remembered: most lookups become one comparison.
/// Also the fields a record has set so far (a bit each, any number of columns).
#[derive(Default)]
pub struct KeyHints(Vec<(String, Option<usize>)>, Vec<u64>);

impl KeyHints {
    fn clear_seen(&mut self, fields: usize) {
        self.1.clear();
        self.1.resize(fields.div_ceil(64), 0);
    }

    /// Marks a field set; false if it was already.
    fn see(&mut self, f: usize) -> bool {
        let (word, bit) = (f / 64, 1u64 << (f % 64));
        let fresh = self.1[word] & bit == 0;
        self.1[word] |= bit;
        fresh
    }

    fn lookup(&mut self, ds: &Dataset, position: usize, key: &str) -> Option<usize> {
        if let Some((k, f)) = self.0.get(position) {
            if k == key {
                return *f;
            }
        }
        let f = ds.field_index(key);
        if position < self.0.len() {
            self.0[position] = (key.to_string(), f);
        } else if position == self.0.len() {
            self.0.push((key.to_string(), f));
        }
        f
    }
}

/// The JSON string body `text[start..end]` if it needs no unescaping: no control characters.
fn plain_str(text: &str, start: usize, end: usize, controls: bool) -> Option<&str> {
    let body = text.get(start..end)?;
    if controls && body.bytes().any(|c| c < 0x20) {
        return None;
    }
    Some(body)
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
pub(crate) fn is_json_number(t: &[u8]) -> bool {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < t.len() && t[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if t.first() == Some(&b'-') {
        i += 1;
    }
    match t.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if t.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(t.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(t.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == t.len()
}

/// `patched` with each quoted token at `(offset, length)` (in order) replaced by `null`.
fn with_nulls(patched: &[u8], tokens: &[(usize, usize)]) -> Vec<u8> {
    let mut text = Vec::with_capacity(patched.len());
    let mut from = 0;
    for &(at, len) in tokens {
        text.extend_from_slice(&patched[from..at]);
        text.extend_from_slice(b"null");
        from = at + len;
    }
    text.extend_from_slice(&patched[from..]);
    text
}

/// A whole record or element as one column's cell: the JSON text for a `json` column (the
/// export's bare NaN in it as `null`, counted, as in a record's JSON values), else the
/// scalar it is (a child's column of an array of scalars).
pub fn whole_cell<'a>(field: &dataset::Field, bytes: &'a [u8]) -> Result<(Cell<'a>, u32), (&'static str, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| (MALFORMED, format!("invalid UTF-8: {e}")))?.trim();
    if field.kind == Kind::Json {
        let maybe_token = memchr::memmem::find(text.as_bytes(), b"NaN").or_else(|| memchr::memmem::find(text.as_bytes(), b"Infinity"));
        let Some((patched, quoted_at)) = maybe_token.and_then(|_| quote_bare_tokens(text.as_bytes())) else {
            return Ok((Cell::Text(Cow::Borrowed(text)), 0));
        };
        let mut nulled = Vec::with_capacity(quoted_at.len());
        for at in quoted_at {
            match patched[at + 1..].split(|&c| c == b'"').next().unwrap_or_default() {
                token @ (b"NaN" | b"-NaN") => nulled.push((at, token.len() + 2)),
                token => return Err((MALFORMED, bare_token_detail(&field.name, &String::from_utf8_lossy(token)))),
            }
        }
        let text = String::from_utf8(with_nulls(&patched, &nulled)).map_err(|e| (MALFORMED, format!("invalid UTF-8: {e}")))?;
        return Ok((Cell::Text(Cow::Owned(text)), nulled.len() as u32));
    }
    let cell = match serde_json::from_str::<&RawValue>(text) {
        Ok(raw) => cell_of(raw, field.kind).map_err(|e| (MALFORMED, describe_json_error(&e)))?,
        // The export's bare NaN-family tokens: numbers to a number column, as in a record.
        Err(_) if field.kind.is_numeric() && quote_bare_tokens(text.as_bytes()).is_some_and(|(p, _)| p.len() == text.len() + 2) => {
            Cell::Text(Cow::Borrowed(text))
        }
        Err(e) => return Err((MALFORMED, describe_json_error(&e))),
    };
    match &cell {
        Cell::Container(kind) => Err((BAD_VALUE, format!("{}: expected a scalar, found {kind}", field.name))),
        Cell::Text(t) if t.contains('\0') => {
            Err((BAD_VALUE, format!("{}: contains a NUL character, which PostgreSQL text cannot store", field.name)))
        }
        _ => Ok((cell, 0)),
    }
}

pub fn check_cells(ds: &Dataset, cells: &[Cell]) -> Result<(), (&'static str, String)> {
    for (field, cell) in ds.fields.iter().zip(cells) {
        match cell {
            // A `json` column takes any value; jsonb's own limits are checked with its cast.
            _ if field.kind == Kind::Json => {}
            Cell::Container(kind) => {
                return Err((BAD_VALUE, format!("{}: expected a scalar, found {kind}", field.name)));
            }
            Cell::Text(t) if t.contains('\0') => {
                return Err((BAD_VALUE, format!("{}: contains a NUL character, which PostgreSQL text cannot store", field.name)));
            }
            _ => {}
        }
    }
    Ok(())
}

pub fn parse_json<'a>(ds: &'static Dataset, bytes: &'a [u8], cells: &mut Vec<Cell<'a>>) -> Result<u32, String> {
    cells.clear();
    let (raw, extra, rest) = resolve(ds, bytes)?;
    for (value, field) in raw.into_iter().zip(&ds.fields) {
        cells.push(match value {
            None => Cell::Null,
            Some(v) => cell_of(v, field.kind).map_err(|e| describe_json_error(&e))?,
        });
    }
    // The keys no column reads, as one object, in the record's order (none: null).
    if let (Some(i), false) = (ds.rest_field(), rest.is_empty()) {
        let entries: Vec<String> =
            rest.iter().map(|(k, v)| format!("{}: {}", serde_json::to_string(k.as_ref()).unwrap_or_default(), v.get())).collect();
        cells[i] = Cell::Text(Cow::Owned(format!("{{{}}}", entries.join(", "))));
    }
    Ok(if ds.rest_field().is_some() { 0 } else { extra })
}

/// Each declared field's raw value in a record (top-level keys, then JSON Pointers into
/// nested objects), and how many top-level keys no field reads.
/// Each declared field's raw value in a record (top-level keys, then JSON Pointers into
/// nested objects), how many top-level keys no field reads, and those keys with their values
/// when a field keeps them (`key = "*"`).
#[allow(clippy::type_complexity)]
fn resolve<'a>(
    ds: &'static Dataset,
    bytes: &'a [u8],
) -> Result<(Vec<Option<&'a RawValue>>, u32, Vec<(Cow<'a, str>, &'a RawValue)>), String> {
    let mut raw: Vec<Option<&'a RawValue>> = vec![None; ds.fields.len()];
    let mut heads: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::new();
    let mut rest: Vec<(Cow<'a, str>, &'a RawValue)> = Vec::new();
    let mut extra = 0u32;
    let mut duplicate: Option<String> = None;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let keep_rest = ds.rest_field().is_some();
    RecordSeed { ds, raw: &mut raw, heads: &mut heads, extra: &mut extra, duplicate: &mut duplicate, rest: keep_rest.then_some(&mut rest) }
        .deserialize(&mut de)
        .and_then(|_| de.end())
        .map_err(|e| describe_json_error(&e))?;
    if let Some(key) = duplicate {
        return Err(format!("key {key:?} appears twice"));
    }
    for (head, value) in &heads {
        for &f in ds.nested_fields(head).unwrap_or_default() {
            let dataset::Key::Pointer(parts) = &ds.fields[f].key else { continue };
            if raw[f].is_none() {
                raw[f] = descend(value, &parts[1..]).map_err(|e| describe_json_error(&e))?;
            }
        }
    }
    Ok((raw, extra, rest))
}

/// The value at `path` below `value`; `None` where an object or key is missing (absent).
fn descend<'a>(value: &'a RawValue, path: &[String]) -> Result<Option<&'a RawValue>, serde_json::Error> {
    let Some((first, rest)) = path.split_first() else { return Ok(Some(value)) };
    if !value.get().starts_with('{') {
        return Ok(None);
    }
    let entries: Vec<(Cow<'a, str>, &'a RawValue)> = serde_json::Deserializer::from_str(value.get()).deserialize_map(Entries)?;
    match entries.into_iter().rev().find(|(k, _)| k == first) {
        Some((_, v)) => descend(v, rest),
        None => Ok(None),
    }
}

/// An object's entries in input order, values left raw (also read by `json` and `infer`).
/// The top-level keys of a record that no column of the dataset reads (for a reject's
/// detail; the load itself only counts them).
pub fn unknown_keys(ds: &Dataset, bytes: &[u8]) -> Vec<String> {
    let patched = quote_bare_tokens(bytes).map(|(p, _)| p);
    let text = std::str::from_utf8(patched.as_deref().unwrap_or(bytes)).unwrap_or_default();
    let mut de = serde_json::Deserializer::from_str(text);
    let entries: Vec<(Cow<'_, str>, &RawValue)> = de.deserialize_map(Entries).unwrap_or_default();
    entries.into_iter().filter(|(k, _)| ds.field_index(k).is_none() && ds.nested_fields(k).is_none()).map(|(k, _)| k.into_owned()).collect()
}

pub(crate) struct Entries;

impl<'de> Visitor<'de> for Entries {
    type Value = Vec<(Cow<'de, str>, &'de RawValue)>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut out = Vec::new();
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            out.push((k, map.next_value::<&'de RawValue>()?));
        }
        Ok(out)
    }
}

fn describe_json_error(e: &serde_json::Error) -> String {
    // serde_json counts lines and columns within the record; the record's own line is
    // reported beside this detail.
    format!("invalid JSON: {e}")
}

fn cell_of(v: &RawValue, kind: Kind) -> Result<Cell<'_>, serde_json::Error> {
    let text = v.get();
    Ok(match text.as_bytes()[0] {
        b'n' => Cell::Null,
        // A `json` column keeps any value as JSON text.
        _ if kind == Kind::Json => Cell::Text(Cow::Borrowed(text)),
        b'"' if !text.contains('\\') => Cell::Text(Cow::Borrowed(&text[1..text.len() - 1])),
        b'"' => Cell::Text(Cow::Owned(serde_json::from_str::<String>(text)?)),
        b'{' => Cell::Container("an object"),
        b'[' => Cell::Container("an array"),
        _ => Cell::Text(Cow::Borrowed(text)), // number or boolean, as written
    })
}

struct RecordSeed<'s, 'a> {
    ds: &'static Dataset,
    raw: &'s mut Vec<Option<&'a RawValue>>,
    heads: &'s mut Vec<(Cow<'a, str>, &'a RawValue)>,
    extra: &'s mut u32,
    duplicate: &'s mut Option<String>,
    /// The keys no field reads, with their values, when a field keeps them.
    rest: Option<&'s mut Vec<(Cow<'a, str>, &'a RawValue)>>,
}

impl<'de, 's> DeserializeSeed<'de> for RecordSeed<'s, 'de> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 's> Visitor<'de> for RecordSeed<'s, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<M: MapAccess<'de>>(mut self, mut map: M) -> Result<(), M::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            let nested = self.ds.nested_fields(&key).is_some();
            match self.ds.field_index(&key) {
                Some(i) if self.raw[i].is_some() => {
                    if self.duplicate.is_none() {
                        *self.duplicate = Some(key.clone().into_owned());
                    }
                }
                Some(i) => self.raw[i] = Some(value),
                None if nested => {}
                None => {
                    *self.extra += 1;
                    if let Some(rest) = self.rest.as_deref_mut() {
                        if rest.iter().any(|(k, _)| *k == key) {
                            if self.duplicate.is_none() {
                                *self.duplicate = Some(key.clone().into_owned());
                            }
                        } else {
                            rest.push((key.clone(), value));
                        }
                    }
                }
            }
            if nested {
                if self.heads.iter().any(|(k, _)| *k == key) {
                    if self.duplicate.is_none() {
                        *self.duplicate = Some(key.into_owned());
                    }
                } else {
                    self.heads.push((key, value));
                }
            }
        }
        Ok(())
    }
}

/// A map key, borrowed from the input unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

fn bare_token_detail(field: &str, token: &str) -> String {
    format!("{field}: bare {token} is not JSON (read only where a number belongs)")
}

/// Where each declared field's value is in a record serde_json accepts (byte offsets, from
/// its first byte to just past its last), and each of the other keys' values.
type ValueSpan = (usize, usize);
fn value_spans(ds: &'static Dataset, bytes: &[u8]) -> (Vec<Option<ValueSpan>>, Vec<ValueSpan>) {
    let span = |v: &RawValue| {
        let start = v.get().as_ptr() as usize - bytes.as_ptr() as usize;
        (start, start + v.get().len())
    };
    match resolve(ds, bytes) {
        Ok((raw, _, rest)) => (raw.iter().map(|v| v.map(span)).collect(), rest.iter().map(|(_, v)| span(v)).collect()),
        Err(_) => (vec![None; ds.fields.len()], Vec::new()),
    }
}

/// Quotes the non-standard tokens `NaN`, `-NaN`, `Infinity` and `-Infinity` where they
/// stand as values outside strings, and says where each quoted token now starts. `None`
/// if there were none (the error is elsewhere).
pub(crate) fn quote_bare_tokens(bytes: &[u8]) -> Option<(Vec<u8>, Vec<usize>)> {
    const TOKENS: [&[u8]; 4] = [b"-Infinity", b"Infinity", b"-NaN", b"NaN"];
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut in_string = false;
    let mut quoted_at = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            out.push(b);
            match b {
                b'\\' if i + 1 < bytes.len() => {
                    out.push(bytes[i + 1]);
                    i += 1;
                }
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            out.push(b);
            i += 1;
            continue;
        }
        if let Some(t) = TOKENS.iter().find(|t| bytes[i..].starts_with(t)) {
            let next = bytes.get(i + t.len()).copied().unwrap_or(b' ');
            if !next.is_ascii_alphanumeric() {
                quoted_at.push(out.len());
                out.push(b'"');
                out.extend_from_slice(t);
                out.push(b'"');
                i += t.len();
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    (!quoted_at.is_empty()).then_some((out, quoted_at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::framing;

    /// The fast path and serde_json agree on every record either of them accepts.
    #[test]
    fn fast_path_agrees_with_serde_json() {
        let dir = tempfile::tempdir().unwrap();
        crate::gen::generate(&crate::gen::GenOptions { events: 400, weather: 200, seed: 11, defect_share: 0.5 }, dir.path()).unwrap();
        let mut samples: Vec<Vec<u8>> = Vec::new();
        for (file, _) in [("track_events.json", 0), ("weather.json", 1)] {
            let text = std::fs::read(dir.path().join(file)).unwrap();
            let scan = framing::scan(&text, 1, true);
            samples.extend(scan.spans.iter().filter(|s| s.damage.is_none()).map(|s| text[s.start..s.end].to_vec()));
        }
        for extra in [
            &b"{}"[..],
            b"{ }",
            b"{\"city\":\"a\\\"b\"}",
            b"{\"city\":\"Z\\u00fcrich\"}",
            b"{\"city\":1e5,\"x\":-0.5E-3}",
            b"{\"city\":01}",
            b"{\"city\":tru}",
            b"{\"city\":\"a\tb\"}",
            b"{\"city\":\"a\x01b\"}",
            b"{\"city\":\"a\nb\"}",
            b"{\"city\":\"\xff\"}",
            "{\"city\":\"Zürich 🛴\",\"prä\":\"ü\"}".as_bytes(),
            b"{\"city\":\"a\xc3\"}",
            b"{\"city\":\"a\"}\xe2\x82",
            b"{\"city\":[1]}",
            b"{\"city\":\"a\",\"city\":\"b\"}",
            b"{\"date_time\":1,\"date_time\":2}",
            b"{\"city\":\"a\",}",
            b"{\"city\":\"a\"} x",
            b"{\"currently_humidity\":-NaN}",
            b"{\"city\" : \"a\" , \"date_time\" : null }",
            b"{\"city\":-}",
            b"{\"city\":1.}",
            b"{\"city\":\"nul\\u0000\"}",
        ] {
            samples.push(extra.to_vec());
        }
        // A contract with a `json` column, which keeps a string value with its quotes.
        let with_json: &'static crate::dataset::Dataset = Box::leak(Box::new(
            crate::contract::parse("name = \"tags\"\n[[column]]\nname = \"city\"\ntype = \"json\"\n", "tags.toml").unwrap(),
        ));
        // Pointers: one that names a top-level key itself, one below a key that holds a scalar.
        let with_pointers: &'static crate::dataset::Dataset = Box::leak(Box::new(
            crate::contract::parse(
                "name = \"p\"\n[[column]]\nname = \"c\"\nkey = \"/city\"\ntype = \"text\"\n\
                 [[column]]\nname = \"d\"\nkey = \"/date_time/x\"\ntype = \"text\"\n",
                "p.toml",
            )
            .unwrap(),
        ));
        // A column of every other key: the fast path takes records without any.
        let with_rest: &'static crate::dataset::Dataset = Box::leak(Box::new(
            crate::contract::parse(
                "name = \"r\"\n[[column]]\nname = \"city\"\ntype = \"text\"\n[[column]]\nname = \"o\"\nkey = \"*\"\ntype = \"json\"\n",
                "r.toml",
            )
            .unwrap(),
        ));
        let mut fast_hits = 0;
        for bytes in &samples {
            for ds in [crate::contract::example("track_events"), crate::contract::example("weather"), with_json, with_pointers, with_rest] {
                let mut fast = Vec::new();
                let Some(f) = parse_flat(ds, bytes, &mut fast, &mut KeyHints::default()) else { continue };
                fast_hits += 1;
                let mut slow = Vec::new();
                let s = parse_json(ds, bytes, &mut slow).map_err(|e| (MALFORMED, e)).and_then(|x| check_cells(ds, &slow).map(|_| x));
                let show = |c: &[Cell]| {
                    c.iter()
                        .map(|c| match c {
                            Cell::Null => "~".to_string(),
                            Cell::Text(t) => t.to_string(),
                            Cell::Container(k) => k.to_string(),
                        })
                        .collect::<Vec<_>>()
                };
                match (&f, &s) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a, b, "{}", String::from_utf8_lossy(bytes));
                        assert_eq!(show(&fast), show(&slow), "{}", String::from_utf8_lossy(bytes));
                    }
                    (Err(a), Err(b)) => assert_eq!(a.0, b.0, "{}", String::from_utf8_lossy(bytes)),
                    // serde_json cannot read NaN; the full path quotes it first.
                    _ if bytes.windows(3).any(|w| w == b"NaN") => {}
                    _ => panic!("paths disagree on {}: {f:?} vs {s:?}", String::from_utf8_lossy(bytes)),
                }
            }
        }
        assert!(fast_hits > samples.len(), "the fast path takes the common records");
    }

    #[test]
    fn json_numbers() {
        for ok in ["0", "-0", "12", "1.5", "-1.5e10", "2E-3", "10.12"] {
            assert!(is_json_number(ok.as_bytes()), "{ok}");
        }
        for bad in ["", "-", "01", "1.", ".5", "1e", "+1", "0x10", "1_000", "12abc"] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn bare_tokens_are_quoted_outside_strings_only() {
        assert_eq!(quote_bare_tokens(b"{\"a\": NaN, \"b\": \"NaN\"}").unwrap(), (b"{\"a\": \"NaN\", \"b\": \"NaN\"}".to_vec(), vec![6]));
        assert_eq!(quote_bare_tokens(b"{\"a\":-Infinity}").unwrap(), (b"{\"a\":\"-Infinity\"}".to_vec(), vec![5]));
        assert_eq!(quote_bare_tokens(b"{\"a\": \"x NaN\"}"), None);
        assert_eq!(quote_bare_tokens(b"{\"a\": NaNa}"), None);
    }

    #[test]
    fn bare_tokens_are_read_only_for_numbers() {
        let parse = |bytes: &[u8]| {
            let mut cells = Vec::new();
            parse_record(crate::contract::example("weather"), bytes, &mut cells, &mut KeyHints::default())
                .map(|_| cells.iter().map(|c| format!("{c:?}")).collect::<Vec<_>>())
        };
        // Fast path (no escapes) and the serde_json path (an escape elsewhere in the record).
        for tail in ["", ", \"x\": \"\\u00fc\""] {
            for token in ["NaN", "-NaN", "Infinity", "-Infinity"] {
                let text = format!("{{\"city\": {token}, \"date_time\": \"2019-06-04 14:05:13\"{tail}}}");
                let err = parse(text.as_bytes()).unwrap_err();
                assert_eq!(err.0, MALFORMED, "{text}");
                assert!(err.1.contains("city") && err.1.contains(token), "{text}: {}", err.1);
                let text = format!("{{\"city\": \"Oslo\", \"currently_humidity\": {token}{tail}}}");
                assert!(parse(text.as_bytes()).is_ok(), "{text}");
            }
        }
        // An undeclared key may hold them: it is not loaded.
        assert!(parse(b"{\"city\": \"Oslo\", \"other\": NaN}").is_ok());
    }

    /// In a value kept as JSON, however deep, a NaN is JSON `null` (counted, as a NaN number
    /// is NULL) and an Infinity rejects the record: the server's json input refuses both, and
    /// quoted they would be texts the export never wrote.
    #[test]
    fn bare_tokens_inside_json_values_are_null_or_refused() {
        let text = "name = \"j\"\n[[column]]\nname = \"id\"\ntype = \"bigint\"\n\
                    [[column]]\nname = \"p\"\ntype = \"json\"\n[[column]]\nname = \"n\"\nkey = \"/q/n\"\ntype = \"double\"\n\
                    [[column]]\nname = \"other\"\nkey = \"*\"\ntype = \"json\"\n";
        let ds: &'static Dataset = Box::leak(Box::new(crate::contract::parse(text, "j.toml").unwrap()));
        let parse = |bytes: &str| {
            let mut cells = Vec::new();
            parse_record(ds, bytes.as_bytes(), &mut cells, &mut KeyHints::default()).map(|parsed| (format!("{cells:?}"), parsed.nan))
        };
        let text = |t: &str| format!("Text({t:?})");
        for (record, cells, nan) in [
            (
                "{\"id\": 1, \"p\": {\"x\": NaN, \"y\": [-NaN, \"NaN\"]}}",
                [text("1"), text("{\"x\": null, \"y\": [null, \"NaN\"]}"), "Null".into(), "Null".into()],
                2,
            ),
            ("{\"id\": 1, \"p\": NaN, \"q\": {\"n\": NaN}}", [text("1"), "Null".into(), text("NaN"), "Null".into()], 1),
            (
                "{\"id\": 1, \"extra\": {\"x\": NaN}, \"z\": NaN}",
                [text("1"), "Null".into(), "Null".into(), text("{\"extra\": {\"x\": null}, \"z\": null}")],
                2,
            ),
        ] {
            assert_eq!(parse(record), Ok((format!("[{}]", cells.join(", ")), nan)), "{record}");
        }
        for (record, column, token) in
            [("{\"id\": 1, \"p\": [1, [-Infinity]]}", "p", "-Infinity"), ("{\"id\": 1, \"extra\": [Infinity]}", "other", "Infinity")]
        {
            assert_eq!(parse(record), Err((MALFORMED, bare_token_detail(column, token))), "{record}");
        }
        // A whole record kept as JSON (a catch-all table's) likewise.
        let whole = |text: &str| whole_cell(&ds.fields[1], text.as_bytes()).map(|(cell, nan)| (format!("{cell:?}"), nan));
        assert_eq!(whole("{\"a\": -NaN, \"b\": \"NaN\"}"), Ok((text("{\"a\": null, \"b\": \"NaN\"}"), 1)));
        assert_eq!(whole("{\"a\": [1, Infinity]}"), Err((MALFORMED, bare_token_detail("p", "Infinity"))));
        assert_eq!(whole("{\"a\": \"Infinity\"}"), Ok((text("{\"a\": \"Infinity\"}"), 0)));
    }
}
