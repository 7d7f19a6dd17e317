//! Kafka topics: `tier load NAME --from kafka://...` against a real Apache Kafka broker (one
//! node, KRaft), started here from Maven Central's `org.apache.kafka` jars with the machine's
//! Java; messages written by a pinned Python producer (confluent-kafka, librdkafka).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// The broker's jars (tests/kafka/pom.xml's dependencies), copied from Maven Central by
/// Maven once and kept under the target directory, named by the pom's contents.
fn kafka_jars() -> PathBuf {
    static FETCHING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = FETCHING.lock().unwrap_or_else(|e| e.into_inner());
    let pom = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/pom.xml");
    let text = std::fs::read_to_string(&pom).unwrap();
    let tag = format!("{:016x}", text.bytes().fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3)));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kafka-{tag}"));
    if !dir.join(".complete").exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new("mvn")
            .args(["-q", "-B", "-f"])
            .arg(&pom)
            .arg("dependency:copy-dependencies")
            .arg(format!("-DoutputDirectory={}", dir.join("jars").display()))
            .output()
            .expect("run mvn (Maven) to fetch the Kafka broker's jars");
        assert!(out.status.success(), "mvn could not fetch the Kafka jars: {}", String::from_utf8_lossy(&out.stdout));
        std::fs::write(dir.join(".complete"), "").unwrap();
    }
    dir.join("jars")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A one-node Kafka broker (KRaft: broker and controller in one process) on free ports of
/// 127.0.0.1, its data under the test's directory. Stopped on drop.
pub struct Broker {
    child: Option<Child>,
    pub bootstrap: String,
    port: u16,
    config: PathBuf,
    dir: PathBuf,
}

impl Broker {
    pub fn start(dir: &Path) -> Broker {
        let jars = kafka_jars();
        let (port, controller) = (free_port(), free_port());
        let dir = dir.join("kafka");
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("server.properties");
        std::fs::write(
            &config,
            format!(
                "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:{controller}\n\
                 listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}\n\
                 advertised.listeners=PLAINTEXT://127.0.0.1:{port}\ncontroller.listener.names=CONTROLLER\n\
                 listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\nlog.dirs={}\n\
                 offsets.topic.replication.factor=1\ntransaction.state.log.replication.factor=1\n\
                 transaction.state.log.min.isr=1\ngroup.initial.rebalance.delay.ms=0\n",
                dir.join("logs").display()
            ),
        )
        .unwrap();
        let classpath = format!("{}/*", jars.display());
        let format = Command::new("java")
            .args(["-cp", &classpath, "kafka.tools.StorageTool", "format", "-t", "dGllci10ZXN0cy1rYWZrYQ", "-c"])
            .arg(&config)
            .output()
            .expect("run java (the Kafka storage tool)");
        assert!(format.status.success(), "kafka storage format failed: {}", String::from_utf8_lossy(&format.stderr));
        let mut broker = Broker { child: None, bootstrap: format!("127.0.0.1:{port}"), port, config, dir };
        broker.spawn();
        broker
    }

