//! Kafka partitions -> chunks of records. A load reads one partition's offsets from a
//! start up to a bound (the end as seen when the load began) or a batch's size, each
//! message value one record whose line is its offset, so a reject names its partition (in
//! the input's name) and offset. Offsets are the caller's: no consumer group is used, and
//! the ledger, which commits each range with its rows, says where the next batch starts.
//!
//! Every use of `rskafka` is here.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::{Client, ClientBuilder};

use super::framing::{self, Damage, Span};
use super::{Chunk, ChunkSource, Messages, BLOCK_SIZE};
use crate::error::Failure;

/// Bytes asked of the broker per fetch.
const FETCH_BYTES: i32 = 4 << 20;
/// How long the broker may hold a fetch for more data, in ms (a bounded load asks for
/// offsets it knows exist, so it rarely waits).
const FETCH_WAIT_MS: i32 = 500;
/// How long a request is retried (a broker restarting, a leader moving) before the load
/// fails and says so, rather than waiting on a broker that is gone.
const RETRY_FOR: Duration = Duration::from_secs(60);

/// A topic named by a `kafka://host:port/topic[?partitions=0,1]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicUrl {
    /// Bootstrap brokers, `host:port` each (a comma-separated list in the URL's authority).
    pub brokers: Vec<String>,
    pub topic: String,
    /// Only these partitions (`?partitions=0,1`), else every partition of the topic.
    pub partitions: Option<Vec<i32>>,
}

/// Whether an argument names a Kafka topic.
pub fn is_url(spec: &str) -> bool {
    spec.starts_with("kafka://")
}

impl TopicUrl {
    pub fn parse(spec: &str) -> Result<TopicUrl> {
        let bad = |why: &str| Failure::Input(format!("{spec}: {why} (expected kafka://HOST:PORT/TOPIC[?partitions=0,1])"));
        let rest = spec.strip_prefix("kafka://").ok_or_else(|| bad("not a kafka:// URL"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, topic) = path.split_once('/').ok_or_else(|| bad("no topic"))?;
        let topic = topic.trim_end_matches('/');
        // Kafka's own rule for topic names; it also keeps the name safe in paths and SQL text.
        if topic.is_empty() || topic.len() > 249 || !topic.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(bad("a topic name is 1 to 249 of a-z, A-Z, 0-9, '.', '_' and '-'").into());
        }
        let brokers: Vec<String> = authority.split(',').filter(|b| !b.is_empty()).map(str::to_string).collect();
        if brokers.is_empty() || brokers.iter().any(|b| !b.contains(':')) {
            return Err(bad("each broker is HOST:PORT").into());
        }
        let mut partitions = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("partitions", list)) => {
                    let parsed: Result<Vec<i32>, _> = list.split(',').map(|p| p.trim().parse::<i32>()).collect();
                    match parsed {
                        Ok(p) if !p.is_empty() && p.iter().all(|&n| n >= 0) => partitions = Some(p),
                        _ => return Err(bad("partitions is a list of partition numbers, such as 0,1").into()),
                    }
                }
                _ => return Err(bad(&format!("unknown parameter {pair:?}")).into()),
            }
        }
        Ok(TopicUrl { brokers, topic: topic.to_string(), partitions })
    }

    /// The URL of one partition, as messages and the ledger name its loads.
    pub fn partition_name(&self, partition: i32) -> String {
        format!("kafka://{}/{}/{partition}", self.brokers.join(","), self.topic)
    }
}

/// Where a partition's loads begin when the ledger has none of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Earliest,
    Latest,
    /// The first offset whose message is at or after this time (ms since the epoch).
    At(i64),
}

/// One partition's offsets as the broker holds them now: the earliest it still has and
/// the next it will write.
#[derive(Clone, Copy, Debug)]
pub struct Offsets {
    pub earliest: i64,
    pub end: i64,
}

/// A connection to a topic's brokers, for what happens before reading: its partitions,
/// their offsets.
pub struct Topic {
    url: TopicUrl,
    client: Client,
    /// A client per partition, kept: making one asks the brokers who leads the partition.
    partitions: std::sync::Mutex<std::collections::HashMap<i32, Arc<PartitionClient>>>,
}

