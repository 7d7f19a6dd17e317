//! Files -> chunks of records. Reads an export in blocks, so memory stays bounded by the
//! block size whatever the file's size, and hashes every byte on the way for the ledger.

pub mod framing;
pub mod kafka;
pub mod object;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::Failure;

pub use framing::{Damage, Span};

/// Bytes read per block. Several blocks are in flight at once (read, parse, COPY).
pub const BLOCK_SIZE: usize = 16 << 20;

/// The longest record read whole, by default (`--max-record-bytes`): a longer one is one
/// `malformed` reject holding its first `KEPT_OF_LONG_RECORD` bytes, and reading goes on at
/// the next line that starts an object. Without a cap, one 3 GB record (109 KB of zstd)
/// grew the buffer until the allocation failed and the process aborted.
pub const MAX_RECORD_BYTES: usize = 256 << 20;
/// How much of a record past the cap its reject keeps.
const KEPT_OF_LONG_RECORD: usize = 64 << 10;

static MAX_RECORD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(MAX_RECORD_BYTES);

/// Sets the cap on a record's size for every reader (the command line's, once, in `main`).
pub fn set_max_record_bytes(bytes: usize) {
    MAX_RECORD.store(bytes.max(1024), std::sync::atomic::Ordering::Relaxed);
}

fn max_record_bytes() -> usize {
    MAX_RECORD.load(std::sync::atomic::Ordering::Relaxed)
}

/// A run of whole records and the bytes they live in.
pub struct Chunk {
    pub buf: Vec<u8>,
    pub spans: Vec<Span>,
    /// File offset just past this chunk, for progress.
    pub offset_end: u64,
    /// The Kafka messages the records came in (none for a file's).
    pub messages: Option<Messages>,
}

/// What a chunk's Kafka messages carry besides their values, one entry per record in
/// order (the first is record `first_record`'s): what `message = "..."` columns hold.
#[derive(Debug, Clone)]
pub struct Messages {
    pub topic: std::sync::Arc<str>,
    pub partition: i32,
    pub first_record: u64,
    pub keys: Vec<Option<Vec<u8>>>,
    /// Milliseconds since the epoch.
    pub timestamps: Vec<i64>,
}

impl Chunk {
    pub fn bytes(&self, span: &Span) -> &[u8] {
        &self.buf[span.start..span.end]
    }
}

/// What hands a load its records, chunk after chunk: a file's or object's reader, or a
/// Kafka partition's.
pub trait ChunkSource: Send {
    /// The next chunk, or `None` at the end.
    fn next_chunk(&mut self) -> Result<Option<Chunk>>;
    /// Hands back a chunk's buffer for a later chunk.
    fn reuse(&mut self, buf: Vec<u8>);
    /// Whether a buffer handed back waits to be filled.
    fn has_spare(&self) -> bool;
    /// BLAKE3 of what was read so far, as the ledger records it.
    fn checksum(&self) -> String;
}

/// Where an export comes from: a local file, an object in object storage, or a range of
/// a Kafka partition's offsets.
#[derive(Clone, Debug)]
pub enum Input {
    File(PathBuf),
    Object(object::ObjectRef),
    Kafka(kafka::PartitionRange),
}

/// Opens an input's records.
pub fn open_chunks(input: &Input) -> Result<Box<dyn ChunkSource>> {
    match input {
        Input::Kafka(range) => range.open(),
        _ => Ok(Box::new(RecordReader::open_input(input)?)),
    }
}

impl Input {
    /// The path or URL, as messages and the ledger name it.
    pub fn name(&self) -> String {
        match self {
            Input::File(p) => p.display().to_string(),
            Input::Object(o) => o.url.clone(),
            Input::Kafka(r) => r.name(),
        }
    }

