//! Records -> a frame of text columns, one per declared field, in parallel.
//!
//! Every field is read as text first and cast later, by column (see `quality`): Polars'
//! JSON reader rejects the export's bare `NaN` and its quoted numbers, and a lenient
//! cast per column is both faster and easier to explain than a per-cell type switch.
//! Values are borrowed from the input buffer wherever no unescaping is needed.

use std::borrow::Cow;
use std::fmt;

use polars::prelude::*;
use rayon::prelude::*;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::dataset::Dataset;
use crate::source::{Chunk, Span};

/// Reasons a record fails before any column is cast. Names are stored in `<table>_rejects`.
pub const MALFORMED: &str = "malformed";
pub const BAD_VALUE: &str = "bad_value";

/// Columns the parse step adds beside the declared fields.
pub const COL_ROW: &str = "__row";
pub const COL_LINE: &str = "__line";
pub const COL_ISSUE: &str = "__issue";
pub const COL_DETAIL: &str = "__detail";
pub const COL_EXTRA: &str = "__extra";

/// Records per parallel task: big enough to amortise a task, small enough to balance.
const TASK_RECORDS: usize = 2048;

/// Parses every record of a chunk. The frame has one row per span, in order.
pub fn parse_chunk(ds: &'static Dataset, chunk: &Chunk) -> PolarsResult<DataFrame> {
    let parts: Vec<DataFrame> = chunk
        .spans
        .par_chunks(TASK_RECORDS)
        .enumerate()
        .map(|(i, spans)| parse_spans(ds, &chunk.buf, spans, i * TASK_RECORDS))
        .collect::<PolarsResult<_>>()?;
    let mut parts = parts.into_iter();
    let mut frame = parts.next().unwrap_or_else(|| empty_frame(ds));
    for p in parts {
        frame.vstack_mut_owned(p)?;
    }
    Ok(frame)
}

fn empty_frame(ds: &'static Dataset) -> DataFrame {
    parse_spans(ds, &[], &[], 0).expect("an empty frame always builds")
}