impl Topic {
    pub fn connect(url: &TopicUrl) -> Result<Topic> {
        let client = block_on(client(url))?;
        Ok(Topic { url: url.clone(), client, partitions: Default::default() })
    }

    fn partition(&self, partition: i32) -> Result<Arc<PartitionClient>> {
        let mut known = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = known.get(&partition) {
            return Ok(p.clone());
        }
        let p = Arc::new(block_on(partition_client(&self.client, &self.url, partition))?);
        known.insert(partition, p.clone());
        Ok(p)
    }

    /// The next offset the partition will write (its end now).
    pub fn end(&self, partition: i32) -> Result<i64> {
        let p = self.partition(partition)?;
        block_on(p.get_offset(OffsetAt::Latest)).map_err(|e| kafka_error(&self.url.partition_name(partition), e))
    }

    /// The partitions to read: those the URL names (each must exist), else all of them.
    pub fn partitions(&self) -> Result<Vec<i32>> {
        let topics = block_on(self.client.list_topics()).map_err(|e| unreachable_broker(&self.url, e))?;
        let Some(found) = topics.into_iter().find(|t| t.name == self.url.topic) else {
            return Err(Failure::Input(format!("kafka://{}/{}: no such topic", self.url.brokers.join(","), self.url.topic)).into());
        };
        match &self.url.partitions {
            None => Ok(found.partitions.into_iter().collect()),
            Some(wanted) => {
                if let Some(missing) = wanted.iter().find(|p| !found.partitions.contains(p)) {
                    return Err(Failure::Input(format!(
                        "{}: no such partition (the topic has {})",
                        self.url.partition_name(*missing),
                        found.partitions.len()
                    ))
                    .into());
                }
                Ok(wanted.clone())
            }
        }
    }

    pub fn offsets(&self, partition: i32) -> Result<Offsets> {
        let p = self.partition(partition)?;
        let name = self.url.partition_name(partition);
        let earliest = block_on(p.get_offset(OffsetAt::Earliest)).map_err(|e| kafka_error(&name, e))?;
        let end = block_on(p.get_offset(OffsetAt::Latest)).map_err(|e| kafka_error(&name, e))?;
        Ok(Offsets { earliest, end })
    }

    /// The offset a partition's first load starts at.
    pub fn start_offset(&self, partition: i32, start: Start) -> Result<i64> {
        let offsets = self.offsets(partition)?;
        match start {
            Start::Earliest => Ok(offsets.earliest),
            Start::Latest => Ok(offsets.end),
            Start::At(ms) => {
                let p = self.partition(partition)?;
                let at =
                    chrono::DateTime::from_timestamp_millis(ms).ok_or_else(|| Failure::Input(format!("--start: {ms} ms is no time")))?;
                // No message at or after the time: the partition's end.
                let found =
                    block_on(p.get_offset(OffsetAt::Timestamp(at))).map_err(|e| kafka_error(&self.url.partition_name(partition), e))?;
                Ok(if found < 0 { offsets.end } else { found })
            }
        }
    }
}

/// Where a batch ends: at most `rows` messages and about `bytes` of their values; following
/// a partition (`wait` set), also once it has read all the partition holds, or `wait` after
/// it began, whichever comes first.
#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    pub rows: u64,
    pub bytes: u64,
    pub wait: Option<Duration>,
}

/// One load's share of a partition: offsets from `first`, below `bound`, within `limits`.
/// What was read is in `read_to` (the offset after the last message read), for the ledger
/// and for reading the same messages again. `stop` set (SIGTERM) ends the batch where it is.
#[derive(Clone, Debug)]
pub struct PartitionRange {
    pub url: TopicUrl,
    pub partition: i32,
    pub first: i64,
    pub bound: i64,
    pub limits: BatchLimits,
    pub read_to: Arc<AtomicI64>,
    pub stop: Arc<std::sync::atomic::AtomicBool>,
}

