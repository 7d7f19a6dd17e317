//! Real exports: what public data nobody here wrote found (records sharing a line, contracts
//! from `infer` that rejected what it read, damaged lines counted twice, keys the server finds
//! equal), and timestamps as exports write them.

use std::path::Path;

use rand::{Rng, SeedableRng};

use crate::common::*;
use crate::contracts::{sample_loads_as_planted, tier_with};

/// `tier load NAME --from FILE <more>` with the contracts in `dir`; the JSON summary's first file.
fn load(env: &Env, dir: &Path, name: &str, file: &Path, more: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["load", name, "--from", file.to_str().unwrap(), "--json", "--max-reject-ratio", "1"];
    args.extend(more);
    run_load(tier_with(env, dir, &args))
}

/// The rejects as (record, line, reason, detail), in record order.
fn rejects(env: &Env, table: &str) -> Vec<(i64, i64, String, String)> {
    client()
        .query(&format!("SELECT record, line, reason, coalesce(detail, '') FROM {}.{table}_rejects ORDER BY record", env.schema), &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

const ITEMS: &str =
    "name = \"items\"\n[[column]]\nname = \"a\"\ntype = \"integer\"\nrequired = true\n[[column]]\nname = \"b\"\ntype = \"text\"\n";

#[test]
fn records_sharing_a_line_are_compared_like_any_others() {
    let env = Env::new("oneline");
    let dir = contract(&env, "items", ITEMS);
    // As json.dump writes an array: one line. The second record repeats the first.
    let file = env.write("items.json", "[{\"a\": 1, \"b\": \"x\"}, {\"a\": 1, \"b\": \"x\"}, {\"a\": 2, \"b\": \"x\"}]");
    let (code, summary, err) = load(&env, &dir, "items", &file, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!((summary["records"].as_u64(), summary["loaded"].as_u64()), (Some(3), Some(2)), "{summary}");
    assert_eq!(rejects(&env, "items"), vec![(2, 1, "duplicate".into(), "same as record 1 on line 1".into())]);

    // 20,000 records on one line, every tenth a copy of an earlier one: each copy rejected,
    // wherever the duplicate check held it, and validate agrees with the table.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut records: Vec<String> = Vec::new();
    let mut copies = 0;
    for i in 0..20_000 {
        if i % 10 == 9 {
            records.push(records[rng.gen_range(0..records.len())].clone());
            copies += 1;
        } else {
            records.push(format!("{{\"a\": {i}, \"b\": \"{}\"}}", "y".repeat(i % 7)));
        }
    }
    let file = env.write("many.json", format!("[{}]", records.join(", ")));
    let (code, summary, err) = load(&env, &dir, "items", &file, &["--mode", "replace"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["loaded"].as_u64(), Some(20_000 - copies), "{summary}");
    assert_eq!(summary["rejected"]["duplicate"].as_u64(), Some(copies), "{summary}");
    let found = rejects(&env, "items");
    assert!(found.iter().all(|(record, line, reason, _)| reason == "duplicate" && *line == 1 && record % 10 == 0), "{found:?}");
    assert_eq!(env.count("items"), 20_000 - copies as i64);
    let (code, out, err) = run(tier_with(&env, &dir, &["validate", "items", "--from", file.to_str().unwrap()]));
    assert_eq!(code, 0, "{out}{err}");

    // Keyed: two records of one key on one line are one key, and a merge supersedes.
    let dir = contract(&env, "items", &ITEMS.replacen("name = \"items\"\n", "name = \"items\"\nunique = [\"a\"]\n", 1));
    let file = env.write("keyed.json", "[{\"a\": 5, \"b\": \"old\"}, {\"a\": 5, \"b\": \"new\"}, {\"a\": 6, \"b\": \"x\"}]\n");
    let (code, summary, err) = load(&env, &dir, "items", &file, &["--mode", "merge"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["rejected"]["superseded"].as_u64(), Some(1), "{summary}");
    let b = env.query_strings("SELECT b FROM {s}.items WHERE a = 5");
    assert_eq!(b, vec![vec![Some("new".to_string())]]);
}

#[test]
fn one_damaged_line_is_one_reject() {
    let env = Env::new("damaged");
    let dir = contract(&env, "items", ITEMS);
    let lines = [
        "{\"a\": 1, \"b\": \"x\"}",
        "{{\"a\": 2, \"b\": \"x\"}",
        "{\"a\": 3, \"b\": \"x\"}#",
        "{\"a\": 4, \"b\": \"x\"} # {\"a\": 5, \"b\": \"x\"}",
        "\u{feff}{\"a\": 6, \"b\": \"x\"}",
        "{\"a\": 7, \"b\": \"x\"}\u{feff}{\"a\": 8, \"b\": \"x\"}",
        "{\"a\": 9, \"b\": \"x\", {\"a\": 10}",
        "{\"a\": 11, \"b\": \"x\"}",
    ];
    for (open, sep) in [("", "\n"), ("[", ",\n"), ("", "\r\n")] {
        let file = env.write("damaged.json", format!("{open}{}{sep}", lines.join(sep)));
        let (code, summary, err) = load(&env, &dir, "items", &file, &["--mode", "replace"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(summary["records"].as_u64(), Some(lines.len() as u64), "{summary}");
        assert_eq!((summary["loaded"].as_u64(), summary["rejected"]["malformed"].as_u64()), (Some(2), Some(6)), "{summary}");
        let found: Vec<(i64, i64)> = rejects(&env, "items").into_iter().map(|(record, line, _, _)| (record, line)).collect();
        assert_eq!(found, (2..=7).map(|n| (n, n)).collect::<Vec<_>>());
    }
}

#[test]
fn keys_the_server_finds_equal_are_one_key() {
    let env = Env::new("equalkeys");
    let dir = contract(
        &env,
        "amounts",
        "name = \"amounts\"\nunique = [\"n\", \"d\"]\n[[column]]\nname = \"n\"\ntype = \"numeric\"\n[[column]]\nname = \"d\"\ntype = \"double\"\n\
         [[column]]\nname = \"v\"\ntype = \"text\"\n",
    );
    let file = env.write(
        "a.json",
        "{\"n\": 1.0, \"d\": 0.0, \"v\": \"first\"}\n{\"n\": \"1.00\", \"d\": -0.0, \"v\": \"second\"}\n{\"n\": 1, \"d\": 0, \"v\": \"second\"}\n",
    );
    let (code, summary, err) = load(&env, &dir, "amounts", &file, &["--mode", "merge"]);
    assert_eq!(code, 0, "a merge of keys written differently supersedes, not fails on the server: {err}");
    assert_eq!(summary["rejected"]["superseded"].as_u64(), Some(1), "{summary}");
    assert_eq!(summary["rejected"]["duplicate"].as_u64(), Some(1), "{summary}");
    assert_eq!(env.query_strings("SELECT v FROM {s}.amounts"), vec![vec![Some("second".to_string())]]);
    // A keyed append of the same key, written otherwise again, is turned away.
    let again = env.write("b.json", "{\"n\": \"1.000\", \"d\": -0, \"v\": \"third\"}\n");
    let (code, summary, err) = load(&env, &dir, "amounts", &again, &["--mode", "append"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["rejected"]["duplicate"].as_u64(), Some(1), "{summary}");
    assert_eq!(env.count("amounts"), 1);
}

/// Records whose keys switch kinds between records, as webhook logs' do: an object or null
/// (`head_commit`), an object or a string (`body`), a string that is always empty
/// (`gravatar_id`), and keys drawn from every kind; a twentieth are exact copies.
fn heterogeneous(seed: u64, n: usize) -> (Vec<String>, u64) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let kinds: Vec<Vec<usize>> = (0..6).map(|_| (0..rng.gen_range(1..=4)).map(|_| rng.gen_range(0..8)).collect()).collect();
    let value = |rng: &mut rand_chacha::ChaCha8Rng, kind: usize| -> String {
        match kind {
            0 => ["\"\"", "\" \"", "\"abc\"", "\"12\"", "\"2019-05-13 14:23:41\"", "\"true\""][rng.gen_range(0..6)].to_string(),
            1 => ["0", "-7", "1.5", "3000000000", "-0.0", "1e3"][rng.gen_range(0..6)].to_string(),
            2 => ["true", "false"][rng.gen_range(0..2)].to_string(),
            3 => "null".to_string(),
            4 => "[1, {\"x\": \"y\"}]".to_string(),
            5 => format!("{{\"id\": {}, \"msg\": \"m\", \"deep\": {{\"a\": {{\"b\": 1}}}}}}", rng.gen_range(0..100)),
            6 => "{}".to_string(),
            _ => format!("\"2019-05-{:02}T{:02}:{:02}\"", rng.gen_range(1..29), rng.gen_range(0..24), rng.gen_range(0..60)),
        }
    };
    let mut out: Vec<String> = Vec::new();
    let mut copies = 0;
    for i in 0..n {
        if i % 20 == 19 {
            out.push(out[rng.gen_range(0..out.len())].clone());
            copies += 1;
            continue;
        }
        let head_commit = if rng.gen_bool(0.3) { "null".to_string() } else { format!("{{\"id\": \"c{i}\", \"message\": \"m\"}}") };
        let body = if rng.gen_bool(0.5) { format!("\"text {i}\"") } else { format!("{{\"code\": {i}}}") };
        let mut fields = vec![
            format!("\"id\": {i}"),
            format!("\"head_commit\": {head_commit}"),
            format!("\"body\": {body}"),
            "\"gravatar_id\": \"\"".to_string(),
        ];
        for (k, allowed) in kinds.iter().enumerate() {
            if k % 2 == 1 && rng.gen_bool(0.2) {
                continue;
            }
            let kind = allowed[rng.gen_range(0..allowed.len())];
            fields.push(format!("\"k{k}\": {}", value(&mut rng, kind)));
        }
        out.push(format!("{{{}}}", fields.join(", ")));
    }
    (out, copies)
}

#[test]
fn a_contract_infer_writes_loads_every_record_it_read() {
    for seed in 0..4 {
        let env = Env::new(&format!("inferload{seed}"));
        let (records, copies) = heterogeneous(seed, 600);
        let file = env.write("hooks.json", records.join("\n") + "\n");
        let dir = env.data().join("contracts");
        let mut infer = env.tier_plain(&["infer", file.to_str().unwrap(), "--name", "hooks", "--write"]);
        infer.env("TIER_DATASETS", &dir);
        let (code, _, err) = run(infer);
        assert_eq!(code, 0, "{err}");
        let text = std::fs::read_to_string(dir.join("hooks.toml")).unwrap();
        let (code, summary, err) = load(&env, &dir, "hooks", &file, &[]);
        assert_eq!(code, 0, "seed {seed}: {err}\n{text}");
        assert_eq!(summary["records"].as_u64(), Some(records.len() as u64));
        assert_eq!(summary["rejected"], serde_json::json!({"duplicate": copies}), "seed {seed}: {summary}\n{text}");
        // head_commit's fields are columns; body, an object or a string, is one json column.
        assert!(text.contains("key = \"/head_commit/id\"") && !text.contains("name = \"head_commit\"\n"), "{text}");
        assert!(text.contains("name = \"body\"\ntype = \"json\"\nrequired = true"), "{text}");
        assert!(text.contains("name = \"gravatar_id\"\ntype = \"text\"\n#"), "{text}");
        let kinds = env.query_strings("SELECT jsonb_typeof(body), count(*)::text FROM {s}.hooks GROUP BY 1 ORDER BY 1");
        assert_eq!(kinds.len(), 2, "objects and strings both kept: {kinds:?}");
    }
}

/// Every format of `format`, with a planted bad value of each kind.
const STAMPS: &str = "name = \"stamps\"\n\
    [[column]]\nname = \"id\"\ntype = \"integer\"\nrequired = true\n\
    [[column]]\nname = \"s\"\ntype = \"timestamp\"\nformat = \"epoch_s\"\n\
    [[column]]\nname = \"ms\"\ntype = \"timestamp\"\nformat = \"epoch_ms\"\n\
    [[column]]\nname = \"us\"\ntype = \"timestamp\"\nformat = \"epoch_us\"\n\
    [[column]]\nname = \"http\"\ntype = \"timestamp\"\nformat = \"rfc2822\"\n\
    [[column]]\nname = \"house\"\ntype = \"timestamp\"\nformat = \"%d/%m/%Y %H:%M\"\ntimezone = \"Europe/Oslo\"\n\
    [[column]]\nname = \"iso\"\ntype = \"timestamp\"\n\
    [[column]]\nname = \"day\"\ntype = \"date\"\nformat = \"%d.%m.%Y\"\n\
    [[column]]\nname = \"day_s\"\ntype = \"date\"\nformat = \"epoch_s\"\n";

#[test]
fn timestamps_in_every_format_store_what_the_server_reads() {
    let env = Env::new("stamps");
    let dir = contract(&env, "stamps", STAMPS);
    let good = |id: i64, s: &str, ms: &str, us: &str, http: &str, house: &str, iso: &str, day: &str, day_s: &str| {
        format!(
            "{{\"id\": {id}, \"s\": {s}, \"ms\": {ms}, \"us\": {us}, \"http\": \"{http}\", \"house\": \"{house}\", \"iso\": \"{iso}\", \"day\": \"{day}\", \"day_s\": {day_s}}}"
        )
    };
    let lines = [
        good(
            1,
            "1557757421",
            "\"1557757421123\"",
            "1557757421123456",
            "Mon, 13 May 2019 14:23:41 GMT",
            "13/05/2019 16:23",
            "2019-05-13T14:23",
            "13.05.2019",
            "1557757421",
        ),
        good(
            2,
            "1557757421.5",
            "-1",
            "\"-62135596800000000\"",
            "13 May 2019 10:23:41 EDT",
            "31/12/2019 23:59",
            "2019-05-13 14:23+02:00",
            "01.01.0001",
            "-1",
        ),
        good(
            3,
            "\"253402300799.9999994\"",
            "1.5e12",
            "0",
            "Tue, 31 Dec 2019 23:59:60 +0000",
            "31/03/2019 02:30",
            "2019-05-13T14:23:41.5Z",
            "29.02.2020",
            "0",
        ),
        // One bad value each: not a number, another form, the wrong weekday, text left over,
        // a day that does not exist, beyond year 9999.
        good(4, "\"soon\"", "0", "0", "Mon, 13 May 2019 14:23:41 GMT", "13/05/2019 16:23", "2019-05-13T14:23", "13.05.2019", "0"),
        good(
            5,
            "0",
            "\"2019-05-13T14:23:41Z\"",
            "0",
            "Mon, 13 May 2019 14:23:41 GMT",
            "13/05/2019 16:23",
            "2019-05-13T14:23",
            "13.05.2019",
            "0",
        ),
        good(6, "0", "0", "0", "Tue, 13 May 2019 14:23:41 GMT", "13/05/2019 16:23", "2019-05-13T14:23", "13.05.2019", "0"),
        good(7, "0", "0", "0", "Mon, 13 May 2019 14:23:41 GMT", "13/05/2019 16:23 CET", "2019-05-13T14:23", "13.05.2019", "0"),
        good(8, "0", "0", "0", "Mon, 13 May 2019 14:23:41 GMT", "13/05/2019 16:23", "2019-05-13T14:23", "29.02.2019", "0"),
        good(9, "253402300800", "0", "0", "Mon, 13 May 2019 14:23:41 GMT", "13/05/2019 16:23", "2019-05-13T14:23", "13.05.2019", "0"),
        good(10, "0", "0", "0", "Mon, 13 May 2019 14:23:41 GMT", "13/05/2019 16:23", "2019-05-13T14:23.5", "13.05.2019", "0"),
    ];
    let file = env.write("stamps.json", lines.join("\n") + "\n");
    let (code, summary, err) = load(&env, &dir, "stamps", &file, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!((summary["loaded"].as_u64(), summary["rejected"]["bad_timestamp"].as_u64()), (Some(3), Some(6)), "{summary}");
    assert_eq!(summary["rejected"]["bad_date"].as_u64(), Some(1), "{summary}");
    let details: Vec<String> = rejects(&env, "stamps").into_iter().map(|r| r.3).collect();
    assert_eq!(details[0], "s: not a timestamp in format epoch_s 'soon'");
    assert_eq!(details[3], "house: not a timestamp in format %d/%m/%Y %H:%M '13/05/2019 16:23 CET'");
    assert_eq!(details[4], "day: not a date in format %d.%m.%Y '29.02.2019'");
    // Each stored value is the server's own reading of the text (epochs as 'epoch' plus
    // whole units, exactly; a pattern as to_timestamp reads it in the column's zone).
    let mut c = client();
    c.batch_execute("SET TimeZone = 'Europe/Oslo'").unwrap();
    let checks = [
        (1, "s = 'epoch'::timestamptz + 1557757421 * interval '1 second'"),
        (1, "ms = 'epoch'::timestamptz + 1557757421123 * interval '1 millisecond'"),
        (1, "us = 'epoch'::timestamptz + 1557757421123456 * interval '1 microsecond'"),
        (1, "http = 'Mon, 13 May 2019 14:23:41 GMT'::timestamptz"),
        (1, "house = to_timestamp('13/05/2019 16:23', 'DD/MM/YYYY HH24:MI')"),
        (1, "iso = '2019-05-13T14:23'::timestamp AT TIME ZONE 'UTC'"),
        (1, "day = to_date('13.05.2019', 'DD.MM.YYYY') AND day_s = date '2019-05-13'"),
        (2, "s = 'epoch'::timestamptz + 1557757421500000 * interval '1 microsecond'"),
        (2, "ms = 'epoch'::timestamptz - interval '1 millisecond'"),
        (2, "us = '0001-01-01 00:00:00+00'::timestamptz"),
        (2, "http = '13 May 2019 10:23:41 EDT'::timestamptz"),
        (2, "house = to_timestamp('31/12/2019 23:59', 'DD/MM/YYYY HH24:MI')"),
        (2, "iso = '2019-05-13 14:23+02:00'::timestamptz"),
        (2, "day = date '0001-01-01' AND day_s = date '1969-12-31'"),
        (3, "s = '9999-12-31 23:59:59.999999+00'::timestamptz"),
        (3, "ms = 'epoch'::timestamptz + 1500000000000 * interval '1 millisecond'"),
        (3, "http = '2020-01-01 00:00:00+00'::timestamptz"),
        // 02:30 on the night summer time begins does not exist in Oslo: read as the server does.
        (3, "house = to_timestamp('31/03/2019 02:30', 'DD/MM/YYYY HH24:MI')"),
        (3, "iso = '2019-05-13T14:23:41.5Z'::timestamptz AND day = date '2020-02-29'"),
    ];
    for (id, check) in checks {
        let sql = format!("SELECT {check} FROM {}.stamps WHERE id = {id}", env.schema);
        let agrees: bool = c.query_one(&sql, &[]).unwrap().get(0);
        assert!(agrees, "record {id}: {check}");
    }
    let (code, out, err) = run(tier_with(&env, &dir, &["validate", "stamps", "--from", file.to_str().unwrap()]));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn infer_names_the_format_and_gen_plants_bad_values_for_it() {
    let env = Env::new("inferstamps");
    let mut lines = Vec::new();
    for i in 0..40 {
        let unix = 1_557_757_421 + i * 86_461;
        let utc = chrono::DateTime::from_timestamp(unix, 0).unwrap();
        lines.push(format!(
            "{{\"id\": {i}, \"http\": \"{}\", \"house\": \"{}\", \"day\": \"{}\", \"at_ms\": {}, \"iso\": \"{}\"}}",
            utc.format("%a, %d %b %Y %H:%M:%S GMT"),
            utc.format("%d/%m/%Y %H:%M"),
            utc.format("%d.%m.%Y"),
            unix * 1000 + 7,
            utc.format("%Y-%m-%dT%H:%M"),
        ));
    }
    let file = env.write("stamps.json", lines.join("\n") + "\n");
    let (code, text, err) = run(env.tier_plain(&["infer", file.to_str().unwrap(), "--name", "stamps"]));
    let last = chrono::DateTime::from_timestamp(1_557_757_421 + 39 * 86_461, 7_000_000).unwrap().format("%Y-%m-%dT%H:%M:%S%.3fZ");
    let epoch_note = format!(
        "# as epoch milliseconds these are 2019-05-13T14:23:41.007Z to {last}: to load them as instants, type = \"timestamp\" and format = \"epoch_ms\""
    );
    assert_eq!(code, 0, "{err}");
    for expect in [
        "name = \"http\"\ntype = \"timestamp\"\nformat = \"rfc2822\"",
        "name = \"house\"\ntype = \"timestamp\"\nformat = \"%d/%m/%Y %H:%M\"",
        "name = \"day\"\ntype = \"date\"\nformat = \"%d.%m.%Y\"",
        "name = \"iso\"\ntype = \"timestamp\"\nrequired",
        epoch_note.as_str(),
    ] {
        assert!(text.contains(expect), "missing {expect:?} in:\n{text}");
    }
    // The inferred contract loads every record; with the epoch taken up, the numbers too.
    let text = text.replace("name = \"at_ms\"\ntype = \"bigint\"", "name = \"at_ms\"\ntype = \"timestamp\"\nformat = \"epoch_ms\"");
    let dir = contract(&env, "stamps", &text.replacen("name = \"stamps\"", "name = \"stamps\"\nunique = [\"id\"]", 1));
    let (code, summary, err) = load(&env, &dir, "stamps", &file, &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!((summary["loaded"].as_u64(), summary["rejected"].clone()), (Some(40), serde_json::json!({})), "{summary}\n{text}");
    let at = env.query_strings(
        "SELECT (at_ms = 'epoch'::timestamptz + 1557757421007 * interval '1 millisecond')::text FROM {s}.stamps WHERE id = 0",
    );
    assert_eq!(at, vec![vec![Some("true".to_string())]]);
    // gen --dataset writes every format's values and plants a bad one for each.
    let dir = contract(&env, "stamps", STAMPS);
    sample_loads_as_planted(&env, &dir, "stamps", "2000");
}

/// A webhook-like log: an envelope in every record, a sender object in every record, an
/// `issue` object of 150 fields in a tenth, a `pull_request` object of 1,700 fields in 3%.
fn wide_log(n: usize) -> Vec<String> {
    let fields = |prefix: &str, count: usize, i: usize| {
        (0..count).map(|j| format!("\"{prefix}{j}\": {}", i * 10 + j)).collect::<Vec<_>>().join(", ")
    };
    (0..n)
        .map(|i| {
            let mut parts = vec![
                format!("\"id\": {i}"),
                format!("\"action\": \"{}\"", ["opened", "closed"][i % 2]),
                format!("\"created_at\": \"2024-03-{:02}T10:00:00Z\"", 1 + i % 28),
                format!("\"sender\": {{\"login\": \"u{i}\", \"id\": {i}}}"),
            ];
            if i % 10 == 3 {
                parts.push(format!("\"issue\": {{{}}}", fields("i", 150, i)));
            }
            if i % 33 == 5 {
                parts.push(format!("\"pull_request\": {{{}}}", fields("p", 1700, i)));
            }
            format!("{{{}}}", parts.join(", "))
        })
        .collect()
}

#[test]
fn infer_keeps_a_wide_log_within_the_column_budget() {
    let env = Env::new("inferwide");
    let records = wide_log(660);
    let file = env.write("hooks.json", records.join("\n") + "\n");
    let dir = env.data().join("contracts");

    // Unfolded, the contract would pass PostgreSQL's 1,600 columns: a clear refusal.
    let (code, _, err) = run(env.tier_plain(&["infer", file.to_str().unwrap(), "--name", "hooks", "--max-columns", "5000"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("1599"), "{err}");

    // By default the rarest object folds into one json column: 3 + 2 + 150 + 1 columns.
    let mut infer = env.tier_plain(&["infer", file.to_str().unwrap(), "--name", "hooks", "--write"]);
    infer.env("TIER_DATASETS", &dir);
    let (code, _, err) = run(infer);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(dir.join("hooks.toml")).unwrap();
    assert_eq!(text.matches("[[column]]").count(), 156, "{text}");
    assert!(!text.contains("another kind of value"), "{text}");
    assert!(text.contains("name = \"pull_request\"\ntype = \"json\"\n"), "{text}");
    assert!(text.contains("# one json column, not 1700 columns: an object in 3.0% of records"), "{text}");
    assert!(text.contains("key = \"/issue/i149\""), "{text}");
    assert!(text.contains("day = \"created_at\"   # suggested: a timestamp in 100% of records"), "{text}");

    // It loads every record, and the folded fields are there to query.
    let (code, summary, err) = load(&env, &dir, "hooks", &file, &[]);
    assert_eq!(code, 0, "{err}\n{text}");
    assert_eq!((summary["records"].as_u64(), summary["loaded"].as_u64()), (Some(660), Some(660)), "{summary}");
    let pulls = env.query_strings(
        "SELECT count(*)::text || ' ' || sum((pull_request ->> 'p1699')::bigint)::text FROM {s}.hooks WHERE pull_request IS NOT NULL",
    );
    let expected: usize = (0..660).filter(|i| i % 33 == 5).map(|i| i * 10 + 1699).sum();
    assert_eq!(pulls, vec![vec![Some(format!("20 {expected}"))]]);
    let issues = env.query_strings("SELECT count(issue_i0)::text FROM {s}.hooks");
    assert_eq!(issues, vec![vec![Some("66".to_string())]]);
}
