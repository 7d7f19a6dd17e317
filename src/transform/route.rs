//! A split log's chunk -> one chunk per table: each record's kind read (the value at the
//! log's `split_by`), the record handed to its kind's table, the catch-all, or the rejects.
//! A record that is not a JSON object is a `malformed` reject here, as a table would say.

use crate::dataset::{Dataset, Split};
use crate::reasons::{BAD_VALUE, MALFORMED, UNROUTED};
use crate::source::{Chunk, Span};
use crate::transform::record::{parse_record, Cell, KeyHints};

/// A record no table takes: its place in the chunk, the reason and what it says.
pub struct Refused {
    pub span: usize,
    pub reason: &'static str,
    pub detail: String,
}

/// A chunk's records by table.
pub struct Routed {
    /// `(table, its records)` for each table that takes some, in table order.
    pub parts: Vec<(usize, Chunk)>,
    pub refused: Vec<Refused>,
    /// The chunk's own buffer, when its records were copied out (else it is the one part's).
    pub spare: Option<Vec<u8>>,
    /// The refused records' bytes (`Refused::span` indexes these spans).
    pub refused_chunk: Chunk,
}

/// Routes the records of `chunk` to the tables of `split`.
pub fn route(ds: &Dataset, split: &Split, chunk: Chunk) -> Routed {
    let mut cells: Vec<Cell> = Vec::with_capacity(1);
    let mut hints = KeyHints::default();
    let mut table_of: Vec<Option<usize>> = Vec::with_capacity(chunk.spans.len());
    let mut refused = Vec::new();
    for (i, span) in chunk.spans.iter().enumerate() {
        let routed = match span.damage {
            Some(d) => Err((MALFORMED, d.describe().to_string())),
            None => kind_of(split.router, chunk.bytes(span), &mut cells, &mut hints),
        };
        let table = match routed {
            Ok(kind) => match split.route(kind.as_deref()) {
                Some(t) => Some(t),
                None => {
                    let detail = match kind {
                        Some(k) => format!("{} is {k:?}: no table of {} takes it", split.by.display(), ds.name),
                        None => format!("no {} (a text) to route it by", split.by.display()),
                    };
                    refused.push(Refused { span: i, reason: UNROUTED, detail });
                    None
                }
            },
            Err((reason, detail)) => {
                refused.push(Refused { span: i, reason, detail });
                None
            }
        };
        table_of.push(table);
    }
    let first = table_of.iter().flatten().next().copied();
    // All to one table: the chunk is that table's as it is.
    if refused.is_empty() {
        if let Some(only) = first.filter(|&t| table_of.iter().all(|x| *x == Some(t))) {
            let empty = Chunk { buf: Vec::new(), spans: Vec::new(), offset_end: chunk.offset_end };
            return Routed { parts: vec![(only, chunk)], refused, spare: None, refused_chunk: empty };
        }
    }
    let tables = split.tables.len();
    let mut parts: Vec<Option<Chunk>> = (0..tables).map(|_| None).collect();
    let mut refused_chunk = Chunk { buf: Vec::new(), spans: Vec::new(), offset_end: chunk.offset_end };
    let mut refused_at = refused.iter_mut().peekable();
    for (i, (span, table)) in chunk.spans.iter().zip(&table_of).enumerate() {
        let into = match table {
            Some(t) => parts[*t].get_or_insert_with(|| Chunk { buf: Vec::new(), spans: Vec::new(), offset_end: chunk.offset_end }),
            None => {
                let r = refused_at.next().filter(|r| r.span == i).expect("every unrouted record is refused, in order");
                r.span = refused_chunk.spans.len();
                &mut refused_chunk
            }
        };
        copy_record(into, &chunk, span);
    }
    let parts = parts.into_iter().enumerate().filter_map(|(t, c)| c.map(|c| (t, c))).collect();
    Routed { parts, refused, spare: Some(chunk.buf), refused_chunk }
}

fn copy_record(into: &mut Chunk, from: &Chunk, span: &Span) {
    let start = into.buf.len();
    into.buf.extend_from_slice(from.bytes(span));
    into.spans.push(Span { start, end: into.buf.len(), ..*span });
    into.buf.push(b'\n');
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