impl PartitionRange {
    pub fn new(
        url: &TopicUrl,
        partition: i32,
        first: i64,
        bound: i64,
        limits: BatchLimits,
        stop: &Arc<std::sync::atomic::AtomicBool>,
    ) -> Self {
        let read_to = Arc::new(AtomicI64::new(first));
        PartitionRange { url: url.clone(), partition, first, bound, limits, read_to, stop: stop.clone() }
    }

    pub fn name(&self) -> String {
        self.url.partition_name(self.partition)
    }

    /// The offset after the last message read (`first` before any).
    pub fn read_to(&self) -> i64 {
        self.read_to.load(Ordering::SeqCst)
    }

    /// Reads this range's messages as chunks. Read again (a late reject's text), it reads
    /// only as far as the first reading did.
    pub fn open(&self) -> Result<Box<dyn ChunkSource>> {
        let client = Arc::new(block_on(async {
            let client = client(&self.url).await?;
            partition_client(&client, &self.url, self.partition).await
        })?);
        let read_before = self.read_to();
        let first_reading = read_before == self.first;
        let bound = if first_reading { self.bound } else { read_before };
        // The next fetches run ahead on the runtime while this reader hands on the last.
        let (ahead, fetched) = tokio::sync::mpsc::channel(FETCHES_AHEAD);
        let fetcher = super::object::runtime().spawn(fetch_ahead(client, self.first, bound, ahead));
        Ok(Box::new(PartitionChunks {
            range: self.clone(),
            fetched,
            fetcher,
            next: self.first,
            bound,
            high_watermark: i64::MAX,
            deadline: self.limits.wait.filter(|_| first_reading).map(|w| std::time::Instant::now() + w),
            pending: std::collections::VecDeque::new(),
            records: 0,
            hasher: blake3::Hasher::new(),
            to_hash: Vec::new(),
            spare: Vec::new(),
            bytes: 0,
            first_reading,
        }))
    }
}

/// Bytes hashed at once: enough for BLAKE3's widest SIMD (16 chunks of 1 KiB) several times.
const HASH_PIECE: usize = 64 << 10;

/// Fetches waiting to be read (each up to `FETCH_BYTES`).
const FETCHES_AHEAD: usize = 1;

type Fetched = std::result::Result<(Vec<rskafka::record::RecordAndOffset>, i64), rskafka::client::error::Error>;

/// Fetches a partition from `next` on, below `bound`, into `ahead`, until the reader hangs
/// up or a fetch fails (the reader gets the error).
async fn fetch_ahead(client: Arc<PartitionClient>, mut next: i64, bound: i64, ahead: tokio::sync::mpsc::Sender<Fetched>) {
    while next < bound {
        let fetched = client.fetch_records(next, 1..FETCH_BYTES, FETCH_WAIT_MS).await;
        let (after, failed) = match &fetched {
            Ok((records, _)) => (records.last().map(|r| r.offset + 1), false),
            Err(_) => (None, true),
        };
        if ahead.send(fetched).await.is_err() || failed {
            return;
        }
        if let Some(after) = after {
            next = next.max(after);
        }
    }
}

/// Reads a partition range's messages, in offset order.
struct PartitionChunks {
    range: PartitionRange,
    /// What the fetcher fetched, in order.
    fetched: tokio::sync::mpsc::Receiver<Fetched>,
    fetcher: tokio::task::JoinHandle<()>,
    /// The next offset to read.
    next: i64,
    bound: i64,
    /// The partition's end, as the last fetch saw it (unknown before one: `i64::MAX`).
    high_watermark: i64,
    /// Following: when the batch ends even if more is coming.
    deadline: Option<std::time::Instant>,
    /// Messages fetched but not yet in a chunk (a fetch returns what fits in its bytes).
    pending: std::collections::VecDeque<rskafka::record::RecordAndOffset>,
    records: u64,
    hasher: blake3::Hasher,
    /// What the messages read add to the checksum, not hashed yet.
    to_hash: Vec<u8>,
    spare: Vec<Vec<u8>>,
    bytes: u64,
    /// Whether this is the load's own reading (which moves `read_to`).
    first_reading: bool,
}

impl PartitionChunks {
    fn following(&self) -> bool {
        self.deadline.is_some()
    }