    /// Bytes as stored (0 when a file cannot be read, opening it then says why; 0 for a
    /// stream, whose size is known once it is read).
    pub fn size(&self) -> u64 {
        match self {
            Input::File(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            Input::Object(o) => o.size,
            Input::Kafka(_) => 0,
        }
    }

    /// Whether the bytes are compressed (gzip or zstd, by the name's ending).
    pub fn compressed(&self) -> bool {
        compression(&self.name()).is_some()
    }

    /// The bytes as stored, streamed.
    fn open_stored(&self) -> Result<Box<dyn Read + Send>> {
        match self {
            Input::File(path) => {
                let meta = std::fs::metadata(path).with_context(|| format!("{}: cannot read", path.display()))?;
                if meta.is_dir() {
                    return Err(Failure::Input(format!("{}: is a directory, not an export file", path.display())).into());
                }
                Ok(Box::new(File::open(path).with_context(|| format!("{}: cannot open", path.display()))?))
            }
            Input::Object(o) => o.open(),
            Input::Kafka(r) => Err(anyhow::anyhow!("{}: a stream is read as chunks, not bytes", r.name())),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Compression {
    Gzip,
    Zstd,
}

fn compression(name: &str) -> Option<Compression> {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".gz") {
        Some(Compression::Gzip)
    } else if lower.ends_with(".zst") {
        Some(Compression::Zstd)
    } else {
        None
    }
}

/// The records with the ordinals `records` (ascending) of an export, read again and handed
/// to `each` in order with their line: the raw text of rows a load let through and later
/// turned away. One pass; memory holds one chunk, however many records are asked for.
pub fn records_at(input: &Input, records: &[u64], mut each: impl FnMut(&Span, &[u8]) -> Result<()>) -> Result<()> {
    let mut wanted = records.iter().copied().peekable();
    let mut reader = open_chunks(input)?;
    while wanted.peek().is_some() {
        let Some(chunk) = reader.next_chunk()? else { break };
        for span in &chunk.spans {
            if wanted.peek() == Some(&span.record) {
                each(span, chunk.bytes(span))?;
                wanted.next();
            }
        }
    }
    if let Some(record) = wanted.next() {
        return Err(anyhow::anyhow!("{}: changed while it was loaded (record {record} is gone)", input.name()));
    }
    Ok(())
}

/// Streams an export as chunks of records.
pub struct RecordReader<R> {
    inner: R,
    path: PathBuf,
    carry: Vec<u8>,
    line: u64,
    /// Records handed out so far (the next one's ordinal is this plus one).
    records: u64,
    offset: u64,
    eof: bool,
    first_block: bool,
    hasher: blake3::Hasher,
    /// For a compressed file: the hash of the stored (compressed) bytes.
    stored: Option<std::sync::Arc<std::sync::Mutex<blake3::Hasher>>>,
    block_size: usize,
    /// Buffers of chunks done with, to read the next ones into (see `reuse`).
    spare: Vec<Vec<u8>>,
}

impl RecordReader<Box<dyn Read + Send>> {
    /// Opens an export file; a `.gz` or `.zst` file is decompressed on the fly.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_input(&Input::File(path.to_path_buf()))
    }

    /// Opens an export, a file or an object, decompressing `.gz` and `.zst` on the fly.
    pub fn open_input(input: &Input) -> Result<Self> {
        let stored = input.open_stored()?;
        let name = PathBuf::from(input.name());
        let Some(kind) = compression(&input.name()) else { return Ok(Self::new(stored, &name)) };
        // The checksum is of the bytes as stored (what `b3sum` prints for the file), so the
        // compressed bytes are hashed on their way into the decoder.
        let hasher = std::sync::Arc::new(std::sync::Mutex::new(blake3::Hasher::new()));
        let raw = std::io::BufReader::with_capacity(1 << 20, HashRead { inner: stored, hasher: hasher.clone() });
        let decoded: Box<dyn Read + Send> = match kind {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(raw)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(raw).with_context(|| format!("{}: not zstd", input.name()))?)
            }
        };
        let mut reader = Self::new(decoded, &name);
        reader.stored = Some(hasher);
        Ok(reader)
    }
}

/// A reader that hashes what passes through it.
struct HashRead<R> {
    inner: R,
    hasher: std::sync::Arc<std::sync::Mutex<blake3::Hasher>>,
}

impl<R: Read> Read for HashRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.lock().unwrap_or_else(|e| e.into_inner()).update(&buf[..n]);
        Ok(n)
    }
}

impl<R: Read> RecordReader<R> {
    pub fn new(inner: R, path: &Path) -> Self {
        RecordReader {
            inner,
            path: path.to_path_buf(),
            carry: Vec::new(),
            line: 1,
            records: 0,
            offset: 0,
            eof: false,
            first_block: true,
            hasher: blake3::Hasher::new(),
            stored: None,
            block_size: BLOCK_SIZE,
            spare: Vec::new(),
        }
    }

    /// Hands back a chunk's buffer for a later chunk. The chunk buffers are a load's largest
    /// allocations (a few blocks in flight); allocated afresh each time, glibc kept the
    /// freed ones in its arenas and a 16 M-event load crept up by 30 MB.
    pub fn reuse(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        self.spare.push(buf);
    }

    /// Whether a buffer handed back waits to be filled.
    pub fn has_spare(&self) -> bool {
        !self.spare.is_empty()
    }

    pub fn with_block_size(mut self, size: usize) -> Self {
        self.block_size = size.max(1);
        self
    }