/// A parsed cell: absent/null, text, or a JSON container where a scalar belongs.
enum Cell<'a> {
    Null,
    Text(Cow<'a, str>),
    Container(&'static str),
}

struct Builders {
    fields: Vec<StringChunkedBuilder>,
    row: PrimitiveChunkedBuilder<UInt32Type>,
    line: PrimitiveChunkedBuilder<UInt64Type>,
    issue: StringChunkedBuilder,
    detail: StringChunkedBuilder,
    extra: PrimitiveChunkedBuilder<UInt32Type>,
}

fn parse_spans(ds: &'static Dataset, buf: &[u8], spans: &[Span], first_row: usize) -> PolarsResult<DataFrame> {
    let n = spans.len();
    let mut b = Builders {
        fields: ds.fields.iter().map(|f| StringChunkedBuilder::new(f.name.into(), n)).collect(),
        row: PrimitiveChunkedBuilder::new(COL_ROW.into(), n),
        line: PrimitiveChunkedBuilder::new(COL_LINE.into(), n),
        issue: StringChunkedBuilder::new(COL_ISSUE.into(), n),
        detail: StringChunkedBuilder::new(COL_DETAIL.into(), n),
        extra: PrimitiveChunkedBuilder::new(COL_EXTRA.into(), n),
    };
    let mut cells: Vec<Cell> = Vec::with_capacity(ds.fields.len());
    for (i, span) in spans.iter().enumerate() {
        b.row.append_value((first_row + i) as u32);
        b.line.append_value(span.line);
        let bytes = &buf[span.start..span.end];
        let outcome = match span.damage {
            Some(d) => Err((MALFORMED, d.describe().to_string())),
            None => parse_record(ds, bytes, &mut cells),
        };
        match outcome {
            Ok(extra) => {
                b.issue.append_null();
                b.detail.append_null();
                b.extra.append_value(extra);
                for (builder, cell) in b.fields.iter_mut().zip(cells.drain(..)) {
                    match cell {
                        Cell::Null => builder.append_null(),
                        Cell::Text(t) => builder.append_value(&t),
                        Cell::Container(_) => unreachable!("containers are reported as issues"),
                    }
                }
            }
            Err((issue, detail)) => {
                cells.clear();
                b.issue.append_value(issue);
                b.detail.append_value(&detail);
                b.extra.append_value(0);
                for builder in b.fields.iter_mut() {
                    builder.append_null();
                }
            }
        }
    }
    let mut columns: Vec<Column> = b.fields.into_iter().map(|f| f.finish().into_column()).collect();
    columns.push(b.row.finish().into_column());
    columns.push(b.line.finish().into_column());
    columns.push(b.issue.finish().into_column());
    columns.push(b.detail.finish().into_column());
    columns.push(b.extra.finish().into_column());
    DataFrame::new(columns)
}

/// Parses one record into `cells` (one per declared field) and returns how many keys it
/// had that the dataset does not declare. Errors carry a reason and a detail.
fn parse_record<'a>(ds: &'static Dataset, bytes: &'a [u8], cells: &mut Vec<Cell<'a>>) -> Result<u32, (&'static str, String)> {
    match parse_json(ds, bytes, cells) {
        Ok(extra) => check_cells(ds, cells).map(|_| extra),
        Err(first_error) => {
            cells.clear();
            // The export writes bare NaN (and hostile files Infinity): quote such tokens so
            // they reach the numeric cast as text, which knows what to do with them.
            let Some(patched) = quote_bare_tokens(bytes) else {
                return Err((MALFORMED, first_error));
            };
            let mut owned_cells = Vec::with_capacity(ds.fields.len());
            let extra = parse_json(ds, &patched, &mut owned_cells).map_err(|_| (MALFORMED, first_error))?;
            check_cells(ds, &owned_cells)?;
            cells.extend(owned_cells.into_iter().map(|c| match c {
                Cell::Text(t) => Cell::Text(Cow::Owned(t.into_owned())),
                Cell::Null => Cell::Null,
                Cell::Container(k) => Cell::Container(k),
            }));
            Ok(extra)
        }
    }
}

