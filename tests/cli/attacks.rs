//! Hostile input and hard faults, round two: small hostile files that crashed tier, SQL
//! injection through `--param`, writes that read-only must not allow, paths, and names
//! PostgreSQL cuts. Each found from outside; each test fails on the code before its fix.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use crate::common::*;
use crate::contracts::tier_with;
use crate::query::query;

const DOCS: &str =
    "name = \"docs\"\n[[column]]\nname = \"id\"\ntype = \"integer\"\nrequired = true\n[[column]]\nname = \"body\"\ntype = \"json\"\n";

#[test]
fn one_huge_record_is_one_reject_and_the_load_goes_on() {
    let env = Env::new("hugerecord");
    let dir = contract(&env, "docs", DOCS);
    // 200 MB of one record in a few hundred KB of zstd, between two good records.
    let path = env.data().join("docs.json.zst");
    let mut z = zstd::stream::write::Encoder::new(std::fs::File::create(&path).unwrap(), 1).unwrap();
    z.write_all(b"{\"id\": 1, \"body\": 1}\n{\"id\": 2, \"body\": \"").unwrap();
    let block = vec![b'x'; 1 << 20];
    for _ in 0..200 {
        z.write_all(&block).unwrap();
    }
    z.write_all(b"\"}\n{\"id\": 3, \"body\": 3}\n").unwrap();
    z.finish().unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < 2 << 20);
    let mut cmd = tier_with(&env, &dir, &["load", "docs", "--from", path.to_str().unwrap(), "--json"]);
    cmd.env("TIER_MAX_RECORD_BYTES", (8 << 20).to_string());
    let (code, err, peak_kb) = run_peak_rss(cmd);
    assert_eq!(code, 0, "{err}");
    assert!(peak_kb < 400_000, "memory stays bounded by the cap, not the record: {peak_kb} kB");
    let rows = env.query_strings("SELECT id::text FROM {s}.docs ORDER BY id");
    assert_eq!(rows, vec![vec![Some("1".to_string())], vec![Some("3".to_string())]]);
    let rejects = env.query_strings("SELECT record::text, line::text, reason, detail, length(raw)::text FROM {s}.docs_rejects");
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0][..3], [Some("2".to_string()), Some("2".to_string()), Some("malformed".to_string())]);
    assert!(rejects[0][3].as_deref().unwrap().contains("--max-record-bytes"), "{rejects:?}");
    assert_eq!(rejects[0][4].as_deref(), Some("65536"));
    // The cap is a documented flag too.
    let (code, out, _) = run(env.tier_plain(&["load", "--help"]));
    assert_eq!(code, 0);
    assert!(out.contains("--max-record-bytes"), "{out}");
}

