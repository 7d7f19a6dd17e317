//! A query's result as Polars frames, decoded straight from the server's binary COPY
//! (`COPY (query) TO STDOUT (FORMAT binary)`), for the exports that stream (Parquet,
//! NDJSON). The server sends fixed-width numbers and timestamps as they are stored, and
//! this side copies them into column builders in one pass: on two cores that beats
//! connectorx's per-cell decoding, which took more CPU than the server itself. Column
//! types outside the common ones (intervals, arrays, ...) are read as the server's text
//! for them. Read-only queries run here, in a transaction that is rolled back.
//!
//! The format is the PostgreSQL manual's "COPY", "Binary Format"; each type's binary
//! form is its `*send` function's.

use std::fmt::Write as _;
use std::io::Read;
use std::sync::mpsc::sync_channel;

use anyhow::Result;
use polars::prelude::*;
use postgres::types::Type;

use super::connect::{self, describe, exec, ident, Target};
use super::copy::{PG_EPOCH_OFFSET_DAYS as PG_EPOCH_DAYS, PG_EPOCH_OFFSET_MICROS as PG_EPOCH_MICROS};
use crate::error::Failure;

/// Rows per frame: a Parquet row group each, big enough for the writer's parallel work.
pub const BATCH_ROWS: usize = 64 * 1024;

/// How one result column is decoded, and the Polars type it becomes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Decode {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    /// text, varchar, bpchar, name, json: the bytes are UTF-8 text.
    Text,
    /// jsonb: a version byte (1), then the text.
    Jsonb,
    Uuid,
    /// timestamp and timestamptz: UTC instants without a zone tag, as tier keeps them.
    Timestamp,
    Date,
    /// numeric: exact decimal text (this Polars has no decimal type).
    Numeric,
    /// bytea: the bytes.
    Bytea,
}

impl Decode {
    fn of(ty: &Type) -> Option<Decode> {
        Some(match *ty {
            Type::INT2 => Decode::Int2,
            Type::INT4 => Decode::Int4,
            Type::INT8 => Decode::Int8,
            Type::FLOAT4 => Decode::Float4,
            Type::FLOAT8 => Decode::Float8,
            Type::BOOL => Decode::Bool,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::JSON => Decode::Text,
            Type::JSONB => Decode::Jsonb,
            Type::UUID => Decode::Uuid,
            Type::TIMESTAMP | Type::TIMESTAMPTZ => Decode::Timestamp,
            Type::DATE => Decode::Date,
            Type::NUMERIC => Decode::Numeric,
            Type::BYTEA => Decode::Bytea,
            _ => return None,
        })
    }
}

/// One column's values as they arrive.
enum Builder {
    Int32(PrimitiveChunkedBuilder<Int32Type>),
    Int64(PrimitiveChunkedBuilder<Int64Type>),
    Float32(PrimitiveChunkedBuilder<Float32Type>),
    Float64(PrimitiveChunkedBuilder<Float64Type>),
    Bool(BooleanChunkedBuilder),
    Str(StringChunkedBuilder),
    Datetime(PrimitiveChunkedBuilder<Int64Type>),
    Date(PrimitiveChunkedBuilder<Int32Type>),
    Binary(BinaryChunkedBuilder),
}

struct Decoder {
    name: String,
    decode: Decode,
    builder: Builder,
}

impl Decoder {
    fn new(name: &str, decode: Decode, rows: usize) -> Decoder {
        let n: PlSmallStr = name.into();
        let builder = match decode {
            Decode::Int2 | Decode::Int4 => Builder::Int32(PrimitiveChunkedBuilder::new(n, rows)),
            Decode::Int8 => Builder::Int64(PrimitiveChunkedBuilder::new(n, rows)),
            Decode::Float4 => Builder::Float32(PrimitiveChunkedBuilder::new(n, rows)),
            Decode::Float8 => Builder::Float64(PrimitiveChunkedBuilder::new(n, rows)),
            Decode::Bool => Builder::Bool(BooleanChunkedBuilder::new(n, rows)),
            Decode::Text | Decode::Jsonb | Decode::Uuid | Decode::Numeric => Builder::Str(StringChunkedBuilder::new(n, rows)),
            Decode::Timestamp => Builder::Datetime(PrimitiveChunkedBuilder::new(n, rows)),
            Decode::Date => Builder::Date(PrimitiveChunkedBuilder::new(n, rows)),
            Decode::Bytea => Builder::Binary(BinaryChunkedBuilder::new(n, rows)),
        };
        Decoder { name: name.to_string(), decode, builder }
    }

