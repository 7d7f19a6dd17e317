//! Records -> a frame of text columns, one per declared field, in parallel.
//!
//! Every field is read as text first and cast later, by column (see `quality`): Polars'
//! JSON reader rejects the export's bare `NaN` and its quoted numbers, and a lenient
//! cast per column is both faster and easier to explain than a per-cell type switch.
//! Values are borrowed from the input buffer wherever no unescaping is needed.

use polars::prelude::*;
use rayon::prelude::*;

use crate::dataset::{Dataset, Key, Kind, MessagePart};
use crate::source::{Chunk, Messages, Span};
use crate::transform::record::{parse_record, whole_cell, Cell, KeyHints, Parsed};
pub use crate::transform::record::{BAD_VALUE, MALFORMED};
use crate::values::number;

pub use crate::frame::{COL_DETAIL, COL_EXTRA, COL_ISSUE, COL_LINE, COL_NAN, COL_RECORD, COL_ROW};

/// Records per parallel task: big enough to amortise a task, small enough to balance.
const TASK_RECORDS: usize = 2048;

/// Parses every record of a chunk. The frame has one row per span, in order. Values of
/// non-text fields are trimmed of PostgreSQL's whitespace; blank ones, and blank values of
/// required fields, become null.
pub fn parse_chunk(ds: &'static Dataset, chunk: &Chunk) -> PolarsResult<DataFrame> {
    parse_records(ds, &chunk.buf, &chunk.spans)
}

/// `parse_chunk` of the records at `spans` in `buf` (some of a chunk's: a split log's kind).
pub fn parse_records(ds: &'static Dataset, buf: &[u8], spans: &[Span]) -> PolarsResult<DataFrame> {
    let parts: Vec<DataFrame> = spans
        .par_chunks(TASK_RECORDS)
        .enumerate()
        .map(|(i, spans)| parse_spans(ds, buf, spans, i * TASK_RECORDS))
        .collect::<PolarsResult<_>>()?;
    let mut parts = parts.into_iter();
    let mut frame = parts.next().unwrap_or_else(|| empty_frame(ds));
    for p in parts {
        frame.vstack_mut_owned(p)?;
    }
    Ok(frame)
}

/// Sets the columns that hold a part of each record's Kafka message (`message = "..."`),
/// as text for their casts: the values of the records' messages in `messages`.
pub fn set_message_columns(ds: &Dataset, frame: &mut DataFrame, messages: &Messages) -> PolarsResult<()> {
    let parts: Vec<(&str, MessagePart)> = ds
        .fields
        .iter()
        .filter_map(|f| match f.key {
            Key::Message(part) => Some((f.name.as_str(), part)),
            _ => None,
        })
        .collect();
    if parts.is_empty() {
        return Ok(());
    }
    let records: Vec<u64> = frame.column(COL_RECORD)?.u64()?.into_no_null_iter().collect();
    // A record's line is its message's offset.
    let offsets: Vec<u64> = frame.column(COL_LINE)?.u64()?.into_no_null_iter().collect();
    for (name, part) in parts {
        let values: StringChunked = records
            .iter()
            .zip(&offsets)
            .map(|(record, offset)| {
                let at = record.checked_sub(messages.first_record).map(|i| i as usize);
                let text = match part {
                    MessagePart::Topic => messages.topic.to_string(),
                    MessagePart::Partition => messages.partition.to_string(),
                    MessagePart::Offset => offset.to_string(),
                    MessagePart::Key => match at.and_then(|i| messages.keys.get(i)).and_then(|k| k.as_deref()) {
                        None => return None,
                        Some(bytes) => match std::str::from_utf8(bytes) {
                            Ok(text) => text.to_string(),
                            Err(_) => std::iter::once("\\x".to_string()).chain(bytes.iter().map(|b| format!("{b:02x}"))).collect(),
                        },
                    },
                    MessagePart::Timestamp => {
                        let ms = at.and_then(|i| messages.timestamps.get(i)).copied()?;
                        chrono::DateTime::from_timestamp_millis(ms)?.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    }
                };
                Some(text)
            })
            .collect();
        frame.with_column(values.with_name(name.into()).into_column())?;
    }
    Ok(())
}