    fn done(&self) -> bool {
        let limits = &self.range.limits;
        if self.next >= self.bound || self.records >= limits.rows || self.bytes >= limits.bytes {
            return true;
        }
        if !self.first_reading {
            return false;
        }
        // A batch that read something ends when asked to stop, or, following, once it has
        // all the partition holds or its time is up.
        let caught_up = self.pending.is_empty() && self.next >= self.high_watermark;
        let late = self.deadline.is_some_and(|d| std::time::Instant::now() >= d);
        (self.records > 0 || self.following()) && (self.range.stop.load(Ordering::SeqCst) || (self.following() && (caught_up || late)))
    }

    /// Fetches from `next` into `pending`: at least one message unless the range is done.
    fn fetch(&mut self) -> Result<()> {
        let mut empty_fetches = 0;
        while self.pending.is_empty() && !self.done() {
            let Some(fetched) = self.fetched.blocking_recv() else {
                return Err(anyhow::anyhow!("{}: the fetcher stopped", self.range.name()));
            };
            let (records, high_watermark) = fetched.map_err(|e| kafka_error(&self.range.name(), e))?;
            self.high_watermark = high_watermark;
            if records.is_empty() {
                if self.following() {
                    continue;
                }
                if self.next >= high_watermark {
                    // The partition holds no more (it may have been truncated under us).
                    return Err(Failure::Input(format!(
                        "{}: offsets {}..{} are not in the partition (it ends at {high_watermark})",
                        self.range.name(),
                        self.next,
                        self.bound - 1
                    ))
                    .into());
                }
                // Offsets that hold no message (a transaction's marker) are not skipped
                // blindly: a message there would be lost.
                empty_fetches += 1;
                if empty_fetches > 3 {
                    return Err(Failure::Input(format!(
                        "{}: no message at offset {} though the partition goes on to {high_watermark} \
                         (a transaction marker or a compacted gap tier cannot read past)",
                        self.range.name(),
                        self.next
                    ))
                    .into());
                }
                continue;
            }
            self.pending.extend(records.into_iter().filter(|r| r.offset >= self.next));
        }
        Ok(())
    }
}

impl Drop for PartitionChunks {
    fn drop(&mut self) {
        self.fetcher.abort();
    }
}

impl ChunkSource for PartitionChunks {
    fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut buf = self.spare.pop().unwrap_or_default();
        let mut spans = Vec::new();
        let mut messages = Messages {
            topic: self.range.url.topic.as_str().into(),
            partition: self.range.partition,
            first_record: self.records + 1,
            keys: Vec::new(),
            timestamps: Vec::new(),
        };
        while buf.len() < BLOCK_SIZE && !self.done() {
            self.fetch()?;
            let Some(message) = self.pending.pop_front() else { break };
            if message.offset >= self.bound {
                // No message between the last one read and the bound.
                self.next = self.bound;
                break;
            }
            self.records += 1;
            self.next = message.offset + 1;
            let rskafka::record::Record { key, value, timestamp, .. } = message.record;
            let value = value.unwrap_or_default();
            messages.keys.push(key);
            messages.timestamps.push(timestamp.timestamp_millis());
            // The ledger's checksum covers each message's offset and value: gathered into
            // pieces of `HASH_PIECE` bytes, as BLAKE3 hashes a long input many blocks at a
            // time (an update per message took a quarter of a topic load's CPU).
            self.to_hash.extend_from_slice(&message.offset.to_le_bytes());
            self.to_hash.extend_from_slice(&(value.len() as u64).to_le_bytes());
            self.to_hash.extend_from_slice(&value);
            if self.to_hash.len() >= HASH_PIECE {
                self.hasher.update(&self.to_hash);
                self.to_hash.clear();
            }
            self.bytes += value.len() as u64;
            let start = buf.len();
            buf.extend_from_slice(&value);
            let damage = message_damage(&value);
            spans.push(Span { line: message.offset as u64, record: self.records, start, end: buf.len(), damage });
        }
        self.hasher.update(&self.to_hash);
        self.to_hash.clear();
        if self.first_reading {
            self.range.read_to.store(self.next, Ordering::SeqCst);
        }
        if spans.is_empty() {
            return Ok(None);
        }
        Ok(Some(Chunk { buf, spans, offset_end: self.bytes, messages: Some(messages) }))
    }

    fn reuse(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        self.spare.push(buf);
    }

    fn has_spare(&self) -> bool {
        !self.spare.is_empty()
    }

    fn checksum(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }
}

