//! Rule 5, `duplicate`: a row identical (after casting) to a row accepted earlier in the
//! same load is rejected, whichever chunk each sits in. In memory that does not grow with
//! the file:
//!
//! - every accepted row's 128-bit digest goes into a blocked Bloom filter (about 2 bytes a
//!   row) and, with its line, onto the end of a temporary file (24 bytes a row, on disk);
//! - a row the filter has not seen is new for certain and goes straight on to COPY;
//! - a row the filter may have seen (a true duplicate, or about one row in a thousand by
//!   chance) is held back with its raw record, and decided at the end of the file: one
//!   sequential read of the temporary file finds which held digests were really seen.
//!
//! Memory is then the filter plus, per held row, its digest and line (24 bytes; the held
//! rows are the file's duplicates and a sliver of chance matches): the held records
//! themselves go to a second temporary file, and come back in batches once decided (the
//! accepted ones parsed again). Holding the rows in memory grew a load by about 1 KB per
//! duplicate: 2.1 GB for a 4 M-event file with a tenth repeated. An exact hash set (the first
//! design) cost 24 bytes a row and was the only part of a load that grew with the file.
//!
//! For a merge (`Dedupe::superseding`) the later of two rows with the same key wins: a
//! repeat with the same contents is the `duplicate`, one with other contents makes the
//! row before it `superseded`. That earlier row may already be on its way to the server,
//! so `finish` returns it as a `Retraction` (line, day, row hash) for the load to take back;
//! the temporary file then also keeps each row's content digest and day (48 bytes a row).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use fastbloom::BloomFilter;
use polars::prelude::*;

use crate::dataset::{Dataset, Field};
use crate::quality::{COL_REASON, DUPLICATE, SUPERSEDED};
use crate::rows::{self, Cell};
use crate::transform::parse::{COL_LINE, COL_ROW};

/// Chance matches the filter may let through, as a share of rows.
const FALSE_POSITIVES: f64 = 0.001;
/// The first filter's size when the file's row count cannot be estimated (a .gz file).
const DEFAULT_ROWS: usize = 1 << 20;
/// One record of the temporary file: digest (16 bytes) and line (8); when superseding, also
/// the content digest (16) and the day (8).
const RECORD: usize = 24;
const RECORD_SUPERSEDING: usize = 48;

/// The duplicate check's state for one file.
#[derive(Default)]
pub struct Dedupe {
    /// Filters sized one after another: when the newest is full, a new one twice its size
    /// is added, so an estimate that was too low costs memory, never accuracy.
    filters: Vec<Filter>,
    /// Digest and line of every row let through, in file order.
    seen: Option<BufWriter<File>>,
    /// The held rows' records, in file order: line (8 bytes), length (4), the bytes.
    held_records: Option<BufWriter<File>>,
    held_digests: Vec<u128>,
    held_lines: Vec<u64>,
    /// Merge: the later row with a key wins (see the module's notes).
    superseding: bool,
    /// Superseding: each held row's content digest.
    held_contents: Vec<u128>,
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

/// What the end of the file decided for a held row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A chance match of the filter (or a merge's winning row): accepted.
    Accepted,
    /// The same as the row on this line.
    Duplicate(u64),
    /// A merge's earlier row of a key, replaced by the row on this line.
    Superseded(u64),
}

impl Verdict {
    /// The reject's reason and detail, for a row that is not accepted.
    pub fn reject(self) -> Option<(&'static str, String)> {
        match self {
            Verdict::Accepted => None,
            Verdict::Duplicate(line) => Some((DUPLICATE, format!("same as line {line}"))),
            Verdict::Superseded(by) => Some((SUPERSEDED, superseded_by(by))),
        }
    }
}

/// The rows held back by the filter, decided at the end of the file and read back from
/// disk in batches (`next_batch`).
pub struct Held {
    verdicts: std::vec::IntoIter<Verdict>,
    records: BufReader<File>,
    /// Superseding: rows let through earlier that a later row with their key replaced.
    pub retracted: Vec<Retraction>,
}

impl Held {
    /// Up to `n` more held rows: line, record, verdict. Empty when all were read.
    pub fn next_batch(&mut self, n: usize) -> Result<Vec<(u64, Vec<u8>, Verdict)>, DedupeError> {
        let mut batch = Vec::with_capacity(n.min(self.verdicts.len()));
        while batch.len() < n {
            let Some(verdict) = self.verdicts.next() else { break };
            let mut head = [0u8; 12];
            self.records.read_exact(&mut head).map_err(DedupeError::TempFile)?;
            let line = u64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
            let mut raw = vec![0u8; u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize];
            self.records.read_exact(&mut raw).map_err(DedupeError::TempFile)?;
            batch.push((line, raw, verdict));
        }
        Ok(batch)
    }
}

