//! One file's load, as four overlapping stages joined by bounded channels:
//!
//! ```text
//! reader thread:   file -> chunks of records (framing, checksum)
//! rules threads:   chunk -> text frame -> casts and rules -> row digests (see CheckOptions)
//! this thread:     duplicates (in file order) -> accepted + rejects -> sink
//! writer thread:   binary COPY into the staging table, then swap and commit
//! ```
//!
//! Parsing, rule checks and row digests use every core (rayon / Polars) while the writer
//! streams an earlier chunk into Postgres; the channels hold one or two chunks each, so
//! memory is bounded by the chunk size, not the file size.

use std::path::Path;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use polars::prelude::*;

use crate::dataset::Dataset;
use crate::dedupe::{self, Dedupe};
use crate::error::Failure;
use crate::lake::LakeWriter;
use crate::pg::copy::Reject;
use crate::pg::load::{Mode, TableLoad};
use crate::quality::{self, COL_NAN, COL_REASON};
use crate::source::{Chunk, RecordReader};
use crate::stats::LoadStats;
use crate::transform::parse::{self, COL_DETAIL, COL_EXTRA, COL_LINE, COL_ROW};

pub struct LoadOptions {
    pub schema: String,
    pub mode: Mode,
    pub force: bool,
    pub allow_empty: bool,
    pub max_reject_ratio: f64,
    /// Also write accepted rows to this lake (see `lake`).
    pub lake: Option<std::path::PathBuf>,
}

/// Progress callbacks (a terminal bar, or nothing).
pub trait Progress {
    fn advance(&self, offset: u64, records: u64);
}

/// No progress display (loads running side by side).
pub struct NoProgress;

impl Progress for NoProgress {
    fn advance(&self, _: u64, _: u64) {}
}

/// The accepted rows and rejects of one chunk, ready for COPY.
pub struct Checked {
    pub accepted: DataFrame,
    pub rejects: Vec<Reject>,
    pub nan_as_null: u64,
    pub extra_keys: u64,
}

/// Where one file's time went, per stage (logged with -v; see the README's profile).
/// The rules thread's stages (`wait_read`, `parse`, `rules`) overlap with the others.
#[derive(Default, Debug)]
pub struct StageTimes {
    pub wait_read: std::time::Duration,
    pub parse: std::time::Duration,
    pub rules: std::time::Duration,
    pub wait_rules: std::time::Duration,
    pub dedupe: std::time::Duration,
    pub split: std::time::Duration,
    pub wait_write: std::time::Duration,
}

impl StageTimes {
    fn add(&mut self, other: &StageTimes) {
        self.wait_read += other.wait_read;
        self.parse += other.parse;
        self.rules += other.rules;
        self.wait_rules += other.wait_rules;
        self.dedupe += other.dedupe;
        self.split += other.split;
        self.wait_write += other.wait_write;
    }
}

/// How a file is read and checked. `rules_threads` parse and check chunks side by side
/// (each also uses rayon and Polars' pool inside, so one chunk's serial steps overlap with
/// another's parallel ones): a load uses one, as the database's ingest needs the other
/// core and a second cost memory without making the load faster; `validate` uses two (7%
/// faster there).
#[derive(Debug, Clone, Copy)]
pub struct CheckOptions {
    pub rules_threads: usize,
    /// Bytes read per chunk (see `source::BLOCK_SIZE`).
    pub block_size: usize,
}

impl CheckOptions {
    pub const LOAD: CheckOptions = CheckOptions { rules_threads: 1, block_size: crate::source::BLOCK_SIZE };
    pub const VALIDATE: CheckOptions = CheckOptions { rules_threads: 2, block_size: crate::source::BLOCK_SIZE };
}

/// A chunk with its rows parsed, cast and checked by every rule but `duplicate`, and the
/// rows' digests for that check.
struct Ruled {
    chunk: Chunk,
    checked: DataFrame,
    digests: Vec<u128>,
    extra_keys: u64,
}