    fn spawn(&mut self) {
        let classpath = format!("{}/*", kafka_jars().display());
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("broker.log")).unwrap();
        let child = Command::new("java")
            .args(["-Xmx512m", "-cp", &classpath, "kafka.Kafka"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the Kafka broker");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the Kafka broker did not come up");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops the broker (SIGKILL: a crash) and starts it again on the same data.
    pub fn restart(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.spawn();
    }

    /// Writes `messages` (partition, key, value) to `topic`, in order, compressed so;
    /// `create`: make the topic with that many partitions first.
    pub fn produce(&self, topic: &str, messages: &[Message], create: Option<u32>, compression: &str) {
        self.produce_with(topic, messages, create, compression, &[]);
    }

    fn produce_with(&self, topic: &str, messages: &[Message], create: Option<u32>, compression: &str, more: &[&str]) {
        let venv = python_venv("requirements-kafka.txt");
        let file = self.dir.join(format!("messages-{}.jsonl", std::process::id()));
        let lines: Vec<String> =
            messages.iter().map(|m| serde_json::json!({"partition": m.partition, "key": m.key, "value": m.value}).to_string()).collect();
        std::fs::write(&file, lines.join("\n") + "\n").unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kafka/produce.py");
        let mut cmd = Command::new(venv.join("bin/python"));
        cmd.arg(script).args([&self.bootstrap, topic]).arg(&file).args(["--compression", compression]).args(more);
        if let Some(n) = create {
            cmd.args(["--create", &n.to_string()]);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "produce.py failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Deletes a partition's messages before `offset`, as retention does.
    pub fn delete_before(&self, topic: &str, partition: i32, offset: i64) {
        self.produce_with(topic, &[], None, "none", &["--delete-before", &format!("{partition}:{offset}")]);
    }

    pub fn url(&self, topic: &str) -> String {
        format!("kafka://{}/{topic}", self.bootstrap)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Clone, Debug)]
pub struct Message {
    pub partition: i32,
    pub key: Option<String>,
    pub value: Option<String>,
}

const CONTRACT: &str = "name = \"pings\"\n\
    [[column]]\nname = \"id\"\ntype = \"bigint\"\nrequired = true\n\
    [[column]]\nname = \"n\"\ntype = \"integer\"\nmin = 0\n\
    [[column]]\nname = \"part\"\ntype = \"integer\"\nmessage = \"partition\"\n\
    [[column]]\nname = \"off\"\ntype = \"bigint\"\nmessage = \"offset\"\n\
    [[column]]\nname = \"k\"\ntype = \"text\"\nmessage = \"key\"\n\
    [[column]]\nname = \"sent\"\ntype = \"timestamp\"\nmessage = \"timestamp\"\n";

/// Messages `from..to` of each partition (the i-th written to a partition of a new topic
/// has offset i), with planted defects: text that is not JSON, an empty message, a bare
/// array, a value breaking a rule, and a pretty-printed object over several lines.
fn messages(partitions: i32, from: i64, to: i64) -> Vec<Message> {
    let mut out = Vec::new();
    for i in from..to {
        for p in 0..partitions {
            let id = p as i64 * 1_000_000 + i;
            let value = match i % 97 {
                13 => Some("not json at all".to_string()),
                29 => None,
                41 => Some("[1, 2]".to_string()),
                53 => Some(format!("{{\"id\": {id}, \"n\": -1}}")),
                71 => Some(format!("{{\n  \"id\": {id},\n  \"n\": {i}\n}}")),
                _ => Some(format!("{{\"id\": {id}, \"n\": {i}}}")),
            };
            out.push(Message { partition: p, key: Some(format!("k{id}")), value });
        }
    }
    out
}

/// Each partition's offsets as the table and the rejects hold them: (loaded, rejected).
fn offsets_seen(env: &Env) -> BTreeMap<i32, (Vec<i64>, Vec<i64>)> {
    let mut seen: BTreeMap<i32, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
    let mut c = client();
    for row in c.query(&format!("SELECT part, off, id, k FROM {}.pings ORDER BY part, off", env.schema), &[]).unwrap() {
        let (part, off, id, key): (i32, i64, i64, String) = (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!(id, part as i64 * 1_000_000 + off, "row {id} stored with another message's partition or offset");
        assert_eq!(key, format!("k{id}"), "row {id} has another message's key");
        seen.entry(part).or_default().0.push(off);
    }
    let sql = format!("SELECT source_file, line FROM {}.pings_rejects ORDER BY source_file, line", env.schema);
    for row in c.query(&sql, &[]).unwrap() {
        let (file, line): (String, i64) = (row.get(0), row.get(1));
        let part: i32 = file.rsplit('/').next().unwrap().parse().unwrap();
        seen.entry(part).or_default().1.push(line);
    }
    seen
}

/// Every offset below `end` of each partition is in the table or the rejects, once, and the
/// rejects are exactly the planted defects.
fn assert_each_message_once(env: &Env, partitions: i32, end: i64) {
    let seen = offsets_seen(env);
    for p in 0..partitions {
        let (loaded, rejected) = seen.get(&p).cloned().unwrap_or_default();
        let mut all: Vec<i64> = loaded.iter().chain(&rejected).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..end).collect::<Vec<_>>(), "partition {p}: offsets missing or loaded twice");
        let planted: Vec<i64> = (0..end).filter(|i| [13, 29, 41, 53].contains(&(i % 97))).collect();
        assert_eq!(rejected, planted, "partition {p}: the rejects are not the planted defects");
    }
}

/// Per partition, the ledger's offset ranges of the loads, in order: they must follow
/// one another with no gap and no overlap.
fn ledger_ranges(env: &Env) -> BTreeMap<i32, Vec<(i64, i64)>> {
    let sql = format!(
        "SELECT topic_partition, first_offset, last_offset FROM {}.tier_loads WHERE status = 'ok' ORDER BY topic_partition, first_offset",
        env.schema
    );
    let mut out: BTreeMap<i32, Vec<(i64, i64)>> = BTreeMap::new();
    for row in client().query(&sql, &[]).unwrap() {
        out.entry(row.get(0)).or_default().push((row.get(1), row.get(2)));
    }
    out
}

fn assert_ranges_tile(env: &Env, partitions: i32, end: i64) {
    let ranges = ledger_ranges(env);
    for p in 0..partitions {
        let mut next = 0;
        for &(first, last) in ranges.get(&p).map(Vec::as_slice).unwrap_or_default() {
            assert_eq!(first, next, "partition {p}: the ledger's ranges {:?} leave a gap or overlap", ranges[&p]);
            next = last + 1;
        }
        assert_eq!(next, end, "partition {p}: the ledger's ranges end at {next}, not {end}");
    }
}

fn setup(name: &str) -> (Env, PathBuf, Broker) {
    let env = Env::new(name);
    let contracts = contract(&env, "pings", CONTRACT);
    let broker = Broker::start(env.data());
    (env, contracts, broker)
}

fn load_topic(env: &Env, contracts: &Path, url: &str, more: &[&str]) -> Command {
    let mut args = vec!["--datasets", contracts.to_str().unwrap(), "load", "pings", "--from", url, "--json"];
    args.extend_from_slice(more);
    env.tier(&args)
}

#[test]
fn a_topic_loads_every_message_once_with_its_partition_offset_and_key() {
    let (env, contracts, broker) = setup("kafka_bounded");
    // Four partitions, each written with another compression (batches of many messages).
    let first = messages(4, 0, 300);
    for (p, codec) in ["none", "gzip", "snappy", "lz4"].iter().enumerate() {
        let of_p: Vec<Message> = first.iter().filter(|m| m.partition == p as i32).cloned().collect();
        broker.produce("events", &of_p, (p == 0).then_some(4), codec);
    }
    let url = broker.url("events");
    let (code, out, err) = run(load_topic(&env, &contracts, &url, &["--batch-rows", "120"]));
    assert_eq!(code, 0, "{err}");
    let batches: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(batches.len(), 4 * 3, "300 messages a partition in batches of 120: {out}");
    assert_each_message_once(&env, 4, 300);
    assert_ranges_tile(&env, 4, 300);
    // Rejects keep the message as sent, and say why.
    let rows = env.query_strings(
        "SELECT reason, detail, raw FROM {s}.pings_rejects WHERE source_file LIKE '%/events/2' AND line IN (13, 29, 41, 53) ORDER BY line",
    );
    let reasons: Vec<&str> = rows.iter().map(|r| r[0].as_deref().unwrap()).collect();
    assert_eq!(reasons, ["malformed", "malformed", "malformed", "out_of_range"], "{rows:?}");
    assert_eq!(rows[0][2].as_deref(), Some("not json at all"));
    assert_eq!(rows[1][1].as_deref(), Some("an empty message (no value)"));
    assert_eq!(rows[2][2].as_deref(), Some("[1, 2]"));
    // The message's timestamp: when the producer wrote it, in this test.
    let recent = env.query_strings("SELECT count(*)::text FROM {s}.pings WHERE sent > now() - interval '10 minutes' AND sent <= now()");
    assert_eq!(recent[0][0].as_deref(), Some(&*env.count("pings").to_string()), "message timestamps not stored");

    // Run again: nothing new, nothing loaded.
    let before = env.fingerprint("pings");
    let (code, out, err) = run(load_topic(&env, &contracts, &url, &[]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&out).unwrap().len(), 0, "{out}");
    assert_eq!(env.fingerprint("pings"), before);

    // More messages (zstd): only they load, after the ledger's last offsets.
    broker.produce("events", &messages(4, 300, 400), None, "zstd");
    let (code, out, err) = run(load_topic(&env, &contracts, &url, &[]));
    assert_eq!(code, 0, "{err}");
    let batches: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(batches.iter().map(|b| b["records"].as_u64().unwrap()).sum::<u64>(), 400, "{out}");
    assert!(batches.iter().all(|b| b["offsets"]["first"] == 300 && b["offsets"]["last"] == 399), "{out}");
    assert_each_message_once(&env, 4, 400);
    assert_ranges_tile(&env, 4, 400);

    // validate reads each batch again from the topic and compares it with its load's rows.
    let validate = |env: &Env| {
        let args = ["--datasets", contracts.to_str().unwrap(), "validate", "pings", "--from", &url, "--format", "json"];
        let (code, out, err) = run(env.tier(&args));
        let checks: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}\n{err}"));
        (code, checks, err)
    };
    broker.produce("events", &messages(4, 400, 410), None, "none");
    let (code, checks, err) = validate(&env);
    assert_eq!(code, 0, "{checks:?}\n{err}");
    let offsets: Vec<&serde_json::Value> = checks.iter().filter(|c| c["check"].as_str().unwrap().ends_with("offsets")).collect();
    assert_eq!(offsets.len(), 4, "{checks:?}");
    assert_eq!(offsets[2]["expected"], "0..399 in 4 batches");
    assert_eq!(offsets[2]["diff"], "10 newer not loaded yet");
    // A row changed behind tier's back is found.
    client().batch_execute(&format!("UPDATE {}.pings SET n = n + 1 WHERE part = 1 AND off = 350", env.schema)).unwrap();
    let (code, checks, _) = validate(&env);
    assert_eq!(code, 1, "{checks:?}");
    assert!(checks.iter().any(|c| c["ok"] == false), "{checks:?}");
}

#[test]
fn partitions_named_in_the_url_and_a_start_for_partitions_the_ledger_lacks() {
    let (env, contracts, broker) = setup("kafka_partitions");
    broker.produce("events", &messages(4, 0, 50), Some(4), "none");
    let (code, out, err) = run(load_topic(&env, &contracts, &format!("{}?partitions=1,3", broker.url("events")), &[]));
    assert_eq!(code, 0, "{err}");
    let parts: Vec<i64> = serde_json::from_str::<Vec<serde_json::Value>>(&out)
        .unwrap()
        .iter()
        .map(|b| b["offsets"]["partition"].as_i64().unwrap())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(parts, [1, 3]);
    // --start latest: the other partitions begin at their end; only later messages load.
    let (code, _, err) = run(load_topic(&env, &contracts, &broker.url("events"), &["--start", "latest"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.query_strings("SELECT count(*)::text FROM {s}.pings WHERE part IN (0, 2)")[0][0].as_deref(), Some("0"));
    broker.produce("events", &messages(4, 50, 60), None, "none");
    let (code, _, err) = run(load_topic(&env, &contracts, &broker.url("events"), &[]));
    assert_eq!(code, 0, "{err}");
    let offsets = env.query_strings("SELECT min(off)::text, max(off)::text FROM {s}.pings WHERE part = 2");
    assert_eq!(offsets[0], [Some("50".to_string()), Some("59".to_string())]);
    // A partition or topic that is not there is an input error naming it.
    let (code, _, err) = run(load_topic(&env, &contracts, &format!("{}?partitions=9", broker.url("events")), &[]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("events/9: no such partition"), "{err}");
    let (code, _, err) = run(load_topic(&env, &contracts, &broker.url("nope"), &[]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("nope: no such topic"), "{err}");
}

#[test]
fn a_killed_load_and_two_loads_at_once_load_each_message_once() {
    let (env, contracts, broker) = setup("kafka_kill");
    broker.produce("events", &messages(4, 0, 4000), Some(4), "lz4");
    let url = broker.url("events");
    // Killed once some batches are in: the rest of its work is lost, none of it half done.
    let mut first = load_topic(&env, &contracts, &url, &["--batch-rows", "250"]);
    first.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = first.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = client()
            .query_opt(&format!("SELECT count(*) FROM {}.tier_loads WHERE status = 'ok'", env.schema), &[])
            .ok()
            .flatten()
            .map_or(0, |r| r.get::<_, i64>(0));
        if done >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no batch committed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Two loads at once finish the topic between them.
    let a = load_topic(&env, &contracts, &url, &["--batch-rows", "250"]).spawn_output();
    let b = load_topic(&env, &contracts, &url, &["--batch-rows", "250"]).spawn_output();
    for (code, err) in [a.join().unwrap(), b.join().unwrap()] {
        assert_eq!(code, 0, "{err}");
    }
    assert_each_message_once(&env, 4, 4000);
    assert_ranges_tile(&env, 4, 4000);
}

#[test]
fn offsets_the_topic_no_longer_holds_fail_loudly() {
    let (env, contracts, broker) = setup("kafka_retention");
    broker.produce("events", &messages(1, 0, 100), Some(1), "none");
    let url = broker.url("events");
    let (code, _, err) = run(load_topic(&env, &contracts, &url, &[]));
    assert_eq!(code, 0, "{err}");
    broker.produce("events", &messages(1, 100, 200), None, "none");
    broker.delete_before("events", 0, 150);
    let before = env.fingerprint("pings");
    let (code, _, err) = run(load_topic(&env, &contracts, &url, &[]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("events/0: offsets 100..149 are no longer in the partition"), "{err}");
    assert_eq!(env.fingerprint("pings"), before, "a load past a gap changed the table");
}

#[test]
fn a_broker_restarted_between_loads_and_a_replace_refused() {
    let (env, contracts, mut broker) = setup("kafka_restart");
    broker.produce("events", &messages(2, 0, 100), Some(2), "snappy");
    let url = broker.url("events");
    let (code, _, err) = run(load_topic(&env, &contracts, &url, &[]));
    assert_eq!(code, 0, "{err}");
    broker.restart();
    broker.produce("events", &messages(2, 100, 150), None, "gzip");
    let (code, _, err) = run(load_topic(&env, &contracts, &url, &[]));
    assert_eq!(code, 0, "{err}");
    assert_each_message_once(&env, 2, 150);
    let (code, _, err) = run(load_topic(&env, &contracts, &url, &["--mode", "replace"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("append or merge"), "{err}");
}

/// A command run on a thread of its own: its exit code and stderr when joined.
trait SpawnOutput {
    fn spawn_output(self) -> std::thread::JoinHandle<(i32, String)>;
}

impl SpawnOutput for Command {
    fn spawn_output(self) -> std::thread::JoinHandle<(i32, String)> {
        std::thread::spawn(move || {
            let (code, _, err) = run(self);
            (code, err)
        })
    }
}

/// Waits until the table and its rejects hold `n` messages between them.
fn wait_for_messages(env: &Env, n: i64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sql = format!("SELECT (SELECT count(*) FROM {s}.pings) + (SELECT count(*) FROM {s}.pings_rejects)", s = env.schema);
        let seen = client().query_one(&sql, &[]).ok().map_or(0, |r| r.get::<_, i64>(0));
        if seen == n {
            return;
        }
        assert!(seen < n, "{what}: {seen} messages in the table and rejects, more than the {n} written");
        assert!(Instant::now() < deadline, "{what}: {seen} of {n} messages loaded after two minutes");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill").args([&format!("-{name}"), &child.id().to_string()]).status().unwrap().success();
    assert!(ok, "kill -{name} failed");
}

#[test]
fn followers_load_messages_as_they_come_take_over_a_killed_one_and_stop_on_sigterm() {
    let (env, contracts, broker) = setup("kafka_follow");
    broker.produce("events", &messages(4, 0, 200), Some(4), "zstd");
    let url = broker.url("events");
    let follower = || {
        let mut cmd = load_topic(&env, &contracts, &url, &["--follow", "--batch-wait", "0.5"]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let mut a = follower();
    let mut b = follower();
    wait_for_messages(&env, 4 * 200, "two followers, the topic's first messages");
    // Messages as they come, in rounds.
    for round in 0..3 {
        broker.produce("events", &messages(4, 200 + round * 100, 300 + round * 100), None, "snappy");
        wait_for_messages(&env, 4 * (300 + round * 100), "two followers, new messages");
    }
    // A follower killed: the other takes its partitions over.
    a.kill().unwrap();
    a.wait().unwrap();
    broker.produce("events", &messages(4, 500, 700), None, "lz4");
    wait_for_messages(&env, 4 * 700, "the follower left");
    // The broker restarted under the follower: it rides the restart out.
    let mut broker = broker;
    broker.restart();
    broker.produce("events", &messages(4, 700, 800), None, "gzip");
    wait_for_messages(&env, 4 * 800, "the broker restarted");
    // SIGTERM: the follower ends its batch, commits it and exits 0 with its summary.
    signal(&b, "TERM");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = b.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the follower did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = b.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!summary.is_empty() && summary.iter().all(|p| p["offsets"]["last"].as_i64().is_some()), "{summary:?}");
    assert_each_message_once(&env, 4, 800);
    assert_ranges_tile(&env, 4, 800);
}

#[test]
fn a_topic_into_the_iceberg_lake_keeps_lake_ledger_and_table_equal() {
    let env = Env::new("kafka_lake");
    let contracts = contract(&env, "pings", &format!("day = \"sent\"\n{CONTRACT}"));
    let broker = Broker::start(env.data());
    broker.produce("events", &messages(4, 0, 300), Some(4), "zstd");
    let url = broker.url("events");
    let lake = env.data().join("lake");
    let lake_arg = ["--lake", lake.to_str().unwrap(), "--batch-rows", "100"];
    let (code, _, err) = run(load_topic(&env, &contracts, &url, &lake_arg));
    assert_eq!(code, 0, "{err}");
    broker.produce("events", &messages(4, 300, 350), None, "none");
    let (code, _, err) = run(load_topic(&env, &contracts, &url, &lake_arg));
    assert_eq!(code, 0, "{err}");
    assert_each_message_once(&env, 4, 350);
    // pyiceberg and DuckDB read what the table holds; a snapshot per batch, as the ledger says.
    let seen = crate::iceberg::assert_lake_is_the_table(&env, "pings", "sent", "n");
    assert_eq!(seen.snapshots.len(), 4 * 3 + 4, "{:?}", seen.snapshots);
}

#[test]
fn a_start_at_a_time_loads_the_messages_written_from_then_on() {
    let (env, contracts, broker) = setup("kafka_start_time");
    broker.produce("events", &messages(1, 0, 40), Some(1), "none");
    std::thread::sleep(Duration::from_millis(1500));
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::thread::sleep(Duration::from_millis(500));
    broker.produce("events", &messages(1, 40, 70), None, "none");
    let (code, _, err) = run(load_topic(&env, &contracts, &broker.url("events"), &["--start", &since]));
    assert_eq!(code, 0, "{err}");
    let loaded = env.query_strings("SELECT min(off)::text, max(off)::text FROM {s}.pings");
    assert_eq!(loaded[0], [Some("40".to_string()), Some("69".to_string())], "since {since}");
    let (code, _, err) = run(load_topic(&env, &contracts, &broker.url("events"), &["--start", "yesterday"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("earliest, latest, or a time"), "{err}");
}