/// A row already let through that turned out to be superseded: the load takes it back (by
/// line) and keeps it as a reject; validate's figures subtract it (by day and row hash).
#[derive(Debug, Clone, PartialEq)]
pub struct Retraction {
    pub line: u64,
    /// The line of the row that replaced it.
    pub by_line: u64,
    pub day: i64,
    pub row_hash: u64,
}

/// A row that holds a key at the end of the file.
#[derive(Clone, Copy)]
enum Winner {
    /// Let through: its line, content digest and day.
    Passed { line: u64, content: u128, day: i64 },
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
    /// never forgets, so later copies of a held row are held too and decided with it.)
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
        let keyed = !ds.unique.is_empty();
        let digests = row_digests(ds, &checked, !keyed)?;
        // Superseding compares the contents of rows with the same key.
        let contents = match self.superseding && keyed {
            true => Some(row_digests(ds, &checked, true)?),
            false => None,
        };
        let days = match &contents {
            Some(_) => crate::validate::days_of(ds, &checked)?,
            None => Vec::new(),
        };
        // The server's row hash of each row, for validate's figures: the high lane of a
        // digest that covers the whole row, else computed on its own.
        let row_hashes: Vec<u64> = match (&contents, keyed) {
            (Some(c), _) => c.iter().map(|d| (d >> 64) as u64).collect(),
            (None, false) => digests.iter().map(|d| (d >> 64) as u64).collect(),
            (None, true) => crate::validate::row_hashes(ds, &checked)?,
        };
        let mut checked = checked;
        checked.with_column(Column::new(crate::validate::COL_ROW_HASH.into(), row_hashes))?;
        let reasons = checked.column(COL_REASON)?.str()?.clone();
        let lines = checked.column(COL_LINE)?.u64()?.clone();
        let rows = checked.column(COL_ROW)?.u32()?.clone();
        let mut keep = Vec::with_capacity(checked.height());
        let mut held = false;
        if self.seen.is_none() {
            let file = tempfile::tempfile().map_err(DedupeError::TempFile)?;
            self.seen = Some(BufWriter::with_capacity(1 << 20, file));
        }
        if self.held_records.is_none() {
            let file = tempfile::tempfile().map_err(DedupeError::TempFile)?;
            self.held_records = Some(BufWriter::with_capacity(1 << 20, file));
        }
        for (i, digest) in digests.into_iter().enumerate() {
            if reasons.get(i).is_some() {
                keep.push(true);
                continue;
            }
            if self.maybe_seen(digest) {
                keep.push(false);
                held = true;
                self.held_digests.push(digest);
                let line = lines.get(i).unwrap_or_default();
                self.held_lines.push(line);
                if let Some(c) = &contents {
                    self.held_contents.push(c[i]);
                }
                let record = raw(rows.get(i).expect("row numbers are never null") as usize);
                let spill = self.held_records.as_mut().expect("opened above");
                spill.write_all(&line.to_le_bytes()).map_err(DedupeError::TempFile)?;
                spill.write_all(&(record.len() as u32).to_le_bytes()).map_err(DedupeError::TempFile)?;
                spill.write_all(&record).map_err(DedupeError::TempFile)?;
                continue;
            }
            let seen = self.seen.as_mut().expect("opened above");
            let mut record = [0u8; RECORD_SUPERSEDING];
            record[..16].copy_from_slice(&digest.to_le_bytes());
            record[16..24].copy_from_slice(&lines.get(i).unwrap_or_default().to_le_bytes());
            let len = match &contents {
                Some(c) => {
                    record[24..40].copy_from_slice(&c[i].to_le_bytes());
                    record[40..].copy_from_slice(&days[i].to_le_bytes());
                    RECORD_SUPERSEDING
                }
                None => RECORD,
            };
            seen.write_all(&record[..len]).map_err(DedupeError::TempFile)?;
            keep.push(true);
        }
        if !held {
            return Ok(checked);
        }
        let keep = BooleanChunked::from_slice("keep".into(), &keep);
        Ok(checked.filter(&keep)?)
    }

    /// Decides the held rows: a held row is a duplicate when a row let through had its
    /// digest, or an earlier held row did; otherwise it was a chance match and is accepted.
    /// Superseding, a held row with other contents than the row holding its key wins, and
    /// that row is `superseded` (or, if let through, retracted).
    pub fn finish(mut self) -> Result<Option<Held>, DedupeError> {
        if self.held_digests.is_empty() {
            return Ok(None);
        }
        if self.held_digests.len() >= FirstHeld::EMPTY as usize {
            let n = self.held_digests.len();
            return Err(DedupeError::TooManyHeld(crate::error::Failure::Input(format!(
                "{n} rows repeat earlier ones (or may), more than one load can decide: split the file"
            ))));
        }
        let superseding = self.superseding && !self.held_contents.is_empty();
        // Where each held digest first appears among the held rows: 8 bytes a held row (a
        // hash map of digests took about 40, and a tenth of a 4 M-row file held grew the
        // end of the load by tens of MB).
        let first_held = FirstHeld::new(&self.held_digests);
        // The line of the row let through with each held digest, by its first held row
        // (at most one: a row let through had a digest the filter had not seen, so it was
        // the first); superseding also keeps its contents and day, in a map.
        let mut passed_line = vec![u64::MAX; self.held_digests.len()];
        let mut passed: HashMap<u128, Winner, ahash::RandomState> = HashMap::default();
        let file = self.seen.take().expect("opened by mark").into_inner().map_err(|e| DedupeError::TempFile(e.into_error()))?;
        let mut file = file;
        file.seek(SeekFrom::Start(0)).map_err(DedupeError::TempFile)?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let len = if superseding { RECORD_SUPERSEDING } else { RECORD };
        let mut record = [0u8; RECORD_SUPERSEDING];
        let le64 = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        loop {
            match reader.read_exact(&mut record[..len]) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(DedupeError::TempFile(e)),
            }
            let digest = u128::from_le_bytes(record[..16].try_into().expect("16 bytes"));
            let Some(first) = first_held.get(&self.held_digests, digest) else { continue };
            let line = le64(&record[16..24]);
            passed_line[first] = line;
            if superseding {
                let (content, day) = (u128::from_le_bytes(record[24..40].try_into().expect("16 bytes")), le64(&record[40..48]) as i64);
                passed.insert(digest, Winner::Passed { line, content, day });
            }
        }

        let lines = &self.held_lines;
        let mut verdicts = vec![Verdict::Accepted; lines.len()];
        let mut retracted = Vec::new();
        if superseding {
            // Per key, the row that holds it so far.
            let mut winner: HashMap<u128, Winner, ahash::RandomState> = passed;
            for (i, d) in self.held_digests.iter().enumerate() {
                let Some(current) = winner.get(d).copied() else {
                    winner.insert(*d, Winner::Held(i));
                    continue;
                };
                let (held_line, held_content) = match current {
                    Winner::Passed { line, content, .. } => (line, content),
                    Winner::Held(j) => (lines[j], self.held_contents[j]),
                };
                if held_content == self.held_contents[i] {
                    verdicts[i] = Verdict::Duplicate(held_line);
                    continue;
                }
                match current {
                    Winner::Passed { line: earlier, day, content } => {
                        // The content digest's high lane is the server's row hash.
                        retracted.push(Retraction { line: earlier, by_line: lines[i], day, row_hash: (content >> 64) as u64 });
                    }
                    Winner::Held(j) => verdicts[j] = Verdict::Superseded(lines[i]),
                }
                winner.insert(*d, Winner::Held(i));
            }
        } else {
            for (i, d) in self.held_digests.iter().enumerate() {
                let first = first_held.get(&self.held_digests, *d).expect("every held digest is indexed");
                let earlier = match passed_line[first] {
                    u64::MAX if first == i => None,
                    u64::MAX => Some(lines[first]),
                    line => Some(line),
                };
                if let Some(line) = earlier {
                    verdicts[i] = Verdict::Duplicate(line);
                }
            }
        }
        let mut records =
            self.held_records.take().expect("opened by mark").into_inner().map_err(|e| DedupeError::TempFile(e.into_error()))?;
        records.seek(SeekFrom::Start(0)).map_err(DedupeError::TempFile)?;
        Ok(Some(Held { verdicts: verdicts.into_iter(), records: BufReader::with_capacity(1 << 20, records), retracted }))
    }
}