/// Parses and checks one chunk (everything but duplicates, which need the rows before it),
/// adding its time per stage to `t`.
fn rule_chunk(ds: &'static Dataset, chunk: Chunk, t: &mut StageTimes) -> PolarsResult<Ruled> {
    let clock = Instant::now();
    let parsed = parse::parse_chunk(ds, &chunk)?;
    let parsed_at = Instant::now();
    t.parse += parsed_at - clock;
    let extra_keys = parsed.column(COL_EXTRA)?.u32()?.sum().unwrap_or(0) as u64;
    let checked = quality::check(ds, parsed)?;
    let ruled_at = Instant::now();
    t.rules += ruled_at - parsed_at;
    let digests = dedupe::row_digests(ds, &checked)?;
    t.dedupe += ruled_at.elapsed();
    Ok(Ruled { chunk, checked, digests, extra_keys })
}

/// Marks a ruled chunk's duplicates and splits it into accepted rows and rejects.
fn finish_chunk(ruled: Ruled, dedupe: &mut Dedupe, t: &mut StageTimes) -> Result<Checked> {
    let clock = Instant::now();
    let chunk = &ruled.chunk;
    let raw = |row: usize| chunk.bytes(&chunk.spans[row]).to_vec();
    let checked = dedupe.mark(ruled.checked, &ruled.digests, raw)?;
    let marked_at = Instant::now();
    t.dedupe += marked_at - clock;
    let mut out = split(checked, raw)?;
    out.extra_keys = ruled.extra_keys;
    t.split += marked_at.elapsed();
    Ok(out)
}

/// The rows the duplicate check held back, decided once the whole file is read.
fn check_held(dedupe: Dedupe) -> Result<Option<Checked>> {
    let Some(held) = dedupe.finish()? else { return Ok(None) };
    let raw = &held.raw;
    Ok(Some(split(held.checked, |row| raw[row].clone())?))
}

/// Splits a checked frame into accepted rows and rejects (with their raw records).
fn split(checked: DataFrame, raw: impl Fn(usize) -> Vec<u8>) -> PolarsResult<Checked> {
    let reason = checked.column(COL_REASON)?.str()?;
    let accepted_mask = reason.is_null();
    let nan_as_null = checked.column(COL_NAN)?.u32()?.filter(&accepted_mask)?.sum().unwrap_or(0) as u64;
    let accepted = checked.filter(&accepted_mask)?;
    let rejected = checked.filter(&!&accepted_mask)?;
    let rows = rejected.column(COL_ROW)?.u32()?;
    let lines = rejected.column(COL_LINE)?.u64()?;
    let reasons = rejected.column(COL_REASON)?.str()?;
    let details = rejected.column(COL_DETAIL)?.str()?;
    let mut rejects = Vec::with_capacity(rejected.height());
    for i in 0..rejected.height() {
        rejects.push(Reject {
            line: lines.get(i).unwrap_or_default(),
            reason: reasons.get(i).unwrap_or_default().to_string(),
            detail: details.get(i).map(str::to_string),
            raw: raw(rows.get(i).expect("row numbers are never null") as usize),
        });
    }
    Ok(Checked { accepted, rejects, nan_as_null, extra_keys: 0 })
}

