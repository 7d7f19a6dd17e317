//! Any export, not just two: a third dataset end to end (infer -> edit -> load -> validate
//! -> query -> report -> lake), and contracts that are broken.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::*;

/// What a correct load of the generated log must report.
#[derive(Default, Debug)]
struct Planted {
    records: u64,
    loaded: u64,
    rejected: BTreeMap<&'static str, u64>,
    /// Loaded rows per `event`.
    events: BTreeMap<String, u64>,
    amount_sum_cents: i64,
}

/// A raw event log as a customer-data platform writes it: newline-delimited, gzipped,
/// several files, nested `context` and `properties`, camelCase keys, ISO timestamps with
/// `Z`, a `messageId`. Every 17th record carries one planted defect.
fn write_cdp_log(dir: &Path, files: usize, per_file: usize) -> Planted {
    std::fs::create_dir_all(dir).unwrap();
    let mut planted = Planted::default();
    let events = ["Ride Started", "Ride Ended", "App Opened", "Payment Done"];
    let mut n = 0u64;
    for f in 0..files {
        let path = dir.join(format!("part-{f:03}.ndjson.gz"));
        let mut gz = flate2::write::GzEncoder::new(std::fs::File::create(&path).unwrap(), flate2::Compression::fast());
        let mut last_line = String::new();
        for _ in 0..per_file {
            n += 1;
            let event = events[(n % 4) as usize];
            let cents = 100 + (n % 900) as i64;
            let second = n % 60;
            let mut timestamp = format!("2019-05-{:02}T14:{:02}:{second:02}.{:03}Z", 13 + f, n % 60, n % 1000);
            let mut amount = format!("{}.{:02}", cents / 100, cents % 100);
            let mut rating = (1 + n % 5).to_string();
            let mut currency = ["EUR", "NOK", "SEK"][(n % 3) as usize].to_string();
            let mut message_id = format!("\"messageId\": \"m-{n:06}\", ");
            let mut reason: Option<&'static str> = None;
            let mut line = None;
            if n.is_multiple_of(17) {
                reason = Some(match (n / 17) % 7 {
                    0 => {
                        message_id.clear();
                        "missing_required"
                    }
                    1 => {
                        timestamp = "yesterday".into();
                        "bad_timestamp"
                    }
                    2 => {
                        amount = "\"a lot\"".into();
                        "bad_number"
                    }
                    3 => {
                        rating = "7".into();
                        "out_of_range"
                    }
                    4 => {
                        currency = "XXX".into();
                        "not_allowed"
                    }
                    5 => {
                        // the line cut short by the exporter
                        line = Some(format!("{{\"messageId\": \"m-{n:06}\", \"type\": \"track\", \"context\": {{\"app\": [1, 2,"));
                        "malformed"
                    }
                    _ if !last_line.is_empty() => {
                        line = Some(last_line.clone());
                        "duplicate"
                    }
                    _ => {
                        message_id.clear();
                        "missing_required"
                    }
                });
            }
            let line = line.unwrap_or_else(|| {
                format!(
                    "{{{message_id}\"type\": \"track\", \"event\": \"{event}\", \"userId\": \"u-{}\", \"timestamp\": \"{timestamp}\", \
                     \"sentAt\": \"2019-05-{:02}T15:00:00Z\", \"context\": {{\"app\": {{\"name\": \"tier\", \"version\": \"3.{}.0\", \"build\": \"{}\"}}, \
                     \"device\": {{\"type\": \"{}\", \"model\": \"m{}\"}}, \"locale\": \"de-DE\"}}, \
                     \"properties\": {{\"amount\": {amount}, \"currency\": \"{currency}\", \"rating\": {rating}, \"promo\": {}, \"tags\": [\"a\", \"b{}\"]}}}}",
                    n % 50,
                    13 + f,
                    n % 4,
                    300 + n % 4,
                    if n.is_multiple_of(2) { "ios" } else { "android" },
                    n % 9,
                    n.is_multiple_of(2),
                    n % 3
                )
            });
            writeln!(gz, "{line}").unwrap();
            planted.records += 1;
            match reason {
                Some(r) => *planted.rejected.entry(r).or_default() += 1,
                None => {
                    planted.loaded += 1;
                    *planted.events.entry(event.to_string()).or_default() += 1;
                    planted.amount_sum_cents += cents;
                    last_line = line;
                }
            }
        }
        gz.finish().unwrap();
    }
    planted
}