/// For each distinct digest among the held rows, the index of the first held row with it:
/// an open-addressing table of row indexes (the digests themselves stay in the held rows'
/// vector), at most half full. Digests are uniform, so their low bits are the slot.
struct FirstHeld {
    slots: Vec<u32>,
    mask: usize,
}

impl FirstHeld {
    const EMPTY: u32 = u32::MAX;

    fn new(digests: &[u128]) -> FirstHeld {
        let size = (digests.len() * 2).next_power_of_two().max(16);
        let mut table = FirstHeld { slots: vec![Self::EMPTY; size], mask: size - 1 };
        for (i, d) in digests.iter().enumerate() {
            let mut at = *d as usize & table.mask;
            loop {
                match table.slots[at] {
                    Self::EMPTY => {
                        table.slots[at] = i as u32;
                        break;
                    }
                    j if digests[j as usize] == *d => break,
                    _ => at = (at + 1) & table.mask,
                }
            }
        }
        table
    }

    /// The first held row with `digest`, if any.
    fn get(&self, digests: &[u128], digest: u128) -> Option<usize> {
        let mut at = digest as usize & self.mask;
        loop {
            match self.slots[at] {
                Self::EMPTY => return None,
                j if digests[j as usize] == digest => return Some(j as usize),
                _ => at = (at + 1) & self.mask,
            }
        }
    }
}