/// Why a message's value is not one JSON object, if it is not: the scanner a file's
/// records go through, on this one value (a message is never joined with its neighbours).
fn message_damage(value: &[u8]) -> Option<Damage> {
    if value.iter().all(u8::is_ascii_whitespace) {
        return Some(Damage::Empty);
    }
    let scan = framing::scan(value, 1, true);
    match scan.spans.as_slice() {
        [one] if one.damage.is_none() => {
            // Whatever the scanner took for separators (`[`, `,`) around the object is
            // not part of a message that is one object.
            let outside = value[..one.start].iter().chain(&value[one.end..]);
            match outside.clone().all(u8::is_ascii_whitespace) {
                true => None,
                false => Some(Damage::NotAnObject),
            }
        }
        [] => Some(Damage::NotAnObject),
        [one] => one.damage,
        // Several objects, or an object and garbage.
        many => many.iter().find_map(|s| s.damage).or(Some(Damage::TrailingText)),
    }
}

async fn client(url: &TopicUrl) -> Result<Client> {
    let backoff = rskafka::BackoffConfig { deadline: Some(RETRY_FOR), ..Default::default() };
    ClientBuilder::new(url.brokers.clone()).client_id("tier").backoff_config(backoff).build().await.map_err(|e| unreachable_broker(url, e))
}

async fn partition_client(client: &Client, url: &TopicUrl, partition: i32) -> Result<PartitionClient> {
    client
        .partition_client(url.topic.clone(), partition, UnknownTopicHandling::Error)
        .await
        .map_err(|e| kafka_error(&url.partition_name(partition), e))
}

fn unreachable_broker(url: &TopicUrl, e: rskafka::client::error::Error) -> anyhow::Error {
    Failure::Input(format!("kafka://{}: cannot reach the broker: {e}", url.brokers.join(","))).into()
}

fn kafka_error(name: &str, e: rskafka::client::error::Error) -> anyhow::Error {
    use rskafka::client::error::{Error, ProtocolError};
    match &e {
        Error::ServerError { protocol_error: ProtocolError::OffsetOutOfRange, .. } => {
            Failure::Input(format!("{name}: offsets asked for are no longer in the partition (retention removed them): {e}")).into()
        }
        _ => Failure::Input(format!("{name}: {e}")).into(),
    }
}

/// Runs a client future to its end on tier's runtime, from a thread that waits for it.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    super::object::runtime().block_on(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_brokers_topic_and_partitions() {
        let u = TopicUrl::parse("kafka://127.0.0.1:9092,10.0.0.2:9092/app.events?partitions=0,3").unwrap();
        assert_eq!(u.brokers, vec!["127.0.0.1:9092", "10.0.0.2:9092"]);
        assert_eq!(u.topic, "app.events");
        assert_eq!(u.partitions, Some(vec![0, 3]));
        assert_eq!(u.partition_name(3), "kafka://127.0.0.1:9092,10.0.0.2:9092/app.events/3");
        for bad in ["kafka://host/t", "kafka://h:1/", "kafka://h:1/a b", "kafka://h:1/t?partitions=x", "kafka://h:1/t?group=g", "s3://b/k"]
        {
            assert!(TopicUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_message_is_one_object_or_damaged() {
        assert_eq!(message_damage(br#"{"a": 1}"#), None);
        assert_eq!(message_damage(b" {\n \"a\": [1, 2]\n}\n"), None);
        assert_eq!(message_damage(b""), Some(Damage::Empty));
        assert_eq!(message_damage(b"42"), Some(Damage::NotAnObject));
        assert_eq!(message_damage(br#"[{"a": 1}]"#), Some(Damage::NotAnObject));
        assert!(message_damage(br#"{"a": 1}{"b": 2}"#).is_some());
        assert!(message_damage(br#"{"a": 1"#).is_some());
        assert!(message_damage(br#"{"a": 1} x"#).is_some());
    }
}