/// Asks for `bytes` to be brought into the cache (a hint: nothing where there is no such
/// instruction).
#[inline]
fn prefetch(bytes: &[u8]) {
    #[cfg(target_arch = "x86_64")]
    for line in bytes.chunks(64) {
        // SAFETY: a prefetch only hints the cache; the address is in a live slice.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr() as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = bytes;
}

fn empty_frame(ds: &'static Dataset) -> DataFrame {
    parse_spans(ds, &[], &[], 0).expect("an empty frame always builds")
}

struct Builders {
    fields: Vec<StringChunkedBuilder>,
    row: PrimitiveChunkedBuilder<UInt32Type>,
    line: PrimitiveChunkedBuilder<UInt64Type>,
    record: PrimitiveChunkedBuilder<UInt64Type>,
    issue: StringChunkedBuilder,
    detail: StringChunkedBuilder,
    extra: PrimitiveChunkedBuilder<UInt32Type>,
    nan: PrimitiveChunkedBuilder<UInt32Type>,
}

fn parse_spans(ds: &'static Dataset, buf: &[u8], spans: &[Span], first_row: usize) -> PolarsResult<DataFrame> {
    let n = spans.len();
    let mut b = Builders {
        fields: ds.fields.iter().map(|f| StringChunkedBuilder::new(f.name.as_str().into(), n)).collect(),
        row: PrimitiveChunkedBuilder::new(COL_ROW.into(), n),
        line: PrimitiveChunkedBuilder::new(COL_LINE.into(), n),
        record: PrimitiveChunkedBuilder::new(COL_RECORD.into(), n),
        issue: StringChunkedBuilder::new(COL_ISSUE.into(), n),
        detail: StringChunkedBuilder::new(COL_DETAIL.into(), n),
        extra: PrimitiveChunkedBuilder::new(COL_EXTRA.into(), n),
        nan: PrimitiveChunkedBuilder::new(COL_NAN.into(), n),
    };
    let mut cells: Vec<Cell> = Vec::with_capacity(ds.fields.len());
    let mut hints = KeyHints::default();
    // A catch-all table's column of whole records, or a child's of whole elements; a child
    // of an array of scalars reads nothing else (its elements are not objects).
    let record_field = ds.record_field();
    let keeps_every_key = record_field.is_some() || ds.rest_field().is_some();
    let element_only = record_field.is_some() && ds.fields.iter().all(|f| f.key == Key::Record || f.is_set_by_tier());
    for (i, span) in spans.iter().enumerate() {
        // A split log's kind has its records scattered among the other kinds': the next one
        // is fetched into the cache while this one is parsed (contiguous records the
        // hardware prefetcher finds on its own).
        if let Some(next) = spans.get(i + 1).filter(|n| n.start != span.end + 1) {
            prefetch(&buf[next.start..next.end]);
        }
        b.row.append_value((first_row + i) as u32);
        b.line.append_value(span.line);
        b.record.append_value(span.record);
        let bytes = &buf[span.start..span.end];
        let outcome = match span.damage {
            Some(d) => Err((MALFORMED, d.describe().to_string())),
            None if element_only => {
                cells.clear();
                cells.resize_with(ds.fields.len(), || Cell::Null);
                Ok(Parsed::default())
            }
            None => parse_record(ds, bytes, &mut cells, &mut hints),
        };
        let whole = match (&outcome, record_field) {
            (Ok(_), Some(j)) => Some(whole_cell(&ds.fields[j], bytes)),
            _ => None,
        };
        let (outcome, mut whole) = match whole {
            Some(Err(e)) => (Err(e), None),
            Some(Ok((cell, nan))) => (outcome.map(|p| Parsed { nan: p.nan + nan, ..p }), Some(cell)),
            None => (outcome, None),
        };
        match outcome {
            Ok(parsed) => {
                b.issue.append_null();
                b.detail.append_null();
                // The whole record is kept, or every other key: no key of it is unknown.
                b.extra.append_value(if keeps_every_key { 0 } else { parsed.extra });
                b.nan.append_value(parsed.nan);
                for (j, ((builder, cell), field)) in b.fields.iter_mut().zip(cells.drain(..)).zip(&ds.fields).enumerate() {
                    let cell = match whole.take_if(|_| record_field == Some(j)) {
                        Some(w) => w,
                        None => cell,
                    };
                    match cell {
                        _ if field.is_record_id() => builder.append_value(span.record.to_string()),
                        Cell::Null => builder.append_null(),
                        // Blank is absent for what must be cast (an export writes "" where it
                        // has nothing). Around a cast value only the whitespace PostgreSQL's
                        // input functions skip is trimmed, so the cast sees what they see.
                        Cell::Text(t) if field.kind != Kind::Text => match number::trim_pg(&t) {
                            "" => builder.append_null(),
                            trimmed => builder.append_value(trimmed),
                        },
                        // A required text that is blank is missing; any other text is
                        // stored exactly as sent.
                        Cell::Text(t) if field.required && t.trim().is_empty() => builder.append_null(),
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
                b.nan.append_value(0);
                for builder in b.fields.iter_mut() {
                    builder.append_null();
                }
            }
        }
    }
    let mut columns: Vec<Column> = b.fields.into_iter().map(|f| f.finish().into_column()).collect();
    columns.push(b.row.finish().into_column());
    columns.push(b.line.finish().into_column());
    columns.push(b.record.finish().into_column());
    columns.push(b.issue.finish().into_column());
    columns.push(b.detail.finish().into_column());
    columns.push(b.extra.finish().into_column());
    columns.push(b.nan.finish().into_column());
    DataFrame::new(columns)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::framing;

    fn parse(ds: &'static Dataset, input: &str) -> DataFrame {
        let scan = framing::scan(input.as_bytes(), 1, true);
        let chunk = Chunk { buf: input.as_bytes().to_vec(), spans: scan.spans, offset_end: input.len() as u64, messages: None };
        parse_chunk(ds, &chunk).unwrap()
    }

    fn text(df: &DataFrame, col: &str, row: usize) -> Option<String> {
        df.column(col).unwrap().str().unwrap().get(row).map(str::to_string)
    }

    #[test]
    fn values_become_text_whatever_their_json_type() {
        let df = parse(
            crate::contract::example("weather"),
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
    fn blank_means_absent_where_a_value_is_required_or_cast() {
        let df = parse(
            crate::contract::example("weather"),
            "{\"city\": \"  \", \"currently_humidity\": \" 0.5 \", \"currently_preciptype\": \" \", \"date_time\": \"\"}",
        );
        assert_eq!(text(&df, "city", 0), None);
        assert_eq!(text(&df, "date_time", 0), None);
        assert_eq!(text(&df, "humidity", 0).as_deref(), Some("0.5"));
        // an optional text field keeps what it was sent
        assert_eq!(text(&df, "preciptype", 0).as_deref(), Some(" "));
    }

    #[test]
    fn broken_records_get_an_issue_and_keep_their_line() {
        let df = parse(
            crate::contract::example("track_events"),
            "[{\"segment_tracks.event_name\": \"a\"},\n[1,2],\n{\"event_name\": {\"x\":1}},\n\
             {\"event_name\": \"a\", \"event_name\": \"b\"},\n{\"event_name\": \"nul\\u0000\"},\n{\"a\": tru}\n",
        );
        assert_eq!(df.height(), 6);
        let issues: Vec<_> = (0..6).map(|i| text(&df, COL_ISSUE, i)).collect();
        assert_eq!(
            issues,
            vec![
                None,
                Some("malformed".into()),
                Some("bad_value".into()),
                Some("malformed".into()),
                Some("bad_value".into()),
                Some("malformed".into())
            ]
        );
        let lines: Vec<_> = df.column(COL_LINE).unwrap().u64().unwrap().into_no_null_iter().collect();
        assert_eq!(lines, vec![1, 2, 3, 4, 5, 6]);
        assert!(text(&df, COL_DETAIL, 3).unwrap().contains("twice"));
    }
}