    fn null(&mut self) {
        match &mut self.builder {
            Builder::Int32(b) | Builder::Date(b) => b.append_null(),
            Builder::Int64(b) | Builder::Datetime(b) => b.append_null(),
            Builder::Float32(b) => b.append_null(),
            Builder::Float64(b) => b.append_null(),
            Builder::Bool(b) => b.append_null(),
            Builder::Str(b) => b.append_null(),
            Builder::Binary(b) => b.append_null(),
        }
    }

    /// Appends one value in its binary form.
    fn value(&mut self, v: &[u8], text: &mut String) -> Result<(), String> {
        match (&mut self.builder, self.decode) {
            (Builder::Int32(b), Decode::Int2) => b.append_value(i16::from_be_bytes(sized(v)?) as i32),
            (Builder::Int32(b), _) => b.append_value(i32::from_be_bytes(sized(v)?)),
            (Builder::Int64(b), _) => b.append_value(i64::from_be_bytes(sized(v)?)),
            (Builder::Float32(b), _) => b.append_value(f32::from_be_bytes(sized(v)?)),
            (Builder::Float64(b), _) => b.append_value(f64::from_be_bytes(sized(v)?)),
            (Builder::Bool(b), _) => b.append_value(sized::<1>(v)?[0] != 0),
            (Builder::Datetime(b), _) => match i64::from_be_bytes(sized(v)?) {
                i64::MAX | i64::MIN => {
                    return Err("an infinite timestamp, which a file's timestamp cannot hold: cast it in the query".into())
                }
                us => b.append_value(us + PG_EPOCH_MICROS),
            },
            (Builder::Date(b), _) => match i32::from_be_bytes(sized(v)?) {
                i32::MAX | i32::MIN => return Err("an infinite date, which a file's date cannot hold: cast it in the query".into()),
                days => b.append_value(days + PG_EPOCH_DAYS),
            },
            (Builder::Binary(b), _) => b.append_value(v),
            (Builder::Str(b), decode) => {
                let s = match decode {
                    Decode::Text => utf8(v)?,
                    Decode::Jsonb => match v.split_first() {
                        Some((1, body)) => utf8(body)?,
                        _ => return Err("a jsonb value of an unknown version".into()),
                    },
                    Decode::Uuid => {
                        uuid_text(&sized::<16>(v)?, text);
                        text.as_str()
                    }
                    _ => {
                        numeric_text(v, text)?;
                        text.as_str()
                    }
                };
                b.append_value(s)
            }
        }
        Ok(())
    }

    /// The column so far as a Polars column; the builder starts again empty.
    fn take(&mut self, rows: usize) -> Column {
        let fresh = Decoder::new(&self.name, self.decode, rows).builder;
        match std::mem::replace(&mut self.builder, fresh) {
            Builder::Int32(b) => b.finish().into_column(),
            Builder::Int64(b) => b.finish().into_column(),
            Builder::Float32(b) => b.finish().into_column(),
            Builder::Float64(b) => b.finish().into_column(),
            Builder::Bool(b) => b.finish().into_column(),
            Builder::Str(b) => b.finish().into_column(),
            Builder::Datetime(b) => b.finish().into_datetime(TimeUnit::Microseconds, None).into_column(),
            Builder::Date(b) => b.finish().into_date().into_column(),
            Builder::Binary(b) => b.finish().into_column(),
        }
    }
}

/// A fixed-width value's bytes, or what is wrong with their count.
fn sized<const N: usize>(v: &[u8]) -> Result<[u8; N], String> {
    v.try_into().map_err(|_| format!("{} bytes where {N} belong", v.len()))
}

