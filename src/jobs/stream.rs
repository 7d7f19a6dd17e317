//! Loading a Kafka topic: each partition's messages after the last offset the ledger holds,
//! up to the partition's end as seen when the command began, in batches. Each batch is a
//! load: its rows, its rejects and its offsets commit in one transaction, so a crash and a
//! re-run, or two tier processes on one topic, load every message once.

use anyhow::Result;

use crate::dataset::Dataset;
use crate::error::Failure;
use crate::pg::load::Mode;
use crate::pg::{self, connect};
use crate::pipeline::{load_file, AfterCommits, LoadOptions, NoProgress};
use crate::source::kafka::{PartitionRange, Start, Topic, TopicUrl};
use crate::source::Input;
use crate::stats::LoadStats;

/// How a topic is read: where a partition the ledger does not know begins, and how many
/// messages a batch (one transaction) holds at most.
#[derive(Clone, Copy, Debug)]
pub struct StreamOptions {
    pub start: Start,
    pub batch_rows: u64,
}

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

/// Loads every partition of the topic (`jobs` at a time) up to its end as seen now.
pub fn load_topic(
    ds: &'static Dataset,
    url: &TopicUrl,
    opts: &LoadOptions,
    stream: StreamOptions,
    target: &connect::Target,
    jobs: usize,
) -> (Vec<LoadStats>, Vec<anyhow::Error>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    if opts.mode == Mode::Replace {
        let why = format!("{}: a topic is loaded in append or merge mode (each batch adds to the table), not replace", ds.name);
        return (Vec::new(), vec![Failure::Input(why).into()]);
    }
    let prepared = (|| -> Result<(Topic, Vec<(i32, i64)>)> {
        let mut client = connect::connect(target, 5)?;
        pg::ledger::ensure_ledger(&mut client, &opts.schema)?;
        let topic = Topic::connect(url)?;
        let mut ends = Vec::new();
        for p in topic.partitions()? {
            ends.push((p, topic.offsets(p)?.end));
        }
        Ok((topic, ends))
    })();
    let (topic, ends) = match prepared {
        Ok(p) => p,
        Err(e) => return (Vec::new(), vec![e]),
    };
    // Each batch may be empty of records (offsets holding only transaction markers): it is
    // still recorded, so the next starts after it.
    let opts = LoadOptions { allow_empty: true, ..opts.clone() };
    // Merges one batch after another: with a key in two partitions, the later batch wins.
    let jobs = if opts.mode == Mode::Merge { 1 } else { jobs.max(1) };
    // Partitions another process holds are taken last (waiting for it then), so two
    // processes on one topic share its partitions rather than queue for the same ones.
    let next = AtomicUsize::new(0);
    let deferred = Mutex::new(Vec::new());
    let done = Mutex::new(Vec::new());
    let failed = Mutex::new(Vec::new());
    let after = AfterCommits::default();
    let record = |stats| done.lock().unwrap_or_else(|e| e.into_inner()).push(stats);
    let fail = |e| failed.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(ends.len()) {
            scope.spawn(|| {
                while let Some(&(partition, end)) = ends.get(next.fetch_add(1, Ordering::SeqCst)) {
                    match load_partition(ds, &topic, url, partition, end, &opts, stream, target, &after, false, record) {
                        Ok(true) => {}
                        Ok(false) => deferred.lock().unwrap_or_else(|e| e.into_inner()).push((partition, end)),
                        Err(e) => fail(e),
                    }
                }
                loop {
                    let Some((partition, end)) = deferred.lock().unwrap_or_else(|e| e.into_inner()).pop() else { break };
                    if let Err(e) = load_partition(ds, &topic, url, partition, end, &opts, stream, target, &after, true, record) {
                        fail(e);
                    }
                }
            });
        }
    });
    after.wait();
    let done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    let messages: u64 = done.iter().map(|s| s.records).sum();
    eprintln!("{}: {} messages in {} batches from {} partitions", url.topic, messages, done.len(), ends.len());
    (done, failed.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// One partition's batches, from the ledger's next offset (or `--start`) to `end`, under
/// the partition's lock. Held by another tier process: false, unless `wait` (then, once
/// it is free, the batches that process loaded are not loaded again).
#[allow(clippy::too_many_arguments)]
fn load_partition(
    ds: &'static Dataset,
    topic: &Topic,
    url: &TopicUrl,
    partition: i32,
    end: i64,
    opts: &LoadOptions,
    stream: StreamOptions,
    target: &connect::Target,
    after: &AfterCommits,
    wait: bool,
    loaded: impl Fn(LoadStats),
) -> Result<bool> {
    let name = url.partition_name(partition);
    let mut holder = connect::connect(target, 5)?;
    let (schema, table) = (opts.schema.as_str(), ds.name.as_str());
    if !pg::ledger::hold_partition(&mut holder, schema, table, &url.topic, partition, false)? {
        if !wait {
            return Ok(false);
        }
        tracing::info!("{name}: another tier process is loading it; waiting");
        pg::ledger::hold_partition(&mut holder, schema, table, &url.topic, partition, true)?;
    }
    loop {
        let (first, known) = match pg::ledger::next_offset(&mut holder, schema, table, &url.topic, partition)? {
            Some(next) => (next, true),
            None => (topic.start_offset(partition, stream.start)?, false),
        };
        // A partition's first load is recorded even with nothing to read: where `--start`
        // put it is where the next load goes on.
        if first >= end && known {
            break;
        }
        let earliest = topic.offsets(partition)?.earliest;
        if first < earliest {
            return Err(Failure::Input(format!(
                "{name}: offsets {first}..{} are no longer in the partition (retention removed them); \
                 the table has every message before {first}, and nothing was skipped",
                earliest - 1
            ))
            .into());
        }
        let range = PartitionRange::new(url, partition, first, end, stream.batch_rows);
        let input = Input::Kafka(range);
        let result = connect::connect(target, 5).and_then(|client| load_file(ds, &input, opts, client, &NoProgress, after));
        match result {
            Ok(stats) => {
                tracing::info!(
                    "{name}: offsets {first}..{}: {} loaded, {} rejected",
                    stats.offsets.as_ref().map_or(first, |o| o.last),
                    stats.loaded,
                    stats.rejected_total()
                );
                loaded(stats);
                if first >= end {
                    break;
                }
            }
            // Another process loaded these offsets meanwhile: go on after its.
            Err(e) if e.chain().any(|c| matches!(c.downcast_ref::<Failure>(), Some(Failure::AlreadyLoaded(_)))) => {
                tracing::info!("{name}: {e:#}");
            }
            Err(e) => {
                crate::jobs::load::record_failure(ds, &name, opts, target, &e);
                return Err(e);
            }
        }
    }
    pg::ledger::release_partition(&mut holder, schema, table, &url.topic, partition)?;
    Ok(true)
}
