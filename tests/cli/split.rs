//! One event log, many tables: a log split by the kind of each record (`split_by`), each
//! kind into its own table, the rest into a catch-all table or the rejects.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::*;

/// A mixed event log as webhook exports write it: several kinds with their own fields, an
/// array of objects (push commits), one of scalars (issue labels), nested arrays (release
/// assets with their links), a key that changes kind between kinds (`ref`: a text in a
/// push, an object in a create), a kind no table declares (`fork`), records without a kind,
/// and a damaged record. Returns the lines and, per kind, how many records it has.
pub fn mixed_log(n: usize) -> (Vec<String>, std::collections::BTreeMap<&'static str, usize>) {
    let mut lines = Vec::with_capacity(n + 1);
    let mut kinds = std::collections::BTreeMap::new();
    for i in 0..n {
        let day = 1 + i % 28;
        let envelope = format!("\"id\": {i}, \"created_at\": \"2026-03-{day:02}T{:02}:00:00Z\"", i % 24);
        let (kind, body) = match i % 7 {
            0 | 1 => {
                let commits: Vec<String> = (0..i % 4)
                    .map(|j| format!("{{\"sha\": \"c{i}x{j}\", \"message\": \"fix {j}\", \"distinct\": {}}}", j % 2 == 0))
                    .collect();
                (
                    "push",
                    format!("\"payload\": {{\"ref\": \"refs/heads/main\", \"size\": {}, \"commits\": [{}]}}", i % 4, commits.join(", ")),
                )
            }
            2 => {
                let labels: Vec<String> = (0..i % 3).map(|j| format!("\"l{j}\"")).collect();
                let action = if i % 2 == 0 { "opened" } else { "closed" };
                ("issues", format!("\"action\": \"{action}\", \"issue\": {{\"number\": {i}, \"labels\": [{}]}}", labels.join(", ")))
            }
            3 => ("create", format!("\"payload\": {{\"ref\": {{\"name\": \"v{i}\", \"type\": \"tag\"}}}}")),
            4 => {
                let assets: Vec<String> = (0..i % 3)
                    .map(|j| {
                        format!(
                            "{{\"name\": \"a{j}\", \"links\": [{}]}}",
                            (0..j).map(|k| format!("\"u{k}\"")).collect::<Vec<_>>().join(", ")
                        )
                    })
                    .collect();
                ("release", format!("\"release\": {{\"tag\": \"v{i}\", \"assets\": [{}]}}", assets.join(", ")))
            }
            5 => ("fork", "\"forkee\": {\"full_name\": \"x/y\"}".to_string()),
            _ => ("", "\"zen\": \"Keep it logically awesome.\"".to_string()),
        };
        *kinds.entry(kind).or_insert(0) += 1;
        let typed = if kind.is_empty() { String::new() } else { format!("\"type\": \"{kind}\", ") };
        lines.push(format!("{{{typed}{envelope}, {body}}}"));
    }
    lines.push("{\"type\": \"push\", \"id\": 99999, \"payload\": {\"ref\": ".to_string());
    (lines, kinds)
}

/// A split contract for `mixed_log`, written by hand: the log's file and one file per kind.
pub fn split_contract(env: &Env, log: &str, unrouted: &str, unique: bool) -> PathBuf {
    let key = if unique { "unique = [\"id\"]\n" } else { "" };
    let dir = contract(
        env,
        log,
        &format!(
            "name = \"{log}\"\nfile = \"{log}.json\"\nsplit_by = \"/type\"\nunrouted = \"{unrouted}\"\nday = \"created_at\"\n{key}\n\
             [[column]]\nname = \"id\"\ntype = \"bigint\"\nrequired = true\n\n\
             [[column]]\nname = \"created_at\"\ntype = \"timestamp\"\n"
        ),
    );
    let kinds = dir.join(log);
    std::fs::create_dir_all(&kinds).unwrap();
    let kind = |file: &str, text: &str| std::fs::write(kinds.join(file), text).unwrap();
    // Arrays as child tables: of objects (commits), of scalars (labels), nested (links).
    kind(
        "push.toml",
        "when = \"push\"\n[[column]]\nname = \"ref\"\nkey = \"/payload/ref\"\ntype = \"text\"\n\
         [[column]]\nname = \"size\"\nkey = \"/payload/size\"\ntype = \"integer\"\nmin = 0\n\
         [[column]]\nname = \"commits\"\nkey = \"/payload/commits\"\ntype = \"json\"\n\
         [[child]]\nname = \"commits\"\nkey = \"/payload/commits\"\n\
         [[child.column]]\nname = \"sha\"\ntype = \"text\"\nrequired = true\npattern = \"^[cs]\"\n\
         [[child.column]]\nname = \"message\"\ntype = \"text\"\n\
         [[child.column]]\nname = \"distinct\"\ntype = \"boolean\"\n",
    );
    kind(
        "issues.toml",
        "when = \"issues\"\n[[column]]\nname = \"action\"\ntype = \"text\"\nallowed = [\"opened\", \"closed\"]\n\
         [[column]]\nname = \"number\"\nkey = \"/issue/number\"\ntype = \"integer\"\n\
         [[column]]\nname = \"labels\"\nkey = \"/issue/labels\"\ntype = \"json\"\n\
         [[child]]\nname = \"labels\"\nkey = \"/issue/labels\"\n[[child.column]]\nname = \"label\"\nkey = \".\"\ntype = \"text\"\n",
    );
    kind("create.toml", "when = [\"create\", \"delete\"]\n[[column]]\nname = \"ref\"\nkey = \"/payload/ref\"\ntype = \"json\"\n");
    kind(
        "release.toml",
        "when = \"release\"\n[[column]]\nname = \"tag\"\nkey = \"/release/tag\"\ntype = \"text\"\nrequired = true\n\
         [[child]]\nname = \"assets\"\nkey = \"/release/assets\"\n[[child.column]]\nname = \"name\"\ntype = \"text\"\n\
         [[child.child]]\nname = \"links\"\nkey = \"links\"\n[[child.child.column]]\nname = \"url\"\nkey = \".\"\ntype = \"text\"\n",
    );
    dir
}

/// How many elements the arrays at `pointer` hold over the records of `kind` (`pointer`
/// may end in `/*/key` for the arrays inside each element).
fn elements(lines: &[String], kind: &str, pointer: &str) -> i64 {
    let (outer, inner) = pointer.split_once("/*").unwrap_or((pointer, ""));
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == kind)
        .map(|v| match v.pointer(outer).and_then(|a| a.as_array()) {
            None => 0,
            Some(items) if inner.is_empty() => items.len() as i64,
            Some(items) => items.iter().map(|e| e.pointer(inner).and_then(|a| a.as_array()).map_or(0, |a| a.len() as i64)).sum(),
        })
        .sum()
}

fn tier_with(env: &Env, dir: &Path, args: &[&str]) -> std::process::Command {
    let mut cmd = env.tier(args);
    cmd.env("TIER_DATASETS", dir);
    cmd
}

fn load(env: &Env, dir: &Path, log: &str, more: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec!["load", log, "--json", "--max-reject-ratio", "1"];
    args.extend(more);
    run_load(tier_with(env, dir, &args))
}

/// `validate` of each file (none: the contract's), from the ledger and read again: all match.
fn validates(env: &Env, dir: &Path, log: &str, files: &[&PathBuf]) -> String {
    let mut out = String::new();
    let files: Vec<Option<&PathBuf>> = match files.is_empty() {
        true => vec![None],
        false => files.iter().map(|f| Some(*f)).collect(),
    };
    for file in files {
        for more in [&[][..], &["--reread"][..]] {
            let mut args = vec!["validate", log];
            if let Some(f) = file {
                args.extend(["--from", f.to_str().unwrap()]);
            }
            args.extend(more);
            let (code, stdout, err) = run(tier_with(env, dir, &args));
            assert_eq!(code, 0, "{file:?} {more:?}: {stdout}\n{err}");
            out = err;
        }
    }
    out
}