fn utf8(v: &[u8]) -> Result<&str, String> {
    simdutf8::basic::from_utf8(v).map_err(|_| "text that is not UTF-8 (set the database's encoding to UTF8)".to_string())
}

/// A uuid's 16 bytes as its canonical text (lowercase, hyphenated).
fn uuid_text(v: &[u8], out: &mut String) {
    out.clear();
    for (i, b) in v.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        let _ = write!(out, "{b:02x}");
    }
}

/// numeric's binary form (ndigits, weight, sign, dscale, then base-10000 digits) as the
/// text `numeric_out` prints: every digit of the integer part, `dscale` decimals.
fn numeric_text(v: &[u8], out: &mut String) -> Result<(), String> {
    let bad = || "a numeric value that is cut short".to_string();
    let word = |i: usize| v.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(bad);
    let (ndigits, weight, sign, dscale) = (word(0)? as usize, word(2)? as i16 as i32, word(4)?, word(6)? as usize);
    out.clear();
    let special = match sign {
        0xC000 => Some("NaN"),
        0xD000 => Some("Infinity"),
        0xF000 => Some("-Infinity"),
        _ => None,
    };
    if let Some(s) = special {
        out.push_str(s);
        return Ok(());
    }
    if sign == 0x4000 {
        out.push('-');
    }
    let digits: Vec<u16> = (0..ndigits).map(|i| word(8 + 2 * i)).collect::<Result<_, _>>()?;
    // Digit group i stands for digits[i] * 10000^(weight - i).
    let group = |i: i32| if i >= 0 && (i as usize) < digits.len() { digits[i as usize] } else { 0 };
    // Writing into a String cannot fail.
    if weight < 0 {
        out.push('0');
    } else {
        let _ = write!(out, "{}", group(0));
        for i in 1..=weight {
            let _ = write!(out, "{:04}", group(i));
        }
    }
    if dscale > 0 {
        out.push('.');
        let point = out.len();
        let mut i = weight + 1;
        while out.len() - point < dscale {
            let _ = write!(out, "{:04}", group(i));
            i += 1;
        }
        out.truncate(point + dscale);
    }
    Ok(())
}

/// Bytes of a COPY stream, read in large blocks; a row may straddle two reads.
struct Stream<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl<R: Read> Stream<R> {
    /// Makes at least `n` bytes available from `start`; false at the end of the stream.
    fn fill(&mut self, n: usize) -> std::io::Result<bool> {
        while self.end - self.start < n {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            // A value longer than the buffer (a large text) grows it.
            if self.buf.len() < n {
                self.buf.resize(n.next_power_of_two(), 0);
            }
            let read = self.inner.read(&mut self.buf[self.end..])?;
            if read == 0 {
                return Ok(false);
            }
            self.end += read;
        }
        Ok(true)
    }
}

