//! Loading a Kafka topic: each partition's messages after the last offset the ledger holds,
//! in batches, up to the partition's end as seen when the command began or, following, as
//! they come. Each batch is a load: its rows, its rejects and its offsets commit in one
//! transaction, so a crash and a re-run, or two tier processes on one topic, load every
//! message once. SIGTERM or SIGINT ends the batch in flight with what it read, commits it
//! and stops (a second one stops at once: the batch rolls back).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::dataset::Dataset;
use crate::error::Failure;
use crate::pg::load::Mode;
use crate::pg::{self, connect};
use crate::pipeline::{load_file, AfterCommits, LoadOptions, NoProgress};
use crate::source::kafka::{BatchLimits, PartitionRange, Start, Topic, TopicUrl};
use crate::source::Input;
use crate::stats::LoadStats;
use crate::validate::Check;

/// How a topic is read: where a partition the ledger does not know begins, where a batch
/// (one transaction) ends, and whether to keep reading as messages come.
#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    pub start: Start,
    pub limits: BatchLimits,
    pub follow: bool,
}

/// How often a follower asks the brokers whether its partitions have new messages.
const POLL: Duration = Duration::from_millis(100);
/// How often a follower says how it is doing (rows/s, lag per partition).
const STATUS_EVERY: Duration = Duration::from_secs(10);

/// `--start`: `earliest`, `latest`, or a time (RFC 3339: the first message at or after it).
pub fn parse_start(text: &str) -> Result<Start, String> {
    match text {
        "earliest" => Ok(Start::Earliest),
        "latest" => Ok(Start::Latest),
        _ => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| Start::At(t.timestamp_millis()))
            .map_err(|e| format!("{text:?}: earliest, latest, or a time such as 2026-12-01T00:00:00Z ({e})")),
    }
}

/// The partitions a topic URL names, each as the input name its loads carry.
pub fn partition_names(url: &TopicUrl) -> Result<Vec<String>> {
    let topic = Topic::connect(url)?;
    Ok(topic.partitions()?.into_iter().map(|p| url.partition_name(p)).collect())
}

/// Loads the topic's partitions (`jobs` at a time): up to their end as seen now, or,
/// following, until stopped. Returns each batch's figures (following: each partition's,
/// added up) and the failures.
pub fn load_topic(
    ds: &'static Dataset,
    url: &TopicUrl,
    opts: &LoadOptions,
    stream: StreamOptions,
    target: &connect::Target,
    jobs: usize,
    quiet: bool,
) -> (Vec<LoadStats>, Vec<anyhow::Error>) {
    if opts.mode == Mode::Replace {
        let why = format!("{}: a topic is loaded in append or merge mode (each batch adds to the table), not replace", ds.name);
        return (Vec::new(), vec![Failure::Input(why).into()]);
    }
    let prepared = (|| -> Result<(Topic, Vec<i32>, Arc<AtomicBool>)> {
        let mut client = connect::connect(target, 5)?;
        pg::ledger::ensure_ledger(&mut client, &opts.schema)?;
        let topic = Topic::connect(url)?;
        let partitions = topic.partitions()?;
        Ok((topic, partitions, crate::jobs::stop_on_signals()?))
    })();
    let (topic, partitions, stop) = match prepared {
        Ok(p) => p,
        Err(e) => return (Vec::new(), vec![e]),
    };
    let job = TopicJob {
        ds,
        topic,
        url,
        // A batch may be empty of records (a partition's first load, recording where it
        // starts): it is still recorded, so the next goes on after it.
        opts: LoadOptions { allow_empty: true, ..opts.clone() },
        stream,
        target,
        stop,
        after: AfterCommits::default(),
        line: crate::progress::StatusLine::new(quiet),
        started: Instant::now(),
        messages: AtomicU64::new(0),
    };
    // Merges one batch after another: with a key in two partitions, the later batch wins.
    let jobs = if opts.mode == Mode::Merge { 1 } else { jobs.max(1) };
    let (done, failed) = match stream.follow {
        false => job.bounded(&partitions, jobs),
        true => job.follow(&partitions, jobs),
    };
    job.after.wait();
    job.line.finish();
    let messages: u64 = done.iter().map(|s| s.records).sum();
    eprintln!("{}: {} messages from {} partitions", url.topic, messages, partitions.len());
    (done, failed)
}