/// The review a person does of an inferred contract: keys, types and rules set by hand.
fn edit_contract(inferred: &str) -> String {
    let mut doc: toml::Table = toml::from_str(inferred).unwrap_or_else(|e| panic!("{e}\n{inferred}"));
    doc.insert("unique".into(), toml::Value::Array(vec!["message_id".into()]));
    doc.insert("day".into(), "timestamp".into());
    let columns = doc.get_mut("column").and_then(|c| c.as_array_mut()).expect("columns");
    for c in columns.iter_mut() {
        let c = c.as_table_mut().unwrap();
        let name = c["name"].as_str().unwrap().to_string();
        match name.as_str() {
            "message_id" => {
                c.insert("required".into(), true.into());
            }
            // Planted defects made these text: the values that are not become rejects.
            "timestamp" => {
                c.insert("type".into(), "timestamp".into());
                c.insert("required".into(), true.into());
            }
            "properties_amount" => {
                c.insert("type".into(), "numeric".into());
                c.insert("min".into(), 0.into());
            }
            "properties_rating" => {
                c.insert("min".into(), 1.into());
                c.insert("max".into(), 5.into());
            }
            "properties_currency" => {
                c.insert("allowed".into(), toml::Value::Array(vec!["EUR".into(), "NOK".into(), "SEK".into()]));
            }
            _ => {}
        }
    }
    toml::to_string(&doc).unwrap()
}

/// `tier` with a contracts directory (and the test's database, for commands that take one).
pub(crate) fn tier_with(env: &Env, datasets: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = if matches!(args[0], "datasets" | "infer" | "gen") { env.tier_plain(args) } else { env.tier(args) };
    cmd.env("TIER_DATASETS", datasets);
    cmd
}

