//! Frames -> PostgreSQL's binary COPY format.
//!
//! Encoded straight from the column arrays into one buffer per chunk, rather than through
//! `BinaryCopyInWriter`, which takes a `&dyn ToSql` per cell: this is the load's hottest
//! loop. The format is documented in the PostgreSQL manual ("COPY", "Binary Format").

use polars::prelude::*;

use crate::dataset::{self, Dataset, Kind};

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
pub const PG_EPOCH_OFFSET_MICROS: i64 = 946_684_800_000_000;

pub fn header(out: &mut Vec<u8>) {
    out.extend_from_slice(SIGNATURE);
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
}

pub fn trailer(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i16).to_be_bytes());
}

/// Days from the Unix epoch to PostgreSQL's (2000-01-01).
pub const PG_EPOCH_OFFSET_DAYS: i32 = 10_957;

/// A column's one chunk (the frame is rechunked), read by index: cheaper per cell than the
/// chunked array's own lookups, and this is the load's hottest loop.
enum Cells<'a> {
    Text(&'a Chunk<StringType>),
    Integer(&'a Chunk<Int32Type>),
    Bigint(&'a Chunk<Int64Type>),
    Double(&'a Chunk<Float64Type>),
    Numeric(&'a Chunk<StringType>),
    Boolean(&'a Chunk<BooleanType>),
    Timestamp(&'a Chunk<Int64Type>),
    Date(&'a Chunk<Int32Type>),
    Json(&'a Chunk<StringType>),
}

/// The Arrow array behind one chunk of a column of type `T`.
type Chunk<T> = <T as PolarsDataType>::Array;

/// The only chunk of a rechunked column.
fn only_chunk<T: PolarsDataType>(ca: &ChunkedArray<T>) -> PolarsResult<&T::Array> {
    match ca.chunks().len() {
        1 => Ok(ca.downcast_iter().next().expect("one chunk")),
        n => Err(PolarsError::ComputeError(format!("{}: {n} chunks where one was expected", ca.name()).into())),
    }
}

/// Appends every row of `frame` (the dataset's fields, then `load_id`, then with
/// `with_record` the record's ordinal, for a staging table) to `out`.
pub fn encode_rows(ds: &Dataset, frame: &DataFrame, load_id: i64, with_record: bool, out: &mut Vec<u8>) -> PolarsResult<()> {
    encode(&ds.fields.iter().collect::<Vec<_>>(), frame, Some(load_id), with_record, out)
}

/// Appends the key columns of every row of `frame`, then its record's ordinal.
pub fn encode_keys(ds: &Dataset, frame: &DataFrame, out: &mut Vec<u8>) -> PolarsResult<()> {
    let keys: Vec<&dataset::Field> = ds.unique.iter().filter_map(|k| ds.field(k)).collect();
    encode(&keys, frame, None, true, out)
}

fn encode(fields: &[&dataset::Field], frame: &DataFrame, load_id: Option<i64>, with_record: bool, out: &mut Vec<u8>) -> PolarsResult<()> {
    let records = match with_record {
        true => Some(frame.column(crate::transform::parse::COL_RECORD)?.u64()?.rechunk()),
        false => None,
    };
    let mut frame = frame.select(fields.iter().map(|f| f.name.as_str()))?;
    if frame.height() == 0 {
        return Ok(());
    }
    frame.rechunk_mut();
    let columns: Vec<Cells> = fields
        .iter()
        .map(|f| {
            let c = frame.column(&f.name)?;
            Ok(match f.kind {
                Kind::Text => Cells::Text(only_chunk(c.str()?)?),
                Kind::Integer => Cells::Integer(only_chunk(c.i32()?)?),
                Kind::Bigint => Cells::Bigint(only_chunk(c.i64()?)?),
                Kind::Double => Cells::Double(only_chunk(c.f64()?)?),
                Kind::Numeric => Cells::Numeric(only_chunk(c.str()?)?),
                Kind::Boolean => Cells::Boolean(only_chunk(c.bool()?)?),
                Kind::Timestamp => Cells::Timestamp(only_chunk(c.datetime()?.physical())?),
                Kind::Date => Cells::Date(only_chunk(c.date()?.physical())?),
                Kind::Json => Cells::Json(only_chunk(c.str()?)?),
            })
        })
        .collect::<PolarsResult<_>>()?;
    let records = match &records {
        Some(r) => Some(only_chunk(r)?),
        None => None,
    };
    let ncols = (columns.len() + load_id.is_some() as usize + with_record as usize) as i16;
    out.reserve(frame.height() * (2 + columns.len() * 24));
    for i in 0..frame.height() {
        out.extend_from_slice(&ncols.to_be_bytes());
        for c in &columns {
            match c {
                Cells::Text(a) => text(out, a.get(i).map(str::as_bytes)),
                Cells::Integer(a) => fixed(out, a.get(i).map(i32::to_be_bytes)),
                Cells::Bigint(a) => fixed(out, a.get(i).map(i64::to_be_bytes)),
                Cells::Double(a) => fixed(out, a.get(i).map(f64::to_be_bytes)),
                Cells::Numeric(a) => numeric(out, a.get(i)),
                Cells::Boolean(a) => fixed(out, a.get(i).map(|b| [b as u8])),
                Cells::Timestamp(a) => fixed(out, a.get(i).map(|us| (us - PG_EPOCH_OFFSET_MICROS).to_be_bytes())),
                Cells::Date(a) => fixed(out, a.get(i).map(|d| (d - PG_EPOCH_OFFSET_DAYS).to_be_bytes())),
                Cells::Json(a) => jsonb(out, a.get(i)),
            }
        }
        if let Some(id) = load_id {
            fixed(out, Some(id.to_be_bytes()));
        }
        if let Some(records) = &records {
            fixed(out, records.get(i).map(|r| (r as i64).to_be_bytes()));
        }
    }
    Ok(())
}

/// jsonb's binary format: a version byte (1), then the JSON text.
fn jsonb(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(j) => {
            out.extend_from_slice(&(j.len() as i32 + 1).to_be_bytes());
            out.push(1);
            out.extend_from_slice(j.as_bytes());
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

/// A canonical decimal in `numeric`'s binary form: ndigits, weight, sign, dscale, digits.
fn numeric(out: &mut Vec<u8>, v: Option<&str>) {
    let Some(v) = v else { return text(out, None) };
    let g = crate::values::number::groups(v);
    let len = 8 + 2 * g.digits.len();
    out.extend_from_slice(&(len as i32).to_be_bytes());
    out.extend_from_slice(&(g.digits.len() as i16).to_be_bytes());
    out.extend_from_slice(&g.weight.to_be_bytes());
    out.extend_from_slice(&(if g.negative { 0x4000u16 } else { 0 }).to_be_bytes());
    out.extend_from_slice(&g.scale.to_be_bytes());
    for d in g.digits {
        out.extend_from_slice(&d.to_be_bytes());
    }
}

/// A quarantined record, as stored in `<table>_rejects`.
pub struct Reject {
    pub line: u64,
    /// Its ordinal in the file (a line may hold many records).
    pub record: u64,
    pub reason: String,
    pub detail: Option<String>,
    pub raw: Vec<u8>,
}

/// Appends rejects: load_id, source_file, line, record, reason, detail, raw (text, lossy)
/// and raw_bytes (the exact bytes, only when the text had to be altered).
pub fn encode_rejects(rejects: &[Reject], load_id: i64, source_file: &str, out: &mut Vec<u8>) {
    for r in rejects {
        out.extend_from_slice(&8i16.to_be_bytes());
        fixed(out, Some(load_id.to_be_bytes()));
        text(out, Some(source_file.as_bytes()));
        fixed(out, Some((r.line as i64).to_be_bytes()));
        fixed(out, Some((r.record as i64).to_be_bytes()));
        text(out, Some(r.reason.as_bytes()));
        text(out, r.detail.as_deref().map(str::as_bytes));
        let lossy = String::from_utf8_lossy(&r.raw);
        let exact = matches!(lossy, std::borrow::Cow::Borrowed(_)) && !r.raw.contains(&0);
        let readable = lossy.replace('\0', "\u{FFFD}");
        text(out, Some(readable.as_bytes()));
        text(out, (!exact).then_some(r.raw.as_slice()));
    }
}

fn text(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(b) => {
            out.extend_from_slice(&(b.len() as i32).to_be_bytes());
            out.extend_from_slice(b);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

fn fixed<const N: usize>(out: &mut Vec<u8>, v: Option<[u8; N]>) {
    match v {
        Some(b) => {
            out.extend_from_slice(&(N as i32).to_be_bytes());
            out.extend_from_slice(&b);
        }
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_cells_in_network_order() {
        let mut out = Vec::new();
        let rejects = [Reject { line: 7, record: 9, reason: "malformed".into(), detail: None, raw: b"x\0\xff".to_vec() }];
        encode_rejects(&rejects, 3, "f.json", &mut out);
        assert_eq!(&out[..2], &8i16.to_be_bytes());
        assert_eq!(&out[2..6], &8i32.to_be_bytes());
        assert_eq!(&out[6..14], &3i64.to_be_bytes());
        // source file (4 + 6 bytes), then the line and the record
        assert_eq!(&out[24..36], [&8i32.to_be_bytes()[..], &7i64.to_be_bytes()[..]].concat());
        assert_eq!(&out[36..48], [&8i32.to_be_bytes()[..], &9i64.to_be_bytes()[..]].concat());
        // the exact bytes are kept because the text had to be altered
        assert!(out.ends_with(&[0, 0, 0, 3, b'x', 0, 0xff]));
    }
}