/// One command's work on a topic.
struct TopicJob<'a> {
    ds: &'static Dataset,
    topic: Topic,
    url: &'a TopicUrl,
    opts: LoadOptions,
    stream: StreamOptions,
    target: &'a connect::Target,
    stop: Arc<AtomicBool>,
    after: AfterCommits,
    /// Messages per second and lag, on a terminal.
    line: crate::progress::StatusLine,
    started: Instant,
    /// Messages loaded or rejected so far, by every batch.
    messages: AtomicU64,
}

impl TopicJob<'_> {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Every partition up to its end as seen now. Partitions another process holds are
    /// taken last (waiting for it then), so two processes on one topic share the partitions
    /// rather than queue for the same ones.
    fn bounded(&self, partitions: &[i32], jobs: usize) -> (Vec<LoadStats>, Vec<anyhow::Error>) {
        let mut ends = Vec::new();
        for &p in partitions {
            match self.topic.end(p) {
                Ok(end) => ends.push((p, end)),
                Err(e) => return (Vec::new(), vec![e]),
            }
        }
        let next = AtomicUsize::new(0);
        let deferred = Mutex::new(Vec::new());
        let done = Mutex::new(Vec::new());
        let failed = Mutex::new(Vec::new());
        let record = |stats| done.lock().unwrap_or_else(|e| e.into_inner()).push(stats);
        let fail = |e| failed.lock().unwrap_or_else(|e| e.into_inner()).push(e);
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(ends.len()) {
                scope.spawn(|| {
                    while let Some(&(partition, end)) = ends.get(next.fetch_add(1, Ordering::SeqCst)) {
                        match self.load_partition(partition, end, false, record) {
                            Ok(true) => {}
                            Ok(false) => deferred.lock().unwrap_or_else(|e| e.into_inner()).push((partition, end)),
                            Err(e) => fail(e),
                        }
                    }
                    loop {
                        let Some((partition, end)) = deferred.lock().unwrap_or_else(|e| e.into_inner()).pop() else { break };
                        if let Err(e) = self.load_partition(partition, end, true, record) {
                            fail(e);
                        }
                    }
                });
            }
        });
        (done.into_inner().unwrap_or_else(|e| e.into_inner()), failed.into_inner().unwrap_or_else(|e| e.into_inner()))
    }

    /// One partition's batches up to `end`, under the partition's lock. Held by another
    /// tier process: false, unless `wait` (then, once it is free, the batches that process
    /// loaded are not loaded again).
    fn load_partition(&self, partition: i32, end: i64, wait: bool, loaded: impl Fn(LoadStats)) -> Result<bool> {
        let (schema, table, topic) = (self.opts.schema.as_str(), self.ds.name.as_str(), self.url.topic.as_str());
        let mut holder = connect::connect(self.target, 5)?;
        if !pg::ledger::hold_partition(&mut holder, schema, table, topic, partition, false)? {
            if !wait {
                return Ok(false);
            }
            tracing::info!("{}: another tier process is loading it; waiting", self.url.partition_name(partition));
            pg::ledger::hold_partition(&mut holder, schema, table, topic, partition, true)?;
        }
        while !self.stopped() {
            let (first, known) = match pg::ledger::next_offset(&mut holder, schema, table, topic, partition)? {
                Some(next) => (next, true),
                None => (self.topic.start_offset(partition, self.stream.start)?, false),
            };
            // A partition's first load is recorded even with nothing to read: where
            // `--start` put it is where the next load goes on.
            if first >= end && known {
                break;
            }
            if let Some(stats) = self.batch(partition, first, end)? {
                loaded(stats);
                if first >= end {
                    break;
                }
            }
        }
        pg::ledger::release_partition(&mut holder, schema, table, topic, partition)?;
        Ok(true)
    }

    /// One batch from `first` (below `bound`), a load of its own; None when another process
    /// loaded these offsets first (the ledger then says where to go on).
    fn batch(&self, partition: i32, first: i64, bound: i64) -> Result<Option<LoadStats>> {
        let name = self.url.partition_name(partition);
        let earliest = self.topic.offsets(partition)?.earliest;
        if first < earliest {
            return Err(Failure::Input(format!(
                "{name}: offsets {first}..{} are no longer in the partition (retention removed them); \
                 the table has every message before {first}, and nothing was skipped",
                earliest - 1
            ))
            .into());
        }
        let limits = BatchLimits { wait: self.stream.limits.wait.filter(|_| self.stream.follow), ..self.stream.limits };
        let input = Input::Kafka(PartitionRange::new(self.url, partition, first, bound, limits, &self.stop));
        let loaded =
            connect::connect(self.target, 5).and_then(|client| load_file(self.ds, &input, &self.opts, client, &NoProgress, &self.after));
        match loaded {
            Ok(stats) => {
                let last = stats.offsets.as_ref().map_or(first - 1, |o| o.last);
                tracing::info!("{name}: offsets {first}..{last}: {} loaded, {} rejected", stats.loaded, stats.rejected_total());
                let messages = self.messages.fetch_add(stats.records, Ordering::SeqCst) + stats.records;
                let rate = messages as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
                self.line.set(format!("{}: {messages} messages, {rate:.0}/s; partition {partition} at {}", self.url.topic, last + 1));
                Ok(Some(stats))
            }
            Err(e) if e.chain().any(|c| matches!(c.downcast_ref::<Failure>(), Some(Failure::AlreadyLoaded(_)))) => {
                tracing::info!("{name}: {e:#}");
                Ok(None)
            }
            Err(e) => {
                crate::jobs::load::record_failure(self.ds, &name, &self.opts, self.target, &e);
                Err(e)
            }
        }
    }

    /// Follows the partitions until stopped: each it can hold (others' are tried again each
    /// round, so a process that dies is taken over), a batch whenever it has new messages.
    fn follow(&self, partitions: &[i32], jobs: usize) -> (Vec<LoadStats>, Vec<anyhow::Error>) {
        let mut totals: BTreeMap<i32, LoadStats> = BTreeMap::new();
        match self.follow_rounds(partitions, jobs, &mut totals) {
            Ok(()) => (totals.into_values().collect(), Vec::new()),
            Err(e) => (totals.into_values().collect(), vec![e]),
        }
    }

    fn follow_rounds(&self, partitions: &[i32], jobs: usize, totals: &mut BTreeMap<i32, LoadStats>) -> Result<()> {
        let (schema, table, topic) = (self.opts.schema.as_str(), self.ds.name.as_str(), self.url.topic.as_str());
        let mut holder = connect::connect(self.target, 5)?;
        // Each partition held, and the offset its next batch starts at (None: the ledger has
        // none of it; its first batch starts at --start).
        let mut held: BTreeMap<i32, Option<i64>> = BTreeMap::new();
        let mut status = Status::new(&self.url.topic);
        while !self.stopped() {
            let free: Vec<i32> = partitions.iter().copied().filter(|p| !held.contains_key(p)).collect();
            for p in free {
                if pg::ledger::hold_partition(&mut holder, schema, table, topic, p, false)? {
                    held.insert(p, pg::ledger::next_offset(&mut holder, schema, table, topic, p)?);
                }
            }
            let mut work = Vec::new();
            let mut lag = BTreeMap::new();
            for (&p, &next) in &held {
                let end = self.topic.end(p)?;
                match next {
                    None => work.push((p, self.topic.start_offset(p, self.stream.start)?)),
                    Some(next) if end > next => work.push((p, next)),
                    Some(_) => {}
                }
                lag.insert(p, end - next.unwrap_or(end));
            }
            status.show(totals, &lag, &self.line);
            if work.is_empty() {
                std::thread::sleep(POLL);
                continue;
            }
            let results = self.batches(&work, jobs);
            for ((p, first), result) in work.into_iter().zip(results) {
                match result? {
                    Some(stats) => {
                        held.insert(p, Some(stats.offsets.as_ref().map_or(first, |o| o.last + 1)));
                        add_up(
                            totals.entry(p).or_insert_with(|| LoadStats { file: self.url.partition_name(p), ..Default::default() }),
                            stats,
                        );
                    }
                    None => {
                        held.insert(p, pg::ledger::next_offset(&mut holder, schema, table, topic, p)?);
                    }
                }
            }
        }
        Ok(())
    }

    /// A batch of each partition in `work` (partition, first offset), `jobs` at a time.
    fn batches(&self, work: &[(i32, i64)], jobs: usize) -> Vec<Result<Option<LoadStats>>> {
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<Option<LoadStats>>>>> = Mutex::new(work.iter().map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(work.len()) {
                scope.spawn(|| {
                    while let Some(i) = Some(next.fetch_add(1, Ordering::SeqCst)).filter(|&i| i < work.len()) {
                        let (p, first) = work[i];
                        let result = self.batch(p, first, i64::MAX);
                        results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(result);
                    }
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        results.into_iter().map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("a batch did not run")))).collect()
    }
}