/// The detail of a `superseded` reject.
pub fn superseded_by(line: u64) -> String {
    format!("line {line} has the same key with other values and is kept")
}

#[derive(Debug, thiserror::Error)]
pub enum DedupeError {
    #[error(transparent)]
    Polars(#[from] PolarsError),
    #[error("the duplicate check's temporary file (in {dir}) failed: {0}", dir = std::env::temp_dir().display())]
    TempFile(#[source] std::io::Error),
    #[error("the duplicate check cannot decide this file")]
    TooManyHeld(#[source] crate::error::Failure),
}

/// A 128-bit digest of each row's identity: its `unique` columns, or (`whole_row`) every
/// declared column. Two 64-bit lanes fed every cell, mixed so that column order
/// matters. Over the whole row the high lane is the server's own row hash
/// (`hash_record_extended`, which validate's figures sum), so one pass over the cells serves
/// both; over a key, both lanes are ahash under their own keys.
pub fn row_digests(ds: &Dataset, df: &DataFrame, whole_row: bool) -> PolarsResult<Vec<u128>> {
    let keys = [
        ahash::RandomState::with_seeds(0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344),
        ahash::RandomState::with_seeds(0xa409_3822, 0x299f_31d0, 0x082e_fa98, 0xec4e_6c89),
    ];
    fn cell_hash(key: &ahash::RandomState, cell: Cell<'_>) -> u64 {
        match cell {
            Cell::Text(v) | Cell::Numeric(v) | Cell::Json(v) => key.hash_one(v),
            Cell::Integer(v) | Cell::Date(v) => key.hash_one(v),
            Cell::Bigint(v) | Cell::Timestamp(v) => key.hash_one(v),
            Cell::Double(v) => key.hash_one(v.map(f64::to_bits)),
            Cell::Boolean(v) => key.hash_one(v),
        }
    }
    let fields: Vec<&Field> = match whole_row {
        true => ds.fields.iter().collect(),
        false => ds.unique.iter().filter_map(|name| ds.field(name)).collect(),
    };
    let lanes = rows::fold(&fields, df, (0u64, 0u64), |(a, b), cell| {
        *a = match whole_row {
            true => crate::pg::hash::combine(*a, crate::validate::cell_hash(cell)),
            false => (*a ^ cell_hash(&keys[0], cell)).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(23),
        };
        *b = (b.rotate_left(17) ^ cell_hash(&keys[1], cell)).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
    })?;
    Ok(lanes.into_iter().map(|(a, b)| ((a as u128) << 64) | b as u128).collect())
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
    /// (held rows' reasons come from `finish`, matched back by line) and each detail.
    fn run(dd: Dedupe, frames: &[Vec<Row>]) -> (Vec<Option<String>>, Vec<Option<String>>, usize) {
        let (reasons, details, held, _) = run_on(crate::contract::example("weather"), dd, frames);
        (reasons, details, held)
    }

    /// Every row's reason and detail in input order, the rows held, the rows taken back.
    type Outcome = (Vec<Option<String>>, Vec<Option<String>>, usize, Vec<Retraction>);

    fn run_on(ds: &'static Dataset, dd: Dedupe, frames: &[Vec<Row>]) -> Outcome {
        let mut dd = dd;
        let mut retracted = Vec::new();
        let mut by_line = std::collections::BTreeMap::new();
        let mut line = 0u64;
        let mut held = 0;
        for rows in frames {
            let refs: Vec<&[(&str, Option<&str>)]> = rows.iter().map(|r| r.as_slice()).collect();
            let mut df = check(ds, frame(ds, &refs)).unwrap();
            let lines: Vec<u64> = (line + 1..=line + rows.len() as u64).collect();
            line += rows.len() as u64;
            df.with_column(Column::new(COL_LINE.into(), lines)).unwrap();
            let out = dd.mark(ds, df, |row| format!("raw {row}").into_bytes()).unwrap();
            collect(&out, &mut by_line);
        }
        if let Some(r) = dd.finish().unwrap() {
            let mut r = r;
            loop {
                let batch = r.next_batch(2).unwrap();
                if batch.is_empty() {
                    break;
                }
                for (line, raw, verdict) in batch {
                    held += 1;
                    assert!(raw.starts_with(b"raw "), "the held record comes back: {raw:?}");
                    let (reason, detail) = verdict.reject().map_or((None, None), |(r, d)| (Some(r.to_string()), Some(d)));
                    by_line.insert(line, (reason, detail));
                }
            }
            retracted = r.retracted;
        }
        assert_eq!(by_line.len() as u64, line, "every row is decided exactly once");
        let (reasons, details) = by_line.into_values().unzip();
        (reasons, details, held, retracted)
    }

    #[test]
    fn superseding_keeps_the_last_row_of_a_key_and_takes_back_the_rows_before() {
        let w = crate::contract::example("weather");
        let keyed: &'static Dataset = Box::leak(Box::new(Dataset::new(
            w.name.clone(),
            w.file.clone(),
            w.prefix.clone(),
            w.fields.clone(),
            w.day_field.clone(),
            vec!["city".into(), "date_time".into()],
            w.source.clone(),
        )));
        // Every row has the same key (city and time); lines 1..=5.
        let frames = vec![vec![humid("0.1"), humid("0.1"), humid("0.2")], vec![humid("0.20"), humid("0.3")]];
        let (reasons, details, _, retracted) = run_on(keyed, Dedupe::superseding(), &frames);
        let (dup, sup) = (Some(DUPLICATE.to_string()), Some(SUPERSEDED.to_string()));
        // Line 1 went through before line 3 replaced it: it comes back as a retraction.
        assert_eq!(reasons, vec![None, dup.clone(), sup, dup.clone(), None]);
        assert_eq!(details[1].as_deref(), Some("same as line 1"));
        assert_eq!(details[2].as_deref(), Some(superseded_by(5).as_str()));
        assert_eq!(details[3].as_deref(), Some("same as line 3"));
        assert_eq!(retracted.len(), 1);
        assert_eq!((retracted[0].line, retracted[0].by_line), (1, 3));
        // Its day and row hash are the ones validate's figures added for it.
        let one = check(keyed, frame(keyed, &[humid("0.1").as_slice()])).unwrap();
        let mut figures = crate::validate::Figures::default();
        figures.add(keyed, &one).unwrap();
        figures.remove(&retracted);
        assert!(figures.days.is_empty(), "{figures:?}");
        // Without superseding, the first row of a key stays and the others are duplicates.
        let (reasons, _, _, retracted) = run_on(keyed, Dedupe::default(), &frames);
        assert_eq!(reasons, vec![None, dup.clone(), dup.clone(), dup.clone(), dup]);
        assert!(retracted.is_empty());
    }