fn loaded(summary: &serde_json::Value, table: &str) -> u64 {
    summary["tables"].as_array().unwrap().iter().find(|t| t["table"] == table).unwrap_or_else(|| panic!("{table} in {summary}"))["loaded"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_split_log_loads_every_kind_into_its_own_table_in_one_load() {
    let env = Env::new("splitload");
    let (lines, kinds) = mixed_log(700);
    env.write("hooks.json", lines.join("\n") + "\n");
    let dir = split_contract(&env, "hooks", "table", false);

    let (code, summary, err) = load(&env, &dir, "hooks", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["records"].as_u64(), Some(701), "{summary}");
    // Each kind's records in its table; fork and kindless records in the catch-all.
    for (table, kind) in [("hooks_push", "push"), ("hooks_issues", "issues"), ("hooks_create", "create"), ("hooks_release", "release")] {
        assert_eq!(loaded(&summary, table), kinds[kind] as u64, "{table}: {summary}");
        assert_eq!(env.count(table), kinds[kind] as i64, "{table}");
    }
    assert_eq!(env.count("hooks_other"), (kinds["fork"] + kinds[""]) as i64);
    // Every record in exactly one table or the rejects: the damaged one is rejected.
    assert_eq!(summary["loaded"].as_u64(), Some(700), "{summary}");
    assert_eq!(summary["rejected"]["malformed"].as_u64(), Some(1), "{summary}");
    let ids = env.query_strings(
        "SELECT count(*)::text, count(DISTINCT id)::text FROM (SELECT id FROM {s}.hooks_push UNION ALL SELECT id FROM {s}.hooks_issues
         UNION ALL SELECT id FROM {s}.hooks_create UNION ALL SELECT id FROM {s}.hooks_release UNION ALL SELECT id FROM {s}.hooks_other) t",
    );
    assert_eq!(ids, vec![vec![Some("700".into()), Some("700".into())]]);
    // Typed columns per kind; the key that changes kind is text in one table, json in another.
    let push = env.query_strings("SELECT ref, size::text, jsonb_array_length(commits)::text FROM {s}.hooks_push WHERE id = 7");
    assert_eq!(push, vec![vec![Some("refs/heads/main".into()), Some("3".into()), Some("3".into())]]);
    let create = env.query_strings("SELECT ref ->> 'name' FROM {s}.hooks_create WHERE id = 3");
    assert_eq!(create, vec![vec![Some("v3".into())]]);
    // The catch-all keeps the whole record as it came.
    let other = env.query_strings("SELECT record ->> 'type', record -> 'forkee' ->> 'full_name' FROM {s}.hooks_other WHERE id = 5");
    assert_eq!(other, vec![vec![Some("fork".into()), Some("x/y".into())]]);
    let other = env.query_strings("SELECT record ->> 'zen' FROM {s}.hooks_other WHERE id = 6");
    assert_eq!(other, vec![vec![Some("Keep it logically awesome.".into())]]);
    // One ledger entry for the file, listing every table it wrote.
    let ledger = env.query_strings(
        "SELECT count(*)::text, min(table_name), string_agg(t ->> 'table' || '=' || (t ->> 'loaded'), ' ' ORDER BY t ->> 'table')
         FROM {s}.tier_loads, jsonb_array_elements(tables) t",
    );
    let expected = format!(
        "hooks_create={} hooks_issues={} hooks_issues_labels={} hooks_other={} hooks_push={} hooks_push_commits={} hooks_release={} \
         hooks_release_assets={} hooks_release_assets_links={}",
        kinds["create"],
        kinds["issues"],
        elements(&lines, "issues", "/issue/labels"),
        kinds["fork"] + kinds[""],
        kinds["push"],
        elements(&lines, "push", "/payload/commits"),
        kinds["release"],
        elements(&lines, "release", "/release/assets"),
        elements(&lines, "release", "/release/assets/*/links"),
    );
    assert_eq!(ledger, vec![vec![Some("9".into()), Some("hooks".into()), Some(expected)]]);
    let rejects = env.query_strings("SELECT reason, record::text FROM {s}.hooks_rejects");
    assert_eq!(rejects, vec![vec![Some("malformed".into()), Some("701".into())]]);
    // Child tables: a row per element, with the parent's record, its position, its values.
    for (table, kind, pointer) in [
        ("hooks_push_commits", "push", "/payload/commits"),
        ("hooks_issues_labels", "issues", "/issue/labels"),
        ("hooks_release_assets", "release", "/release/assets"),
        ("hooks_release_assets_links", "release", "/release/assets/*/links"),
    ] {
        let expected = elements(&lines, kind, pointer);
        assert!(expected > 20, "{table}");
        assert_eq!(env.count(table), expected, "{table}");
        assert_eq!(loaded(&summary, table), expected as u64, "{table}: {summary}");
    }
    let commits = env.query_strings(
        "SELECT string_agg(c.sha || ':' || c.position || ':' || c.distinct::text, ' ' ORDER BY c.position)
         FROM {s}.hooks_push p JOIN {s}.hooks_push_commits c USING (load_id, tier_record) WHERE p.id = 7",
    );
    assert_eq!(commits, vec![vec![Some("c7x0:0:true c7x1:1:false c7x2:2:true".into())]]);
    let links = env.query_strings(
        "SELECT string_agg(l.assets_position || '/' || l.position || '=' || l.url, ' ' ORDER BY l.assets_position, l.position)
         FROM {s}.hooks_release r JOIN {s}.hooks_release_assets_links l USING (load_id, tier_record) WHERE r.id = 11",
    );
    assert_eq!(links, vec![vec![Some("1/0=u0".into())]]);

    // The lake: an Iceberg table per table, as the database has them (a replace writes it
    // whole), read through the catalog.
    let lake = env.data().join("lake");
    let (code, _, err) = load(&env, &dir, "hooks", &["--mode", "replace", "--lake", lake.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let query = env.data().join("lake.sql");
    std::fs::write(
        &query,
        "select 'push' as t, count(*) as n from hooks_push union all select 'commits' as t, count(*) as n from hooks_push_commits \
         union all select 'links' as t, count(*) as n from hooks_release_assets_links union all select 'other' as t, count(*) as n from hooks_other",
    )
    .unwrap();
    let (code, out, err) = run(tier_with(&env, &dir, &["query", query.to_str().unwrap(), "--iceberg", "--format", "csv"]));
    assert_eq!(code, 0, "{err}");
    let expected = format!(
        "t,n\npush,{}\ncommits,{}\nlinks,{}\nother,{}\n",
        env.count("hooks_push"),
        env.count("hooks_push_commits"),
        env.count("hooks_release_assets_links"),
        env.count("hooks_other")
    );
    assert_eq!(out, expected);

    // The same file again is refused by the log's ledger; a replace swaps every table.
    let (code, _, err) = load(&env, &dir, "hooks", &["--mode", "append"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("already loaded into hooks"), "{err}");
    let (code, summary, err) = load(&env, &dir, "hooks", &["--mode", "replace"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["loaded"].as_u64(), Some(700), "{summary}");
    assert_eq!(env.count("hooks_push"), kinds["push"] as i64);
    assert_eq!(env.count("hooks_rejects"), 1);
}

#[test]
fn records_of_no_declared_kind_are_rejected_as_unrouted_when_the_contract_says_so() {
    let env = Env::new("splitunrouted");
    let (lines, kinds) = mixed_log(140);
    env.write("hooks.json", lines.join("\n") + "\n");
    let dir = split_contract(&env, "hooks", "reject", false);
    let (code, summary, err) = load(&env, &dir, "hooks", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["rejected"]["unrouted"].as_u64(), Some((kinds["fork"] + kinds[""]) as u64), "{summary}");
    assert!(summary["tables"].as_array().unwrap().iter().all(|t| t["table"] != "hooks_other"), "{summary}");
    let details = env.query_strings("SELECT detail FROM {s}.hooks_rejects WHERE record IN (6, 7) ORDER BY record");
    assert_eq!(
        details,
        vec![vec![Some("/type is \"fork\": no table of hooks takes it".into())], vec![Some("no /type (a text) to route it by".into())]]
    );
    let tables = env.query_strings("SELECT string_agg(tablename, ' ' ORDER BY tablename) FROM pg_tables WHERE schemaname = '{s}'");
    assert_eq!(tables, vec![vec![Some("hooks_create hooks_issues hooks_issues_labels hooks_push hooks_push_commits hooks_rejects hooks_release hooks_release_assets hooks_release_assets_links tier_loads".into())]]);
}

#[test]
fn a_reject_in_one_kind_rejects_its_record_and_a_failed_load_changes_no_table() {
    let env = Env::new("splitfail");
    let (lines, _) = mixed_log(140);
    env.write("hooks.json", lines.join("\n") + "\n");
    let dir = split_contract(&env, "hooks", "table", false);
    let (code, _, err) = load(&env, &dir, "hooks", &[]);
    assert_eq!(code, 0, "{err}");
    let before: Vec<String> = ["hooks_push", "hooks_issues", "hooks_other", "hooks_rejects"].iter().map(|t| env.fingerprint(t)).collect();

    // Half the issues closed with a value the contract does not allow, and a push of a
    // negative size: rejected with the kind's reason; too many rejects fail the whole load.
    let bad: Vec<String> = lines.iter().map(|l| l.replace("\"closed\"", "\"wontfix\"").replace("\"size\": 1,", "\"size\": -1,")).collect();
    env.write("hooks.json", bad.join("\n") + "\n");
    let mut args = vec!["load", "hooks", "--json", "--mode", "replace", "--max-reject-ratio", "0.01"];
    let (code, _, err) = run(tier_with(&env, &dir, &args));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("not_allowed") || err.contains("out_of_range"), "{err}");
    let after: Vec<String> = ["hooks_push", "hooks_issues", "hooks_other", "hooks_rejects"].iter().map(|t| env.fingerprint(t)).collect();
    assert_eq!(before, after, "a failed load changed a table");

    args.truncate(5);
    args.extend(["--max-reject-ratio", "1"]);
    let (code, summary, err) = run_load(tier_with(&env, &dir, &args));
    assert_eq!(code, 0, "{err}");
    let reasons = env.query_strings("SELECT reason, count(*)::text FROM {s}.hooks_rejects GROUP BY 1 ORDER BY 1");
    assert_eq!(
        reasons,
        vec![
            vec![Some("malformed".into()), Some("1".into())],
            vec![Some("not_allowed".into()), Some("10".into())],
            vec![Some("out_of_range".into()), Some("10".into())],
        ],
        "{summary}"
    );
    let detail = env.query_strings("SELECT detail FROM {s}.hooks_rejects WHERE reason = 'out_of_range' LIMIT 1");
    assert!(detail[0][0].as_deref().unwrap().starts_with("size"), "{detail:?}");
}

#[test]
fn a_keyed_split_log_turns_away_keys_each_table_holds() {
    let env = Env::new("splitkeyed");
    let (lines, kinds) = mixed_log(280);
    env.write("a.json", lines[..140].join("\n") + "\n");
    env.write("b.json", lines[70..280].join("\n") + "\n");
    let dir = split_contract(&env, "hooks", "table", true);
    let a = env.data().join("a.json");
    let (code, _, err) = load(&env, &dir, "hooks", &["--from", a.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let b = env.data().join("b.json");
    let (code, summary, err) = load(&env, &dir, "hooks", &["--from", b.to_str().unwrap(), "--mode", "append"]);
    assert_eq!(code, 0, "{err}");
    // Records 70..139 were loaded with a.json: each turned away by the table holding its id.
    assert_eq!(summary["rejected"]["duplicate"].as_u64(), Some(70), "{summary}");
    assert_eq!(summary["loaded"].as_u64(), Some(140), "{summary}");
    assert_eq!(env.count("hooks_push"), kinds["push"] as i64);
    let detail = env.query_strings("SELECT detail FROM {s}.hooks_rejects WHERE reason = 'duplicate' AND record = 1");
    assert_eq!(detail, vec![vec![Some("id already in hooks_push (load 1)".into())]]);
    // Validate counts the keys each table turned away as the file's duplicates.
    validates(&env, &dir, "hooks", &[&a, &b]);
}

#[test]
fn sigkill_mid_split_load_changes_no_table() {
    let env = Env::new("splitkill");
    let (lines, _) = mixed_log(700);
    env.write("hooks.json", lines.join("\n") + "\n");
    let dir = split_contract(&env, "hooks", "table", false);
    let (code, _, err) = load(&env, &dir, "hooks", &[]);
    assert_eq!(code, 0, "{err}");
    let tables = ["hooks_push", "hooks_issues", "hooks_create", "hooks_release", "hooks_other", "hooks_rejects"];
    let before: Vec<String> = tables.iter().map(|t| env.fingerprint(t)).collect();
    // A big log, killed once its rows are going in.
    let (big, _) = mixed_log(600_000);
    env.write("hooks.json", big.join("\n") + "\n");
    let mut child = tier_with(&env, &dir, &["load", "hooks", "--mode", "replace"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut c = client();
    loop {
        assert!(child.try_wait().unwrap().is_none(), "the load ended before it could be killed");
        let copying: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'tier' AND query LIKE 'COPY%' AND query LIKE '%' || $1 || '%'",
                &[&env.schema],
            )
            .unwrap()
            .get(0);
        if copying > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the load never reached COPY");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let after: Vec<String> = tables.iter().map(|t| env.fingerprint(t)).collect();
    assert_eq!(before, after, "a killed load changed a table");
}

#[test]
fn split_contract_mistakes_name_the_file_line_and_column() {
    let env = Env::new("splitcontract");
    let dir = split_contract(&env, "hooks", "table", false);
    let kinds = dir.join("hooks");
    let check = || {
        let mut cmd = env.tier_plain(&["datasets", "check"]);
        cmd.env("TIER_DATASETS", &dir);
        run(cmd)
    };
    let (code, out, err) = check();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("split by /type into 5 tables"), "{out}");

    std::fs::write(kinds.join("other.toml"), "when = \"fork\"\n").unwrap();
    let (code, err, _) = check();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("other.toml:1:1: hooks_other is the catch-all table"), "{err}");
    std::fs::remove_file(kinds.join("other.toml")).unwrap();

    std::fs::write(kinds.join("star.toml"), "when = \"push\"\n[[column]]\nname = \"id\"\ntype = \"text\"\n").unwrap();
    let (code, err, _) = check();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("star.toml:1:8: when \"push\" routes to another table too"), "{err}");
    assert!(err.contains("star.toml:1:1: column \"id\" (key \"id\") is in the log's envelope already"), "{err}");
    std::fs::remove_file(kinds.join("star.toml")).unwrap();

    std::fs::write(kinds.join("star.toml"), "when = \"star\"\nwhat = 1\n").unwrap();
    let (code, err, _) = check();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("star.toml:2:1: unknown field `what`"), "{err}");
    std::fs::remove_file(kinds.join("star.toml")).unwrap();

    for f in std::fs::read_dir(&kinds).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let (code, err, _) = check();
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("hooks.toml:3:12: split_by needs its tables: one file per kind in hooks/"), "{err}");
}

#[test]
fn infer_split_by_writes_a_contract_per_kind_that_loads_what_it_read() {
    let env = Env::new("splitinfer");
    let (mut lines, kinds) = mixed_log(700);
    // A blank kind names no table: the record goes to the catch-all.
    lines.insert(3, "{\"type\": \" \", \"id\": 7000, \"created_at\": \"2026-03-01T00:00:00Z\"}".to_string());
    let file = env.write("hooks.json", lines.join("\n") + "\n");
    let dir = env.data().join("contracts");
    let mut infer = env.tier_plain(&["infer", file.to_str().unwrap(), "--name", "hooks", "--split-by", "/type", "--write"]);
    infer.env("TIER_DATASETS", &dir);
    let (code, _, err) = run(infer);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("(702 records: 5 kinds, 101 of no kind)"), "{err}");
    let log = std::fs::read_to_string(dir.join("hooks.toml")).unwrap();
    let mut stems: Vec<String> =
        std::fs::read_dir(dir.join("hooks")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    stems.sort();
    assert_eq!(stems, ["create.toml", "fork.toml", "issues.toml", "push.toml", "release.toml"]);
    // The envelope once, in the log's file: the keys every kind has, with the day among them.
    assert!(log.contains("split_by = \"/type\"\n"), "{log}");
    assert!(log.contains("day = \"created_at\"   # suggested: a timestamp in 100% of records"), "{log}");
    assert_eq!(log.matches("[[column]]").count(), 2, "{log}");
    // Each kind its own columns: the key that changes kind is a text in push, fields in create.
    let push = std::fs::read_to_string(dir.join("hooks/push.toml")).unwrap();
    assert!(push.contains("when = \"push\"\n"), "{push}");
    assert!(push.contains("name = \"payload_ref\"\nkey = \"/payload/ref\"\ntype = \"text\"\n"), "{push}");
    assert!(!push.contains("name = \"id\""), "{push}");
    let create = std::fs::read_to_string(dir.join("hooks/create.toml")).unwrap();
    assert!(create.contains("key = \"/payload/ref/name\"\ntype = \"text\"\n"), "{create}");

    // Loaded, every record lands in its kind's table; the kindless ones in the catch-all.
    let (code, summary, err) = load(&env, &dir, "hooks", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!((summary["loaded"].as_u64(), summary["extra_keys"].as_u64()), (Some(701), Some(0)), "{summary}");
    for kind in ["push", "issues", "create", "release", "fork"] {
        assert_eq!(env.count(&format!("hooks_{kind}")), kinds[kind] as i64, "{kind}");
    }
    assert_eq!(env.count("hooks_other"), kinds[""] as i64 + 1);
    // Arrays became child tables, two levels down: a row per element.
    assert!(push.contains("[[child]]\nname = \"payload_commits\"\nkey = \"/payload/commits\"\n"), "{push}");
    for (table, kind, pointer) in [
        ("hooks_push_payload_commits", "push", "/payload/commits"),
        ("hooks_issues_issue_labels", "issues", "/issue/labels"),
        ("hooks_release_release_assets", "release", "/release/assets"),
        ("hooks_release_release_assets_links", "release", "/release/assets/*/links"),
    ] {
        assert_eq!(env.count(table), elements(&lines, kind, pointer), "{table}");
    }
    let query = env.data().join("commits.sql");
    std::fs::write(&query, "select count(*) as commits, count(distinct sha) as shas from hooks_push_payload_commits where \"distinct\"")
        .unwrap();
    let (code, out, err) = run(tier_with(&env, &dir, &["query", query.to_str().unwrap(), "--format", "csv"]));
    assert_eq!(code, 0, "{err}");
    let distinct = lines.iter().map(|l| l.matches("\"distinct\": true").count()).sum::<usize>();
    assert_eq!(out, format!("commits,shas\n{distinct},{distinct}\n"));

    // Validate, by content, per table: from the ledger, and by reading the file again.
    for more in [&[][..], &["--reread"][..]] {
        let mut args = vec!["validate", "hooks"];
        args.extend(more);
        let (code, out, err) = run(tier_with(&env, &dir, &args));
        assert_eq!(code, 0, "{out}\n{err}");
        assert!(err.contains("all 44 checks match"), "{out}\n{err}");
        assert!(out.contains("hooks_release_release_assets_links"), "{out}");
    }
    // An edited value and a lost row are named with their table and day.
    client()
        .batch_execute(&format!(
            "UPDATE {s}.hooks_push SET payload_ref = 'x' WHERE id = 7; DELETE FROM {s}.hooks_other WHERE id = 6",
            s = env.schema
        ))
        .unwrap();
    let (code, out, _) = run(tier_with(&env, &dir, &["validate", "hooks"]));
    assert_eq!(code, 1, "{out}");
    let differing: Vec<&str> = out.lines().filter(|l| l.contains("DIFF")).collect();
    assert!(differing.iter().any(|l| l.contains("hooks_push") && l.contains("contents differ on 2026-03-08")), "{out}");
    assert!(differing.iter().any(|l| l.contains("hooks_other") && l.contains("loaded rows")), "{out}");
    assert!(!differing.iter().any(|l| l.contains("hooks_issues")), "{out}");
}

/// An export that puts a prefix before its keys, and drops it in some records (as the
/// events export does for 2% of its `event_name`s): the kind key written with the
/// prefix is read in either spelling, by `infer` and by the load, as a column's key is.
#[test]
fn a_kind_key_written_with_the_export_s_prefix_reads_records_that_drop_it() {
    let env = Env::new("splitprefix");
    let mut lines = Vec::new();
    for i in 0..300 {
        let kind = ["click", "view", "buy"][i % 3];
        let key = if i % 5 == 0 { "event" } else { "e.event" };
        let own = match kind {
            "click" => format!("\"e.x\": {i}"),
            "view" => format!("\"e.page\": \"p{i}\""),
            _ => format!("\"e.amount\": {}.5", i),
        };
        lines.push(format!("{{\"e.id\": {i}, \"{key}\": \"{kind}\", \"e.at\": \"2026-03-01T00:00:{:02}Z\", {own}}}", i % 60));
    }
    let file = env.write("events.json", lines.join("\n") + "\n");
    let dir = env.data().join("contracts");
    let mut infer = env.tier_plain(&["infer", file.to_str().unwrap(), "--name", "ev", "--split-by", "e.event", "--write"]);
    infer.env("TIER_DATASETS", &dir);
    let (code, _, err) = run(infer);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("(300 records: 3 kinds, 0 of no kind)"), "{err}");
    let log = std::fs::read_to_string(dir.join("ev.toml")).unwrap();
    assert!(log.contains("key_prefix = \"e.\"") && log.contains("split_by = \"e.event\"\n"), "{log}");
    let (code, summary, err) = load(&env, &dir, "ev", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!((summary["loaded"].as_u64(), summary["rejected"].as_object().map(|r| r.len())), (Some(300), Some(0)), "{summary}");
    for kind in ["click", "view", "buy"] {
        assert_eq!(env.count(&format!("ev_{kind}")), 100, "{kind}: {summary}");
    }
    assert_eq!(env.count("ev_other"), 0, "{summary}");
    // Bare in the contract, the key reads the prefixed spelling as before.
    let bare = log.replace("split_by = \"e.event\"", "split_by = \"event\"");
    std::fs::write(dir.join("ev.toml"), bare).unwrap();
    let (code, summary, err) = load(&env, &dir, "ev", &["--mode", "replace"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(loaded(&summary, "ev_buy"), 100, "{summary}");
    assert!(validates(&env, &dir, "ev", &[]).contains("checks match"));
}

#[test]
fn gen_writes_sample_data_for_every_kind_and_the_report_has_a_section_per_table() {
    let env = Env::new("splitgen");
    let dir = split_contract(&env, "hooks", "table", false);
    let data = env.data().to_str().unwrap().to_string();
    let mut gen = env.tier_plain(&["gen", "--dataset", "hooks", "--records", "3000", "--out", &data]);
    gen.env("TIER_DATASETS", &dir);
    let (code, _, err) = run(gen);
    assert_eq!(code, 0, "{err}");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(env.data().join("gen-manifest.json")).unwrap()).unwrap();
    let planted = &manifest["hooks"];
    let (code, summary, err) = load(&env, &dir, "hooks", &[]);
    assert_eq!(code, 0, "{err}");
    // The load reports exactly what was planted, each kind's records in its table.
    assert_eq!(summary["loaded"], planted["loaded"], "{summary}\n{planted}");
    assert_eq!(summary["rejected"], planted["rejected"], "{summary}\n{planted}");
    for table in ["hooks_push", "hooks_issues", "hooks_create", "hooks_release", "hooks_other"] {
        assert!(loaded(&summary, table) > 500, "{table}: {summary}");
    }
    let kinds = env.query_strings("SELECT DISTINCT record ->> 'type' FROM {s}.hooks_other");
    assert_eq!(kinds, vec![vec![Some("__no_such_kind__".into())]]);

    let (out, queries) = (env.data().join("report"), env.data().join("queries"));
    std::fs::create_dir_all(&queries).unwrap();
    std::fs::write(queries.join("kinds.sql"), "select count(*) as pushes from hooks_push").unwrap();
    let args = ["report", "--format", "md", "--out", out.to_str().unwrap(), "--queries", queries.to_str().unwrap()];
    let (code, _, err) = run(tier_with(&env, &dir, &args));
    assert_eq!(code, 0, "{err}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    for table in ["hooks_push", "hooks_issues", "hooks_create", "hooks_release", "hooks_other"] {
        assert!(md.contains(&format!("## Dataset {table}\n")), "{table}:\n{md}");
        assert!(md.contains(&format!("| {table} | content digest |")), "{table}:\n{md}");
    }
    // The log's one rejects table, once: with its first table, the others pointing there.
    assert_eq!(md.matches("| reason (text) | rejected (bigint) |").count(), 1, "{md}");
    assert!(md.contains("Rejects per reason of every table whose rejects are in hooks_rejects"), "{md}");
    assert!(md.contains("its rejects are with hooks_create's, in hooks_rejects."), "{md}");
    assert!(md.contains("**All checks match.**"), "{md}");
}

#[test]
fn child_tables_of_a_keyed_dataset_carry_its_key_and_load_validate_and_replace_with_it() {
    let env = Env::new("childkeyed");
    let dir = contract(
        &env,
        "orders",
        "name = \"orders\"\nunique = [\"order_id\"]\n\
         [[column]]\nname = \"order_id\"\nkey = \"id\"\ntype = \"bigint\"\n\
         [[column]]\nname = \"placed\"\ntype = \"timestamp\"\n\
         [[child]]\nname = \"items\"\nkey = \"/cart/items\"\n\
         [[child.column]]\nname = \"sku\"\ntype = \"text\"\nrequired = true\n\
         [[child.column]]\nname = \"qty\"\ntype = \"integer\"\nmin = 1\n\
         [[child.child]]\nname = \"codes\"\nkey = \"codes\"\n[[child.child.column]]\nname = \"code\"\nkey = \".\"\ntype = \"integer\"\n",
    );
    let mut lines = Vec::new();
    for i in 0..300 {
        let items: Vec<String> = (0..i % 4)
            .map(|j| {
                format!(
                    "{{\"sku\": \"s{j}\", \"qty\": {}, \"codes\": [{}]}}",
                    j + 1,
                    (0..j).map(|k| k.to_string()).collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        lines.push(format!(
            "{{\"id\": {i}, \"placed\": \"2026-01-0{}T00:00:00Z\", \"cart\": {{\"items\": [{}]}}}}",
            1 + i % 9,
            items.join(", ")
        ));
    }
    // A bad element rejects its order, with the element named; a repeated order is a duplicate.
    lines.push("{\"id\": 1000, \"cart\": {\"items\": [{\"sku\": \"a\", \"qty\": 1}, {\"sku\": \"b\", \"qty\": 0}]}}".into());
    lines.push("{\"id\": 1001, \"cart\": {\"items\": [{\"sku\": \"a\", \"codes\": [\"x\"]}]}}".into());
    lines.push(lines[5].clone());
    env.write("orders.json", lines.join("\n") + "\n");
    let (code, summary, err) = load(&env, &dir, "orders", &[]);
    assert_eq!(code, 0, "{err}");
    assert_eq!((summary["records"].as_u64(), summary["loaded"].as_u64()), (Some(303), Some(300)), "{summary}");
    let items: i64 = (0..300).map(|i| i % 4).sum();
    let codes: i64 = (0..300).map(|i| (0..i % 4).sum::<i64>()).sum();
    assert_eq!((env.count("orders_items"), env.count("orders_items_codes")), (items, codes));
    let rejects = env.query_strings("SELECT record::text, reason, detail FROM {s}.orders_rejects ORDER BY record");
    assert_eq!(
        rejects,
        vec![
            vec![Some("301".into()), Some("out_of_range".into()), Some("items[1]: qty: must be at least 1, got '0'".into())],
            vec![Some("302".into()), Some("bad_number".into()), Some("items[0]: codes[0]: code: not an integer 'x'".into())],
            vec![Some("303".into()), Some("duplicate".into()), Some("same as record 6 on line 6".into())],
        ]
    );
    // Keyed by the parent's key: the children join on it, with their positions.
    let joined = env.query_strings(
        "SELECT string_agg(i.sku || '#' || c.code, ' ' ORDER BY c.items_position, c.position)
         FROM {s}.orders o JOIN {s}.orders_items i USING (order_id) JOIN {s}.orders_items_codes c USING (order_id)
         WHERE o.order_id = 7 AND c.items_position = i.position",
    );
    assert_eq!(joined, vec![vec![Some("s1#0 s2#0 s2#1".into())]]);
    let (code, out, err) = run(tier_with(&env, &dir, &["validate", "orders"]));
    assert_eq!(code, 0, "{out}\n{err}");
    // A replace swaps the children with their parents.
    env.write("orders.json", lines[..10].join("\n") + "\n");
    let (code, _, err) = load(&env, &dir, "orders", &["--mode", "replace"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.count("orders_items"), (0..10).map(|i| i % 4).sum::<i64>());
}

/// An order with items, each with codes, as `child_tables_of_a_keyed_dataset...` reads them.
fn order(id: u64, items: &[(u64, &[i64])]) -> String {
    let items: Vec<String> = items
        .iter()
        .enumerate()
        .map(|(j, (qty, codes))| {
            let codes: Vec<String> = codes.iter().map(i64::to_string).collect();
            format!("{{\"sku\": \"s{j}\", \"qty\": {qty}, \"codes\": [{}]}}", codes.join(","))
        })
        .collect();
    format!("{{\"id\": {id}, \"placed\": \"2026-01-0{}T00:00:00Z\", \"cart\": {{\"items\": [{}]}}}}", 1 + id % 9, items.join(", "))
}

#[test]
fn a_merge_replaces_the_children_of_the_parents_it_updates() {
    let env = Env::new("childmerge");
    let dir = contract(
        &env,
        "orders",
        "name = \"orders\"\nunique = [\"order_id\"]\nday = \"placed\"\n\
         [[column]]\nname = \"order_id\"\nkey = \"id\"\ntype = \"bigint\"\n\
         [[column]]\nname = \"placed\"\ntype = \"timestamp\"\n\
         [[child]]\nname = \"items\"\nkey = \"/cart/items\"\n\
         [[child.column]]\nname = \"sku\"\ntype = \"text\"\nrequired = true\n\
         [[child.column]]\nname = \"qty\"\ntype = \"integer\"\nmin = 1\n\
         [[child.child]]\nname = \"codes\"\nkey = \"codes\"\n[[child.child.column]]\nname = \"code\"\nkey = \".\"\ntype = \"integer\"\n",
    );
    let first: Vec<String> = (0..20).map(|i| order(i, &[(1, &[1, 2]), (2, &[3])])).collect();
    let a = env.write("a.json", first.join("\n") + "\n");
    // With an Iceberg lake: a table per table, merged as the database is.
    let lake = env.data().join("lake").display().to_string();
    let (code, _, err) = load(&env, &dir, "orders", &["--from", a.to_str().unwrap(), "--mode", "merge", "--lake", &lake]);
    assert_eq!(code, 0, "{err}");
    assert_eq!((env.count("orders"), env.count("orders_items"), env.count("orders_items_codes")), (20, 40, 60));

    // Order 3 loses an item and a code, order 4 gains one, order 5 is as it was, order 6 is
    // sent twice (the later wins, with its children), order 100 is new.
    let second = [
        order(3, &[(5, &[9])]),
        order(4, &[(1, &[1, 2]), (2, &[3]), (7, &[])]),
        order(5, &[(1, &[1, 2]), (2, &[3])]),
        order(6, &[(8, &[8, 8, 8])]),
        order(100, &[(1, &[])]),
        order(6, &[(9, &[9])]),
    ];
    let b = env.write("b.json", second.join("\n") + "\n");
    let (code, summary, err) = load(&env, &dir, "orders", &["--from", b.to_str().unwrap(), "--mode", "merge", "--lake", &lake]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["rejected"]["superseded"].as_u64(), Some(1), "{summary}");
    assert_eq!(summary["merged"]["inserted"].as_u64(), Some(1), "{summary}");
    let items = |id: i64| {
        env.query_strings(&format!(
            "SELECT string_agg(i.position || ':' || i.sku || 'x' || i.qty || '[' || coalesce((SELECT string_agg(c.code::text, ',' ORDER BY c.position)
               FROM {{s}}.orders_items_codes c WHERE c.order_id = i.order_id AND c.items_position = i.position), '') || ']', ' ' ORDER BY i.position)
             FROM {{s}}.orders_items i WHERE i.order_id = {id}"
        ))[0][0]
            .clone()
            .unwrap_or_default()
    };
    assert_eq!(items(3), "0:s0x5[9]");
    assert_eq!(items(4), "0:s0x1[1,2] 1:s1x2[3] 2:s2x7[]");
    assert_eq!(items(5), "0:s0x1[1,2] 1:s1x2[3]");
    assert_eq!(items(6), "0:s0x9[9]");
    assert_eq!(items(100), "0:s0x1[]");
    assert_eq!(items(7), "0:s0x1[1,2] 1:s1x2[3]");
    assert_eq!((env.count("orders"), env.count("orders_items"), env.count("orders_items_codes")), (21, 40, 56));
    // Order 5 was equal: its rows stay under the first load, children too.
    let held = env.query_strings("SELECT string_agg(DISTINCT load_id::text, ',') FROM {s}.orders_items WHERE order_id = 5");
    assert_eq!(held, vec![vec![Some("1".into())]]);
    // Both files validate: the first less what the second took, the second as merged.
    validates(&env, &dir, "orders", &[&a, &b]);
    // The lake's tables hold the same rows (read through the catalog).
    let q = env.data().join("lake.sql");
    std::fs::write(
        &q,
        "select 'orders' as t, count(*) as n, sum(order_id) as s from orders union all \
         select 'items' as t, count(*) as n, sum(qty) as s from orders_items union all \
         select 'codes' as t, count(*) as n, sum(code) as s from orders_items_codes",
    )
    .unwrap();
    let (code, out, err) = run(tier_with(&env, &dir, &["query", q.to_str().unwrap(), "--iceberg", "--format", "csv"]));
    assert_eq!(code, 0, "{err}");
    let pg = env.query_strings(
        "SELECT 'orders,' || count(*) || ',' || sum(order_id) FROM {s}.orders UNION ALL \
         SELECT 'items,' || count(*) || ',' || sum(qty) FROM {s}.orders_items UNION ALL \
         SELECT 'codes,' || count(*) || ',' || sum(code) FROM {s}.orders_items_codes",
    );
    let pg: Vec<String> = pg.into_iter().map(|r| r[0].clone().unwrap()).collect();
    assert_eq!(out.lines().skip(1).collect::<Vec<_>>(), pg);
}

#[test]
fn a_split_log_merges_every_table_on_its_key() {
    let env = Env::new("splitmerge");
    let (lines, kinds) = mixed_log(140);
    let dir = split_contract(&env, "hooks", "table", true);
    let a = env.write("a.json", lines[..100].join("\n") + "\n");
    let (code, _, err) = load(&env, &dir, "hooks", &["--from", a.to_str().unwrap(), "--mode", "merge"]);
    assert_eq!(code, 0, "{err}");
    // The same records again, some edited: each updated in its own table, children replaced.
    let edited: Vec<String> = lines[50..140].iter().map(|l| l.replace("fix 0", "fixed").replace("\"l0\"", "\"bug\"")).collect();
    let b = env.write("b.json", edited.join("\n") + "\n");
    let (code, summary, err) = load(&env, &dir, "hooks", &["--from", b.to_str().unwrap(), "--mode", "merge"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(summary["merged"]["inserted"].as_u64(), Some(40), "{summary}");
    assert_eq!(env.count("hooks_push"), kinds["push"] as i64);
    let messages = env.query_strings("SELECT count(*)::text FROM {s}.hooks_push_commits WHERE message = 'fixed'");
    let expected = lines[50..140].iter().filter(|l| l.contains("\"type\": \"push\"") && l.contains("fix 0")).count();
    assert_eq!(messages, vec![vec![Some(expected.to_string())]]);
    let labels = env.query_strings("SELECT count(*)::text FROM {s}.hooks_issues_labels WHERE label = 'l0'");
    let old = lines[..50].iter().filter(|l| l.contains("\"l0\"")).count();
    assert_eq!(labels, vec![vec![Some(old.to_string())]]);
    validates(&env, &dir, "hooks", &[&a, &b]);
}

#[test]
fn child_table_mistakes_are_named_where_they_are() {
    let env = Env::new("childcontract");
    let check = |text: &str| {
        let dir = contract(&env, "orders", text);
        let mut cmd = env.tier_plain(&["datasets", "check"]);
        cmd.env("TIER_DATASETS", &dir);
        run(cmd)
    };
    let head = "name = \"orders\"\n[[column]]\nname = \"id\"\ntype = \"bigint\"\n";
    let (code, out, _) = check(&format!("{head}[[child]]\nname = \"items\"\nkey = \"/items\"\n"));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("orders.toml:6:8: child \"items\" has no columns"), "{out}");
    let (code, out, _) =
        check(&format!("{head}[[child]]\nname = \"items\"\nkey = \"/items\"\n[[child.column]]\nname = \"position\"\ntype = \"text\"\n"));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("orders.toml:6:8: child \"items\": column \"position\" is tier's own here"), "{out}");
    let (code, out, _) = check(&format!(
        "{head}[[child]]\nname = \"{}\"\nkey = \"/items\"\n[[child.column]]\nname = \"a\"\ntype = \"text\"\n",
        "x".repeat(40)
    ));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("orders.toml:6:8: child \"xxxx"), "{out}");
    let (code, out, _) =
        check(&format!("{head}[[child]]\nname = \"items\"\nkey = \"/items\"\n[[child.column]]\nname = \"a\"\ntype = \"text\"\nwhat = 1\n"));
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("unknown field `what`"), "{out}");
    let (code, out, _) =
        check(&format!("{head}[[child]]\nname = \"items\"\nkey = \"/items\"\n[[child.column]]\nname = \"a\"\ntype = \"text\"\n"));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("ok (orders, 2 columns; child tables orders_items)"), "{out}");
}

#[test]
fn a_split_log_evolves_each_kind_by_its_own_new_keys() {
    let env = Env::new("splitevolve");
    let (lines, kinds) = mixed_log(140);
    let dir = split_contract(&env, "hooks", "table", false);
    let log = std::fs::read_to_string(dir.join("hooks.toml")).unwrap().replace("split_by", "on_new_key = \"evolve\"\nsplit_by");
    std::fs::write(dir.join("hooks.toml"), log).unwrap();
    // Pushes gain a flag, issues a score; the catch-all keeps whole records, as before.
    let grown: Vec<String> = lines
        .iter()
        .map(|l| {
            l.replacen("\"type\": \"push\", ", "\"type\": \"push\", \"forced\": true, ", 1).replacen(
                "\"type\": \"issues\", ",
                "\"type\": \"issues\", \"score\": 1.5, ",
                1,
            )
        })
        .collect();
    env.write("hooks.json", grown.join("\n") + "\n");
    let (code, summary, err) = load(&env, &dir, "hooks", &[]);
    assert_eq!(code, 0, "{err}");
    let changes: Vec<String> =
        summary["schema_changes"].as_array().unwrap().iter().map(|c| format!("{}.{} {}", c["table"], c["column"], c["type"])).collect();
    assert_eq!(changes, ["\"hooks_issues\".\"score\" \"double\"", "\"hooks_push\".\"forced\" \"boolean\""], "{summary}");
    assert!(err.contains("in ") && err.contains("issues.toml"), "{err}");
    let pushes = env.query_strings("SELECT count(*)::text FROM {s}.hooks_push WHERE forced");
    assert_eq!(pushes, vec![vec![Some(kinds["push"].to_string())]]);
    let scores = env.query_strings("SELECT sum(score)::text FROM {s}.hooks_issues");
    assert_eq!(scores, vec![vec![Some(format!("{}", kinds["issues"] as f64 * 1.5))]]);
    // Until the kinds' files declare them, validate names the columns it does not know.
    let (code, out, _) = run(tier_with(&env, &dir, &["validate", "hooks"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("undeclared forced") && out.contains("undeclared score"), "{out}");
    for (file, column) in [("push.toml", "forced\"\ntype = \"boolean"), ("issues.toml", "score\"\ntype = \"double")] {
        let path = dir.join("hooks").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        let (head, children) = text.split_once("[[child]]").unwrap();
        std::fs::write(&path, format!("{head}[[column]]\nname = \"{column}\"\n\n[[child]]{children}")).unwrap();
    }
    validates(&env, &dir, "hooks", &[]);
}

#[test]
fn a_dataset_with_child_tables_evolves_by_its_new_keys_not_its_arrays() {
    let env = Env::new("childevolve");
    let dir = contract(
        &env,
        "orders",
        "name = \"orders\"\non_new_key = \"evolve\"\n\
         [[column]]\nname = \"order_id\"\nkey = \"id\"\ntype = \"bigint\"\n\
         [[child]]\nname = \"items\"\nkey = \"/cart/items\"\n[[child.column]]\nname = \"sku\"\ntype = \"text\"\n",
    );
    let lines: Vec<String> = (0..10)
        .map(|i| format!("{{\"id\": {i}, \"channel\": \"web\", \"cart\": {{\"items\": [{{\"sku\": \"a\"}}, {{\"sku\": \"b\"}}]}}}}"))
        .collect();
    env.write("orders.json", lines.join("\n") + "\n");
    let (code, summary, err) = load(&env, &dir, "orders", &[]);
    assert_eq!(code, 0, "{err}");
    let changes: Vec<String> = summary["schema_changes"].as_array().unwrap().iter().map(|c| c["column"].to_string()).collect();
    assert_eq!(changes, ["\"channel\""], "{summary}");
    assert_eq!((summary["extra_keys"].as_u64(), env.count("orders_items")), (Some(0), 20), "{summary}");
}

#[test]
fn keys_in_few_records_fold_into_one_column_of_every_other_key() {
    let env = Env::new("restkeys");
    // An API log: a few keys in every record, 400 keys of one endpoint or another, each in
    // a handful of records (one with a bare NaN, as the exports write them).
    let lines: Vec<String> = (0..800)
        .map(|i| {
            let rare: Vec<String> = (0..3).map(|j| format!("\"k{}\": {}", (i * 3 + j) % 400, i + j)).collect();
            let nan = if i == 5 { ", \"ratio\": NaN" } else { "" };
            format!("{{\"id\": {i}, \"path\": \"/v1/x{}\", \"status\": 200, {}{nan}}}", i % 7, rare.join(", "))
        })
        .collect();
    let file = env.write("api.json", lines.join("\n") + "\n");
    let dir = env.data().join("contracts");
    let mut infer = env.tier_plain(&["infer", file.to_str().unwrap(), "--name", "api", "--write"]);
    infer.env("TIER_DATASETS", &dir);
    let (code, _, err) = run(infer);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(dir.join("api.toml")).unwrap();
    assert_eq!(text.matches("[[column]]").count(), 200, "{text}");
    assert!(text.contains("name = \"other_keys\"\nkey = \"*\"\ntype = \"json\"\n# every key no other column reads"), "{text}");
    let (code, summary, err) = load(&env, &dir, "api", &[]);
    assert_eq!(code, 0, "{err}");
    // Every record loads; the other key that is a bare NaN is JSON null (JSON has no NaN),
    // counted as a NaN stored as NULL is.
    assert_eq!(
        (summary["loaded"].as_u64(), summary["extra_keys"].as_u64(), summary["nan_as_null"].as_u64()),
        (Some(800), Some(0), Some(1)),
        "{summary}"
    );
    assert_eq!(env.count("api_rejects"), 0);
    let ratio =
        env.query_strings("SELECT (other_keys->'ratio' IS NOT NULL)::text, (other_keys->>'ratio' IS NULL)::text FROM {s}.api WHERE id = 5");
    assert_eq!(ratio, vec![vec![Some("true".into()), Some("true".into())]], "ratio is in the object, as null");
    // Each folded key is in the object, with its value as sent.
    let folded: Vec<&str> = text.lines().filter(|l| l.starts_with("# every key")).collect();
    assert_eq!(folded.len(), 1);
    let sum =
        env.query_strings("SELECT sum(v::bigint)::text FROM {s}.api, jsonb_each_text(other_keys) AS e(k, v) WHERE other_keys IS NOT NULL");
    let kept: std::collections::BTreeSet<String> =
        text.lines().filter_map(|l| l.strip_prefix("name = \"").map(|k| k.trim_end_matches('"').to_string())).collect();
    let expected: i64 = (0..800)
        .flat_map(|i: i64| (0..3).map(move |j| ((i * 3 + j) % 400, i + j)))
        .filter(|(k, _)| !kept.contains(&format!("k{k}")))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(sum, vec![vec![Some(expected.to_string())]]);
    let (code, out, err) = run(tier_with(&env, &dir, &["validate", "api", "--reread"]));
    assert_eq!(code, 0, "{out}\n{err}");
}

#[test]
fn checks_gate_every_table_of_a_split_log_and_its_children_in_one_load() {
    let env = Env::new("splitchecks");
    let (lines, kinds) = mixed_log(700);
    env.write("hooks.json", lines.join("\n") + "\n");
    let dir = split_contract(&env, "hooks", "table", false);
    let append = |file: &Path, text: &str| {
        let mut all = std::fs::read_to_string(file).unwrap();
        all.push_str(text);
        std::fs::write(file, all).unwrap();
    };
    // The log's checks: one of the envelope on every table, and its rejects once.
    append(
        &dir.join("hooks.toml"),
        "\n[[check]]\nname = \"ids present\"\nmetric = \"missing_share(id)\"\nfail = \"> 0\"\n\
         [[check]]\nname = \"few rejects\"\nmetric = \"reject_share\"\nwarn = \"> 0\"\nfail = \"> 0.5\"\n",
    );
    // A kind's own check, and one of its child table.
    append(
        &dir.join("hooks/push.toml"),
        "[[child.check]]\nname = \"commits have messages\"\nmetric = \"missing_share(message)\"\nwarn = \"> 0\"\n\
         [[check]]\nname = \"small pushes\"\nmetric = \"max(size)\"\nfail = \"> 3\"\n\
         [[check]]\nname = \"pushes per day\"\nmetric = \"row_count\"\nper = \"day\"\nwarn = \"< 1\"\n",
    );
    let (code, summary, err) = load(&env, &dir, "hooks", &[]);
    assert_eq!(code, 0, "{err}");
    // The damaged record is the log's one reject: a warning, naming the log.
    let warnings: Vec<&str> = summary["check_warnings"].as_array().unwrap().iter().map(|w| w.as_str().unwrap()).collect();
    assert_eq!(warnings.len(), 1, "{summary}");
    assert!(warnings[0].starts_with("hooks: \"few rejects\""), "{warnings:?}");
    // Each table's evaluations in the history, under its own name.
    let gated = env.query_strings("SELECT dataset, check_name, count(*)::text FROM {s}.tier_checks GROUP BY 1, 2 ORDER BY 1, 2");
    let tables = ["hooks_create", "hooks_issues", "hooks_other", "hooks_push", "hooks_release"];
    let mut expected: Vec<Vec<Option<String>>> = vec![vec![Some("hooks".into()), Some("few rejects".into()), Some("1".into())]];
    for t in tables {
        expected.push(vec![Some(t.into()), Some("ids present".into()), Some("1".into())]);
        if t == "hooks_push" {
            let days = env.query_strings("SELECT count(DISTINCT (created_at AT TIME ZONE 'UTC')::date)::text FROM {s}.hooks_push");
            expected.push(vec![Some(t.into()), Some("pushes per day".into()), days[0][0].clone()]);
            expected.push(vec![Some(t.into()), Some("small pushes".into()), Some("1".into())]);
            expected.push(vec![Some("hooks_push_commits".into()), Some("commits have messages".into()), Some("1".into())]);
            expected.sort();
        }
    }
    expected.sort();
    assert_eq!(gated, expected);

    // On demand: the log's share of rejects as SQL computes it, every table's checks.
    let (code, out, err) = run(tier_with(&env, &dir, &["check", "hooks", "--format", "json"]));
    assert_eq!(code, 0, "{err}");
    let evaluations: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    let share = evaluations.iter().find(|e| e["check"] == "few rejects").unwrap()["value"].as_f64().unwrap();
    let by_hand: f64 = client()
        .query_one(
            &"SELECT (SELECT count(*) FROM {s}.hooks_rejects)::float8 / ((SELECT count(*) FROM {s}.hooks_rejects) + (SELECT count(*) FROM {s}.hooks_push)
               + (SELECT count(*) FROM {s}.hooks_issues) + (SELECT count(*) FROM {s}.hooks_create) + (SELECT count(*) FROM {s}.hooks_release)
               + (SELECT count(*) FROM {s}.hooks_other))"
                .replace("{s}", &env.schema),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!((share, by_hand), (1.0 / 701.0, 1.0 / 701.0));
    let max_size = evaluations.iter().find(|e| e["check"] == "small pushes").unwrap()["value"].as_f64();
    assert_eq!(max_size, Some(3.0));
    assert_eq!(evaluations.iter().filter(|e| e["check"] == "ids present").count(), tables.len());
    // One table of the log by its name: its checks only (the log's on it, and its own).
    let (code, out, err) = run(tier_with(&env, &dir, &["check", "hooks_push", "--format", "json"]));
    assert_eq!(code, 0, "{err}");
    let own: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(own.iter().all(|e| e["dataset"] == "hooks_push"), "{out}");
    assert!(own.iter().any(|e| e["check"] == "ids present") && own.iter().any(|e| e["check"] == "small pushes"), "{out}");

    // A push too large fails its table's check: the whole load is rolled back, every table
    // as it was, and the failure names the table and the check.
    let before: Vec<String> =
        ["hooks_push", "hooks_push_commits", "hooks_issues", "hooks_other", "hooks_rejects"].iter().map(|t| env.fingerprint(t)).collect();
    let more = env.write(
        "more.json",
        "{\"type\": \"push\", \"id\": 5000, \"created_at\": \"2026-03-02T10:00:00Z\", \"payload\": {\"ref\": \"r\", \"size\": 9, \"commits\": []}}\n\
         {\"type\": \"issues\", \"id\": 5001, \"created_at\": \"2026-03-02T11:00:00Z\", \"action\": \"opened\", \"issue\": {\"number\": 1, \"labels\": []}}\n",
    );
    let (code, _, err) = run(tier_with(&env, &dir, &["load", "hooks", "--from", more.to_str().unwrap(), "--mode", "append"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("hooks_push: \"small pushes\": 9 is fail > 3") && err.contains("left as it was"), "{err}");
    let after: Vec<String> =
        ["hooks_push", "hooks_push_commits", "hooks_issues", "hooks_other", "hooks_rejects"].iter().map(|t| env.fingerprint(t)).collect();
    assert_eq!(before, after, "a failed gate changed a table");
    assert_eq!(env.count("hooks_push"), kinds["push"] as i64);

    // Mistakes: reject_share is the log's, a kind's check may not repeat the log's name.
    append(&dir.join("hooks/issues.toml"), "[[check]]\nname = \"ids present\"\nmetric = \"row_count\"\nwarn = \"< 1\"\n[[check]]\nname = \"r\"\nmetric = \"reject_share\"\nwarn = \"> 0\"\n");
    let mut cmd = env.tier_plain(&["datasets", "check"]);
    cmd.env("TIER_DATASETS", &dir);
    let (code, out, _) = run(cmd);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("issues.toml:22:8: check \"ids present\" is declared in the log's file too"), "{out}");
    assert!(out.contains("issues.toml:27:10: reject_share measures the whole load's rejects"), "{out}");
}