    /// BLAKE3 of every byte read so far (the whole file once the reader is exhausted).
    /// BLAKE3 rather than SHA-256: the reader thread hashes every byte of the export, and
    /// SHA-256 alone took an eighth of the load's CPU (`b3sum FILE` prints the same value).
    /// For a `.gz` file, the compressed bytes are hashed (the file as stored).
    pub fn checksum(&self) -> String {
        match &self.stored {
            Some(h) => h.lock().unwrap_or_else(|e| e.into_inner()).finalize().to_hex().to_string(),
            None => self.hasher.finalize().to_hex().to_string(),
        }
    }

    /// Reads until `carry` holds at least `want` bytes or the file ends.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.carry.len() >= want || self.eof {
            return Ok(());
        }
        let old = self.carry.len();
        let target = want.max(old + 64 * 1024);
        self.carry.reserve(target - old);
        // Read into the buffer's spare capacity: a file reads into it as it is, where
        // zeroing the block first (`resize`) wrote every byte of the export once more.
        let read = (&mut self.inner).take((target - old) as u64).read_to_end(&mut self.carry);
        if let Err(e) = read {
            self.carry.truncate(old);
            return Err(e);
        }
        let got = self.carry.len() - old;
        self.hasher.update(&self.carry[old..]);
        self.offset += got as u64;
        // Short of what was asked: the file ended.
        self.eof = got < target - old;
        Ok(())
    }

    /// The next chunk, or `None` at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut want = self.block_size;
        loop {
            self.fill(want).with_context(|| format!("{}: read failed near line {}", self.path.display(), self.line))?;
            if self.first_block {
                self.first_block = false;
                if self.carry.starts_with(&[0xEF, 0xBB, 0xBF]) {
                    // A UTF-8 byte order mark is framing, not data; blank it like whitespace.
                    self.carry[..3].copy_from_slice(b"   ");
                }
            }
            if self.carry.is_empty() && self.eof {
                return Ok(None);
            }
            let mut scan = framing::scan(&self.carry, self.line, self.eof);
            if scan.spans.is_empty() && !self.eof {
                let limit = max_record_bytes();
                if self.carry.len() - scan.resume_at > limit {
                    return self.too_long(scan.resume_at, scan.resume_line).map(Some);
                }
                // A record longer than the buffer: read more (up to just past the cap) and
                // scan again.
                want = (self.carry.len() * 2).min(scan.resume_at + limit + 1).max(self.carry.len() + 1);
                continue;
            }
            let mut tail = self.spare.pop().unwrap_or_default();
            tail.extend_from_slice(&self.carry[scan.resume_at..]);
            self.carry.truncate(scan.resume_at);
            let buf = std::mem::replace(&mut self.carry, tail);
            self.line = scan.resume_line;
            let offset_end = self.offset - self.carry.len() as u64;
            if scan.spans.is_empty() {
                // Only separators left at the end of the file.
                debug_assert!(self.eof);
                if self.carry.is_empty() {
                    return Ok(None);
                }
                continue;
            }
            for span in &mut scan.spans {
                self.records += 1;
                span.record = self.records;
            }
            return Ok(Some(Chunk { buf, spans: scan.spans, offset_end, messages: None }));
        }
    }
}

impl<R: Read + Send> ChunkSource for RecordReader<R> {
    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        RecordReader::next_chunk(self)
    }

    fn reuse(&mut self, buf: Vec<u8>) {
        RecordReader::reuse(self, buf)
    }

    fn has_spare(&self) -> bool {
        RecordReader::has_spare(self)
    }

    fn checksum(&self) -> String {
        RecordReader::checksum(self)
    }
}

impl<R: Read> RecordReader<R> {
    /// The record starting at `start` of the buffer (on `line`) is longer than the cap: its
    /// first bytes become one damaged record, and the input is skipped to the next line
    /// that starts an object (where the next record of the BI framing or NDJSON begins).
    /// Memory stays at a block and the kept bytes, however long the record.
    fn too_long(&mut self, start: usize, line: u64) -> Result<Chunk> {
        let kept = (self.carry.len() - start).min(KEPT_OF_LONG_RECORD);
        let raw = self.carry[start..start + kept].to_vec();
        self.records += 1;
        let span = Span { line, record: self.records, start: 0, end: raw.len(), damage: Some(Damage::TooLong) };
        let (mut from, mut at) = (start, start + 1);
        let mut newlines = 0u64;
        loop {
            if let Some(off) = next_record_line(&self.carry[at..]) {
                // The line break before the next record stays, for the scanner to count.
                newlines += memchr::memchr_iter(b'\n', &self.carry[from..at + off]).count() as u64;
                self.carry.drain(..at + off);
                break;
            }
            if self.eof {
                newlines += memchr::memchr_iter(b'\n', &self.carry[from..]).count() as u64;
                self.carry.clear();
                break;
            }
            // Nothing here starts a record: keep only the last line break, whose line may
            // turn out to start one, and read on.
            let keep = memchr::memrchr(b'\n', &self.carry[at..]).map_or(self.carry.len(), |n| at + n);
            newlines += memchr::memchr_iter(b'\n', &self.carry[from..keep]).count() as u64;
            self.carry.drain(..keep);
            (from, at) = (0, 0);
            let want = self.carry.len() + self.block_size;
            self.fill(want).with_context(|| format!("{}: read failed near line {}", self.path.display(), line + newlines))?;
        }
        self.line = line + newlines;
        Ok(Chunk { buf: raw, spans: vec![span], offset_end: self.offset - self.carry.len() as u64, messages: None })
    }
}

