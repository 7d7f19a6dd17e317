//! Rule 5, `duplicate`: a row identical (after casting) to a row accepted earlier in the
//! same load is rejected, whichever chunk each sits in.
//!
//! - every accepted row's 128-bit digest goes into a blocked Bloom filter (about 1.2 bytes a
//!   row, the one part of a load's memory that grows with the file) and, with its record's
//!   ordinal and line, onto the end of a temporary file (32 bytes a row, on disk);
//! - a row the filter has not seen is new for certain and goes straight on to COPY;
//! - a row the filter may have seen (a true duplicate, or about one row in a hundred by
//!   chance) is held back: its digest, ordinal and line go to a second temporary file, its
//!   raw record to a third. It is decided at the end of the file.
//!
//! A row is known by its record's ordinal in the file, not its line: a compact array holds
//! many records on one line, and they are compared like any others.
//!
//! Both digest files are cut into `PARTS` partitions by the digest's top bits, so the end
//! of the file decides one partition at a time: its held rows in memory, then one read of
//! its rows let through, to find which held digests were really seen. Memory there is a
//! partition's held rows, a sixty-fourth of them; the verdicts go to disk by partition and
//! come back with the held records, in file order, in batches (the accepted ones parsed
//! again). Keeping every held row's digest and line in memory grew the end of a file with
//! a tenth repeated by about 40 bytes a repeat (65 MB at 16 M rows); holding the records in
//! memory, by about 1 KB a repeat; an exact hash set of every row, by 24 bytes a row.
//!
//! For a merge (`Dedupe::superseding`) the later of two rows with the same key wins: a
//! repeat with the same contents is the `duplicate`, one with other contents makes the
//! row before it `superseded`. That earlier row may already be on its way to the server,
//! so `finish` returns it as a `Retraction` (record, day, row hash) for the load to take back;
//! the digest files then also keep each row's content digest (and, let through, its day).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use fastbloom::BloomFilter;
use polars::prelude::*;

use crate::dataset::{Dataset, Field};
use crate::quality::{COL_REASON, DUPLICATE, SUPERSEDED};
use crate::rows::{self, Cell};
use crate::transform::parse::{COL_LINE, COL_RECORD, COL_ROW};

/// The filter's chance matches, as a share of rows (each is held and decided at the end):
/// 1.2 bytes a row. A held row costs a write to disk and a second parse, and a tenth of the
/// chances (1.8 bytes a row) saved nothing measurable on a 4 M-event load, while the filter
/// is the one part of a load's memory that grows with the file.
const FALSE_POSITIVES: f64 = 0.01;
/// The first filter's size when the file's row count cannot be estimated (a .gz file).
const DEFAULT_ROWS: usize = 1 << 20;
/// Partitions of the digest files; a digest's top six bits pick its partition.
const PARTS: usize = 64;
/// A row let through: digest (16 bytes), record (8) and line (8); superseding, also the
/// content digest (16) and the day (8).
const PASSED: usize = 32;
const PASSED_SUPERSEDING: usize = 56;
/// A held row: digest, record and line; superseding, also the content digest.
const HELD: usize = 32;
const HELD_SUPERSEDING: usize = 48;
/// A retraction on disk: record, replacing record and its line, day, row hash.
const RETRACTION: usize = 40;
/// A held record's head on disk: record (8), line (8), partition (1), length (4).
const HELD_HEAD: usize = 21;
/// A verdict on disk: kind and record (8), line (8).
const VERDICT: usize = 16;
/// Write buffers of the let-through digests' partitions, where every accepted row goes
/// (64 of them: 2 MB); the held rows' partitions and the verdicts get a quarter of that.
/// Small in tests, so that partitions span many blocks.
const PART_BUFFER: usize = if cfg!(test) { 256 } else { 32 << 10 };

/// The duplicate check's state for one file.
#[derive(Default)]
pub struct Dedupe {
    /// Filters sized one after another: when the newest is full, a new one twice its size
    /// is added, so an estimate that was too low costs memory, never accuracy.
    filters: Vec<Filter>,
    /// Digest, record and line of every row let through, by partition, in file order.
    passed: Parts,
    /// Digest, record and line of every held row, by partition, in file order.
    held: Parts,
    /// The held rows' records, in file order: record (8 bytes), line (8), partition (1),
    /// length (4), the bytes.
    held_records: Option<BufWriter<File>>,
    held_rows: u64,
    /// Merge: the later row with a key wins (see the module's notes).
    superseding: bool,
    /// Superseding over a key: the digest files carry contents (fixed by the first `mark`).
    with_contents: bool,
}

/// Records by partition, in one temporary file: each partition's bytes gather in a buffer
/// of its own and go to the file in blocks, whose places are kept. One file descriptor
/// however many partitions: a file per partition took about 130 descriptors per load, and
/// `--jobs 8` would have run out under the usual limit of 1024.
#[derive(Default)]
struct Parts {
    file: Option<Arc<File>>,
    end: u64,
    pending: Vec<Vec<u8>>,
    /// Per partition, its blocks: offset and length.
    blocks: Vec<Vec<(u64, usize)>>,
}