/// A follower's figures for a partition: its batches' added up.
fn add_up(total: &mut LoadStats, batch: LoadStats) {
    total.table = batch.table;
    total.records += batch.records;
    total.loaded += batch.loaded;
    for (reason, n) in batch.rejected {
        *total.rejected.entry(reason).or_default() += n;
    }
    total.nan_as_null += batch.nan_as_null;
    total.extra_keys += batch.extra_keys;
    total.seconds += batch.seconds;
    total.offsets = match (total.offsets.take(), batch.offsets) {
        (Some(mut t), Some(b)) => {
            t.last = t.last.max(b.last);
            Some(t)
        }
        (t, b) => t.or(b),
    };
}

/// What a follower says every `STATUS_EVERY`: messages per second since it last spoke, and
/// each partition's lag (messages written and not yet loaded). Logged at info (`-v`).
struct Status {
    topic: String,
    said_at: Instant,
    records_then: u64,
}

impl Status {
    fn new(topic: &str) -> Status {
        Status { topic: topic.to_string(), said_at: Instant::now(), records_then: 0 }
    }

    fn show(&mut self, totals: &BTreeMap<i32, LoadStats>, lag: &BTreeMap<i32, i64>, line: &crate::progress::StatusLine) {
        let elapsed = self.said_at.elapsed();
        let records: u64 = totals.values().map(|t| t.records).sum();
        let rate = (records - self.records_then) as f64 / elapsed.as_secs_f64().max(1e-3);
        let lags: Vec<String> = lag.iter().map(|(p, n)| format!("{p}:{n}")).collect();
        line.set(format!("{}: {records} messages, {rate:.0}/s; lag by partition {}", self.topic, lags.join(" ")));
        if elapsed < STATUS_EVERY {
            return;
        }
        tracing::info!("{}: {rate:.0} messages/s; lag by partition {}", self.topic, lags.join(" "));
        (self.said_at, self.records_then) = (Instant::now(), records);
    }
}