    fn collect(df: &DataFrame, into: &mut std::collections::BTreeMap<u64, (Option<String>, Option<String>)>) {
        let lines = df.column(COL_LINE).unwrap().u64().unwrap();
        let details = df.column(crate::transform::parse::COL_DETAIL).unwrap().str().unwrap();
        for (i, r) in reasons(df).into_iter().enumerate() {
            into.insert(lines.get(i).unwrap(), (r, details.get(i).map(str::to_string)));
        }
    }

    #[test]
    fn duplicates_are_found_across_frames_after_casting() {
        let (a, b, c) = (humid("0.5"), humid("0.50"), humid("0.6")); // a and b are equal once cast
        let bad = weather(&[("city", None)]);
        let (reasons, details, _) = run(Dedupe::default(), &[vec![a, c.clone(), bad.clone(), bad], vec![b, c]]);
        let dup = Some(DUPLICATE.to_string());
        assert_eq!(reasons, vec![None, None, Some(MISSING_REQUIRED.into()), Some(MISSING_REQUIRED.into()), dup.clone(), dup]);
        assert_eq!(details[4].as_deref(), Some("same as line 1"));
        assert_eq!(details[5].as_deref(), Some("same as line 2"));
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
        assert_eq!(details[2].as_deref(), Some("same as line 1"));
        assert_eq!(details[4].as_deref(), Some("same as line 2"));
        assert_eq!(details[5].as_deref(), Some("same as line 1"));
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
        assert_eq!(details[3001 + 3000].as_deref(), Some("same as line 8"));
    }
}