impl Parts {
    fn write(&mut self, part: usize, bytes: &[u8], buffer: usize) -> Result<(), DedupeError> {
        if self.pending.is_empty() {
            self.pending.resize_with(PARTS, Vec::new);
            self.blocks.resize_with(PARTS, Vec::new);
        }
        let pending = &mut self.pending[part];
        if pending.capacity() == 0 {
            pending.reserve_exact(buffer + bytes.len());
        }
        pending.extend_from_slice(bytes);
        if pending.len() >= buffer {
            self.flush(part)?;
        }
        Ok(())
    }

    fn flush(&mut self, part: usize) -> Result<(), DedupeError> {
        let pending = &mut self.pending[part];
        if pending.is_empty() {
            return Ok(());
        }
        let file = match &mut self.file {
            Some(f) => f,
            slot => slot.insert(Arc::new(tempfile::tempfile().map_err(DedupeError::TempFile)?)),
        };
        file.write_all_at(pending, self.end).map_err(DedupeError::TempFile)?;
        self.blocks[part].push((self.end, pending.len()));
        self.end += pending.len() as u64;
        pending.clear();
        Ok(())
    }

    /// A partition's records, to read back once it is written; None if it got none.
    fn reader(&mut self, part: usize) -> Result<Option<PartReader>, DedupeError> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        self.flush(part)?;
        self.pending[part] = Vec::new();
        let blocks = std::mem::take(&mut self.blocks[part]);
        Ok(self.file.as_ref().filter(|_| !blocks.is_empty()).map(|file| PartReader {
            file: Arc::clone(file),
            blocks: blocks.into_iter(),
            block: Vec::new(),
            at: 0,
        }))
    }
}

/// One partition's blocks, read in order.
struct PartReader {
    file: Arc<File>,
    blocks: std::vec::IntoIter<(u64, usize)>,
    block: Vec<u8>,
    at: usize,
}

impl Read for PartReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.block.len() {
            let Some((offset, len)) = self.blocks.next() else { return Ok(0) };
            self.block.resize(len, 0);
            self.file.read_exact_at(&mut self.block, offset)?;
            self.at = 0;
        }
        let n = out.len().min(self.block.len() - self.at);
        out[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// A temporary file to write, made when first needed.
fn temp_writer(slot: &mut Option<BufWriter<File>>, buffer: usize) -> Result<&mut BufWriter<File>, DedupeError> {
    match slot {
        Some(f) => Ok(f),
        slot => Ok(slot.insert(BufWriter::with_capacity(buffer, tempfile::tempfile().map_err(DedupeError::TempFile)?))),
    }
}

/// A temporary file written out and rewound for reading.
fn rewound(file: BufWriter<File>, buffer: usize) -> Result<BufReader<File>, DedupeError> {
    let mut file = file.into_inner().map_err(|e| DedupeError::TempFile(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(DedupeError::TempFile)?;
    Ok(BufReader::with_capacity(buffer, file))
}

/// Reads one fixed-size record; false at the end of the file.
fn read_record(from: &mut impl Read, record: &mut [u8]) -> Result<bool, DedupeError> {
    match from.read_exact(record) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(DedupeError::TempFile(e)),
    }
}

fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b.try_into().expect("8 bytes"))
}

fn le128(b: &[u8]) -> u128 {
    u128::from_le_bytes(b.try_into().expect("16 bytes"))
}

/// The partition of a digest: the top bits of its low lane (ahash, or ahash-mixed, and
/// independent of the Bloom filter's own hashing of the whole digest).
fn part_of(digest: u128) -> usize {
    (digest as u64 >> (64 - PARTS.trailing_zeros())) as usize
}

struct Filter {
    bloom: BloomFilter<ahash::RandomState>,
    capacity: usize,
    len: usize,
}

impl Filter {
    /// A filter that says "may have seen" to everything (tests of the held-row path).
    #[cfg(test)]
    fn saturated() -> Filter {
        let mut bloom = BloomFilter::with_num_bits(64).hasher(ahash::RandomState::with_seeds(1, 2, 3, 4)).hashes(1);
        for i in 0..10_000u32 {
            bloom.insert(&i);
        }
        Filter { bloom, capacity: usize::MAX, len: 0 }
    }

    fn new(capacity: usize) -> Filter {
        let hasher = ahash::RandomState::with_seeds(0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0);
        let bloom = BloomFilter::with_false_pos(FALSE_POSITIVES).hasher(hasher).expected_items(capacity.max(1024));
        Filter { bloom, capacity: capacity.max(1024), len: 0 }
    }
}

/// Where a record is: its ordinal in the file (its identity) and the line it starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    pub record: u64,
    pub line: u64,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record {} on line {}", self.record, self.line)
    }
}

/// What the end of the file decided for a held row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A chance match of the filter (or a merge's winning row): accepted.
    Accepted,
    /// The same as the row of this record.
    Duplicate(Place),
    /// A merge's earlier row of a key, replaced by the row of this record.
    Superseded(Place),
}

impl Verdict {
    /// The reject's reason and detail, for a row that is not accepted.
    pub fn reject(self) -> Option<(&'static str, String)> {
        match self {
            Verdict::Accepted => None,
            Verdict::Duplicate(first) => Some((DUPLICATE, format!("same as {first}"))),
            Verdict::Superseded(by) => Some((SUPERSEDED, superseded_by(by))),
        }
    }