/// Why a COPY stream could not be read: the server's error, or bytes that are not what the
/// format says.
enum ReadError {
    Io(std::io::Error),
    Format(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Streams `sql`'s result as frames of up to `BATCH_ROWS` rows, handing each to `each` on
/// this thread while the next is read and decoded on another; the first frame is empty and
/// carries the columns. A column of a type this module does not decode (an interval, an
/// array) comes as the server's text for it.
///
/// Read-only (`read_only`), the query runs in a read-only transaction that is rolled back,
/// never committed: PostgreSQL lets a read-only transaction create large objects
/// (`lo_from_bytea`), and only the rollback takes them back.
pub fn copy_frames(target: &Target, sql: &str, read_only: bool, schema: &str, mut each: impl FnMut(DataFrame) -> Result<()>) -> Result<()> {
    let mut client = connect::connect(target, 3)?;
    let mut settings = format!("SET search_path TO {}, public;", ident(schema));
    if read_only {
        settings.push_str(" SET default_transaction_read_only = on; BEGIN READ ONLY;");
    }
    exec(&mut client, "cannot prepare the session", &settings)?;
    let sql = sql.trim().trim_end_matches(';');
    let statement = client.prepare(sql).map_err(|e| Failure::Database(describe(&e)))?;
    let mut columns = Vec::with_capacity(statement.columns().len());
    let mut as_text = false;
    for c in statement.columns() {
        let decode = Decode::of(c.type_()).unwrap_or_else(|| {
            as_text = true;
            Decode::Text
        });
        columns.push(Decoder::new(c.name(), decode, BATCH_ROWS));
    }
    let sql = match as_text {
        true => with_text_casts(sql, &statement)?,
        false => sql.to_string(),
    };
    each(frame(&mut columns)?)?;

    let (to_writer, frames) = sync_channel::<DataFrame>(2);
    let copy = format!("COPY ({sql}) TO STDOUT (FORMAT binary)");
    let reader = std::thread::Builder::new().name("tier-copy-out".into()).spawn(move || -> Result<()> {
        let outcome = {
            let stream = client.copy_out(&copy).map_err(|e| Failure::Database(describe(&e)))?;
            let mut stream = Stream { inner: stream, buf: vec![0; 1 << 20], start: 0, end: 0 };
            decode_rows(&mut stream, &mut columns, |columns| match frame(columns) {
                // The receiver has gone only when writing failed; that error is reported.
                Ok(f) => Ok(to_writer.send(f).is_ok()),
                Err(e) => Err(ReadError::Format(e.to_string())),
            })
        };
        match outcome {
            Ok(()) if read_only => exec(&mut client, "cannot end the read-only transaction", "ROLLBACK"),
            Ok(()) => Ok(()),
            // The server's own message is inside the I/O error COPY reports.
            Err(ReadError::Io(e)) => {
                let message = e.get_ref().and_then(|inner| inner.downcast_ref::<postgres::Error>()).map(describe).unwrap_or(e.to_string());
                Err(Failure::Database(format!("the query failed while its rows were read: {message}")).into())
            }
            Err(ReadError::Format(m)) => Err(Failure::Database(format!("the query's rows could not be read: {m}")).into()),
        }
    })?;
    let mut written = Ok(());
    for f in frames.iter() {
        written = each(f);
        if written.is_err() {
            break;
        }
    }
    drop(frames);
    let read = reader.join().map_err(|_| anyhow::anyhow!("the COPY reader thread panicked"))?;
    // A read that failed explains a short result; a write that failed stopped the read.
    read?;
    written?;
    Ok(())
}

/// Streams `sql`'s result as frames of up to `BATCH_ROWS` rows through `client`, on this
/// thread and inside whatever transaction it has open: a load's Iceberg lake reads the rows
/// its merge wrote before they are committed. Every column must be of a type `Decode` reads
/// (the caller casts the rest to text).
pub fn copy_frames_in(client: &mut postgres::Client, sql: &str, mut each: impl FnMut(DataFrame) -> Result<()>) -> Result<()> {
    let statement = client.prepare(sql).map_err(|e| Failure::Database(describe(&e)))?;
    let mut columns = Vec::with_capacity(statement.columns().len());
    for c in statement.columns() {
        let decode =
            Decode::of(c.type_()).ok_or_else(|| anyhow::anyhow!("column {} is of type {}, which is not read here", c.name(), c.type_()))?;
        columns.push(Decoder::new(c.name(), decode, BATCH_ROWS));
    }
    let copy = format!("COPY ({sql}) TO STDOUT (FORMAT binary)");
    let stream = client.copy_out(&copy).map_err(|e| Failure::Database(describe(&e)))?;
    let mut stream = Stream { inner: stream, buf: vec![0; 1 << 20], start: 0, end: 0 };
    let mut failed = None;
    let outcome = decode_rows(&mut stream, &mut columns, |columns| match frame(columns).map_err(anyhow::Error::from).and_then(&mut each) {
        Ok(()) => Ok(true),
        Err(e) => {
            failed = Some(e);
            Ok(false)
        }
    });
    if let Some(e) = failed {
        return Err(e);
    }
    match outcome {
        Ok(()) => Ok(()),
        Err(ReadError::Io(e)) => {
            let message = e.get_ref().and_then(|inner| inner.downcast_ref::<postgres::Error>()).map(describe).unwrap_or(e.to_string());
            Err(Failure::Database(format!("the rows could not be read: {message}")).into())
        }
        Err(ReadError::Format(m)) => Err(Failure::Database(format!("the rows could not be read: {m}")).into()),
    }
}

/// The query with every column of a type `Decode` does not read cast to text (by name:
/// the names must be distinct, as a frame's are).
fn with_text_casts(sql: &str, statement: &postgres::Statement) -> Result<String> {
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    if let Some(twice) = names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)).map(|(_, n)| n) {
        return Err(Failure::Input(format!("the result has two columns named {twice:?}: name them apart (AS ...)")).into());
    }
    let list: Vec<String> = statement
        .columns()
        .iter()
        .map(|c| match Decode::of(c.type_()) {
            Some(_) => format!("tier_q.{}", ident(c.name())),
            None => format!("tier_q.{0}::text AS {0}", ident(c.name())),
        })
        .collect();
    Ok(format!("SELECT {} FROM ({sql}) AS tier_q", list.join(", ")))
}