fn check_cells(ds: &Dataset, cells: &[Cell]) -> Result<(), (&'static str, String)> {
    for (field, cell) in ds.fields.iter().zip(cells) {
        match cell {
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

fn parse_json<'a>(ds: &'static Dataset, bytes: &'a [u8], cells: &mut Vec<Cell<'a>>) -> Result<u32, String> {
    cells.clear();
    let mut raw: Vec<Option<&'a RawValue>> = vec![None; ds.fields.len()];
    let mut extra = 0u32;
    let mut duplicate: Option<String> = None;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    RecordSeed { ds, raw: &mut raw, extra: &mut extra, duplicate: &mut duplicate }
        .deserialize(&mut de)
        .and_then(|_| de.end())
        .map_err(|e| describe_json_error(&e))?;
    if let Some(key) = duplicate {
        return Err(format!("key {key:?} appears twice"));
    }
    for value in raw {
        cells.push(match value {
            None => Cell::Null,
            Some(v) => cell_of(v).map_err(|e| describe_json_error(&e))?,
        });
    }
    Ok(extra)
}

fn describe_json_error(e: &serde_json::Error) -> String {
    // serde_json counts lines and columns within the record; the record's own line is
    // reported beside this detail.
    format!("invalid JSON: {e}")
}

fn cell_of(v: &RawValue) -> Result<Cell<'_>, serde_json::Error> {
    let text = v.get();
    Ok(match text.as_bytes()[0] {
        b'n' => Cell::Null,
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
    extra: &'s mut u32,
    duplicate: &'s mut Option<String>,
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
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            match self.ds.field_index(&key) {
                Some(i) if self.raw[i].is_some() => {
                    if self.duplicate.is_none() {
                        *self.duplicate = Some(key.into_owned());
                    }
                }
                Some(i) => self.raw[i] = Some(value),
                None => *self.extra += 1,
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

/// Quotes the non-standard tokens `NaN`, `-NaN`, `Infinity` and `-Infinity` where they
/// stand as values outside strings. `None` if there were none (the error is elsewhere).
fn quote_bare_tokens(bytes: &[u8]) -> Option<Vec<u8>> {
    const TOKENS: [&[u8]; 4] = [b"-Infinity", b"Infinity", b"-NaN", b"NaN"];
    let mut out = Vec::with_capacity(bytes.len() + 8);
    let mut in_string = false;
    let mut changed = false;
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
                out.push(b'"');
                out.extend_from_slice(t);
                out.push(b'"');
                i += t.len();
                changed = true;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{TRACK_EVENTS, WEATHER};
    use crate::source::framing;

    fn parse(ds: &'static Dataset, input: &str) -> DataFrame {
        let scan = framing::scan(input.as_bytes(), 1, true);
        let chunk = Chunk { buf: input.as_bytes().to_vec(), spans: scan.spans, offset_end: input.len() as u64 };
        parse_chunk(ds, &chunk).unwrap()
    }

    fn text(df: &DataFrame, col: &str, row: usize) -> Option<String> {
        df.column(col).unwrap().str().unwrap().get(row).map(str::to_string)
    }

    #[test]
    fn values_become_text_whatever_their_json_type() {
        let df = parse(
            &WEATHER,
            "[{\"weather_data.city\": \"Z\\u00fcrich\", \"weather_data.currently_humidity\": 0.43, \
             \"currently_temperature\": \"10.12\", \"weather_data.currently_windspeed\": NaN, \"extra\": 1},\n",
        );
        assert_eq!(df.height(), 1);
        assert_eq!(text(&df, "city", 0).as_deref(), Some("Zürich"));
        assert_eq!(text(&df, "humidity", 0).as_deref(), Some("0.43"));
        assert_eq!(text(&df, "temperature", 0).as_deref(), Some("10.12"));
        assert_eq!(text(&df, "windspeed", 0).as_deref(), Some("NaN"));
        assert_eq!(text(&df, "date_time", 0), None);
        assert_eq!(df.column(COL_EXTRA).unwrap().u32().unwrap().get(0), Some(1));
        assert_eq!(text(&df, COL_ISSUE, 0), None);
    }

    #[test]
    fn broken_records_get_an_issue_and_keep_their_line() {
        let df = parse(
            &TRACK_EVENTS,
            "[{\"segment_tracks.event_name\": \"a\"},\n[1,2],\n{\"event_name\": {\"x\":1}},\n\
             {\"event_name\": \"a\", \"event_name\": \"b\"},\n{\"event_name\": \"nul\\u0000\"},\n{\"a\": tru}\n",
        );
        assert_eq!(df.height(), 6);
        let issues: Vec<_> = (0..6).map(|i| text(&df, COL_ISSUE, i)).collect();
        assert_eq!(
            issues,
            vec![None, Some("malformed".into()), Some("bad_value".into()), Some("malformed".into()), Some("bad_value".into()), Some("malformed".into())]
        );
        let lines: Vec<_> = df.column(COL_LINE).unwrap().u64().unwrap().into_no_null_iter().collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5, 6]);
        assert!(text(&df, COL_DETAIL, 3).unwrap().contains("twice"));
    }

    #[test]
    fn bare_tokens_are_quoted_outside_strings_only() {
        assert_eq!(quote_bare_tokens(b"{\"a\": NaN, \"b\": \"NaN\"}").unwrap(), b"{\"a\": \"NaN\", \"b\": \"NaN\"}");
        assert_eq!(quote_bare_tokens(b"{\"a\":-Infinity}").unwrap(), b"{\"a\":\"-Infinity\"}");
        assert_eq!(quote_bare_tokens(b"{\"a\": \"x NaN\"}"), None);
        assert_eq!(quote_bare_tokens(b"{\"a\": NaNa}"), None);
    }
}