/// The first line break in `buf` whose line starts an object (after whitespace and the
/// array's separators), if `buf` shows one.
fn next_record_line(buf: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'\n', buf).find(|&nl| {
        let rest = &buf[nl + 1..];
        rest.iter().find(|c| !matches!(c, b' ' | b'\t' | b'\r' | b',' | b'[' | b']')) == Some(&b'{')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each record's line, bytes and damage.
    type Records = Vec<(u64, Vec<u8>, Option<Damage>)>;

    fn read_all(input: &[u8], block: usize) -> (Records, String) {
        let mut r = RecordReader::new(input, Path::new("t.json")).with_block_size(block);
        let mut out = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            for s in &c.spans {
                out.push((s.line, c.bytes(s).to_vec(), s.damage));
            }
        }
        (out, r.checksum())
    }

    #[test]
    fn block_size_does_not_change_records() {
        let mut input = Vec::from(&b"\xEF\xBB\xBF["[..]);
        for i in 0..200 {
            input.extend_from_slice(format!("{{\"n\":{i},\"s\":\"{}\"}},\r\n", "x".repeat(i % 37)).as_bytes());
        }
        input.extend_from_slice(b"{\"n\":200, \"cut");
        let (whole, sum) = read_all(&input, 1 << 20);
        assert_eq!(whole.len(), 201);
        assert_eq!(whole[0].0, 1);
        assert_eq!(whole[200].0, 201);
        assert_eq!(whole[200].2, Some(Damage::UnexpectedEof));
        for block in [1, 7, 64, 1000] {
            let (parts, sum2) = read_all(&input, block);
            assert_eq!(parts, whole, "block {block}");
            assert_eq!(sum2, sum);
        }
    }

    #[test]
    fn a_gzipped_file_is_hashed_as_stored() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.json.gz");
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
        gz.write_all(b"{\"a\":1}\n{\"a\":2}\n").unwrap();
        gz.finish().unwrap();
        let mut r = RecordReader::open(&path).unwrap();
        let mut n = 0;
        while let Some(c) = r.next_chunk().unwrap() {
            n += c.spans.len();
        }
        assert_eq!(n, 2);
        assert_eq!(r.checksum(), blake3::hash(&std::fs::read(&path).unwrap()).to_hex().to_string());
    }

    #[test]
    fn a_record_past_the_cap_is_one_damaged_record_and_reading_goes_on() {
        set_max_record_bytes(1 << 20);
        let huge = format!("{{\"a\": \"{}\"}}", "x".repeat(3 << 20));
        for (block, sep) in [(1 << 20, "\n"), (4096, ",\n"), (1 << 16, "\r\n")] {
            let input = format!("[{{\"a\": 1}}{sep}{huge}{sep}{{\"a\": 2}}{sep}{huge}{sep}\n\n{{\"a\": 3}}{sep}{huge}");
            let (records, _) = read_all(input.as_bytes(), block);
            let summary: Vec<(u64, usize, Option<Damage>)> = records.iter().map(|(l, b, d)| (*l, b.len(), *d)).collect();
            let long = Some(Damage::TooLong);
            assert_eq!(
                summary,
                vec![
                    (1, 8, None),
                    (2, KEPT_OF_LONG_RECORD, long),
                    (3, 8, None),
                    (4, KEPT_OF_LONG_RECORD, long),
                    (7, 8, None),
                    (8, KEPT_OF_LONG_RECORD, long)
                ],
                "block {block}, separator {sep:?}"
            );
            assert!(records[1].1.starts_with(b"{\"a\": \"xxx"));
        }
        set_max_record_bytes(MAX_RECORD_BYTES);
    }

    #[test]
    fn empty_file_has_no_chunks() {
        assert!(read_all(b"", 16).0.is_empty());
        assert!(read_all(b"[\n", 16).0.is_empty());
        assert!(read_all(b"\xEF\xBB\xBF", 16).0.is_empty());
    }
}