    /// Sixteen bytes on disk: the record with the kind in its top two bits (ordinals stay
    /// below 2^62), then the line.
    fn to_bytes(self) -> [u8; VERDICT] {
        let (word, line) = match self {
            Verdict::Accepted => (0, 0),
            Verdict::Duplicate(p) => (1 << 62 | p.record, p.line),
            Verdict::Superseded(p) => (2 << 62 | p.record, p.line),
        };
        let mut out = [0u8; VERDICT];
        out[..8].copy_from_slice(&word.to_le_bytes());
        out[8..].copy_from_slice(&line.to_le_bytes());
        out
    }

    fn from_bytes(bytes: [u8; VERDICT]) -> Verdict {
        let word = le64(&bytes[..8]);
        let place = Place { record: word & ((1 << 62) - 1), line: le64(&bytes[8..]) };
        match word >> 62 {
            0 => Verdict::Accepted,
            1 => Verdict::Duplicate(place),
            _ => Verdict::Superseded(place),
        }
    }
}

/// The rows held back by the filter, decided at the end of the file and read back from
/// disk in batches (`next_batch`, `next_retractions`).
pub struct Held {
    records: BufReader<File>,
    records_left: u64,
    /// Each partition's verdicts, in the order of its held rows.
    verdicts: Vec<Option<PartReader>>,
    /// Superseding: rows let through earlier that a later row with their key replaced.
    retractions: Option<BufReader<File>>,
}

impl Held {
    /// Up to `n` more held rows: where each is, its record, its verdict. Empty when all were read.
    pub fn next_batch(&mut self, n: usize) -> Result<Vec<(Place, Vec<u8>, Verdict)>, DedupeError> {
        let take = n.min(self.records_left as usize);
        let mut batch = Vec::with_capacity(take);
        for _ in 0..take {
            let mut head = [0u8; HELD_HEAD];
            self.records.read_exact(&mut head).map_err(DedupeError::TempFile)?;
            let place = Place { record: le64(&head[..8]), line: le64(&head[8..16]) };
            let part = head[16] as usize;
            let mut raw = vec![0u8; u32::from_le_bytes(head[17..].try_into().expect("4 bytes")) as usize];
            self.records.read_exact(&mut raw).map_err(DedupeError::TempFile)?;
            let mut verdict = [0u8; VERDICT];
            let verdicts = self.verdicts[part].as_mut().expect("a partition with held rows has verdicts");
            verdicts.read_exact(&mut verdict).map_err(DedupeError::TempFile)?;
            batch.push((place, raw, Verdict::from_bytes(verdict)));
        }
        self.records_left -= take as u64;
        Ok(batch)
    }

    /// Up to `n` more rows to take back (superseding). Empty when all were read.
    pub fn next_retractions(&mut self, n: usize) -> Result<Vec<Retraction>, DedupeError> {
        let mut out = Vec::new();
        let Some(from) = &mut self.retractions else { return Ok(out) };
        let mut record = [0u8; RETRACTION];
        while out.len() < n && read_record(from, &mut record)? {
            out.push(Retraction {
                record: le64(&record[..8]),
                by: Place { record: le64(&record[8..16]), line: le64(&record[16..24]) },
                day: le64(&record[24..32]) as i64,
                row_hash: le64(&record[32..]),
            });
        }
        Ok(out)
    }
}

/// A row already let through that turned out to be superseded: the load takes it back (by
/// record) and keeps it as a reject; validate's figures subtract it (by day and row hash).
#[derive(Debug, Clone, PartialEq)]
pub struct Retraction {
    pub record: u64,
    /// The row that replaced it.
    pub by: Place,
    pub day: i64,
    pub row_hash: u64,
}