/// What `validate --from kafka://...` checks: each batch the ledger records of the topic's
/// partitions, read again from the topic (an input each, compared with its load's rows by
/// content), and per partition whether the batches follow one another from the first with
/// no gap or overlap (how many newer messages wait is said, not judged).
pub fn validation_inputs(ds: &'static Dataset, url: &TopicUrl, target: &connect::Target, schema: &str) -> Result<(Vec<Input>, Vec<Check>)> {
    let topic = Topic::connect(url)?;
    let partitions = topic.partitions()?;
    let mut client = connect::connect(target, 3)?;
    let ranges = pg::ledger::offset_ranges(&mut client, schema, &ds.name, &url.topic)?;
    let whole = BatchLimits { rows: u64::MAX, bytes: u64::MAX, wait: None };
    let never = Arc::new(AtomicBool::new(false));
    let (mut inputs, mut checks) = (Vec::new(), Vec::new());
    for p in partitions {
        let mine: Vec<(i64, i64)> = ranges.iter().filter(|r| r.0 == p).map(|r| (r.1, r.2)).collect();
        let Some(&(start, _)) = mine.first() else { continue };
        let mut next = start;
        let mut faults = Vec::new();
        for &(first, last) in &mine {
            if first != next {
                faults.push(match first > next {
                    true => format!("offsets {next}..{} missing", first - 1),
                    false => format!("offsets {first}..{} loaded twice", next.min(last + 1) - 1),
                });
            }
            next = next.max(last + 1);
            if last >= first {
                inputs.push(Input::Kafka(PartitionRange::new(url, p, first, last + 1, whole, &never)));
            }
        }
        let waiting = topic.end(p)? - next;
        let expected = format!("{start}..{} in {} batches", next - 1, mine.len());
        let actual = match faults.is_empty() {
            true => expected.clone(),
            false => faults.join("; "),
        };
        checks.push(Check {
            table: ds.name.clone(),
            check: format!("{}/{p} offsets", url.topic),
            diff: if waiting > 0 { format!("{waiting} newer not loaded yet") } else { String::new() },
            ok: faults.is_empty(),
            expected,
            actual,
        });
    }
    Ok((inputs, checks))
}