/// Reads and checks a whole file, handing each chunk's result to `sink` in order (it
/// returns false to stop early). Returns the counts; the checksum covers every byte read.
pub fn check_file(
    ds: &'static Dataset,
    path: &Path,
    progress: &dyn Progress,
    options: CheckOptions,
    mut sink: impl FnMut(Checked) -> bool,
) -> Result<LoadStats> {
    let rules_threads = options.rules_threads.max(1);
    let started = Instant::now();
    let file_size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let display = path.display().to_string();
    let mut reader = RecordReader::open(path)?.with_block_size(options.block_size);
    // Reader thread: framing and hashing overlap with parsing. Chunks are numbered, as the
    // rules threads may finish them out of order.
    let (to_rules, from_reader) = sync_channel::<(u64, Result<Chunk>)>(rules_threads);
    let reader_thread = thread::Builder::new().name("tier-read".into()).spawn(move || -> String {
        for seq in 0u64.. {
            let next = reader.next_chunk();
            let stop = !matches!(next, Ok(Some(_)));
            let sent = match next {
                Ok(Some(c)) => to_rules.send((seq, Ok(c))),
                Ok(None) => break,
                Err(e) => to_rules.send((seq, Err(e))),
            };
            if stop || sent.is_err() {
                break;
            }
        }
        reader.checksum()
    })?;

    // Rules threads: parsing, rule checks and digests of the next chunks overlap with the
    // duplicate check, the split and the sink (COPY, or validate's figures) of this one.
    let (to_main, from_rules) = sync_channel::<(u64, Result<Ruled>)>(rules_threads);
    let from_reader = std::sync::Arc::new(std::sync::Mutex::new(from_reader));
    let mut rules = Vec::with_capacity(rules_threads);
    for _ in 0..rules_threads {
        let (from_reader, to_main, display) = (from_reader.clone(), to_main.clone(), display.clone());
        rules.push(thread::Builder::new().name("tier-rules".into()).spawn(move || -> StageTimes {
            let mut times = StageTimes::default();
            loop {
                let waited = Instant::now();
                let next = from_reader.lock().map(|r| r.recv());
                times.wait_read += waited.elapsed();
                let Ok(Ok((seq, chunk))) = next else { break };
                let ruled = chunk.and_then(|chunk| {
                    let line = chunk.spans[0].line;
                    rule_chunk(ds, chunk, &mut times)
                        .map_err(|e| anyhow::Error::new(e).context(format!("{display}: checking records near line {line}")))
                });
                let stop = ruled.is_err();
                if to_main.send((seq, ruled)).is_err() || stop {
                    break;
                }
            }
            times
        })?);
    }
    drop(to_main);
    // Chunks back in file order: the duplicate check needs the rows before.
    let mut pending = std::collections::BTreeMap::new();
    let mut next_seq = 0u64;
    let mut in_order = std::iter::from_fn(|| loop {
        if let Some(ruled) = pending.remove(&next_seq) {
            next_seq += 1;
            return Some(ruled);
        }
        let (seq, ruled) = from_rules.recv().ok()?;
        pending.insert(seq, ruled);
    });

    let mut stats = LoadStats { table: ds.name.to_string(), file: display.clone(), file_size, ..Default::default() };
    let mut dedupe = Dedupe::default();
    let mut failure: Option<anyhow::Error> = None;
    let mut stopped = false;
    let mut times = StageTimes::default();
    let mut waited = Instant::now();
    while let Some(ruled) = in_order.next() {
        times.wait_rules += waited.elapsed();
        let ruled = match ruled {
            Ok(r) => r,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let (records, offset_end, first_line) = (ruled.chunk.spans.len() as u64, ruled.chunk.offset_end, ruled.chunk.spans[0].line);
        if stats.records == 0 && offset_end > 0 && !crate::source::is_gzip(path) {
            // Size the duplicate filter from the first chunk's records per byte.
            let estimate = file_size as f64 * records as f64 / offset_end as f64;
            dedupe.expect((estimate * 1.02) as usize);
        }
        let checked = match finish_chunk(ruled, &mut dedupe, &mut times) {
            Ok(c) => c,
            Err(e) => {
                failure = Some(e.context(format!("{display}: checking records near line {first_line}")));
                break;
            }
        };
        stats.records += records;
        progress.advance(offset_end, stats.records);
        if !deliver(&mut stats, checked, &mut sink, &mut times) {
            stopped = true;
            break;
        }
        waited = Instant::now();
    }
    if failure.is_none() && !stopped {
        match check_held(dedupe) {
            Ok(Some(held)) => {
                deliver(&mut stats, held, &mut sink, &mut times);
            }
            Ok(None) => {}
            Err(e) => failure = Some(e.context(format!("{display}: deciding the rows held by the duplicate check"))),
        }
    }
    // Stopping early: the closed channels stop the rules threads, and they the reader.
    drop(in_order);
    for thread in rules {
        times.add(&thread.join().map_err(|_| anyhow!("a rules thread panicked"))?);
    }
    tracing::info!("{}: stage seconds {times:.2?}", stats.file);
    let checksum = reader_thread.join().map_err(|_| anyhow!("the reader thread panicked"))?;
    if let Some(e) = failure {
        return Err(e);
    }
    stats.checksum = checksum;
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// Counts one checked batch and hands it to `sink`; false when the sink wants no more.
fn deliver(stats: &mut LoadStats, checked: Checked, sink: &mut impl FnMut(Checked) -> bool, times: &mut StageTimes) -> bool {
    stats.loaded += checked.accepted.height() as u64;
    stats.nan_as_null += checked.nan_as_null;
    stats.extra_keys += checked.extra_keys;
    for r in &checked.rejects {
        *stats.rejected.entry(r.reason.clone()).or_default() += 1;
    }
    let sent = Instant::now();
    let more = sink(checked);
    times.wait_write += sent.elapsed();
    more
}

/// Loads one file into one table over `client`.
pub fn load_file(
    ds: &'static Dataset,
    path: &Path,
    opts: &LoadOptions,
    client: postgres::Client,
    progress: &dyn Progress,
) -> Result<LoadStats> {
    let started = Instant::now();
    let display = path.display().to_string();
    if std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false) {
        return Err(Failure::Input(format!("{display}: is a directory, not an export file")).into());
    }
    // Appends are recorded (and refused) by the file's own checksum, computed first so a
    // file already loaded is refused before the work; for a .gz file that is the
    // compressed bytes, as they sit on disk.
    let file_checksum = match (opts.mode, crate::source::is_gzip(path)) {
        (Mode::Append, _) | (_, true) => Some(checksum_file(path)?),
        _ => None,
    };
    let append_checksum = file_checksum.as_deref().filter(|_| opts.mode == Mode::Append && !opts.force);
    // Writer thread: opens the transaction up front, so a lock wait or a refusal happens first.
    let load = TableLoad::begin(client, ds, &opts.schema, opts.mode, &display, append_checksum, opts.force)?;
    let load_id = load.load_id;
    let (to_writer, from_main): (SyncSender<Checked>, Receiver<Checked>) = sync_channel(2);
    let writer = thread::Builder::new().name("tier-copy".into()).spawn(move || -> Result<TableLoad> {
        let mut load = load;
        let started = Instant::now();
        let mut busy = std::time::Duration::ZERO;
        for batch in from_main {
            let t = Instant::now();
            load.write(&batch.accepted, &batch.rejects)?;
            busy += t.elapsed();
        }
        tracing::info!("COPY writer: busy {busy:.2?} of {:.2?}", started.elapsed());
        Ok(load)
    })?;
    let mut lake = match &opts.lake {
        Some(root) => Some(LakeWriter::new(root, ds, opts.mode, &load_id.to_string())?),
        None => None,
    };
    let mut lake_error = None;
    let checked = check_file(ds, path, progress, CheckOptions::LOAD, |c| {
        if let Some(l) = lake.as_mut() {
            if let Err(e) = l.write(&c.accepted) {
                lake_error = Some(e);
                return false;
            }
        }
        to_writer.send(c).is_ok()
    });
    drop(to_writer);
    let result = finish_load(writer, checked, lake_error, lake.as_mut(), &display, file_checksum, opts);
    match (result, lake) {
        (Ok((load, stats)), lake) => {
            load.commit(&stats)?;
            if let Some(l) = lake {
                l.publish().context("the database load is committed, but the lake could not be updated; load again to repair it")?;
            }
            let mut stats = stats;
            stats.seconds = started.elapsed().as_secs_f64();
            Ok(stats)
        }
        (Err(e), lake) => {
            if let Some(l) = lake {
                l.abandon();
            }
            Err(e)
        }
    }
}

/// Everything between the last chunk and the commit: the writer's result, the counts'
/// verdicts (empty input, too many rejects), the lake files closed.
fn finish_load(
    writer: thread::JoinHandle<Result<TableLoad>>,
    checked: Result<LoadStats>,
    lake_error: Option<anyhow::Error>,
    lake: Option<&mut LakeWriter>,
    display: &str,
    file_checksum: Option<String>,
    opts: &LoadOptions,
) -> Result<(TableLoad, LoadStats)> {
    // The writer's error, if any, explains why the sink stopped: report it first.
    let load = writer.join().map_err(|_| anyhow!("the writer thread panicked"))??;
    if let Some(e) = lake_error {
        return Err(e.context(format!("{display}: writing the lake failed; nothing was loaded")));
    }
    let mut stats = checked?;
    if let Some(sum) = file_checksum {
        stats.checksum = sum;
    }

    if stats.records == 0 && !opts.allow_empty {
        return Err(Failure::Input(format!(
            "{display}: no records found; the table is left as it was (use --allow-empty to load an empty file)"
        ))
        .into());
    }
    let ratio = if stats.records > 0 { stats.rejected_total() as f64 / stats.records as f64 } else { 0.0 };
    if ratio > opts.max_reject_ratio {
        let (top, n) = stats.top_reason().unwrap_or(("", 0));
        return Err(Failure::Input(format!(
            "{display}: {} of {} records rejected ({:.1}%, over --max-reject-ratio {}), most for {top} ({n}); the table is left as it was",
            stats.rejected_total(),
            stats.records,
            ratio * 100.0,
            opts.max_reject_ratio
        ))
        .into());
    }
    if let Some(l) = lake {
        l.finish()?;
    }
    Ok((load, stats))
}

/// BLAKE3 of a file, as the ledger records it.
pub fn checksum_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut h = blake3::Hasher::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("{}: read failed", path.display()))?;
    Ok(h.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::WEATHER;
    use crate::transform::parse::COL_LINE;

    /// Every row's fate by line: accepted, or the reject's reason and detail.
    fn outcome(path: &Path, options: CheckOptions) -> (Vec<(u64, String)>, LoadStats) {
        let mut rows = Vec::new();
        let stats = check_file(&WEATHER, path, &NoProgress, options, |checked| {
            for line in checked.accepted.column(COL_LINE).unwrap().u64().unwrap().into_iter().flatten() {
                rows.push((line, "accepted".to_string()));
            }
            for r in checked.rejects {
                rows.push((r.line, format!("{} {}", r.reason, r.detail.unwrap_or_default())));
            }
            true
        })
        .unwrap();
        rows.sort();
        (rows, stats)
    }

    #[test]
    fn chunks_checked_side_by_side_give_the_file_order_result() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weather.json");
        let mut lines = Vec::new();
        for i in 0..3000 {
            // Every 7th row repeats an earlier one (often from another chunk), every 11th is bad.
            let n = if i % 7 == 6 { i / 3 } else { i };
            let humidity = if i % 11 == 10 { "\"wet\"".to_string() } else { format!("0.{:04}", n) };
            lines.push(format!(
                "{{\"weather_data.date_time\": \"2019-06-04 14:{:02}:{:02}\", \"weather_data.city\": \"City {}\", \"weather_data.currently_humidity\": {humidity}}}",
                (n / 60) % 60,
                n % 60,
                n / 3600
            ));
        }
        std::fs::write(&path, format!("[{}]", lines.join(",\n"))).unwrap();
        let (serial, serial_stats) = outcome(&path, CheckOptions { rules_threads: 1, block_size: 1 << 20 });
        let (parallel, parallel_stats) = outcome(&path, CheckOptions { rules_threads: 3, block_size: 4096 });
        assert_eq!(serial.len(), 3000);
        assert!(serial.iter().any(|(_, o)| o.starts_with("duplicate same as line")), "the file has duplicates");
        assert!(serial.iter().any(|(_, o)| o.starts_with("bad_number")), "the file has bad rows");
        assert_eq!(parallel, serial, "small chunks on three threads decide every row as one chunk does");
        assert_eq!((parallel_stats.loaded, parallel_stats.checksum), (serial_stats.loaded, serial_stats.checksum));
    }
}