impl Retraction {
    fn to_bytes(&self) -> [u8; RETRACTION] {
        let mut out = [0u8; RETRACTION];
        for (at, word) in [self.record, self.by.record, self.by.line, self.day as u64, self.row_hash].into_iter().enumerate() {
            out[at * 8..at * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        out
    }
}

/// A held row of the partition being decided.
struct HeldRow {
    digest: u128,
    place: Place,
    content: u128,
}

/// A row that holds a key at the end of the file.
#[derive(Clone, Copy)]
enum Winner {
    /// Let through: where it is, its content digest and day.
    Passed { place: Place, content: u128, day: i64 },
    /// A held row, by index.
    Held(usize),
}

impl Dedupe {
    /// The duplicate check of a merge, by the dataset's key: the later row wins.
    pub fn superseding() -> Dedupe {
        Dedupe { superseding: true, ..Dedupe::default() }
    }

    /// Sizes the filter for about `rows` rows; call before the first `mark` (later, it does
    /// nothing: the filters grow on their own).
    pub fn expect(&mut self, rows: usize) {
        if self.filters.is_empty() {
            self.filters.push(Filter::new(rows));
        }
    }

    /// Returns true when `digest` may have been seen; remembers it otherwise. (A filter
    /// never forgets, so later copies of a held row are held too and decided with it, and
    /// the one row let through with a digest comes before every held row with it.)
    fn maybe_seen(&mut self, digest: u128) -> bool {
        if self.filters.iter().any(|f| f.bloom.contains(&digest)) {
            return true;
        }
        let grow = match self.filters.last() {
            None => Some(DEFAULT_ROWS),
            Some(f) if f.len >= f.capacity => Some(f.capacity * 2),
            Some(_) => None,
        };
        if let Some(capacity) = grow {
            self.filters.push(Filter::new(capacity));
        }
        let newest = self.filters.last_mut().expect("a filter was just ensured");
        newest.bloom.insert(&digest);
        newest.len += 1;
        false
    }

    /// Takes a checked frame and returns the rows decided now: the accepted rows the filter
    /// has not seen, and the rejected ones. Accepted rows it may have seen are held back
    /// (with their raw records, `raw(row)`) until `finish`.
    pub fn mark(&mut self, ds: &Dataset, checked: DataFrame, raw: impl Fn(usize) -> Vec<u8>) -> Result<DataFrame, DedupeError> {
        self.mark_in(ds, 0, checked, raw)
    }

    /// `mark`, for one of several tables sharing the check (a split log's): `table` is
    /// mixed into the digests' low lane, so equal rows (or keys) of two tables are not each
    /// other's duplicates, and the high lane, the row hash validate compares, stays as it is.
    pub fn mark_in(
        &mut self,
        ds: &Dataset,
        table: usize,
        checked: DataFrame,
        raw: impl Fn(usize) -> Vec<u8>,
    ) -> Result<DataFrame, DedupeError> {
        let keyed = !ds.unique.is_empty();
        let mut digests = row_digests(ds, &checked, !keyed)?;
        if table > 0 {
            let tag = (table as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as u128;
            digests.iter_mut().for_each(|d| *d ^= tag);
        }
        // Superseding compares the contents of rows with the same key.
        let contents = match self.superseding && keyed {
            true => Some(row_digests(ds, &checked, true)?),
            false => None,
        };
        self.with_contents = contents.is_some();
        let days = match &contents {
            Some(_) => crate::figures::days_of(ds, &checked)?,
            None => Vec::new(),
        };
        // The server's row hash of each row, for validate's figures: the high lane of a
        // digest that covers the whole row, else computed on its own.
        // (Not where the digests leave out the record's ordinal: the server's hash covers it.)
        let whole = !ds.fields.iter().any(Field::is_record_id) && checked.column(crate::frame::COL_CHILDREN).is_err();
        let row_hashes: Vec<u64> = match (&contents, keyed) {
            (Some(c), _) if whole => c.iter().map(|d| (d >> 64) as u64).collect(),
            (None, false) if whole => digests.iter().map(|d| (d >> 64) as u64).collect(),
            _ => crate::figures::row_hashes(ds, &checked)?,
        };
        let mut checked = checked;
        checked.with_column(Column::new(crate::figures::COL_ROW_HASH.into(), row_hashes))?;
        let reasons = checked.column(COL_REASON)?.str()?.clone();
        let lines = checked.column(COL_LINE)?.u64()?.clone();
        let records = checked.column(COL_RECORD)?.u64()?.clone();
        let rows = checked.column(COL_ROW)?.u32()?.clone();
        let mut keep = Vec::with_capacity(checked.height());
        let mut held = false;
        let mut entry = [0u8; PASSED_SUPERSEDING];
        for (i, digest) in digests.into_iter().enumerate() {
            if reasons.get(i).is_some() {
                keep.push(true);
                continue;
            }
            let (record, line) = (records.get(i).unwrap_or_default(), lines.get(i).unwrap_or_default());
            let part = part_of(digest);
            entry[..16].copy_from_slice(&digest.to_le_bytes());
            entry[16..24].copy_from_slice(&record.to_le_bytes());
            entry[24..32].copy_from_slice(&line.to_le_bytes());
            if let Some(c) = &contents {
                entry[32..48].copy_from_slice(&c[i].to_le_bytes());
                entry[48..].copy_from_slice(&days[i].to_le_bytes());
            }
            if self.maybe_seen(digest) {
                keep.push(false);
                held = true;
                self.held_rows += 1;
                let len = if contents.is_some() { HELD_SUPERSEDING } else { HELD };
                self.held.write(part, &entry[..len], PART_BUFFER / 4)?;
                let raw = raw(rows.get(i).expect("row numbers are never null") as usize);
                let spill = temp_writer(&mut self.held_records, 1 << 20)?;
                let mut head = [0u8; HELD_HEAD];
                head[..8].copy_from_slice(&record.to_le_bytes());
                head[8..16].copy_from_slice(&line.to_le_bytes());
                head[16] = part as u8;
                head[17..].copy_from_slice(&(raw.len() as u32).to_le_bytes());
                spill.write_all(&head).map_err(DedupeError::TempFile)?;
                spill.write_all(&raw).map_err(DedupeError::TempFile)?;
                continue;
            }
            let len = if contents.is_some() { PASSED_SUPERSEDING } else { PASSED };
            self.passed.write(part, &entry[..len], PART_BUFFER)?;
            keep.push(true);
        }
        if !held {
            return Ok(checked);
        }
        let keep = BooleanChunked::from_slice("keep".into(), &keep);
        Ok(checked.filter(&keep)?)
    }

    /// Decides the held rows, a partition at a time: a held row is a duplicate when a row
    /// let through had its digest, or an earlier held row did; otherwise it was a chance
    /// match and is accepted. Superseding, a held row with other contents than the row
    /// holding its key wins, and that row is `superseded` (or, if let through, retracted).
    pub fn finish(mut self) -> Result<Option<Held>, DedupeError> {
        let Some(records) = self.held_records.take() else { return Ok(None) };
        // The filter is not needed any more: its memory is the partitions' now.
        self.filters = Vec::new();
        let mut verdicts = Parts::default();
        let mut retractions: Option<BufWriter<File>> = None;
        for part in 0..PARTS {
            let Some(mut from) = self.held.reader(part)? else { continue };
            let rows = self.read_held(&mut from)?;
            let passed = self.passed.reader(part)?;
            let mut retracted = Vec::new();
            let decided = match self.with_contents {
                true => self.supersede(&rows, passed, &mut retracted)?,
                false => self.first_wins(&rows, passed)?,
            };
            if !retracted.is_empty() {
                let to = temp_writer(&mut retractions, PART_BUFFER)?;
                for r in &retracted {
                    to.write_all(&r.to_bytes()).map_err(DedupeError::TempFile)?;
                }
            }
            for v in decided {
                verdicts.write(part, &v.to_bytes(), PART_BUFFER / 4)?;
            }
        }
        Ok(Some(Held {
            records: rewound(records, 1 << 20)?,
            records_left: self.held_rows,
            verdicts: (0..PARTS).map(|part| verdicts.reader(part)).collect::<Result<_, _>>()?,
            retractions: retractions.map(|r| rewound(r, PART_BUFFER)).transpose()?,
        }))
    }

    /// A partition's held rows, in file order.
    fn read_held(&self, from: &mut impl Read) -> Result<Vec<HeldRow>, DedupeError> {
        let len = if self.with_contents { HELD_SUPERSEDING } else { HELD };
        let mut entry = [0u8; HELD_SUPERSEDING];
        let mut rows = Vec::new();
        while read_record(from, &mut entry[..len])? {
            let content = if self.with_contents { le128(&entry[32..48]) } else { 0 };
            rows.push(HeldRow { digest: le128(&entry[..16]), place: place_at(&entry), content });
        }
        Ok(rows)
    }

    /// The first row with a digest stays: every later one is its duplicate.
    fn first_wins(&self, rows: &[HeldRow], passed: Option<PartReader>) -> Result<Vec<Verdict>, DedupeError> {
        // The first row with each held digest: the held row itself, unless a row let
        // through had it (at most one did, and it came first).
        let mut first: HashMap<u128, Place, ahash::RandomState> = HashMap::default();
        for row in rows {
            first.entry(row.digest).or_insert(row.place);
        }
        if let Some(mut passed) = passed {
            let mut entry = [0u8; PASSED];
            while read_record(&mut passed, &mut entry)? {
                if let Some(place) = first.get_mut(&le128(&entry[..16])) {
                    *place = place_at(&entry);
                }
            }
        }
        Ok(rows
            .iter()
            .map(|row| match first[&row.digest] {
                place if place.record == row.place.record => Verdict::Accepted,
                place => Verdict::Duplicate(place),
            })
            .collect())
    }

    /// The last row with a key stays: a row before it with the same contents is its
    /// duplicate, one with other contents is superseded (or retracted, if let through).
    fn supersede(
        &self,
        rows: &[HeldRow],
        passed: Option<PartReader>,
        retracted: &mut Vec<Retraction>,
    ) -> Result<Vec<Verdict>, DedupeError> {
        // Per key, the row that holds it so far: the one let through, if any, first.
        let mut winner: HashMap<u128, Winner, ahash::RandomState> = HashMap::default();
        let held: std::collections::HashSet<u128, ahash::RandomState> = rows.iter().map(|r| r.digest).collect();
        if let Some(mut passed) = passed {
            let mut entry = [0u8; PASSED_SUPERSEDING];
            while read_record(&mut passed, &mut entry)? {
                let digest = le128(&entry[..16]);
                if held.contains(&digest) {
                    let (content, day) = (le128(&entry[32..48]), le64(&entry[48..]) as i64);
                    winner.insert(digest, Winner::Passed { place: place_at(&entry), content, day });
                }
            }
        }
        let mut verdicts = vec![Verdict::Accepted; rows.len()];
        for (i, row) in rows.iter().enumerate() {
            let Some(current) = winner.get(&row.digest).copied() else {
                winner.insert(row.digest, Winner::Held(i));
                continue;
            };
            let (holder, held_content) = match current {
                Winner::Passed { place, content, .. } => (place, content),
                Winner::Held(j) => (rows[j].place, rows[j].content),
            };
            if held_content == row.content {
                verdicts[i] = Verdict::Duplicate(holder);
                continue;
            }
            match current {
                Winner::Passed { place: earlier, day, content } => {
                    // The content digest's high lane is the server's row hash.
                    retracted.push(Retraction { record: earlier.record, by: row.place, day, row_hash: (content >> 64) as u64 });
                }
                Winner::Held(j) => verdicts[j] = Verdict::Superseded(row.place),
            }
            winner.insert(row.digest, Winner::Held(i));
        }
        Ok(verdicts)
    }
}

/// The record and line of a digest file's entry (after its 16-byte digest).
fn place_at(entry: &[u8]) -> Place {
    Place { record: le64(&entry[16..24]), line: le64(&entry[24..32]) }
}

/// The detail of a `superseded` reject.
pub fn superseded_by(by: Place) -> String {
    format!("{by} has the same key with other values and is kept")
}

#[derive(Debug, thiserror::Error)]
pub enum DedupeError {
    #[error(transparent)]
    Polars(#[from] PolarsError),
    #[error("the duplicate check's temporary file (in {dir}) failed: {0}", dir = std::env::temp_dir().display())]
    TempFile(#[source] std::io::Error),
}

/// A 128-bit digest of each row's identity: its `unique` columns, or (`whole_row`) every
/// declared column, equal for rows the server finds equal. Two 64-bit lanes fed every cell, mixed so that column order
/// matters. Over the whole row the high lane is the server's own row hash
/// (`hash_record_extended`, which validate's figures sum), so one pass over the cells serves
/// both; over a key, both lanes are ahash under their own keys.
pub fn row_digests(ds: &Dataset, df: &DataFrame, whole_row: bool) -> PolarsResult<Vec<u128>> {
    let keys = [
        ahash::RandomState::with_seeds(0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344),
        ahash::RandomState::with_seeds(0xa409_3822, 0x299f_31d0, 0x082e_fa98, 0xec4e_6c89),
    ];
    // Values are compared as the server compares them (its unique index, a row's `=`):
    // `1.0` and `1.00` are one numeric, `0.0` and `-0.0` one double. The other lane, the
    // server's own row hash, agrees.
    fn cell_hash(key: &ahash::RandomState, cell: Cell<'_>) -> u64 {
        match cell {
            Cell::Text(v) | Cell::Json(v) => key.hash_one(v),
            Cell::Numeric(v) => key.hash_one(v.map(numeric_value)),
            Cell::Integer(v) | Cell::Date(v) => key.hash_one(v),
            Cell::Bigint(v) | Cell::Timestamp(v) => key.hash_one(v),
            Cell::Double(v) => key.hash_one(v.map(|x| if x == 0.0 { 0 } else { x.to_bits() })),
            Cell::Boolean(v) => key.hash_one(v),
        }
    }
    let fields: Vec<&Field> = match whole_row {
        true => ds.fields.iter().filter(|f| !f.is_record_id()).collect(),
        false => ds.unique.iter().filter_map(|name| ds.field(name)).collect(),
    };
    let mut lanes = rows::fold(&fields, df, (0u64, 0u64), |(a, b), cell| {
        *a = match whole_row {
            true => crate::hash::combine(*a, crate::figures::cell_hash(cell)),
            false => (*a ^ cell_hash(&keys[0], cell)).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(23),
        };
        *b = (b.rotate_left(17) ^ cell_hash(&keys[1], cell)).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    })?;
    // A whole record is its row and its child rows.
    if let (true, Ok(children)) = (whole_row, df.column(crate::frame::COL_CHILDREN)) {
        for ((a, b), c) in lanes.iter_mut().zip(children.u64()?.into_no_null_iter()) {
            *a = crate::hash::combine(*a, c);
            *b = (b.rotate_left(17) ^ c).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
        }
    }
    Ok(lanes.into_iter().map(|(a, b)| ((a as u128) << 64) | b as u128).collect())
}

/// A canonical decimal without the trailing zeros of its fraction: one text per value,
/// whatever its scale (`1.50` and `1.5`, `2.00` and `2`).
fn numeric_value(canonical: &str) -> &str {
    match canonical.contains('.') {
        true => canonical.trim_end_matches('0').trim_end_matches('.'),
        false => canonical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quality::check;
    use crate::quality::tests::{frame, reasons, weather};
    use crate::quality::MISSING_REQUIRED;

    type Row = Vec<(&'static str, Option<&'static str>)>;

    fn humid(h: &str) -> Row {
        weather(&[("humidity", Some(Box::leak(h.to_string().into_boxed_str())))])
    }

    /// Runs frames of rows through the check; returns every row's reason in input order
    /// (held rows' reasons come from `finish`, matched back by record) and each detail.
    /// Two records share each line (`line_of`), as in a compact array.
    fn run(dd: Dedupe, frames: &[Vec<Row>]) -> (Vec<Option<String>>, Vec<Option<String>>, usize) {
        let (reasons, details, held, _) = run_on(crate::contract::example("weather"), dd, frames);
        (reasons, details, held)
    }

    /// Every row's reason and detail in input order, the rows held, the rows taken back.
    type Outcome = (Vec<Option<String>>, Vec<Option<String>>, usize, Vec<Retraction>);

    fn run_on(ds: &'static Dataset, dd: Dedupe, frames: &[Vec<Row>]) -> Outcome {
        let mut dd = dd;
        let mut retracted = Vec::new();
        let mut by_record = std::collections::BTreeMap::new();
        let mut line = 0u64;
        let mut held = 0;
        for rows in frames {
            let refs: Vec<&[(&str, Option<&str>)]> = rows.iter().map(|r| r.as_slice()).collect();
            let mut df = check(ds, frame(ds, &refs)).unwrap();
            let records: Vec<u64> = (line + 1..=line + rows.len() as u64).collect();
            line += rows.len() as u64;
            df.with_column(Column::new(COL_LINE.into(), records.iter().map(|r| line_of(*r)).collect::<Vec<_>>())).unwrap();
            df.with_column(Column::new(COL_RECORD.into(), records)).unwrap();
            let out = dd.mark(ds, df, |row| format!("raw {row}").into_bytes()).unwrap();
            collect(&out, &mut by_record);
        }
        if let Some(r) = dd.finish().unwrap() {
            let mut r = r;
            loop {
                let batch = r.next_batch(2).unwrap();
                if batch.is_empty() {
                    break;
                }
                for (place, raw, verdict) in batch {
                    held += 1;
                    assert!(raw.starts_with(b"raw "), "the held record comes back: {raw:?}");
                    assert_eq!(place.line, line_of(place.record));
                    let (reason, detail) = verdict.reject().map_or((None, None), |(r, d)| (Some(r.to_string()), Some(d)));
                    by_record.insert(place.record, (reason, detail));
                }
            }
            retracted = r.next_retractions(usize::MAX).unwrap();
        }
        assert_eq!(by_record.len() as u64, line, "every row is decided exactly once");
        let (reasons, details) = by_record.into_values().unzip();
        (reasons, details, held, retracted)
    }

    /// The line of a record in these tests: two records a line.
    fn line_of(record: u64) -> u64 {
        record.div_ceil(2)
    }

    /// Where record `r` is.
    fn at(record: u64) -> Place {
        Place { record, line: line_of(record) }
    }

    /// A duplicate's detail naming record `r`.
    fn same_as(record: u64) -> String {
        format!("same as {}", at(record))
    }

    /// The weather example with a key: `unique` over `keys`.
    fn weather_keyed_on(keys: &[&str]) -> &'static Dataset {
        let w = crate::contract::example("weather");
        Box::leak(Box::new(Dataset::new(
            w.name.clone(),
            w.file.clone(),
            w.prefix.clone(),
            w.fields.clone(),
            w.day_field.clone(),
            keys.iter().map(|k| k.to_string()).collect(),
            w.source.clone(),
        )))
    }

    #[test]
    fn keys_equal_to_the_server_are_one_key() {
        // 0.0 and -0.0 are one double to the server's index; 1.0 and 1.00 one numeric.
        let keyed = weather_keyed_on(&["humidity"]);
        let frames = vec![vec![humid("0.0"), humid("-0.0"), humid("0.5")], vec![humid("-0"), humid("0.50")]];
        let (reasons, details, _, _) = run_on(keyed, Dedupe::default(), &frames);
        let dup = Some(DUPLICATE.to_string());
        assert_eq!(reasons, vec![None, dup.clone(), None, dup.clone(), dup]);
        assert_eq!(details[1].as_deref(), Some(same_as(1).as_str()));
        assert_eq!(details[4].as_deref(), Some(same_as(3).as_str()));
        for (a, b) in [("1.50", "1.5"), ("2.00", "2"), ("0.000", "0"), ("-10.10", "-10.1"), ("100", "100"), ("-0.01", "-0.01")] {
            assert_eq!(numeric_value(a), b);
        }
    }

    #[test]
    fn superseding_keeps_the_last_row_of_a_key_and_takes_back_the_rows_before() {
        let keyed = weather_keyed_on(&["city", "date_time"]);
        // Every row has the same key (city and time); lines 1..=5.
        let frames = vec![vec![humid("0.1"), humid("0.1"), humid("0.2")], vec![humid("0.20"), humid("0.3")]];
        let (reasons, details, _, retracted) = run_on(keyed, Dedupe::superseding(), &frames);
        let (dup, sup) = (Some(DUPLICATE.to_string()), Some(SUPERSEDED.to_string()));
        // Line 1 went through before line 3 replaced it: it comes back as a retraction.
        assert_eq!(reasons, vec![None, dup.clone(), sup, dup.clone(), None]);
        assert_eq!(details[1].as_deref(), Some(same_as(1).as_str()));
        assert_eq!(details[2].as_deref(), Some(superseded_by(at(5)).as_str()));
        assert_eq!(details[3].as_deref(), Some(same_as(3).as_str()));
        assert_eq!(retracted.len(), 1);
        assert_eq!((retracted[0].record, retracted[0].by), (1, at(3)));
        // Its day and row hash are the ones validate's figures added for it.
        let one = check(keyed, frame(keyed, &[humid("0.1").as_slice()])).unwrap();
        let mut figures = crate::figures::Figures::default();
        figures.add(keyed, &one).unwrap();
        figures.remove(retracted.iter().map(|r| (r.day, r.row_hash)));
        assert!(figures.days.is_empty(), "{figures:?}");
        // Without superseding, the first row of a key stays and the others are duplicates.
        let (reasons, _, _, retracted) = run_on(keyed, Dedupe::default(), &frames);
        assert_eq!(reasons, vec![None, dup.clone(), dup.clone(), dup.clone(), dup]);
        assert!(retracted.is_empty());
    }

    fn collect(df: &DataFrame, into: &mut std::collections::BTreeMap<u64, (Option<String>, Option<String>)>) {
        let records = df.column(COL_RECORD).unwrap().u64().unwrap();
        let details = df.column(crate::transform::parse::COL_DETAIL).unwrap().str().unwrap();
        for (i, r) in reasons(df).into_iter().enumerate() {
            into.insert(records.get(i).unwrap(), (r, details.get(i).map(str::to_string)));
        }
    }

    #[test]
    fn duplicates_are_found_across_frames_after_casting() {
        let (a, b, c) = (humid("0.5"), humid("0.50"), humid("0.6")); // a and b are equal once cast
        let bad = weather(&[("city", None)]);
        let (reasons, details, _) = run(Dedupe::default(), &[vec![a, c.clone(), bad.clone(), bad], vec![b, c]]);
        let dup = Some(DUPLICATE.to_string());
        assert_eq!(reasons, vec![None, None, Some(MISSING_REQUIRED.into()), Some(MISSING_REQUIRED.into()), dup.clone(), dup]);
        assert_eq!(details[4].as_deref(), Some(same_as(1).as_str()));
        assert_eq!(details[5].as_deref(), Some(same_as(2).as_str()));
    }

    #[test]
    fn rows_the_filter_only_may_have_seen_are_decided_exactly() {
        // A filter that matches everything: every accepted row is held and decided by finish.
        let dd = Dedupe { filters: vec![Filter::saturated()], ..Dedupe::default() };
        let rows: Vec<Row> = ["0.1", "0.2", "0.1", "0.3", "0.2", "0.10"].iter().map(|h| humid(h)).collect();
        let (reasons, details, held) = run(dd, &[rows[..3].to_vec(), rows[3..].to_vec()]);
        assert_eq!(held, 6);
        let dup = Some(DUPLICATE.to_string());
        assert_eq!(reasons, vec![None, None, dup.clone(), None, dup.clone(), dup]);
        assert_eq!(details[2].as_deref(), Some(same_as(1).as_str()));
        assert_eq!(details[4].as_deref(), Some(same_as(2).as_str()));
        assert_eq!(details[5].as_deref(), Some(same_as(1).as_str()));
    }

    /// A dataset, its rows in frames, and each row's (key, content).
    type Keyed = (&'static Dataset, Vec<Vec<Row>>, Vec<(usize, usize)>);

    /// Rows over 400 keys (city) with three contents each (humidity), in frames of 500:
    /// enough held rows to fill every partition.
    fn keyed_rows(n: usize) -> Keyed {
        let keyed = weather_keyed_on(&["city"]);
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        let picks: Vec<(usize, usize)> = (0..n).map(|i| ((i * 7919) % 400, (i * 31 / 7) % 3)).collect();
        let rows: Vec<Row> = picks
            .iter()
            .map(|(key, content)| weather(&[("city", Some(leak(format!("c{key}")))), ("humidity", Some(leak(format!("0.{content}"))))]))
            .collect();
        (keyed, rows.chunks(500).map(<[Row]>::to_vec).collect(), picks)
    }

    #[test]
    fn held_rows_in_every_partition_decide_as_one_pass_in_file_order_would() {
        let (keyed, frames, picks) = keyed_rows(6000);
        // First wins: a held row's first occurrence is accepted, later ones are its duplicates.
        for dd in [Dedupe::default(), Dedupe { filters: vec![Filter::saturated()], ..Dedupe::default() }] {
            let (reasons, details, _, retracted) = run_on(keyed, dd, &frames);
            let mut first = HashMap::new();
            for (i, (key, _)) in picks.iter().enumerate() {
                let line = *first.entry(key).or_insert(i + 1);
                let expected = (line != i + 1).then(|| same_as(line as u64));
                assert_eq!(details[i], expected, "line {}", i + 1);
                assert_eq!(reasons[i].is_some(), expected.is_some());
            }
            assert!(retracted.is_empty());
        }
        // Superseding: the model keeps, per key, the row holding it so far.
        let (reasons, details, held, retracted) = run_on(keyed, Dedupe::superseding(), &frames);
        assert!(held > 5000, "rows held: {held}");
        let mut winner: HashMap<usize, (usize, usize)> = HashMap::new();
        let mut expected: Vec<Option<String>> = vec![None; picks.len()];
        let mut expected_retracted = Vec::new();
        for (i, &(key, content)) in picks.iter().enumerate() {
            match winner.get(&key).copied() {
                Some((line, c)) if c == content => expected[i] = Some(same_as(line as u64)),
                Some((line, _)) => {
                    // The first row of a key was let through; any later one was held.
                    match picks[..line - 1].iter().any(|(k, _)| *k == key) {
                        true => expected[line - 1] = Some(superseded_by(at(i as u64 + 1))),
                        false => expected_retracted.push((line as u64, i as u64 + 1)),
                    }
                    winner.insert(key, (i + 1, content));
                }
                None => {
                    winner.insert(key, (i + 1, content));
                }
            }
        }
        let retracted: Vec<(u64, u64)> = retracted.iter().map(|r| (r.record, r.by.record)).collect();
        let mut sorted = retracted.clone();
        sorted.sort();
        expected_retracted.sort();
        assert_eq!(sorted, expected_retracted);
        for (i, line) in retracted.iter().map(|(l, _)| l).enumerate() {
            // A retracted row was let through: it is neither a reject nor held.
            assert!(reasons[*line as usize - 1].is_none(), "retraction {i} of line {line}");
        }
        assert_eq!(details, expected);
    }

    #[test]
    fn many_distinct_rows_with_a_low_estimate_lose_none() {
        // 30,000 distinct rows against a filter sized for 1,024: the filters grow, chance
        // matches are held and then accepted, and only the planted copies are rejected.
        let mut dd = Dedupe::default();
        dd.expect(1024);
        let mut frames = Vec::new();
        for f in 0..10 {
            let mut rows: Vec<Row> = (0..3000).map(|i| humid(&format!("0.{:05}", f * 3000 + i))).collect();
            rows.push(humid(&format!("0.{:05}", f * 7))); // a copy of an earlier row
            frames.push(rows);
        }
        let (reasons, details, _) = run(dd, &frames);
        let dups: Vec<usize> = reasons.iter().enumerate().filter(|(_, r)| r.is_some()).map(|(i, _)| i).collect();
        assert_eq!(dups, (0..10).map(|f| f * 3001 + 3000).collect::<Vec<_>>());
        // 0.00007 sits at row 7 of the first frame: line 8.
        assert_eq!(details[3001 + 3000].as_deref(), Some(same_as(8).as_str()));
    }
}
