//! One file's load, as five overlapping stages joined by bounded channels:
//!
//! ```text
//! reader thread:  file -> chunks of records (framing, checksum)
//! rules thread:   chunk -> text frame -> casts and rules
//! this thread:    duplicates (in file order) -> accepted + rejects -> sink
//! writer thread:  figures, binary COPY encoding piece by piece (rejects spooled), lake
//! sender thread:  the pieces into one open COPY; then the writer swaps and commits
//! ```
//!
//! Parsing, rule checks and row digests use every core (rayon / Polars) while the server
//! ingests an earlier chunk. The reader's channel holds one chunk, the sender's two pieces of
//! 4,096 rows; the others hold none (a stage hands its chunk over only when the next one
//! takes it), so memory is bounded by the chunk size, not the file size.

use std::path::Path;

use crate::source::Input;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use polars::prelude::*;

use crate::children::ChildRows;
use crate::dataset::{Dataset, OnNewKey};
use crate::dedupe::{Dedupe, Retraction};
use crate::error::Failure;
use crate::figures::Figures;
use crate::lake::LakeWriter;
use crate::pg::copy::Reject;
use crate::pg::load::{AfterCommit, Mode, TableLoad};
use crate::quality::{self, COL_NAN, COL_REASON};
use crate::source::{Chunk, ChunkSource};
use crate::stats::LoadStats;
use crate::transform::parse::{self, COL_DETAIL, COL_EXTRA, COL_LINE, COL_RECORD, COL_ROW};