#[test]
fn a_third_dataset_end_to_end() {
    let env = Env::new("cdp");
    let logs = env.data().join("cdp");
    let planted = write_cdp_log(&logs, 3, 400);
    let datasets = env.data().join("datasets");

    // infer: every record read; nested keys as pointers; the evidence as comments (arrays
    // kept as json columns: --max-depth 0).
    let (code, inferred, err) = run(env.tier_plain(&["infer", logs.to_str().unwrap(), "--name", "cdp_events", "--max-depth", "0"]));
    assert_eq!(code, 0, "{err}");
    for expect in [
        "name = \"cdp_events\"",
        "key = \"/context/app/version\"",
        "key = \"/properties/tags\"\ntype = \"json\"",
        "name = \"message_id\"\nkey = \"messageId\"",
        "name = \"properties_promo\"\nkey = \"/properties/promo\"\ntype = \"boolean\"",
        "name = \"properties_rating\"\nkey = \"/properties/rating\"\ntype = \"integer\"",
        "name = \"sent_at\"\nkey = \"sentAt\"\ntype = \"timestamp\"\nrequired = true",
        "of values are timestamps",
        "# few values: allowed = [\"android\", \"ios\"]",
    ] {
        assert!(inferred.contains(expect), "missing {expect:?} in:\n{inferred}");
    }
    let records_note = format!("from {} records", planted.records);
    assert!(inferred.contains(&records_note), "{inferred}");
    // --write puts it in the contracts directory, and never over an existing one.
    let mut write = env.tier_plain(&["infer", logs.to_str().unwrap(), "--name", "cdp_events", "--write", "--max-depth", "0"]);
    write.env("TIER_DATASETS", &datasets);
    assert_eq!(run(write).0, 0);
    let written = std::fs::read_to_string(datasets.join("cdp_events.toml")).unwrap();
    assert_eq!(written, inferred);
    let mut again = env.tier_plain(&["infer", logs.to_str().unwrap(), "--name", "cdp_events", "--write", "--max-depth", "0"]);
    again.env("TIER_DATASETS", &datasets);
    let (code, _, err) = run(again);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("never overwritten"), "{err}");

    // edit, and the contract is declared: `datasets` lists it, `datasets check` accepts it.
    std::fs::write(datasets.join("cdp_events.toml"), edit_contract(&inferred)).unwrap();
    let (code, out, err) = run(tier_with(&env, &datasets, &["datasets", "check"]));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(tier_with(&env, &datasets, &["datasets"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cdp_events") && out.contains("/context/app/version") && out.contains("allowed EUR|NOK|SEK"), "{out}");

    // load --from: each file its own append; every planted defect counted exactly.
    let (code, out, err) = run(tier_with(&env, &datasets, &["load", "cdp_events", "--from", logs.to_str().unwrap(), "--json"]));
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    let files = stats.as_array().unwrap();
    assert_eq!(files.len(), 3);
    let sum = |key: &str| files.iter().map(|f| f[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("records"), planted.records);
    assert_eq!(sum("loaded"), planted.loaded);
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    for f in files {
        for (k, v) in f["rejected"].as_object().unwrap() {
            *rejected.entry(k.clone()).or_default() += v.as_u64().unwrap();
        }
    }
    let want: BTreeMap<String, u64> = planted.rejected.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    assert_eq!(rejected, want);
    assert_eq!(env.count("cdp_events") as u64, planted.loaded);
    let types = env.query_strings(
        "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = '{s}' AND table_name = 'cdp_events' \
         AND column_name IN ('context_app_version', 'properties_amount', 'properties_promo', 'properties_tags', 'timestamp', 'properties_rating') ORDER BY 1",
    );
    let types: Vec<(String, String)> = types.into_iter().map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap())).collect();
    assert_eq!(
        types,
        [
            ("context_app_version", "text"),
            ("properties_amount", "numeric"),
            ("properties_promo", "boolean"),
            ("properties_rating", "integer"),
            ("properties_tags", "jsonb"),
            ("timestamp", "timestamp with time zone"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    // Values as written: exact decimals, nested values, JSON kept as jsonb.
    let sums =
        env.query_strings("SELECT (sum(properties_amount) * 100)::bigint::text, count(DISTINCT properties_tags)::text FROM {s}.cdp_events");
    assert_eq!(sums[0][0].as_deref(), Some(planted.amount_sum_cents.to_string().as_str()));
    assert_eq!(sums[0][1].as_deref(), Some("3"));

    // validate: every file against its load, contents included.
    let (code, out, err) = run(tier_with(&env, &datasets, &["validate", "cdp_events"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("content digest"), "{out}");
    // An edited nested value is caught.
    client()
        .batch_execute(&format!("UPDATE {}.cdp_events SET properties_tags = '[\"x\"]' WHERE message_id = 'm-000001'", env.schema))
        .unwrap();
    let (code, out, _) = run(tier_with(&env, &datasets, &["validate", "cdp_events"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("contents differ on 2019-05-13"), "{out}");

    // query: a saved query over the new table.
    let queries = env.data().join("queries");
    std::fs::create_dir_all(&queries).unwrap();
    std::fs::write(
        queries.join("events.sql"),
        "-- title: Events per name\n-- chart: bar x=event y=n\nselect event, count(*)::bigint as n from cdp_events group by event order by event\n",
    )
    .unwrap();
    let (code, out, err) = run(tier_with(&env, &datasets, &["query", queries.join("events.sql").to_str().unwrap(), "--format", "csv"]));
    assert_eq!(code, 0, "{err}");
    let mut want = String::from("event,n\n");
    for (e, n) in &planted.events {
        want.push_str(&format!("{e},{n}\n"));
    }
    assert_eq!(out, want);

    // report: the dataset's load, rejects and column profile, beside the saved query.
    let reports = env.data().join("reports");
    let (code, _, err) =
        run(tier_with(&env, &datasets, &["report", "--queries", queries.to_str().unwrap(), "--out", reports.to_str().unwrap()]));
    // The edited row makes validation differ; the report is written all the same.
    assert!(code == 0 || code == 1, "{err}");
    let html = std::fs::read_to_string(reports.join("report.html")).unwrap();
    for expect in ["cdp_events", "Events per name", "context_app_version", "not_allowed", "properties_currency"] {
        assert!(html.contains(expect), "the report lacks {expect:?}");
    }

    // lake: a replace load with --lake, partitioned by the contract's day, queried with no database.
    let lake = env.data().join("lake");
    let one: PathBuf = logs.join("part-000.ndjson.gz");
    let (code, out, err) = run(tier_with(
        &env,
        &datasets,
        &[
            "load",
            "cdp_events",
            "--from",
            one.to_str().unwrap(),
            "--mode",
            "replace",
            "--lake",
            lake.to_str().unwrap(),
            "--lake-format",
            "hive",
            "--json",
        ],
    ));
    assert_eq!(code, 0, "{err}");
    let loaded = serde_json::from_str::<serde_json::Value>(&out).unwrap()[0]["loaded"].as_u64().unwrap();
    assert!(lake.join("cdp_events/date=2019-05-13").is_dir());
    let q = env.write("lake.sql", "select count(*) as n from cdp_events");
    let (code, out, err) = run(env.tier_plain(&["query", "--lake", lake.to_str().unwrap(), q.to_str().unwrap(), "--format", "csv"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), format!("n\n{loaded}"));
}

#[test]
fn a_broken_contract_is_refused_before_anything_is_read() {
    let env = Env::new("broken_contract");
    let datasets = env.data().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 14:05:13", "0.5")));
    let cases = [
        ("[[column]]\nname = \"a\"\ntype = \"texte\"\n", "rides.toml:4:8: unknown type \"texte\""),
        ("colour = 1\n[[column]]\nname = \"a\"\ntype = \"text\"\n", "rides.toml:2:1: unknown field `colour`"),
        (
            "[[column]]\nname = \"a\"\ntype = \"text\"\n[[column]]\nname = \"a\"\ntype = \"text\"\n",
            "rides.toml:6:8: duplicate column \"a\"",
        ),
        ("[[column]]\nname = \"a\"\ntype = \"text\"\nmin = 1\n", "rides.toml:5:7: min / max apply to number columns"),
        ("day = \"a\"\n[[column]]\nname = \"a\"\ntype = \"text\"\n", "rides.toml:2:7: day must name a timestamp or date column"),
        ("[[column]]\nname = \"a\"\ntype = \"text\"\npattern = \"([\"\n", "rides.toml:5:11: pattern is not a valid regular expression"),
        ("[[column]]\nname = \"a\"\ntype = \"timestamp\"\ntimezone = \"Mars/Base\"\n", "rides.toml:5:12: unknown time zone"),
    ];
    for (body, want) in cases {
        std::fs::write(datasets.join("rides.toml"), format!("name = \"rides\"\n{body}")).unwrap();
        let (code, out, err) = run(tier_with(&env, &datasets, &["datasets", "check"]));
        assert_eq!(code, 3, "{body}");
        assert!(out.contains(want), "{body}\nwant {want}\ngot {out}{err}");
        // Any command that needs the contracts refuses before reading a file or the database.
        let mut load = tier_with(&env, &datasets, &["load"]);
        load.env("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none");
        let (code, _, err) = run(load);
        assert_eq!(code, 3, "{err}");
        assert!(err.contains(want), "{err}");
    }
    // A file named for another dataset, and a missing directory asked for by name.
    std::fs::write(datasets.join("rides.toml"), "name = \"trips\"\n[[column]]\nname = \"a\"\ntype = \"text\"\n").unwrap();
    let (_, out, _) = run(tier_with(&env, &datasets, &["datasets", "check"]));
    assert!(out.contains("rides.toml:1:1: declares dataset \"trips\"; its file must be named trips.toml"), "{out}");
    let (code, _, err) = run(tier_with(&env, &env.data().join("nope"), &["datasets"]));
    assert_eq!(code, 3);
    assert!(err.contains("nope") && err.contains("no such directory"), "{err}");
}

#[test]
fn the_declared_names_are_the_commands_choices() {
    let env = Env::new("names");
    let datasets = env.data().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    std::fs::write(datasets.join("rides.toml"), "name = \"rides\"\n[[column]]\nname = \"id\"\ntype = \"bigint\"\n").unwrap();
    let (code, out, _) = run(tier_with(&env, &datasets, &["load", "--help"]));
    assert_eq!(code, 0);
    assert!(out.contains("rides"), "{out}");
    let (code, _, err) = run(tier_with(&env, &datasets, &["load", "weather"]));
    assert_eq!(code, 2, "only declared names are accepted: {err}");
    assert!(err.contains("rides"), "{err}");
    // Without a contracts directory, the shipped examples (and the repository's datasets/).
    let (code, out, _) = run(env.tier_plain(&["datasets"]));
    assert_eq!(code, 0);
    assert!(out.contains("track_events") && out.contains("weather"), "{out}");
}

/// Loads `gen --dataset`'s sample for a contract and checks the load against its manifest.
pub(crate) fn sample_loads_as_planted(env: &Env, datasets: &Path, name: &str, records: &str) {
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(tier_with(
        env,
        datasets,
        &["gen", "--dataset", name, "--records", records, "--defect-share", "0.3", "--seed", "5", "--out", &data],
    ));
    assert_eq!(code, 0, "{err}");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(env.data().join("gen-manifest.json")).unwrap()).unwrap();
    let planted = &manifest[name];
    let (code, out, err) = run(tier_with(env, datasets, &["load", name, "--json"]));
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    let sum = |key: &str| stats.as_array().unwrap().iter().map(|f| f[key].as_u64().unwrap()).sum::<u64>();
    assert_eq!(sum("records"), planted["records"].as_u64().unwrap(), "{out}");
    assert_eq!(sum("loaded"), planted["loaded"].as_u64().unwrap(), "{out}");
    let mut rejected = serde_json::Map::new();
    for f in stats.as_array().unwrap() {
        for (k, v) in f["rejected"].as_object().unwrap() {
            let n = rejected.get(k).and_then(|x| x.as_u64()).unwrap_or(0) + v.as_u64().unwrap();
            rejected.insert(k.clone(), n.into());
        }
    }
    assert_eq!(serde_json::Value::Object(rejected), planted["rejected"], "{out}");
    let (code, out, err) = run(tier_with(env, datasets, &["validate", name]));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn gen_writes_samples_for_any_contract_with_every_defect_its_rules_catch() {
    let env = Env::new("gen_dataset");
    let datasets = env.data().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    std::fs::write(
        datasets.join("payments.toml"),
        "name = \"payments\"\nfile = \"payments/*.ndjson.gz\"\nday = \"paid_at\"\nunique = [\"payment_id\"]\n\
         [[column]]\nname = \"payment_id\"\nkey = \"paymentId\"\ntype = \"text\"\nrequired = true\npattern = \"^payment_id-[0-9]+$\"\n\
         [[column]]\nname = \"method\"\ntype = \"text\"\nallowed = [\"card\", \"cash\"]\n\
         [[column]]\nname = \"note\"\ntype = \"text\"\nmax_length = 40\n\
         [[column]]\nname = \"amount\"\nkey = \"/money/amount\"\ntype = \"numeric\"\nmin = 0\nmax = \"999.99\"\n\
         [[column]]\nname = \"fee\"\nkey = \"/money/fee\"\ntype = \"double\"\nmin = 0\n\
         [[column]]\nname = \"items\"\ntype = \"integer\"\nmin = 1\nmax = 20\n\
         [[column]]\nname = \"account\"\ntype = \"bigint\"\n\
         [[column]]\nname = \"refunded\"\ntype = \"boolean\"\n\
         [[column]]\nname = \"paid_at\"\ntype = \"timestamp\"\nrequired = true\ntimezone = \"Europe/Oslo\"\n\
         [[column]]\nname = \"booked_on\"\ntype = \"date\"\n\
         [[column]]\nname = \"meta\"\ntype = \"json\"\n",
    )
    .unwrap();
    sample_loads_as_planted(&env, &datasets, "payments", "3000");
    assert!(env.data().join("payments/sample.ndjson.gz").is_file());
    // Every defect the rules can catch was planted.
    let reasons = env.query_strings("SELECT DISTINCT reason FROM {s}.payments_rejects ORDER BY 1");
    let reasons: Vec<String> = reasons.into_iter().map(|r| r[0].clone().unwrap()).collect();
    for r in [
        "bad_boolean",
        "bad_date",
        "bad_number",
        "bad_timestamp",
        "bad_value",
        "duplicate",
        "malformed",
        "missing_required",
        "not_allowed",
        "out_of_range",
        "pattern_mismatch",
        "too_long",
    ] {
        assert!(reasons.contains(&r.to_string()), "{r} not planted: {reasons:?}");
    }
}

#[test]
fn a_contract_with_more_than_64_columns() {
    let env = Env::new("wide");
    let datasets = env.data().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    let mut text = String::from("name = \"wide\"\nfile = \"wide.json\"\n");
    for i in 0..90 {
        let kind = ["text", "integer", "double"][i % 3];
        text.push_str(&format!("[[column]]\nname = \"c{i}\"\ntype = \"{kind}\"\n{}", if i == 69 { "required = true\n" } else { "" }));
    }
    std::fs::write(datasets.join("wide.toml"), text).unwrap();
    sample_loads_as_planted(&env, &datasets, "wide", "500");
    // A key repeated past the 64th column is still caught as a duplicate key.
    env.write("wide.json", "{\"c69\": \"x\", \"c80\": 1, \"c80\": 2}\n{\"c69\": \"y\", \"c89\": 2.5}\n");
    let (code, _, err) = run(tier_with(&env, &datasets, &["load", "wide"]));
    assert_eq!(code, 0, "{err}");
    let rejects = env.query_strings("SELECT reason, detail FROM {s}.wide_rejects");
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0][0].as_deref(), Some("malformed"));
    assert!(rejects[0][1].as_deref().unwrap().contains("c80"), "{rejects:?}");
    let loaded = env.query_strings("SELECT c69, c89::text FROM {s}.wide");
    assert_eq!(loaded, [[Some("y".to_string()), Some("2.5".to_string())]]);
}

#[test]
fn inferring_the_original_exports_loads_the_same_rows_as_the_shipped_contracts() {
    let env = Env::new("infer_originals");
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) =
        run(env.tier_plain(&["gen", "--events", "3000", "--weather", "800", "--seed", "9", "--defect-share", "0", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    let datasets = env.data().join("inferred");
    for (table, file) in [("track_events", "track_events.json"), ("weather", "weather.json")] {
        let mut infer = env.tier_plain(&["infer", env.data().join(file).to_str().unwrap(), "--name", table, "--write"]);
        infer.env("TIER_DATASETS", &datasets);
        let (code, _, err) = run(infer);
        assert_eq!(code, 0, "{err}");
    }
    let inferred = std::fs::read_to_string(datasets.join("weather.toml")).unwrap();
    assert!(inferred.contains("key_prefix = \"weather_data.\""), "{inferred}");
    assert!(inferred.contains("name = \"date_time\"\ntype = \"timestamp\"\nrequired = true"), "{inferred}");
    // The shipped contracts (the repository's datasets/), then the inferred ones, each in a schema of its own.
    let (code, _, err) = run(env.tier(&["load"]));
    assert_eq!(code, 0, "{err}");
    let other = Env::new("infer_originals_b");
    for file in ["track_events.json", "weather.json"] {
        std::fs::copy(env.data().join(file), other.data().join(file)).unwrap();
    }
    let mut load = other.tier(&["load"]);
    load.env("TIER_DATASETS", &datasets);
    let (code, _, err) = run(load);
    assert_eq!(code, 0, "{err}");
    for (table, shipped, inferred) in [
        ("weather", "sum(humidity)::text, count(DISTINCT city)::text", "sum(currently_humidity)::text, count(DISTINCT city)::text"),
        (
            "track_events",
            "count(DISTINCT anonymous_id)::text, sum(properties_rating)::text, max(original_timestamp)::text",
            "count(DISTINCT anonymous_id)::text, sum(properties_rating)::text, max(original_timestamp_time)::text",
        ),
    ] {
        let a = env.query_strings(&format!("SELECT count(*)::text, {shipped} FROM {{s}}.{table}"));
        let b = other.query_strings(&format!("SELECT count(*)::text, {inferred} FROM {{s}}.{table}"));
        assert_eq!(a, b, "{table}");
        assert_ne!(a[0][0].as_deref(), Some("0"));
    }
}

#[test]
fn a_dataset_without_a_day_is_one_group_and_an_unpartitioned_lake() {
    let env = Env::new("no_day");
    let datasets = env.data().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    std::fs::write(
        datasets.join("things.toml"),
        "name = \"things\"\n[[column]]\nname = \"id\"\ntype = \"bigint\"\nrequired = true\n[[column]]\nname = \"label\"\ntype = \"text\"\n",
    )
    .unwrap();
    env.write("things.json", "{\"id\": 1, \"label\": \"a\"}\n{\"id\": 2}\n{\"id\": \"x\"}\n");
    let lake = env.data().join("lake");
    let (code, _, err) = run(tier_with(&env, &datasets, &["load", "things", "--lake", lake.to_str().unwrap(), "--lake-format", "hive"]));
    assert_eq!(code, 0, "{err}");
    let parts: Vec<_> =
        std::fs::read_dir(lake.join("things")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert!(parts.len() == 1 && parts[0].ends_with(".parquet"), "{parts:?}");
    let q = env.write("q.sql", "select count(*) as n from things");
    let (code, out, err) = run(env.tier_plain(&["query", "--lake", lake.to_str().unwrap(), q.to_str().unwrap(), "--format", "csv"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "n\n2");
    let (code, out, err) = run(tier_with(&env, &datasets, &["validate", "things"]));
    assert_eq!(code, 0, "{out}{err}");
    client().batch_execute(&format!("UPDATE {}.things SET label = 'b' WHERE id = 1", env.schema)).unwrap();
    let (code, out, _) = run(tier_with(&env, &datasets, &["validate", "things"]));
    assert_eq!(code, 1);
    assert!(out.contains("(no day)"), "{out}");
}

#[test]
fn a_contract_that_grew_adds_its_columns_and_validate_reports_undeclared_ones() {
    let env = Env::new("grown");
    let datasets = env.data().join("datasets");
    std::fs::create_dir_all(&datasets).unwrap();
    let contract = |extra: &str| {
        std::fs::write(
            datasets.join("rides.toml"),
            format!("name = \"rides\"\nfile = \"rides\"\n[[column]]\nname = \"id\"\ntype = \"bigint\"\nrequired = true\n{extra}"),
        )
        .unwrap()
    };
    let rides = env.data().join("rides");
    std::fs::create_dir_all(&rides).unwrap();
    // (The first export has no `km` either: a file loaded before its column existed and
    // holding values for it would differ on validate until it is loaded again.)
    std::fs::write(rides.join("a.json"), "{\"id\": 1}\n").unwrap();
    contract("");
    let (code, _, err) = run(tier_with(&env, &datasets, &["load", "rides"]));
    assert_eq!(code, 0, "{err}");
    // The contract grows a column: the next append adds it; the old rows have no value.
    contract("[[column]]\nname = \"km\"\ntype = \"double\"\n");
    std::fs::write(rides.join("b.json"), "{\"id\": 2, \"km\": 4.0}\n").unwrap();
    let (code, _, err) = run(tier_with(&env, &datasets, &["load", "rides"]));
    assert_eq!(code, 0, "{err}");
    let rows = env.query_strings("SELECT id::text, km::text FROM {s}.rides ORDER BY id");
    assert_eq!(rows, [[Some("1".to_string()), None], [Some("2".to_string()), Some("4".to_string())]]);
    let (code, out, err) = run(tier_with(&env, &datasets, &["validate", "rides"]));
    assert_eq!(code, 0, "{out}{err}");
    // A column the contract no longer declares stays, and validate says so.
    contract("");
    let (code, out, _) = run(tier_with(&env, &datasets, &["validate", "rides"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("undeclared km"), "{out}");
    // A declared type the table's column does not have: a clear error, nothing loaded.
    contract("[[column]]\nname = \"km\"\ntype = \"text\"\n");
    std::fs::write(rides.join("c.json"), "{\"id\": 3, \"km\": \"far\"}\n").unwrap();
    let (code, _, err) = run(tier_with(&env, &datasets, &["load", "rides"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("rides.km is double precision in the table but text in"), "{err}");
    assert_eq!(env.count("rides"), 2);
}