#[test]
fn deep_nesting_in_a_json_column_is_a_bad_value() {
    let env = Env::new("deepjson");
    let dir = contract(&env, "docs", DOCS);
    let lines = [
        "{\"id\": 1, \"body\": {\"a\": [1, 2]}}".to_string(),
        format!("{{\"id\": 2, \"body\": {}{}}}", "[".repeat(3000), "]".repeat(3000)),
        format!("{{\"id\": 3, \"body\": {}1{}}}", "{\"a\":".repeat(2000), "}".repeat(2000)),
        "{\"id\": 4, \"body\": null}".to_string(),
    ];
    let file = env.write("docs.json", lines.join("\n") + "\n");
    let (code, summary, err) =
        run_load(tier_with(&env, &dir, &["load", "docs", "--from", file.to_str().unwrap(), "--json", "--max-reject-ratio", "1"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!((summary["loaded"].as_u64(), summary["rejected"]["bad_value"].as_u64()), (Some(2), Some(2)), "{summary}");
    let details = env.query_strings("SELECT detail FROM {s}.docs_rejects ORDER BY record");
    assert!(details.iter().all(|d| d[0].as_deref().unwrap().contains("nested deeper than 512 levels")), "{details:?}");
    let (code, out, err) = run(tier_with(&env, &dir, &["validate", "docs", "--from", file.to_str().unwrap()]));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_not_allowed_detail_names_a_few_values() {
    let env = Env::new("allowedlist");
    let codes: Vec<String> = (0..5000).map(|i| format!("\"code{i:04}\"")).collect();
    let dir = contract(
        &env,
        "codes",
        &format!("name = \"codes\"\n[[column]]\nname = \"c\"\ntype = \"text\"\nallowed = [{}]\n", codes.join(", ")),
    );
    let lines: Vec<String> =
        (0..2000).map(|i| format!("{{\"c\": \"{}\"}}", if i % 2 == 0 { "code0001".to_string() } else { format!("bad{i}") })).collect();
    let file = env.write("codes.json", lines.join("\n"));
    let (code, summary, err) =
        run_load(tier_with(&env, &dir, &["load", "codes", "--from", file.to_str().unwrap(), "--json", "--max-reject-ratio", "1"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["rejected"]["not_allowed"].as_u64(), Some(1000));
    let longest = env.query_strings("SELECT max(length(detail))::text, min(detail) FROM {s}.codes_rejects");
    assert!(longest[0][0].as_deref().unwrap().parse::<usize>().unwrap() < 200, "{longest:?}");
    assert!(longest[0][1].as_deref().unwrap().ends_with("code0000, code0001, code0002, code0003, code0004 (and 4995 more)"), "{longest:?}");
}

#[test]
fn contracts_past_what_postgresql_or_reason_allows_are_refused_up_front() {
    let env = Env::new("bigcontracts");
    let dir = env.data().join("contracts");
    std::fs::create_dir_all(&dir).unwrap();
    let check = |dir: &Path| run(tier_with(&env, dir, &["datasets", "check"]));
    // 1,600 columns: PostgreSQL would refuse the table (1,600 with load_id is past its limit).
    let columns: String = (0..1600).map(|i| format!("[[column]]\nname = \"c{i}\"\ntype = \"integer\"\n")).collect();
    std::fs::write(dir.join("wide.toml"), format!("name = \"wide\"\n{columns}")).unwrap();
    let (code, out, err) = check(&dir);
    assert_ne!(code, 0);
    assert!(format!("{out}{err}").contains("1600 columns; PostgreSQL allows 1599"), "{out}{err}");
    // 1,599 are fine.
    let columns: String = (0..1599).map(|i| format!("[[column]]\nname = \"c{i}\"\ntype = \"integer\"\n")).collect();
    std::fs::write(dir.join("wide.toml"), format!("name = \"wide\"\n{columns}")).unwrap();
    let (code, out, err) = check(&dir);
    assert_eq!(code, 0, "{out}{err}");
    // A contract of 3 MB is refused before it is parsed, in bounded memory.
    let padding = format!("# {}\n", "x".repeat(1000)).repeat(3000);
    std::fs::write(dir.join("huge.toml"), format!("name = \"huge\"\n{padding}[[column]]\nname = \"a\"\ntype = \"text\"\n")).unwrap();
    let (code, out, err) = check(&dir);
    assert_ne!(code, 0);
    assert!(out.contains("huge.toml:1:1") && out.contains("a contract is at most 1048576"), "{out}{err}");
    let (code, _, peak_kb) = run_peak_rss(tier_with(&env, &dir, &["datasets", "check"]));
    assert_ne!(code, 0);
    assert!(peak_kb < 100_000, "{peak_kb} kB");
    // A command parses only the contracts it needs: none to infer, the named one to load.
    let sample = env.write("sample.json", "{\"c0\": 1}\n");
    let (code, _, err) = run(tier_with(&env, &dir, &["infer", sample.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(tier_with(&env, &dir, &["load", "wide", "--from", sample.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    std::fs::remove_file(dir.join("huge.toml")).unwrap();
    // A dataset name that PostgreSQL would cut in tier's staging tables.
    let long = "d".repeat(46);
    std::fs::write(dir.join(format!("{long}.toml")), format!("name = \"{long}\"\n[[column]]\nname = \"a\"\ntype = \"text\"\n")).unwrap();
    let (code, out, err) = check(&dir);
    assert_ne!(code, 0);
    assert!(format!("{out}{err}").contains("at most 45"), "{out}{err}");
}

#[test]
fn names_tier_derives_stay_distinct_within_63_bytes() {
    let env = Env::new("longnames");
    // The longest name accepted replaces twice (its staging tables' names fit).
    let name = "n".repeat(45);
    let dir = contract(&env, &name, &format!("name = \"{name}\"\non_new_key = \"evolve\"\n[[column]]\nname = \"a\"\ntype = \"integer\"\n"));
    // Two new keys sharing their first 70 characters become two columns.
    let stem = "k".repeat(70);
    let file = env.write("long.json", format!("{{\"a\": 1, \"{stem}x\": \"one\", \"{stem}y\": \"two\"}}\n"));
    for _ in 0..2 {
        let (code, out, err) = run(tier_with(&env, &dir, &["load", &name, "--from", file.to_str().unwrap(), "--mode", "replace"]));
        assert_eq!(code, 0, "{out}{err}");
    }
    let columns = env.query_strings(&format!(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = '{{s}}' AND table_name = '{name}' ORDER BY ordinal_position"
    ));
    assert_eq!(columns.len(), 4, "a, two evolved columns, load_id: {columns:?}");
    // infer writes a contract that reads back for the same keys.
    let (code, text, err) = run(env.tier_plain(&["infer", file.to_str().unwrap(), "--name", "long"]));
    assert_eq!(code, 0, "{err}\n{text}");
    assert!(text.contains(&format!("name = \"{}_2\"", &stem[..61])), "{text}");
}

#[test]
fn parameters_are_placed_as_the_servers_lexer_reads_the_query() {
    let env = Env::new("injection");
    let payload = "p=, (select 4242) as injected,";
    // Inside an escape string, a nested comment, a dollar quote after an identifier: not a
    // placeholder, so the value is refused as unused rather than run as SQL.
    for sql in ["select E'it\\'s :p' as note", "select 1 /* /* */ :p */ as one", "select $q$ :p $q$ as quoted"] {
        let (code, out, err) = query(&env, sql, &["--param", payload, "--format", "csv"]);
        assert!(!out.contains("4242") && !err.contains("4242"), "{sql}: injected: {out}{err}");
        assert_ne!(code, 0, "{sql}: {out}");
    }
    // A real placeholder next to them gets the value as one literal.
    let (code, out, err) =
        query(&env, "select E'it\\'s :p' as note, :p as value /* :p /* :p */ */", &["--param", payload, "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("note,value\nit's :p,\"{}\"\n", &payload[2..]));
    // Where a plain string's end depends on standard_conforming_strings, tier refuses.
    let (code, _, err) = query(&env, "select 'it\\'s :p' as note", &["--param", "p=1"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("standard_conforming_strings"), "{err}");
}

/// Random queries mixing every construct the lexer skips with real placeholders: the server
/// runs each with the values tier placed and returns exactly the columns the generator
/// meant, so no placeholder was placed inside a string or a comment, and none was missed.
#[test]
fn placeholders_agree_with_the_server_on_generated_queries() {
    use rand::{Rng, SeedableRng};
    let mut c = client();
    let values = ["', (select 4242) as injected, '", "a\\b", "$$ */ -- ", "x\ny", "plain"];
    let literals: Vec<String> = values.iter().map(|v| c.query_one("SELECT quote_literal($1::text)", &[v]).unwrap().get(0)).collect();
    // (SQL, the text of its column) for a piece; `{p}` is the placeholder, `{v}` its value.
    let pieces: [(&str, &str); 14] = [
        (":{p}", "{v}"),
        ("'a:{p}'", "a:{p}"),
        ("E'it\\'s :{p}'", "it's :{p}"),
        ("e'\\\\:{p}'", "\\:{p}"),
        ("$$ :{p} $$", " :{p} "),
        ("$q$ :{p} $$ $q$", " :{p} $$ "),
        ("U&'\\0041:{p}'", "A:{p}"),
        ("'x' /* :{p} /* :{p} */ :{p} */", "x"),
        ("'y' -- :{p}\n", "y"),
        ("N':{p}'", ":{p}"),
        (":{p}::text", "{v}"),
        ("'z' || :{p}", "z{v}"),
        ("(select :{p} as \"c:{p}\")", "{v}"),
        ("'''' || ':{p}'", "':{p}"),
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
    for _ in 0..400 {
        let n = rng.gen_range(1..6);
        let mut sql = Vec::new();
        let mut expected = Vec::new();
        let mut params = std::collections::BTreeMap::new();
        for i in 0..n {
            let (piece, text) = pieces[rng.gen_range(0..pieces.len())];
            let p = format!("p{}", rng.gen_range(0..3));
            let v = rng.gen_range(0..values.len());
            params.entry(p.clone()).or_insert(v);
            let v = params[&p];
            sql.push(format!("({})::text AS c{i}", piece.replace("{p}", &p)));
            expected.push(text.replace("{p}", &p).replace("{v}", values[v]));
        }
        let sql = format!("SELECT {}", sql.join(", "));
        let found = tier::sql::placeholders_for_server(&sql, true).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let filled = tier::sql::substitute_at(&sql, &found, |name| literals[params[name]].clone());
        let row = c.query_one(&filled, &[]).unwrap_or_else(|e| panic!("{sql}\n-> {filled}: {e}"));
        let got: Vec<String> = (0..n).map(|i| row.get(i)).collect();
        assert_eq!(got, expected, "{sql}\n-> {filled}");
    }
}

#[test]
fn read_only_queries_cannot_leave_large_objects_behind() {
    let env = Env::new("largeobjects");
    let objects = || -> i64 { client().query_one("SELECT count(*) FROM pg_largeobject_metadata", &[]).unwrap().get(0) };
    let before = objects();
    let sql = "select lo_from_bytea(0, 'x')::bigint as oid, 1::bigint as n";
    for format in ["table", "csv", "json", "ndjson", "parquet"] {
        let out = env.data().join(format!("out.{format}"));
        let (code, _, err) = query(&env, sql, &["--format", format, "-o", out.to_str().unwrap()]);
        assert_eq!(code, 0, "{format}: {err}");
        assert_eq!(objects(), before, "{format}: a large object was left");
    }
    let (code, _, err) = query(&env, sql, &["--partition-on", "n", "--partitions", "2"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(objects(), before, "--partition-on");
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 10:00:00", "0.5")));
    assert_eq!(run(env.tier(&["load", "weather"])).0, 0);
    let queries = env.data().join("queries");
    std::fs::create_dir_all(&queries).unwrap();
    std::fs::write(queries.join("lo.sql"), sql).unwrap();
    let (code, _, err) =
        run(env.tier(&["report", "--queries", queries.to_str().unwrap(), "--out", env.data().join("r").to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(objects(), before, "report");
    // With --write the query's writes are kept.
    let (code, out, err) = query(&env, sql, &["--format", "csv", "--write"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(objects(), before + 1);
    let oid: i64 = out.lines().nth(1).unwrap().split(',').next().unwrap().parse().unwrap();
    client().execute("SELECT lo_unlink($1::bigint::oid)", &[&oid]).unwrap();
}

#[test]
fn the_report_never_writes_through_a_planted_link() {
    let env = Env::new("reportlink");
    let out = env.data().join("reports");
    std::fs::create_dir_all(&out).unwrap();
    let victim = env.write("victim.txt", "keep me");
    for name in ["report.tmp", "report.html.tmp", "report.md.tmp", "report.ipynb.tmp", ".tier-report-tmp"] {
        std::os::unix::fs::symlink(&victim, out.join(name)).unwrap();
    }
    env.write("weather.json", format!("[{}", weather_line("Oslo", "2019-06-04 10:00:00", "0.5")));
    assert_eq!(run(env.tier(&["load", "weather"])).0, 0);
    let queries = env.data().join("queries");
    std::fs::create_dir_all(&queries).unwrap();
    std::fs::write(queries.join("one.sql"), "select 1 as one").unwrap();
    let (code, _, err) = run(env.tier(&["report", "--queries", queries.to_str().unwrap(), "--out", out.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me");
    assert!(std::fs::read_to_string(out.join("report.html")).unwrap().contains("one"));
    assert!(std::fs::symlink_metadata(out.join("report.tmp")).unwrap().file_type().is_symlink());
}

#[test]
fn query_output_into_a_named_pipe_stays_a_pipe() {
    let env = Env::new("fifo");
    let fifo = env.data().join("rows.fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for format in ["csv", "ndjson"] {
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        let (code, _, err) = query(&env, "select g as n from generate_series(1, 3) g", &["--format", format, "-o", fifo.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        let got = reader.join().unwrap();
        assert!(got.contains('3') && got.lines().count() >= 3, "{format}: {got:?}");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kind), "{format}: the pipe was replaced");
    }
}

#[test]
fn a_mixed_case_schema_is_read_in_every_format() {
    let env = Env::new("mixedcase");
    let mut c = client();
    c.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS \"Sales_{0}\" CASCADE; CREATE SCHEMA \"Sales_{0}\"; CREATE TABLE \"Sales_{0}\".t (v text); INSERT INTO \"Sales_{0}\".t VALUES ('mixed');
         CREATE SCHEMA IF NOT EXISTS sales_{0}; CREATE TABLE sales_{0}.t (v text); INSERT INTO sales_{0}.t VALUES ('folded')",
        std::process::id()
    ))
    .unwrap();
    let schema = format!("Sales_{}", std::process::id());
    let file = env.write("q.sql", "select v from t");
    for format in ["table", "json", "csv", "ndjson"] {
        for write in [false, true] {
            let mut args = vec!["query", file.to_str().unwrap(), "--format", format];
            if write {
                args.push("--write");
            }
            let mut cmd = env.tier_plain(&args);
            cmd.args(["--database-url", server_url(), "--schema", &schema]);
            let (code, out, err) = run(cmd);
            assert_eq!(code, 0, "{format}: {err}");
            assert!(out.contains("mixed") && !out.contains("folded"), "{format} (write {write}): {out}");
        }
    }
    c.batch_execute(&format!("DROP SCHEMA \"Sales_{0}\" CASCADE; DROP SCHEMA sales_{0} CASCADE", std::process::id())).unwrap();
}

#[test]
fn a_role_that_owns_its_schema_loads_without_the_right_to_create_schemas() {
    let env = Env::new("ownschema");
    let role = format!("loader_{}", std::process::id());
    let mut c = client();
    c.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {s} CASCADE; DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}';
         CREATE SCHEMA {s} AUTHORIZATION {role}; REVOKE CREATE ON DATABASE postgres FROM PUBLIC;",
        s = env.schema
    ))
    .unwrap();
    let has_create: bool = c.query_one(&format!("SELECT has_database_privilege('{role}', 'postgres', 'CREATE')"), &[]).unwrap().get(0);
    assert!(!has_create);
    let (base, _) = server_url().split_once('?').unwrap_or((server_url(), ""));
    let url = base.replacen("postgres@", &format!("{role}:pw-{role}@"), 1);
    for (mode, city) in [("replace", "Oslo"), ("append", "Bergen")] {
        env.write("weather.json", format!("[{}", weather_line(city, "2019-06-04 10:00:00", "0.5")));
        let mut cmd = env.tier_plain(&["load", "weather", "--mode", mode]);
        cmd.args(["--database-url", &url, "--schema", &env.schema]);
        let (code, _, err) = run(cmd);
        assert_eq!(code, 0, "{mode}: {err}");
    }
    assert_eq!(env.count("weather"), 2);
    c.batch_execute(&format!("DROP SCHEMA {} CASCADE; DROP OWNED BY {role}; DROP ROLE {role}", env.schema)).unwrap();
}