/// A whole result as one frame: each query of `sqls` (a query split into ranges) on a
/// connection of its own, side by side, their rows stacked in order.
pub fn query_frame(target: &Target, sqls: &[String], read_only: bool, schema: &str) -> Result<DataFrame> {
    let parts: Vec<Result<DataFrame>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sqls
            .iter()
            .map(|sql| {
                scope.spawn(move || -> Result<DataFrame> {
                    let mut whole: Option<DataFrame> = None;
                    copy_frames(target, sql, read_only, schema, |f| {
                        match &mut whole {
                            Some(w) => {
                                w.vstack_mut_owned(f)?;
                            }
                            None => whole = Some(f),
                        }
                        Ok(())
                    })?;
                    Ok(whole.unwrap_or_default())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a reading thread panicked")))).collect()
    });
    let mut stacked: Option<DataFrame> = None;
    for part in parts {
        let part = part?;
        match &mut stacked {
            Some(s) => {
                s.vstack_mut_owned(part)?;
            }
            None => stacked = Some(part),
        }
    }
    let mut frame = stacked.unwrap_or_default();
    frame.rechunk_mut();
    Ok(frame)
}

/// Decodes rows into `columns`, calling `full(columns)` every `BATCH_ROWS` rows and at the
/// end; it returns false to stop.
fn decode_rows<R: Read>(
    s: &mut Stream<R>,
    columns: &mut [Decoder],
    mut full: impl FnMut(&mut [Decoder]) -> Result<bool, ReadError>,
) -> Result<(), ReadError> {
    const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
    let truncated = || ReadError::Format("the stream ended inside a row".into());
    if !s.fill(19)? || &s.buf[s.start..s.start + 11] != SIGNATURE {
        return Err(ReadError::Format("no binary COPY header".into()));
    }
    let extension = u32::from_be_bytes(s.buf[s.start + 15..s.start + 19].try_into().expect("4 bytes")) as usize;
    s.start += 19;
    if !s.fill(extension)? {
        return Err(truncated());
    }
    s.start += extension;
    let mut rows = 0usize;
    let mut text = String::new();
    loop {
        if !s.fill(2)? {
            return Err(truncated());
        }
        let count = i16::from_be_bytes([s.buf[s.start], s.buf[s.start + 1]]);
        s.start += 2;
        if count == -1 {
            break;
        }
        if count as usize != columns.len() {
            return Err(ReadError::Format(format!("a row of {count} columns where {} belong", columns.len())));
        }
        for c in columns.iter_mut() {
            if !s.fill(4)? {
                return Err(truncated());
            }
            let len = i32::from_be_bytes(s.buf[s.start..s.start + 4].try_into().expect("4 bytes"));
            s.start += 4;
            if len < 0 {
                c.null();
                continue;
            }
            let len = len as usize;
            if !s.fill(len)? {
                return Err(truncated());
            }
            let value = &s.buf[s.start..s.start + len];
            c.value(value, &mut text).map_err(|m| ReadError::Format(format!("column {}: {m}", c.name)))?;
            s.start += len;
        }
        rows += 1;
        if rows == BATCH_ROWS {
            if !full(columns)? {
                return Ok(());
            }
            rows = 0;
        }
    }
    if rows > 0 {
        full(columns)?;
    }
    Ok(())
}

/// The columns' values so far as one frame; the builders start again empty.
fn frame(columns: &mut [Decoder]) -> PolarsResult<DataFrame> {
    DataFrame::new(columns.iter_mut().map(|c| c.take(BATCH_ROWS)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: u16, weight: i16, sign: u16, dscale: u16, digits: &[u16]) -> String {
        let mut v = Vec::new();
        for w in [ndigits, weight as u16, sign, dscale].iter().chain(digits) {
            v.extend_from_slice(&w.to_be_bytes());
        }
        let mut out = String::new();
        numeric_text(&v, &mut out).unwrap();
        out
    }

    #[test]
    fn numerics_print_as_numeric_out_does() {
        assert_eq!(numeric(0, 0, 0, 0, &[]), "0");
        assert_eq!(numeric(0, 0, 0, 2, &[]), "0.00");
        assert_eq!(numeric(2, 0, 0, 2, &[1, 5000]), "1.50");
        assert_eq!(numeric(1, 1, 0x4000, 0, &[12]), "-120000");
        assert_eq!(numeric(2, 1, 0, 3, &[12, 34]), "120034.000");
        assert_eq!(numeric(1, -1, 0, 5, &[1230]), "0.12300");
        assert_eq!(numeric(1, -2, 0, 6, &[5]), "0.000000");
        assert_eq!(numeric(1, -2, 0, 9, &[5]), "0.000000050");
        assert_eq!(numeric(0, 0, 0xC000, 0, &[]), "NaN");
        assert_eq!(numeric(0, 0, 0xF000, 0, &[]), "-Infinity");
    }

    #[test]
    fn uuids_print_hyphenated() {
        let mut out = String::new();
        uuid_text(&(0u8..16).collect::<Vec<_>>(), &mut out);
        assert_eq!(out, "00010203-0405-0607-0809-0a0b0c0d0e0f");
    }

    #[test]
    fn rows_straddling_reads_decode_whole() {
        // Header, two rows of (int4, text), trailer, read one byte at a time.
        let mut bytes = b"PGCOPY\n\xff\r\n\0".to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        for (n, t) in [(7i32, Some("seven")), (-1, None)] {
            bytes.extend_from_slice(&2i16.to_be_bytes());
            bytes.extend_from_slice(&4i32.to_be_bytes());
            bytes.extend_from_slice(&n.to_be_bytes());
            match t {
                Some(t) => {
                    bytes.extend_from_slice(&(t.len() as i32).to_be_bytes());
                    bytes.extend_from_slice(t.as_bytes());
                }
                None => bytes.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        bytes.extend_from_slice(&(-1i16).to_be_bytes());
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let Some((first, rest)) = self.0.split_first() else { return Ok(0) };
                buf[0] = *first;
                self.0 = rest;
                Ok(1)
            }
        }
        let mut s = Stream { inner: OneByte(&bytes), buf: vec![0; 4], start: 0, end: 0 };
        let mut columns = vec![Decoder::new("n", Decode::Int4, 4), Decoder::new("t", Decode::Text, 4)];
        let mut frames = Vec::new();
        let ok = decode_rows(&mut s, &mut columns, |c| {
            frames.push(frame(c).unwrap());
            Ok(true)
        });
        assert!(ok.is_ok());
        assert_eq!(frames.len(), 1);
        let f = &frames[0];
        assert_eq!(f.column("n").unwrap().i32().unwrap().get(0), Some(7));
        assert_eq!(f.column("t").unwrap().str().unwrap().get(0), Some("seven"));
        assert_eq!(f.column("t").unwrap().str().unwrap().get(1), None);
        // Cut short: an error, never a panic.
        let mut s = Stream { inner: OneByte(&bytes[..30]), buf: vec![0; 4], start: 0, end: 0 };
        assert!(matches!(decode_rows(&mut s, &mut columns, |_| Ok(true)), Err(ReadError::Format(_))));
    }
}