#[derive(Clone)]
pub struct LoadOptions {
    pub schema: String,
    pub mode: Mode,
    pub force: bool,
    pub allow_empty: bool,
    pub max_reject_ratio: f64,
    /// Also write accepted rows to this lake (see `lake`).
    pub lake: Option<std::path::PathBuf>,
    pub lake_format: crate::lake::Format,
    /// The Iceberg lake's catalog name.
    pub lake_catalog: String,
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

/// One chunk's rows sorted into the accepted and the rejects, ready for COPY.
pub struct Sorted {
    /// The table the accepted rows go to (an index into `Dataset::tables`).
    pub table: usize,
    /// A child table's rows (each record's are counted once, in its parent's table).
    pub child: bool,
    pub accepted: DataFrame,
    pub rejects: Vec<Reject>,
    pub nan_as_null: u64,
    pub extra_keys: u64,
    /// Merge: rows delivered before that a later row with their key superseded.
    pub retracted: Vec<Retraction>,
}

/// Where one file's time went, per stage (logged with -v; see docs/performance.md).
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

/// A chunk with its rows parsed, cast and checked by every rule but `duplicate`: one part
/// per table that takes some of its records (one, unless the dataset splits a log).
struct Ruled {
    parts: Vec<Part>,
    /// Records no table takes (a split log's), as rejects.
    refused: Vec<Reject>,
    records: u64,
    offset_end: u64,
    first_line: u64,
    /// The chunk's buffer: the parts' records are in it (then it goes back to the reader).
    buf: Vec<u8>,
}

/// One table's records of a chunk, checked, with their child tables' rows.
struct Part {
    table: usize,
    /// Its records, in the chunk's buffer.
    spans: Vec<crate::source::Span>,
    checked: DataFrame,
    extra_keys: u64,
    children: Vec<ChildRows>,
}

/// Routes a chunk's records to their tables (a split log) and checks each table's part.
fn rule_routed(ds: &'static Dataset, chunk: Chunk, t: &mut StageTimes) -> PolarsResult<Ruled> {
    let (records, offset_end) = (chunk.spans.len() as u64, chunk.offset_end);
    let first_line = chunk.spans.first().map_or(0, |s| s.line);
    let Chunk { buf, spans, messages, .. } = chunk;
    let messages = messages.as_ref();
    let Some(split) = &ds.split else {
        let (checked, extra_keys, children) = rule_chunk(ds, &buf, &spans, messages, offset_end, t)?;
        let parts = vec![Part { table: 0, spans, checked, extra_keys, children }];
        return Ok(Ruled { parts, refused: Vec::new(), records, offset_end, first_line, buf });
    };
    let clock = Instant::now();
    let routed = crate::transform::route::route(ds, split, &buf, spans);
    t.parse += clock.elapsed();
    let refused = routed
        .refused
        .into_iter()
        .map(|r| {
            let (span, raw) = (r.span, buf[r.span.start..r.span.end].to_vec());
            Reject { line: span.line, record: span.record, reason: r.reason.to_string(), detail: Some(r.detail), raw }
        })
        .collect();
    let mut parts = Vec::with_capacity(routed.parts.len());
    let tables = ds.tables();
    for (kind, spans) in routed.parts {
        let table = table_index(&tables, split.tables[kind]);
        let (checked, extra_keys, children) = rule_chunk(split.tables[kind], &buf, &spans, messages, offset_end, t)?;
        parts.push(Part { table, spans, checked, extra_keys, children });
    }
    Ok(Ruled { parts, refused, records, offset_end, first_line, buf })
}

/// Parses and checks one chunk (everything but duplicates, which need the rows before it),
/// and its child tables' rows (a failing one fails its record), adding its time per stage
/// to `t`.
fn rule_chunk(
    ds: &'static Dataset,
    buf: &[u8],
    spans: &[crate::source::Span],
    messages: Option<&crate::source::Messages>,
    offset_end: u64,
    t: &mut StageTimes,
) -> PolarsResult<(DataFrame, u64, Vec<ChildRows>)> {
    let clock = Instant::now();
    let mut parsed = parse::parse_records(ds, buf, spans)?;
    if let Some(messages) = messages {
        parse::set_message_columns(ds, &mut parsed, messages)?;
    }
    let parsed_at = Instant::now();
    t.parse += parsed_at - clock;
    let extra_keys = parsed.column(COL_EXTRA)?.u32()?.sum().unwrap_or(0) as u64;
    let (children, failures) = crate::children::child_rows(ds, buf, spans, offset_end, &parsed)?;
    let checked = quality::check(ds, parsed)?;
    let mut checked = crate::children::fail_rows(checked, &failures)?;
    if !ds.children.is_empty() {
        let digests = crate::children::children_digests(&ds.tables(), &checked, &children)?;
        checked.with_column(Column::new(crate::frame::COL_CHILDREN.into(), digests))?;
    }
    t.rules += parsed_at.elapsed();
    Ok((checked, extra_keys, children))
}

/// Where a table is in `tables` (`Dataset::tables`).
fn table_index(tables: &[&'static Dataset], ds: &Dataset) -> usize {
    tables.iter().position(|t| std::ptr::eq(*t, ds)).expect("a table of the load")
}

/// The rows of child tables whose parent records were accepted (`parent`: the parent's
/// accepted rows), one batch per child table.
fn child_batches(tables: &[&'static Dataset], parent: &DataFrame, children: Vec<ChildRows>) -> PolarsResult<Vec<Sorted>> {
    if children.is_empty() {
        return Ok(Vec::new());
    }
    let accepted: std::collections::HashSet<u64> = match parent.height() {
        0 => Default::default(),
        _ => parent.column(COL_RECORD)?.u64()?.into_no_null_iter().collect(),
    };
    let mut out = Vec::with_capacity(children.len());
    for c in children {
        let records = c.checked.column(COL_RECORD)?.u64()?;
        let keep: BooleanChunked = records.into_iter().map(|r| Some(r.is_some_and(|r| accepted.contains(&r)))).collect();
        let rows = c.checked.filter(&keep)?;
        out.push(Sorted { table: table_index(tables, c.ds), child: true, ..Sorted::rows(rows) });
    }
    Ok(out)
}

/// Marks a ruled chunk's duplicates and splits each part into accepted rows and rejects;
/// the chunk's buffer comes back for the reader to fill again.
fn finish_chunk(tables: &[&'static Dataset], ruled: Ruled, dedupe: &mut Dedupe, t: &mut StageTimes) -> Result<(Vec<Sorted>, Vec<u8>)> {
    let mut sorted = Vec::with_capacity(ruled.parts.len() + 1);
    let buf = ruled.buf;
    for part in ruled.parts {
        let clock = Instant::now();
        let (ds, spans) = (tables[part.table], &part.spans);
        let raw = |row: usize| buf[spans[row].start..spans[row].end].to_vec();
        let checked = dedupe.mark_in(ds, part.table, part.checked, raw)?;
        let marked_at = Instant::now();
        t.dedupe += marked_at - clock;
        let mut out = split(ds, checked, raw)?;
        (out.extra_keys, out.table) = (part.extra_keys, part.table);
        let children = child_batches(tables, &out.accepted, part.children)?;
        t.split += marked_at.elapsed();
        sorted.push(out);
        sorted.extend(children);
    }
    if !ruled.refused.is_empty() {
        sorted.push(Sorted::rejects(ruled.refused));
    }
    Ok((sorted, buf))
}

impl Sorted {
    /// Rejects only, no rows.
    fn rejects(rejects: Vec<Reject>) -> Sorted {
        Sorted { rejects, ..Sorted::rows(DataFrame::empty()) }
    }

    /// Rows only, of the first table.
    fn rows(accepted: DataFrame) -> Sorted {
        Sorted { table: 0, child: false, accepted, rejects: Vec::new(), nan_as_null: 0, extra_keys: 0, retracted: Vec::new() }
    }
}

/// The rows the duplicate check held back, decided once the whole file is read.
/// They come back from disk in batches: the duplicates (and superseded rows) as rejects
/// with their records, the accepted ones (the filter's chance matches, a merge's winning
/// rows) parsed and checked again from their records, which gives the same rows.
fn check_held(
    ds: &'static Dataset,
    dedupe: Dedupe,
    t: &mut StageTimes,
    mut deliver: impl FnMut(Sorted, &mut StageTimes) -> bool,
) -> Result<()> {
    let Some(mut held) = dedupe.finish()? else { return Ok(()) };
    let tables = ds.tables();
    loop {
        let batch = held.next_batch(HELD_BATCH)?;
        let retracted = held.next_retractions(HELD_BATCH)?;
        if batch.is_empty() && retracted.is_empty() {
            return Ok(());
        }
        let mut rejects = Vec::new();
        let mut chunk = Chunk { buf: Vec::new(), spans: Vec::new(), offset_end: 0, messages: None };
        for (at, raw, verdict) in batch {
            match verdict.reject() {
                Some((reason, detail)) => {
                    rejects.push(Reject { line: at.line, record: at.record, reason: reason.to_string(), detail: Some(detail), raw })
                }
                None => {
                    let start = chunk.buf.len();
                    chunk.buf.extend_from_slice(&raw);
                    let (line, record) = (at.line, at.record);
                    chunk.spans.push(crate::source::Span { line, record, start, end: chunk.buf.len(), damage: None });
                    chunk.buf.push(b'\n');
                }
            }
        }
        // Routed again as they were the first time (a split log's), to the same tables.
        let mut batches = vec![Sorted::rejects(rejects)];
        if !chunk.spans.is_empty() {
            let ruled = rule_routed(ds, chunk, t)?;
            batches.push(Sorted::rejects(ruled.refused));
            for part in ruled.parts {
                let (buf, spans) = (&ruled.buf, &part.spans);
                let mut sorted = split(tables[part.table], part.checked, |row| buf[spans[row].start..spans[row].end].to_vec())?;
                sorted.table = part.table;
                let children = child_batches(&tables, &sorted.accepted, part.children)?;
                batches.push(sorted);
                batches.extend(children);
            }
        }
        batches[0].retracted = retracted;
        for batch in batches {
            if !deliver(batch, t) {
                return Ok(());
            }
        }
    }
}

/// Read blocks in existence at once: the one being filled, one waiting for the rules
/// thread, one being parsed, one waiting for the duplicate check and one in it. They are a
/// load's largest allocations; bounded, a load's memory does not depend on how the stages'
/// timing happens to line up (six blocks were seen in flight at once).
const BLOCKS: usize = 5;

/// Held rows read back per batch at the end of a file: mostly duplicates, whose records go
/// to the writer as rejects; two batches are in flight at once (the writer's and the one
/// waiting for it), so a batch stays near a normal chunk's size (50,000 rows of ~800 bytes
/// each kept 120 MB in flight).
const HELD_BATCH: usize = 8_192;

/// Splits a checked frame into accepted rows and rejects (with their raw records).
fn split(ds: &Dataset, checked: DataFrame, raw: impl Fn(usize) -> Vec<u8>) -> PolarsResult<Sorted> {
    let reason = checked.column(COL_REASON)?.str()?;
    if reason.null_count() == reason.len() {
        // Nothing rejected (most chunks): no frame to filter.
        let nan_as_null = checked.column(COL_NAN)?.u32()?.sum().unwrap_or(0) as u64;
        return Ok(Sorted { nan_as_null, ..Sorted::rows(checked) });
    }
    let accepted_mask = reason.is_null();
    let nan_as_null = checked.column(COL_NAN)?.u32()?.filter(&accepted_mask)?.sum().unwrap_or(0) as u64;
    // On this thread: polars' parallel filter would queue behind the rules stage's parse
    // on the shared thread pool, once per table of a split log's chunk.
    let accepted = checked._filter_seq(&accepted_mask)?;
    let rejected = checked._filter_seq(&!&accepted_mask)?;
    let rows = rejected.column(COL_ROW)?.u32()?;
    let lines = rejected.column(COL_LINE)?.u64()?;
    let records = rejected.column(COL_RECORD)?.u64()?;
    let reasons = rejected.column(COL_REASON)?.str()?;
    let details = rejected.column(COL_DETAIL)?.str()?;
    let mut rejects = Vec::with_capacity(rejected.height());
    for i in 0..rejected.height() {
        let (reason, raw) = (reasons.get(i).unwrap_or_default(), raw(rows.get(i).expect("row numbers are never null") as usize));
        let detail = match reason {
            crate::quality::UNKNOWN_KEY => Some(format!(
                "not in the contract: {}",
                crate::transform::record::unknown_keys(ds, &raw).iter().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ")
            )),
            _ => details.get(i).map(str::to_string),
        };
        let (line, record) = (lines.get(i).unwrap_or_default(), records.get(i).unwrap_or_default());
        rejects.push(Reject { line, record, reason: reason.to_string(), detail, raw });
    }
    Ok(Sorted { rejects, nan_as_null, ..Sorted::rows(accepted) })
}

/// Reads and checks a whole file, handing each chunk's result to `sink` in order (it
/// returns false to stop early). Returns the counts; the checksum covers every byte read.
/// `superseding`: a merge's duplicate check (the later row with a key wins).
pub fn check_file(
    ds: &'static Dataset,
    input: &Input,
    superseding: bool,
    progress: &dyn Progress,
    mut sink: impl FnMut(Sorted) -> bool,
) -> Result<LoadStats> {
    let started = Instant::now();
    let file_size = input.size();
    let display = input.name();
    let reader = crate::source::open_chunks(input)?;
    // Reader thread: framing and hashing overlap with parsing.
    let (to_rules, from_reader) = sync_channel::<Result<Chunk>>(1);
    let (recycle, used_buffers) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader_thread = thread::Builder::new().name("tier-read".into()).spawn(move || read_blocks(reader, to_rules, used_buffers))?;
    // Rules thread: parsing and rule checks of one chunk overlap with the duplicate check,
    // the split and the sink (COPY, or validate's figures) of the chunk before. It hands a
    // chunk over only when the duplicate check takes it (a channel of none): with room for
    // one, a stalled COPY let a further checked frame wait in it, and each such frame
    // (~10 MB) raised the peak of a 16 M-event load.
    let (to_main, from_rules) = sync_channel::<Result<Ruled>>(0);
    let rules_display = display.clone();
    let rules_thread =
        thread::Builder::new().name("tier-rules".into()).spawn(move || rule_chunks(ds, &rules_display, from_reader, to_main))?;

    let mut stats = LoadStats { table: ds.name.clone(), file: display.clone(), file_size, ..Default::default() };
    if ds.writes_many() {
        stats.tables = ds.tables().iter().map(|t| crate::stats::TableStats { table: t.name.clone(), ..Default::default() }).collect();
    }
    let mut dedupe = if superseding { Dedupe::superseding() } else { Dedupe::default() };
    let mut times = StageTimes::default();
    let sorted = sort_chunks(ds, input, &from_rules, &recycle, progress, &mut stats, &mut dedupe, &mut sink, &mut times);
    let failure = match sorted {
        Ok(true) => {
            let mut rule_times = StageTimes::default();
            let held = check_held(ds, dedupe, &mut rule_times, |sorted, t| deliver(&mut stats, sorted, &mut sink, t));
            times.add(&rule_times);
            held.err().map(|e| e.context(format!("{display}: deciding the rows held by the duplicate check")))
        }
        Ok(false) => None,
        Err(e) => Some(e),
    };
    // Stopping early: the closed channels stop the rules thread, and it the reader.
    drop(from_rules);
    drop(recycle);
    let rule_times = rules_thread.join().map_err(|_| anyhow!("the rules thread panicked"))?;
    times.add(&rule_times);
    tracing::info!("{}: stage seconds {times:.2?}", stats.file);
    let checksum = reader_thread.join().map_err(|_| anyhow!("the reader thread panicked"))?;
    if let Some(e) = failure {
        return Err(e);
    }
    stats.checksum = checksum;
    stats.seconds = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// The main thread's part of a file: each ruled chunk's duplicates marked, its rows sorted
/// and handed to `sink` (its buffer back to the reader). Ok(false) when the sink stopped early.
#[allow(clippy::too_many_arguments)]
fn sort_chunks(
    ds: &'static Dataset,
    input: &Input,
    from_rules: &Receiver<Result<Ruled>>,
    recycle: &std::sync::mpsc::Sender<Vec<u8>>,
    progress: &dyn Progress,
    stats: &mut LoadStats,
    dedupe: &mut Dedupe,
    sink: &mut impl FnMut(Sorted) -> bool,
    times: &mut StageTimes,
) -> Result<bool> {
    let mut waited = Instant::now();
    let tables = ds.tables();
    for ruled in from_rules.iter() {
        times.wait_rules += waited.elapsed();
        let ruled = ruled?;
        let (records, offset_end, first_line) = (ruled.records, ruled.offset_end, ruled.first_line);
        if stats.records == 0 && offset_end > 0 && stats.file_size > 0 && !input.compressed() {
            // Size the duplicate filter from the first chunk's records per byte.
            let estimate = stats.file_size as f64 * records as f64 / offset_end as f64;
            dedupe.expect((estimate * 1.02) as usize);
        }
        let (sorted, buf) = finish_chunk(&tables, ruled, dedupe, times)
            .map_err(|e| e.context(format!("{}: checking records near line {first_line}", input.name())))?;
        let _ = recycle.send(buf);
        stats.records += records;
        progress.advance(offset_end, stats.records);
        for batch in sorted {
            if !deliver(stats, batch, sink, times) {
                return Ok(false);
            }
        }
        waited = Instant::now();
    }
    Ok(true)
}

/// The reader thread: the file's chunks, one after another, into `to_rules`, in at most
/// `BLOCKS` buffers (handed back through `used`); returns the file's checksum.
fn read_blocks(mut reader: Box<dyn ChunkSource>, to_rules: SyncSender<Result<Chunk>>, used_buffers: Receiver<Vec<u8>>) -> String {
    // The reader's own block, then one per chunk it handed on and got no block back for.
    let mut blocks = 1;
    loop {
        while let Ok(buf) = used_buffers.try_recv() {
            reader.reuse(buf);
        }
        // At most BLOCKS blocks exist at once: with none spare, wait for one back (the
        // main thread hands each back as it finishes a chunk; it stops by hanging up).
        if !reader.has_spare() {
            match blocks < BLOCKS {
                true => blocks += 1,
                false => match used_buffers.recv() {
                    Ok(buf) => reader.reuse(buf),
                    Err(_) => break,
                },
            }
        }
        let next = reader.next_chunk();
        let stop = !matches!(next, Ok(Some(_)));
        let sent = match next {
            Ok(Some(c)) => to_rules.send(Ok(c)),
            Ok(None) => break,
            Err(e) => to_rules.send(Err(e)),
        };
        if stop || sent.is_err() {
            break;
        }
    }
    reader.checksum()
}

/// The rules thread: each chunk parsed and checked (everything but duplicates) into `to_main`;
/// returns where its time went.
fn rule_chunks(
    ds: &'static Dataset,
    rules_display: &str,
    from_reader: Receiver<Result<Chunk>>,
    to_main: SyncSender<Result<Ruled>>,
) -> StageTimes {
    let mut times = StageTimes::default();
    let mut waited = Instant::now();
    for chunk in from_reader.iter() {
        times.wait_read += waited.elapsed();
        let ruled = chunk.and_then(|chunk| {
            let first_line = chunk.spans.first().map_or(0, |s| s.line);
            rule_routed(ds, chunk, &mut times)
                .map_err(|e| anyhow::Error::new(e).context(format!("{rules_display}: checking records near line {first_line}")))
        });
        let stop = ruled.is_err();
        if to_main.send(ruled).is_err() || stop {
            break;
        }
        waited = Instant::now();
    }
    times
}

/// Counts one checked batch and hands it to `sink`; false when the sink wants no more.
fn deliver(stats: &mut LoadStats, checked: Sorted, sink: &mut impl FnMut(Sorted) -> bool, times: &mut StageTimes) -> bool {
    if !checked.child {
        stats.loaded += checked.accepted.height() as u64;
    }
    if let Some(t) = stats.tables.get_mut(checked.table) {
        t.loaded += checked.accepted.height() as u64;
    }
    stats.nan_as_null += checked.nan_as_null;
    stats.extra_keys += checked.extra_keys;
    for r in &checked.rejects {
        *stats.rejected.entry(r.reason.clone()).or_default() += 1;
    }
    if !checked.retracted.is_empty() {
        stats.loaded -= checked.retracted.len() as u64;
        *stats.rejected.entry(crate::quality::SUPERSEDED.to_string()).or_default() += checked.retracted.len() as u64;
    }
    let sent = Instant::now();
    let more = sink(checked);
    times.wait_write += sent.elapsed();
    more
}

/// The after-commit work of one command's loads (a replaced table's ANALYZE, dropping the
/// old one: `pg::load::AfterCommit`), each on a thread of its own while the next file loads.
#[derive(Default)]
pub struct AfterCommits(std::sync::Mutex<Vec<thread::JoinHandle<()>>>);

impl AfterCommits {
    fn start(&self, work: AfterCommit) {
        if work.is_empty() {
            return;
        }
        match thread::Builder::new().name("tier-after-commit".into()).spawn(move || work.run()) {
            Ok(handle) => self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(handle),
            // Only statistics and leftovers are at stake: autovacuum analyzes, the next load drops.
            Err(e) => tracing::warn!("cannot start a thread for the work after the commit: {e}"),
        }
    }

    /// Waits for all of it, so the tables have their statistics when the command ends.
    pub fn wait(self) {
        for handle in self.0.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner()) {
            let _ = handle.join();
        }
    }
}

/// Loads one file into one table over `client`; what follows the commit goes to `after`.
pub fn load_file(
    ds: &'static Dataset,
    input: &Input,
    opts: &LoadOptions,
    client: crate::pg::Client,
    progress: &dyn Progress,
    after: &AfterCommits,
) -> Result<LoadStats> {
    let started = Instant::now();
    let display = input.name();
    refuse_unloadable(ds, input, opts)?;
    // Appends are recorded (and refused) by the file's own checksum, computed first so a
    // file already loaded is refused before the work (the reader hashes the same bytes,
    // as stored: compressed for a .gz file). An object is not downloaded twice for that:
    // it is refused by its URL, ETag and size, and its checksum checked once it is read.
    let file_checksum = match (opts.mode.keeps_rows(), input) {
        (true, Input::File(path)) => Some(checksum_file(path)?),
        _ => None,
    };
    let append_checksum = file_checksum.as_deref().filter(|_| !opts.force);
    // New keys become columns first (the file is profiled), when the contract says so.
    let mut client = client;
    let ds = match ds.on_new_key {
        OnNewKey::Evolve => {
            let columns_of = |table: &str| crate::pg::catalog::table_columns(&mut client, &opts.schema, table);
            crate::evolve::grow(ds, input, columns_of)?.unwrap_or(ds)
        }
        _ => ds,
    };
    // Writer thread: opens the transaction up front, so a lock wait or a refusal happens first.
    let mut load = TableLoad::begin(client, ds, &opts.schema, opts.mode, &display, append_checksum, opts.force, opts.lake.is_some())?;
    if let (Input::Object(object), true, false) = (input, opts.mode.keeps_rows(), opts.force) {
        load.refuse_loaded_object(&object.url, object.etag.as_deref(), object.size)?;
    }
    let load_id = load.load_id;
    // Handed over only when the writer takes it, for the same reason as the rules thread's
    // chunks: room for two let a 16 M-event load peak at 219-224 MB when the server paused
    // (a checkpoint); with none, and none for the rules thread's, 202 MB, no slower.
    let (to_writer, from_main): (SyncSender<Sorted>, Receiver<Sorted>) = sync_channel(0);
    // One lake table per table of the load.
    let mut lake: Vec<LakeWriter> = Vec::new();
    for table in ds.tables().into_iter().filter(|_| opts.lake.is_some()) {
        let root = opts.lake.as_deref().expect("filtered");
        lake.push(match opts.lake_format {
            crate::lake::Format::Hive => {
                LakeWriter::Hive(Box::new(crate::lake::HiveWriter::new(root, table, opts.mode, &load_id.to_string())?))
            }
            crate::lake::Format::Iceberg => {
                crate::lake::refuse_hive_lake(root)?;
                let mut row = load.catalog_row(&opts.lake_catalog, &table.name)?;
                let begun = crate::lake::iceberg_table::IcebergTable::begin(table, root, &opts.schema, opts.mode, load_id, &mut row)?;
                LakeWriter::Iceberg(Box::new(begun))
            }
        });
    }
    let source = input.clone();
    let writer = thread::Builder::new().name("tier-copy".into()).spawn(move || write_batches(ds, &source, load, lake, from_main))?;
    let checked = check_file(ds, input, opts.mode == Mode::Merge, progress, |c| to_writer.send(c).is_ok());
    drop(to_writer);
    let (result, lake) = finish_load(writer, checked, &display, file_checksum, opts);
    match (result, lake) {
        (Ok((mut load, mut stats)), mut lake) => {
            // An Iceberg lake's snapshots, in the load's transaction: committed with it. A
            // merge's lake rows are read from the table, so the merge comes first.
            if opts.mode == Mode::Merge && !lake.is_empty() {
                load.merge(&mut stats)?;
            }
            for (i, l) in lake.iter_mut().enumerate() {
                let table = l.table().to_string();
                let taken = stats.merged_of(i).map(|m| m.taken_days()).unwrap_or_default();
                if let Some(snapshot) = l.commit(&mut load.catalog_row(&opts.lake_catalog, &table)?, &taken)? {
                    stats.lake_snapshots.push(crate::stats::LakeSnapshot { table, snapshot });
                }
            }
            commit(ds, input, opts, load, &mut stats, after)?;
            for l in lake {
                l.publish().context("the database load is committed, but the lake could not be updated; load again to repair it")?;
            }
            stats.seconds = started.elapsed().as_secs_f64();
            Ok(stats)
        }
        (Err(e), lake) => {
            for l in lake {
                l.abandon();
            }
            Err(e)
        }
    }
}

/// What cannot be loaded at all, said before any work: a directory, a merge without a key.
fn refuse_unloadable(ds: &Dataset, input: &Input, opts: &LoadOptions) -> Result<()> {
    if let Input::File(path) = input {
        if std::fs::metadata(path).map(|m| m.is_dir()).unwrap_or(false) {
            return Err(Failure::Input(format!("{}: is a directory, not an export file", input.name())).into());
        }
    }
    // A merge needs a key in every table (a child's is its parent's and its position).
    if opts.mode == Mode::Merge {
        if let Some(table) = ds.tables_here().into_iter().find(|t| !t.is_child() && t.unique.is_empty()) {
            let whose = if table.log.is_some() { format!(" (or the log's envelope, {})", ds.source) } else { String::new() };
            return Err(Failure::Input(format!(
                "{}: --mode merge needs the columns that identify a row: add `unique = [...]` to {}{whose}",
                table.name, table.source
            ))
            .into());
        }
    }
    Ok(())
}

/// Commits a load whose rows are all in (an object whose bytes were loaded under another
/// name is refused first, as a file is); its after-commit work goes to `after`.
fn commit(ds: &Dataset, input: &Input, opts: &LoadOptions, mut load: TableLoad, stats: &mut LoadStats, after: &AfterCommits) -> Result<()> {
    if let Input::Kafka(range) = input {
        // Claimed in the transaction, with the rows (`pg::ledger::claim_offsets`).
        let (first, last) = (range.first, range.read_to() - 1);
        stats.offsets = Some(crate::stats::OffsetRange { topic: range.url.topic.clone(), partition: range.partition, first, last });
    }
    if let Input::Object(object) = input {
        if opts.mode.keeps_rows() && !opts.force {
            load.refuse_loaded_checksum(&stats.checksum)?;
        }
        stats.etag = object.etag.clone();
    }
    after.start(load.commit(stats)?);
    if !stats.schema_changes.is_empty() {
        let added: Vec<String> = stats
            .schema_changes
            .iter()
            .map(|c| format!("{}{} ({})", c.table.as_ref().map(|t| format!("{t}.")).unwrap_or_default(), c.column, c.kind))
            .collect();
        tracing::warn!(
            "{}: added {} for new keys; declare them in {} to keep them:\n{}",
            ds.name,
            added.join(", "),
            ds.source,
            crate::evolve::contract_lines(ds)
        );
    }
    Ok(())
}

/// What the writer thread did: the open load, the figures of the rows it sent, the lake
/// files it wrote, and the rows it turned away because the table held their key already.
struct Written {
    load: TableLoad,
    /// Per table (`Dataset::tables`).
    figures: Vec<Figures>,
    /// The rows turned away for a key the table held (their figures; validate adds them
    /// to the file's duplicates), per table.
    key_repeats: Vec<Figures>,
    /// Per table, the child rows of records turned away so.
    dropped: Vec<u64>,
    /// Per table, the rows a merge took back.
    retracted: Vec<u64>,
}

/// The writer thread: each batch's rows go to the table (binary COPY, or its stage: a
/// merge's, a keyed append's whose rows less the keys the table holds go in at the end) and
/// the lake, and are reduced to the figures `validate` compares (rows and content digest per
/// day, recorded in the ledger). Rows stream through one open COPY (`stream_rows`) except
/// where the connection is needed between batches (a keyed append's key lookups when it
/// writes a lake, a merge's retractions), which take a statement per batch. The lake comes
/// back with the result, whatever it is, to be published or abandoned.
fn write_batches(
    ds: &'static Dataset,
    source: &Input,
    mut load: TableLoad,
    lake: Vec<LakeWriter>,
    batches: Receiver<Sorted>,
) -> (Result<Written>, Vec<LakeWriter>) {
    let tables = ds.tables();
    // The figures of every row the file's checks accepted (what a re-read computes).
    let mut figures: Vec<Figures> = tables.iter().map(|_| Figures::default()).collect();
    let mut key_repeats: Vec<Figures> = tables.iter().map(|_| Figures::default()).collect();
    let started = Instant::now();
    // Records whose key was loaded before, and the load that holds it, per table.
    let mut repeats: Vec<Vec<(u64, i64)>> = tables.iter().map(|_| Vec::new()).collect();
    // Records turned away so (their child rows go with them), and the child rows dropped.
    let mut turned_away: std::collections::HashSet<u64> = Default::default();
    let mut dropped: Vec<u64> = tables.iter().map(|_| 0).collect();
    // Per table, the rows a merge took back (superseded, or a superseded record's children).
    let mut retracted: Vec<u64> = tables.iter().map(|_| 0).collect();
    let mut lake = match crate::lake::LakeFeed::start(lake) {
        Ok(feed) => feed,
        Err(e) => return (Err(e), Vec::new()),
    };
    let mut run = || -> Result<()> {
        let mut batches = batches.iter();
        let mut spool = load.reject_spool()?;
        let keyed = load.looks_up_keys();
        loop {
            // Child rows of a record turned away must go with it: they take a statement each
            // once the first is (keyed appends only).
            let needs_connection =
                |b: &Sorted| (keyed && b.accepted.height() > 0) || !b.retracted.is_empty() || (b.child && !turned_away.is_empty());
            let stopped_at = stream_rows(&tables, &mut load, &mut batches, needs_connection, &mut spool, &mut figures, &mut lake)?;
            let Some(mut batch) = stopped_at else { break };
            let (t, table) = (batch.table, tables[batch.table]);
            figures[t].add(table, &batch.accepted)?;
            // The child rows of a record turned away go with it (turned away too, for validate).
            if batch.child && !turned_away.is_empty() && batch.accepted.height() > 0 {
                let record = batch.accepted.column(COL_RECORD)?.u64()?;
                let kept: BooleanChunked = record.into_iter().map(|r| Some(!r.is_some_and(|r| turned_away.contains(&r)))).collect();
                let gone = batch.accepted.filter(&!&kept)?;
                dropped[t] += gone.height() as u64;
                key_repeats[t].add(table, &gone)?;
                batch.accepted = batch.accepted.filter(&kept)?;
            }
            let held = load.keys_already_loaded(t, &batch.accepted)?;
            let accepted = match held.is_empty() {
                true => batch.accepted,
                false => {
                    let repeated: std::collections::HashSet<u64> = held.iter().map(|(r, _)| *r).collect();
                    let record = batch.accepted.column(COL_RECORD)?.u64()?;
                    let fresh: BooleanChunked = record.into_iter().map(|r| Some(!r.is_some_and(|r| repeated.contains(&r)))).collect();
                    turned_away.extend(held.iter().map(|(r, _)| *r));
                    repeats[t].extend(held);
                    key_repeats[t].add(table, &batch.accepted.filter(&!&fresh)?)?;
                    batch.accepted.filter(&fresh)?
                }
            };
            load.write(t, &accepted, &batch.rejects)?;
            if !batch.retracted.is_empty() {
                let records: Vec<u64> = batch.retracted.iter().map(|r| r.record).collect();
                let taken = load.retract(&records)?;
                // Each superseded row off its table's figures, and its child rows with it.
                let table_of: std::collections::HashMap<u64, usize> = taken.records.iter().copied().collect();
                for r in &batch.retracted {
                    let owner = table_of.get(&r.record).copied().unwrap_or(t);
                    figures[owner].remove([(r.day, r.row_hash)]);
                    retracted[owner] += 1;
                }
                for (child, day, hash) in taken.children {
                    figures[child].remove([(day, hash)]);
                    retracted[child] += 1;
                }
                let rows = batch.retracted.iter().map(|r| (r.record, r.by)).collect();
                write_late_rejects(&mut load, source, crate::quality::SUPERSEDED, rows, crate::dedupe::superseded_by)?;
            }
            lake.write(t, &accepted)?;
        }
        // A staged keyed append's rows go in now, less the records whose key the table held.
        let settled = load.settle()?;
        for (t, (held, away)) in settled.repeats.into_iter().zip(settled.turned_away).enumerate() {
            if away.rows() == 0 {
                continue;
            }
            if tables[t].is_child() {
                dropped[t] += away.rows();
            }
            repeats[t].extend(held);
            key_repeats[t] = away;
        }
        load.write_spooled_rejects(spool)?;
        for (table, repeats) in tables.iter().zip(repeats.iter_mut()) {
            if repeats.is_empty() {
                continue;
            }
            let (key, name) = (table.unique.join(", "), &table.name);
            let repeats = std::mem::take(repeats);
            write_late_rejects(&mut load, source, crate::quality::DUPLICATE, repeats, |held_by| match tables.len() {
                1 => format!("{key} already in the table (load {held_by})"),
                _ => format!("{key} already in {name} (load {held_by})"),
            })?;
        }
        Ok(())
    };
    let outcome = run();
    // The lake's own error explains a stop of the rows it was handed.
    let (lake_written, lake) = lake.close();
    let outcome = match lake_written {
        Ok(()) => outcome,
        Err(e) => Err(e.context("writing the lake failed; nothing was loaded")),
    };
    tracing::info!("COPY writer: done in {:.2?}", started.elapsed());
    (outcome.map(|()| Written { load, figures, key_repeats, dropped, retracted }), lake)
}

/// Rows encoded per piece of a streamed COPY: small enough that a few in flight cost little
/// memory, big enough that each is one large write.
const PIECE_ROWS: usize = 4096;
/// Pieces waiting for the COPY thread.
const PIECES_IN_FLIGHT: usize = 2;
/// Encoded rows a load of many tables holds back, all tables together, to send each
/// table's in runs (`Runs`).
const HELD_BYTES: usize = 8 << 20;

/// A load of many tables sends each table's rows in runs of many chunks, one COPY each:
/// every COPY statement costs the server a setup of its own (its insert buffers, a tuple
/// slot for each of its first thousand rows), and a COPY per table and chunk (a thousand
/// rows each for a log of six kinds) cost it a fifth more than the rows did. Each table's
/// rows are encoded into a buffer of its own until the buffers hold `HELD_BYTES`, then the
/// fullest goes, so each run carries at least that over the number of tables. A table's
/// rows keep their order. One table: each piece goes as it is encoded (`budget` 0).
struct Runs {
    buffers: Vec<Vec<u8>>,
    held: usize,
    budget: usize,
}

impl Runs {
    fn new(tables: usize, budget: usize) -> Runs {
        Runs { buffers: vec![Vec::new(); tables], held: 0, budget }
    }

    /// Adds to table `t`'s run what `write` appends.
    fn fill<E>(&mut self, t: usize, write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>) -> Result<(), E> {
        let before = self.buffers[t].len();
        write(&mut self.buffers[t])?;
        self.held += self.buffers[t].len() - before;
        Ok(())
    }

    /// The run to send now, if the rows held are over the budget: the fullest table's. Its
    /// buffer is replaced by `empty`.
    fn due(&mut self, empty: impl FnOnce() -> Vec<u8>) -> Option<(usize, Vec<u8>)> {
        if self.held <= self.budget {
            return None;
        }
        let t = (0..self.buffers.len()).max_by_key(|&t| self.buffers[t].len())?;
        let run = std::mem::replace(&mut self.buffers[t], empty());
        self.held -= run.len();
        Some((t, run))
    }

    /// Every run still held.
    fn rest(&mut self) -> impl Iterator<Item = (usize, Vec<u8>)> + '_ {
        self.held = 0;
        self.buffers.iter_mut().map(std::mem::take).enumerate().filter(|(_, run)| !run.is_empty())
    }
}

/// Streams batches' rows into the table through one COPY (one per run of a table's rows,
/// `Runs`, for a load of many tables), sent by a thread of its own while this one encodes
/// the next piece (and adds up the figures, spools the rejects, writes the lake), until the
/// batches end or one `needs_connection` for other statements: that one is returned,
/// untouched, once the COPY is over.
#[allow(clippy::too_many_arguments)]
fn stream_rows(
    tables: &[&'static Dataset],
    load: &mut TableLoad,
    batches: &mut impl Iterator<Item = Sorted>,
    needs_connection: impl Fn(&Sorted) -> bool,
    spool: &mut crate::pg::spool::RejectSpool,
    figures: &mut [Figures],
    lake: &mut crate::lake::LakeFeed,
) -> Result<Option<Sorted>> {
    let encoders: Vec<crate::pg::load::RowEncoder> = (0..tables.len()).map(|t| load.row_encoder(t)).collect();
    let many = tables.len() > 1;
    let mut runs = Runs::new(tables.len(), if many { HELD_BYTES } else { 0 });
    let (to_copy, pieces) = sync_channel::<(usize, Vec<u8>)>(PIECES_IN_FLIGHT);
    // The buffers the COPY sent come back to be filled again (fresh ones cost a page fault
    // every 4 KB written).
    let (give_back, spent) = std::sync::mpsc::channel::<Vec<u8>>();
    let empty = || spent.try_recv().unwrap_or_default();
    let (copied, fed) = thread::scope(|scope| {
        let copier = thread::Builder::new().name("tier-copy-send".into()).spawn_scoped(scope, move || load.copy_stream(pieces, give_back));
        let fed = (|| -> Result<Option<Sorted>> {
            // Err: the COPY thread is gone (its own error says why).
            let all_sent = |runs: &mut Runs| runs.rest().try_for_each(|run| to_copy.send(run));
            for batch in batches {
                if needs_connection(&batch) {
                    return Ok(all_sent(&mut runs).ok().map(|()| batch));
                }
                let t = batch.table;
                figures[t].add(tables[t], &batch.accepted)?;
                let rows = batch.accepted.height();
                for start in (0..rows).step_by(PIECE_ROWS) {
                    runs.fill(t, |run| encoders[t].encode(&batch.accepted.slice(start as i64, PIECE_ROWS), run))?;
                    while let Some(run) = runs.due(empty) {
                        if to_copy.send(run).is_err() {
                            return Ok(None);
                        }
                    }
                }
                spool.push(&batch.rejects)?;
                lake.write(t, &batch.accepted)?;
            }
            let _ = all_sent(&mut runs);
            Ok(None)
        })();
        drop(to_copy);
        let copied = match copier {
            Ok(handle) => handle.join().unwrap_or_else(|_| Err(anyhow!("the COPY thread panicked"))),
            Err(e) => Err(e.into()),
        };
        (copied, fed)
    });
    // The COPY's error first: it explains why the rows stopped going anywhere.
    copied?;
    fed
}

/// Everything between the last chunk and the commit: the writer's result, the counts'
/// verdicts (empty input, too many rejects), the lake files closed.
fn finish_load(
    writer: thread::JoinHandle<(Result<Written>, Vec<LakeWriter>)>,
    checked: Result<LoadStats>,
    display: &str,
    file_checksum: Option<String>,
    opts: &LoadOptions,
) -> (Result<(TableLoad, LoadStats)>, Vec<LakeWriter>) {
    let (written, mut lake) = match writer.join() {
        Ok(r) => r,
        Err(_) => return (Err(anyhow!("the writer thread panicked")), Vec::new()),
    };
    let result = (|| {
        // The writer's error, if any, explains why the sink stopped: report it first.
        let written = written.map_err(|e| e.context(display.to_string()))?;
        let mut stats = checked?;
        let split = !stats.tables.is_empty();
        let rows = written.figures.into_iter().zip(written.key_repeats).zip(written.dropped).zip(written.retracted);
        for (t, (((figures, key_repeats), dropped), retracted)) in rows.enumerate() {
            // A child table's rows turned away with their records are no records of their own.
            let repeats = key_repeats.rows() - dropped;
            if repeats > 0 {
                stats.loaded -= repeats;
                *stats.rejected.entry(crate::quality::DUPLICATE.to_string()).or_default() += repeats;
            }
            let key_repeats = (key_repeats.rows() > 0).then_some(key_repeats);
            match split {
                false => (stats.figures, stats.key_repeats) = (Some(figures), key_repeats),
                true => {
                    let table = &mut stats.tables[t];
                    table.loaded -= repeats + dropped + retracted;
                    (table.figures, table.key_repeats) = (Some(figures), key_repeats);
                }
            }
        }
        if let Some(sum) = file_checksum {
            stats.checksum = sum;
        }
        verdicts(&stats, display, opts)?;
        for l in lake.iter_mut() {
            l.finish()?;
        }
        Ok((written.load, stats))
    })();
    (result, lake)
}

/// The counts' verdicts: an empty input, or too many rejects, fail the load.
fn verdicts(stats: &LoadStats, display: &str, opts: &LoadOptions) -> Result<()> {
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
    Ok(())
}

/// Rejects for rows the writer let through and then turned away (`(record, about)`, in any
/// order; `detail(about)` says why), with their records read again from the file in one
/// pass at the end: they went on before it was known. A few bytes a row until then, and
/// written in batches, so memory stays small however many there are.
fn write_late_rejects<T: Copy>(
    load: &mut TableLoad,
    input: &Input,
    reason: &str,
    mut rows: Vec<(u64, T)>,
    detail: impl Fn(T) -> String,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_unstable_by_key(|(record, _)| *record);
    let records: Vec<u64> = rows.iter().map(|(record, _)| *record).collect();
    let mut about = rows.iter().map(|(_, n)| *n);
    load.stream_rejects(|push| {
        crate::source::records_at(input, &records, |span, raw| {
            let detail = about.next().map(&detail);
            push(Reject { line: span.line, record: span.record, reason: reason.to_string(), detail, raw: raw.to_vec() })
        })
    })
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

    /// Runs go fullest first once the budget is passed, each table's bytes in the order
    /// written, and what is left goes at the end: every byte once.
    #[test]
    fn runs_send_the_fullest_table_in_order_and_lose_nothing() {
        let mut runs = Runs::new(3, 10);
        let mut sent: Vec<(usize, Vec<u8>)> = Vec::new();
        let writes: [(usize, &[u8]); 6] = [(0, b"a1"), (1, b"b1b1"), (2, b"c1"), (1, b"b2b2"), (0, b"a2"), (2, b"c2c2c2c2")];
        for (t, bytes) in writes {
            runs.fill(t, |run| {
                run.extend_from_slice(bytes);
                Ok::<(), ()>(())
            })
            .unwrap();
            while let Some(run) = runs.due(Vec::new) {
                sent.push(run);
            }
        }
        // b1b2 (8 bytes) went when 12 were held; c1c2 (10) when 14 were.
        assert_eq!(sent, vec![(1, b"b1b1b2b2".to_vec()), (2, b"c1c2c2c2c2".to_vec())]);
        sent.extend(runs.rest());
        assert_eq!(sent.last(), Some(&(0, b"a1a2".to_vec())));
        assert!(runs.due(Vec::new).is_none() && runs.rest().next().is_none());
        // No budget (one table): every piece goes as it comes.
        let mut one = Runs::new(1, 0);
        one.fill(0, |run| {
            run.push(1);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(one.due(Vec::new), Some((0, vec![1])));
        assert_eq!(one.due(Vec::new), None);
    }
}
