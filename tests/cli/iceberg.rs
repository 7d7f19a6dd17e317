//! `load --lake DIR --lake-format iceberg`: an Apache Iceberg table per table, its catalog
//! in the load's database, each load one snapshot committed in the load's own transaction.
//! Read back by pyiceberg (its SqlCatalog on the same PostgreSQL) and DuckDB's iceberg
//! extension, never by tier.

use crate::common::*;

/// What the readers saw of one lake table (tests/iceberg_read.py).
pub struct Seen {
    per_day: Vec<(String, i64)>,
    sum: f64,
    duckdb_per_day: Vec<(String, i64)>,
    duckdb_sum: f64,
    /// (snapshot id, operation, tier load id: -1 for none), oldest first.
    pub snapshots: Vec<(i64, String, i64)>,
    /// The current schema's (field id, name), and how many schemas the table has had.
    fields: Vec<(i64, String)>,
    schemas: i64,
    /// The data files of the current snapshot.
    files: Vec<String>,
}

fn read_lake(env: &Env, table: &str, day: &str, measure: &str) -> Seen {
    read_lake_at(env, None, table, day, measure)
}

/// `s3`: the endpoint of the object storage holding the lake.
fn read_lake_at(env: &Env, s3: Option<&str>, table: &str, day: &str, measure: &str) -> Seen {
    let vars: Vec<(&str, &str)> = s3.map(|e| ("S3_ENDPOINT", e)).into_iter().collect();
    read_lake_with(env, &vars, table, day, measure)
}

/// The readers with these environment variables (tests/iceberg_read.py).
fn read_lake_with(env: &Env, vars: &[(&str, &str)], table: &str, day: &str, measure: &str) -> Seen {
    let venv = python_venv("requirements-iceberg.txt");
    let (url, _, _, _) = url_with_password();
    let (base, _) = url.split_once('?').unwrap_or((&url, ""));
    // The catalog's tables are in the load's schema: the connection looks there first.
    let catalog_url = format!("{}?options=-csearch_path%3D{}", base.replacen("postgresql://", "postgresql+psycopg2://", 1), env.schema);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/iceberg_read.py");
    let mut reader = std::process::Command::new(venv.join("bin/python"));
    reader.envs(vars.iter().copied());
    let out = reader.arg(script).args([&catalog_url, &env.schema, table, day, measure]).output().expect("run the Iceberg readers");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let days = |m: &serde_json::Value| {
        let mut d: Vec<(String, i64)> = m.as_object().unwrap().iter().map(|(k, n)| (k.clone(), n.as_i64().unwrap())).collect();
        d.sort();
        d
    };
    Seen {
        per_day: days(&v["pyiceberg"]["per_day"]),
        sum: v["pyiceberg"]["sum"].as_f64().unwrap_or(0.0),
        duckdb_per_day: days(&v["duckdb"]["per_day"]),
        duckdb_sum: v["duckdb"]["sum"].as_f64().unwrap_or(0.0),
        snapshots: v["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let load = s["load"].as_str().map_or(-1, |l| l.parse().unwrap());
                (s["id"].as_i64().unwrap(), s["operation"].as_str().unwrap().to_string(), load)
            })
            .collect(),
        fields: v["fields"].as_array().unwrap().iter().map(|f| (f[0].as_i64().unwrap(), f[1].as_str().unwrap().to_string())).collect(),
        schemas: v["schemas"].as_i64().unwrap(),
        files: v["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect(),
    }
}

/// What Apache Spark with Iceberg's runtime (a JdbcCatalog on the same PostgreSQL) reads of
/// a lake table, checked against PostgreSQL and the ledger (tests/iceberg_read_spark.py).
fn assert_spark_reads_the_table(env: &Env, table: &str, day: &str, measure: &str) {
    assert_spark_reads_the_table_at(env, None, table, day, measure)
}

/// `s3`: the endpoint of the object storage holding the lake (read with Iceberg's S3FileIO).
fn assert_spark_reads_the_table_at(env: &Env, s3: Option<&str>, table: &str, day: &str, measure: &str) {
    let venv = python_venv("requirements-spark.txt");
    let mut jars = vec![
        maven_jar("org.apache.iceberg", "iceberg-spark-runtime-3.5_2.12", "1.10.0"),
        maven_jar("org.postgresql", "postgresql", "42.7.8"),
    ];
    if s3.is_some() {
        jars.push(maven_jar("org.apache.iceberg", "iceberg-aws-bundle", "1.10.0"));
    }
    let jars: Vec<String> = jars.iter().map(|j| j.display().to_string()).collect();
    let (url, password, host, port) = url_with_password();
    let database = url.rsplit('/').next().unwrap_or("postgres").to_string();
    let jdbc = format!("jdbc:postgresql://{host}:{port}/{database}?currentSchema={}", env.schema);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/iceberg_read_spark.py");
    let mut spark = std::process::Command::new(venv.join("bin/python"));
    if let Some(endpoint) = s3 {
        spark.env("S3_ENDPOINT", endpoint);
    }
    let out = spark
        .arg(script)
        .args([&jars.join(","), &jdbc, "postgres", password.as_deref().unwrap_or(""), &env.schema, table, day, measure])
        .output()
        .expect("run Spark");
    assert!(out.status.success(), "Spark: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let mut per_day: Vec<(String, i64)> = v["per_day"].as_object().unwrap().iter().map(|(k, n)| (k.clone(), n.as_i64().unwrap())).collect();
    per_day.sort();
    let (pg_days, pg_sum) = pg_side(env, table, day, measure);
    assert_eq!(per_day, pg_days, "Spark's rows per day");
    let sum = v["sum"].as_f64().unwrap_or(0.0);
    assert!((sum - pg_sum).abs() <= pg_sum.abs() * 1e-9, "Spark's sum of {measure}: {sum} against {pg_sum}");
    let snapshots: Vec<(i64, i64)> = v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["load"].as_str().unwrap().parse().unwrap(), s["id"].as_i64().unwrap()))
        .collect();
    let mut snapshots = snapshots;
    snapshots.sort();
    assert_eq!(snapshots, ledger_snapshots(env, table), "Spark's snapshots (load, id) against the ledger");
}

/// The table's rows per UTC day and a column's sum, as PostgreSQL has them.
fn pg_side(env: &Env, table: &str, day: &str, measure: &str) -> (Vec<(String, i64)>, f64) {
    let per_day = crate::lake::pg_per_day(env, table, day);
    let sum: Option<f64> = client().query_one(&format!("SELECT sum({measure})::float8 FROM {}.{table}", env.schema), &[]).unwrap().get(0);
    (per_day, sum.unwrap_or(0.0))
}

/// The ledger's loads of a table that committed (those a later replace superseded too),
/// with the snapshot each recorded.
fn ledger_snapshots(env: &Env, table: &str) -> Vec<(i64, i64)> {
    let sql = format!(
        "SELECT id, (s->>'snapshot')::bigint FROM {}.tier_loads, jsonb_array_elements(lake_snapshots) s
         WHERE status IN ('ok', 'replaced') AND s->>'table' = $1 ORDER BY id",
        env.schema
    );
    client().query(&sql, &[&table]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
}

pub fn assert_lake_is_the_table(env: &Env, table: &str, day: &str, measure: &str) -> Seen {
    assert_lake_at_is_the_table(env, None, table, day, measure)
}

fn assert_lake_at_is_the_table(env: &Env, s3: Option<&str>, table: &str, day: &str, measure: &str) -> Seen {
    let seen = read_lake_at(env, s3, table, day, measure);
    let (per_day, sum) = pg_side(env, table, day, measure);
    assert_eq!(seen.per_day, per_day, "pyiceberg's rows per day");
    assert_eq!(seen.duckdb_per_day, per_day, "DuckDB's rows per day");
    for (engine, s) in [("pyiceberg", seen.sum), ("DuckDB", seen.duckdb_sum)] {
        assert!((s - sum).abs() <= sum.abs() * 1e-9, "{engine}'s sum of {measure}: {s} against {sum}");
    }
    // One snapshot per load the ledger calls ok, each naming its load (and those of `lake
    // compact`, naming none).
    let ledger = ledger_snapshots(env, table);
    // By load: two loads at once commit in either order.
    let mut snapshots: Vec<(i64, i64)> = seen.snapshots.iter().filter(|s| s.2 >= 0).map(|(id, _, load)| (*load, *id)).collect();
    snapshots.sort();
    assert_eq!(snapshots, ledger, "snapshots (load, id) against the ledger");
    seen
}

#[test]
fn the_iceberg_lake_is_the_table_through_replace_append_and_failure() {
    let env = Env::new("ice");
    let lake = env.data().join("lake");
    let lake_s = lake.to_str().unwrap().to_string();
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "3000", "--weather", "800", "--seed", "4", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    let iceberg = ["--lake", &lake_s, "--lake-format", "iceberg"];

    // Replace twice: each load an overwrite snapshot, the lake one copy like the table.
    for _ in 0..2 {
        let (code, _, err) = run(env.tier(&[&["load"][..], &iceberg].concat()));
        assert_eq!(code, 0, "{err}");
    }
    let seen = assert_lake_is_the_table(&env, "weather", "date_time", "temperature");
    assert_eq!(seen.snapshots.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(), ["overwrite", "overwrite"]);
    assert_lake_is_the_table(&env, "track_events", "original_timestamp", "properties_rating");
    // Partitioned by day: the files of a day are under its partition's directory.
    let data_dirs: Vec<String> = std::fs::read_dir(lake.join(&env.schema).join("weather").join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(!data_dirs.is_empty() && data_dirs.iter().all(|d| d.starts_with("date_time_day=20")), "{data_dirs:?}");

    // Appends add a snapshot each, on top of the table.
    let more = env.data().join("more");
    let (code, _, err) =
        run(env.tier_plain(&["gen", "--events", "10", "--weather", "300", "--seed", "9", "--out", more.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let from = more.join("weather.json");
    let (code, _, err) = run(env.tier(&[&["load", "weather", "--from", from.to_str().unwrap()][..], &iceberg].concat()));
    assert_eq!(code, 0, "{err}");
    let seen = assert_lake_is_the_table(&env, "weather", "date_time", "temperature");
    assert_eq!(seen.snapshots.last().unwrap().1, "append");

    // A failing load (too many rejects) leaves the table and the lake as they were, and
    // none of its data files.
    let files_before = data_files(&lake);
    let bad = env.write("bad.json", "[{\"weather_data.city\": \"X\", \"weather_data.date_time\": \"not a time\"},\n{\"nope\": 1}]\n");
    let (code, _, _) =
        run(env.tier(&[&["load", "weather", "--from", bad.to_str().unwrap(), "--max-reject-ratio", "0.1"][..], &iceberg].concat()));
    assert_eq!(code, 3);
    let after = assert_lake_is_the_table(&env, "weather", "date_time", "temperature");
    assert_eq!(after.snapshots, seen.snapshots);
    assert_eq!(data_files(&lake), files_before, "the failed load's data files are gone");
    assert_spark_reads_the_table(&env, "weather", "date_time", "temperature");
}

#[test]
fn two_appends_at_once_each_commit_a_snapshot() {
    let env = Env::new("ice2");
    let lake = env.data().join("lake");
    let lake_s = lake.to_str().unwrap().to_string();
    let mut children = Vec::new();
    for (i, city) in ["Oslo", "Lima"].iter().enumerate() {
        let lines: Vec<String> =
            (0..500).map(|n| weather_line(city, &format!("2019-06-{:02} {:02}:00:00", 1 + n / 24, n % 24), "0.5")).collect();
        let file = env.write(&format!("w{i}.json"), format!("[{}]\n", lines.join(",\n")));
        let mut c = env.tier(&["load", "weather", "--from", file.to_str().unwrap(), "--lake", &lake_s, "--lake-format", "iceberg"]);
        c.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
        children.push(c.spawn().unwrap());
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let seen = assert_lake_is_the_table(&env, "weather", "date_time", "humidity");
    assert_eq!(seen.snapshots.len(), 2);
    assert_eq!(seen.per_day.iter().map(|(_, n)| n).sum::<i64>(), 1000);
}

/// Runs a load of `weather` and kills it (SIGKILL) at its last step, its data files
/// written, just before its commit: the test holds the table's catalog lock meanwhile.
fn kill_before_commit(env: &Env, mut load: std::process::Command) {
    let mut holder = client();
    let key = format!("tier:lake:tier:{}.weather", env.schema);
    holder.execute("SELECT pg_advisory_lock(hashtext($1))", &[&key]).unwrap();
    load.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = load.spawn().unwrap();
    let waiting = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while holder.query_one(waiting, &[]).unwrap().get::<_, i64>(0) == 0 {
        assert!(std::time::Instant::now() < deadline, "the load never reached its commit");
        assert!(child.try_wait().unwrap().is_none(), "the load ended before its commit");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    holder.execute("SELECT pg_advisory_unlock(hashtext($1))", &[&key]).unwrap();
}

/// Every Parquet file under the lake.
fn data_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(data_files(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn a_killed_load_leaves_files_no_snapshot_names() {
    let env = Env::new("icekill");
    let lake = env.data().join("lake");
    let lake_s = lake.to_str().unwrap().to_string();
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "10", "--weather", "600", "--seed", "5", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(env.tier(&["load", "weather", "--lake", &lake_s, "--lake-format", "iceberg"]));
    assert_eq!(code, 0, "{err}");
    let before = assert_lake_is_the_table(&env, "weather", "date_time", "temperature");
    // Hold the table's catalog lock, so the next load stops at its last step, with its data
    // files written, just before its commit; kill it there.
    kill_before_commit(&env, env.tier(&["load", "weather", "--lake", &lake_s, "--lake-format", "iceberg"]));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = assert_lake_is_the_table(&env, "weather", "date_time", "temperature");
    assert_eq!(after.snapshots, before.snapshots);
    assert_eq!(after.files, before.files);
    // Its files are there, named by no snapshot.
    let on_disk: Vec<String> = data_files(&lake).iter().map(|p| format!("file://{}", p.canonicalize().unwrap().display())).collect();
    let orphans: Vec<String> = on_disk.into_iter().filter(|f| !before.files.contains(f)).collect();
    assert!(!orphans.is_empty(), "the killed load had written its data files");
    // The next load commits on top of the table as the catalog has it.
    let (code, _, err) = run(env.tier(&["load", "weather", "--lake", &lake_s, "--lake-format", "iceberg"]));
    assert_eq!(code, 0, "{err}");
    let last = assert_lake_is_the_table(&env, "weather", "date_time", "temperature");
    assert_eq!(last.snapshots.len(), before.snapshots.len() + 1);

    // `lake show` lists the snapshots with their loads.
    let (code, out, err) = run(env.tier(&["lake", "show", "--json"]));
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    let listed: Vec<(i64, i64)> =
        shown[0]["snapshots"].as_array().unwrap().iter().map(|s| (s["load"].as_i64().unwrap(), s["snapshot"].as_i64().unwrap())).collect();
    assert_eq!(listed, ledger_snapshots(&env, "weather"));
    // `lake gc` deletes the killed load's files, and nothing a snapshot uses.
    let (code, out, err) = run(env.tier(&["lake", "gc", "weather", "--grace", "0s"]));
    assert_eq!(code, 0, "{err}");
    let mut deleted: Vec<&str> = out.lines().collect();
    deleted.sort();
    let mut orphans: Vec<&str> = orphans.iter().map(|s| s.as_str()).collect();
    orphans.sort();
    assert_eq!(deleted, orphans);
    assert_lake_is_the_table(&env, "weather", "date_time", "temperature");
    // Expired snapshots' files go at the next gc; the current snapshot reads the same.
    let (code, _, err) = run(env.tier(&["lake", "expire", "weather", "--older-than", "0s"]));
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(env.tier(&["lake", "gc", "weather", "--grace", "0s"]));
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().any(|f| before.files.iter().any(|b| b == f)), "the replaced load's files went: {out}");
    let seen = read_lake(&env, "weather", "date_time", "temperature");
    assert_eq!(seen.snapshots, last.snapshots[last.snapshots.len() - 1..]);
    assert_eq!(seen.files, last.files);
    assert_eq!(seen.per_day, pg_side(&env, "weather", "date_time", "temperature").0);
    let remaining: Vec<String> = data_files(&lake).iter().map(|p| format!("file://{}", p.canonicalize().unwrap().display())).collect();
    assert_eq!(remaining, last.files, "only the current snapshot's data files are left");
}

#[test]
fn a_new_column_is_a_new_field_of_the_lake_table() {
    let env = Env::new("iceevolve");
    std::fs::create_dir_all(env.data().join("contracts")).unwrap();
    env.write(
        "contracts/pings.toml",
        "name = \"pings\"\nday = \"at\"\non_new_key = \"evolve\"\n[[column]]\nname = \"sensor\"\ntype = \"text\"\n\
         [[column]]\nname = \"at\"\ntype = \"timestamp\"\n[[column]]\nname = \"value\"\ntype = \"double\"\n",
    );
    let contracts = env.data().join("contracts").display().to_string();
    // The warehouse as a URL, as Iceberg's catalogs write it.
    let lake = format!("file://{}", env.data().join("lake").display());
    let ping = |i: u32, extra: &str| {
        format!("{{\"sensor\": \"s{}\", \"at\": \"2024-05-0{} 10:{:02}:00\", \"value\": {i}.5{extra}}}", i % 4, 1 + i % 3, i % 60)
    };
    for (file, lines) in [
        ("1.json", (0..20).map(|i| ping(i, "")).collect::<Vec<_>>()),
        ("2.json", (20..40).map(|i| ping(i, &format!(", \"battery\": {i}"))).collect()),
    ] {
        let path = env.write(file, lines.join("\n") + "\n");
        let (code, _, err) = run(env.tier(&[
            "--datasets",
            &contracts,
            "load",
            "pings",
            "--from",
            path.to_str().unwrap(),
            "--lake",
            &lake,
            "--lake-format",
            "iceberg",
        ]));
        assert_eq!(code, 0, "{err}");
    }
    let seen = assert_lake_is_the_table(&env, "pings", "at", "battery");
    assert_lake_is_the_table(&env, "pings", "at", "value");
    // The table's ids stay; the new column gets the next one, in a second schema.
    let names: Vec<(i64, &str)> = seen.fields.iter().map(|(id, n)| (*id, n.as_str())).collect();
    assert_eq!(names, [(1, "sensor"), (2, "at"), (3, "value"), (4, "battery")]);
    assert_eq!(seen.schemas, 2);

    // `lake compact`: each day's two files (one without `battery`) become one, in a
    // `replace` snapshot; the rows read the same.
    assert_eq!(seen.files.len(), 6);
    let (code, _, err) = run(env.tier(&["--datasets", &contracts, "lake", "compact", "pings"]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("3 partition(s) compacted, 6 file(s) into 3"), "{err}");
    let compacted = assert_lake_is_the_table(&env, "pings", "at", "battery");
    assert_lake_is_the_table(&env, "pings", "at", "value");
    assert_eq!(compacted.files.len(), 3);
    assert_eq!(compacted.snapshots.last().map(|s| (s.1.as_str(), s.2)), Some(("replace", -1)));
    // Nothing left to compact: no snapshot.
    let (code, _, err) = run(env.tier(&["--datasets", &contracts, "lake", "compact", "pings"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(read_lake(&env, "pings", "at", "value").snapshots, compacted.snapshots);
}

/// A contract of sensor readings keyed on (sensor, at), by day of `at`: its directory.
fn readings_contract(env: &Env) -> String {
    std::fs::create_dir_all(env.data().join("contracts")).unwrap();
    env.write(
        "contracts/readings.toml",
        "name = \"readings\"\nday = \"at\"\nunique = [\"sensor\", \"at\"]\n[[column]]\nname = \"sensor\"\ntype = \"text\"\n\
         [[column]]\nname = \"at\"\ntype = \"timestamp\"\n[[column]]\nname = \"value\"\ntype = \"double\"\n",
    );
    env.data().join("contracts").display().to_string()
}

#[test]
fn a_merge_rewrites_the_days_it_touched_and_no_other() {
    let env = Env::new("icemerge");
    let contracts = readings_contract(&env);
    let lake = env.data().join("lake").display().to_string();
    let reading = |sensor: u32, day: u32, hour: u32, value: f64| {
        format!("{{\"sensor\": \"s{sensor}\", \"at\": \"2024-03-{day:02} {hour:02}:00:00\", \"value\": {value}}}")
    };
    let merge = |name: &str, lines: Vec<String>| {
        let path = env.write(name, lines.join("\n") + "\n");
        let (code, out, err) = run(env.tier(&[
            "--datasets",
            &contracts,
            "load",
            "readings",
            "--from",
            path.to_str().unwrap(),
            "--mode",
            "merge",
            "--json",
            "--lake",
            &lake,
            "--lake-format",
            "iceberg",
        ]));
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let m = &v[0]["merged"];
        (m["inserted"].as_u64().unwrap(), m["updated"].as_u64().unwrap(), m["unchanged"].as_u64().unwrap())
    };
    // Three days of readings: the lake's first snapshot holds them all.
    let first: Vec<String> =
        (1..=3).flat_map(|d| (0..4).flat_map(move |s| (0..6).map(move |h| (s, d, h)))).map(|(s, d, h)| reading(s, d, h, 1.0)).collect();
    assert_eq!(merge("1.json", first.clone()), (72, 0, 0));
    let one = assert_lake_is_the_table(&env, "readings", "at", "value");
    let day_files =
        |seen: &Seen, day: &str| -> Vec<String> { seen.files.iter().filter(|f| f.contains(&format!("at_day={day}/"))).cloned().collect() };

    // Day 1 again unchanged, day 2 with new values, day 4 new: days 2 and 4 are rewritten,
    // days 1 and 3 keep their files.
    let mut second: Vec<String> = first[..24].to_vec();
    second.extend((0..4).flat_map(|s| (0..6).map(move |h| (s, h))).map(|(s, h)| reading(s, 2, h, 2.5)));
    second.extend((0..3).map(|s| reading(s, 4, 9, 7.0)));
    assert_eq!(merge("2.json", second), (3, 24, 24));
    let two = assert_lake_is_the_table(&env, "readings", "at", "value");
    assert_eq!(two.snapshots.last().unwrap().1, "overwrite");
    for day in ["2024-03-01", "2024-03-03"] {
        assert_eq!(day_files(&two, day), day_files(&one, day), "{day} is untouched");
    }
    assert!(day_files(&two, "2024-03-02").iter().all(|f| !day_files(&one, "2024-03-02").contains(f)), "day 2 is rewritten");
    assert_eq!(day_files(&two, "2024-03-04").len(), 1);

    // Nothing new: a snapshot for the load, and the same files.
    assert_eq!(merge("3.json", first[..6].to_vec()), (0, 0, 6));
    let three = assert_lake_is_the_table(&env, "readings", "at", "value");
    assert_eq!(three.files, two.files);
    assert_eq!(three.snapshots.len(), 3);

    // `query --iceberg --as-of LOAD`: the lake as each load left it, through the catalog.
    let q = env.write("q.sql", "SELECT count(*) AS n, sum(value) AS total FROM readings");
    let loads: Vec<i64> = three.snapshots.iter().map(|s| s.2).collect();
    let as_of = |load: Option<i64>| -> String {
        let mut args = vec!["--datasets".to_string(), contracts.clone(), "query".into(), q.display().to_string(), "--iceberg".into()];
        args.extend(["--format".into(), "csv".into()]);
        if let Some(l) = load {
            args.extend(["--as-of".into(), l.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(|a| a.as_str()).collect();
        let (code, out, err) = run(env.tier(&args));
        assert_eq!(code, 0, "{err}");
        out.lines().nth(1).unwrap_or_default().to_string()
    };
    assert_eq!(as_of(Some(loads[0])), "72,72.0");
    assert_eq!(as_of(Some(loads[1])), "75,129.0");
    assert_eq!(as_of(Some(loads[2])), "75,129.0");
    assert_eq!(as_of(None), "75,129.0");
    assert_eq!(as_of(Some(loads[0] - 1)), "0,0.0", "before the first load the table has no rows");

    // `lake check`: the lake's rows per day (from its manifests) against the table's.
    let (code, out, err) = run(env.tier(&["--datasets", &contracts, "lake", "check", "--json"]));
    assert_eq!(code, 0, "{err}");
    let checked: serde_json::Value = serde_json::from_str(&out).unwrap();
    let days = checked[0]["days"].as_array().unwrap();
    assert_eq!(days.len(), 4);
    assert!(days.iter().all(|d| d["lake_rows"] == d["table_rows"]), "{out}");
    assert_spark_reads_the_table(&env, "readings", "at", "value");
    // A row deleted behind tier's back is a difference on its day (exit 1).
    client().execute(&format!("DELETE FROM {}.readings WHERE sensor = 's0' AND at = '2024-03-04 09:00:00+00'", env.schema), &[]).unwrap();
    let (code, out, _) = run(env.tier(&["--datasets", &contracts, "lake", "check"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.lines().any(|l| l.contains("2024-03-04") && l.contains("DIFFERS")), "{out}");
}

#[test]
fn an_iceberg_lake_in_object_storage_is_the_table() {
    let env = Env::new("ices3");
    let moto = crate::objects::Moto::start(env.data());
    moto.python("s3.create_bucket(Bucket='lake')");
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "10", "--weather", "700", "--seed", "6", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    let tier = |args: &[&str]| {
        let mut c = env.tier(args);
        c.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", crate::objects::SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &moto.url);
        run(c)
    };
    let iceberg = ["--lake", "s3://lake/warehouse", "--lake-format", "iceberg"];
    // A replace, then an append of other days: two snapshots, read from object storage.
    let (code, _, err) = tier(&[&["load", "weather"][..], &iceberg].concat());
    assert_eq!(code, 0, "{err}");
    let first = assert_lake_at_is_the_table(&env, Some(&moto.url), "weather", "date_time", "temperature");
    assert!(
        first.files.iter().all(|f| f.starts_with(&format!("s3://lake/warehouse/{}/weather/data/date_time_day=", env.schema))),
        "{:?}",
        first.files
    );
    let lines: Vec<String> =
        (0..48).map(|n| weather_line("Oslo", &format!("2030-01-{:02} {:02}:00:00", 1 + n / 24, n % 24), "0.5")).collect();
    let more = env.write("more.json", format!("[{}]\n", lines.join(",\n")));
    let (code, _, err) = tier(&[&["load", "weather", "--from", more.to_str().unwrap()][..], &iceberg].concat());
    assert_eq!(code, 0, "{err}");
    let second = assert_lake_at_is_the_table(&env, Some(&moto.url), "weather", "date_time", "temperature");
    assert_eq!(second.snapshots.len(), 2);
    assert_spark_reads_the_table_at(&env, Some(&moto.url), "weather", "date_time", "temperature");
    let orphans = || {
        let (code, out, err) = tier(&["lake", "gc", "weather", "--grace", "0s", "--dry-run"]);
        assert_eq!(code, 0, "{err}");
        out.lines().map(str::to_string).collect::<Vec<String>>()
    };
    assert_eq!(orphans(), Vec::<String>::new());

    // A failing load: no snapshot, and none of its objects left.
    let bad = env.write("bad.json", "[{\"weather_data.city\": \"X\", \"weather_data.date_time\": \"not a time\"},\n{\"nope\": 1}]\n");
    let (code, _, _) = tier(&[&["load", "weather", "--from", bad.to_str().unwrap(), "--max-reject-ratio", "0.1"][..], &iceberg].concat());
    assert_eq!(code, 3);
    assert_eq!(read_lake_at(&env, Some(&moto.url), "weather", "date_time", "temperature").snapshots, second.snapshots);
    assert_eq!(orphans(), Vec::<String>::new());

    // Killed just before its commit (held at the catalog's lock): its objects are named by
    // no snapshot, and are what gc lists.
    let mut c = env.tier(&[&["load", "weather", "--from", more.to_str().unwrap(), "--mode", "append", "--force"][..], &iceberg].concat());
    c.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", crate::objects::SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &moto.url);
    kill_before_commit(&env, c);
    let killed = orphans();
    assert!(!killed.is_empty() && killed.iter().all(|f| f.contains("/weather/data/")), "{killed:?}");
    assert_eq!(read_lake_at(&env, Some(&moto.url), "weather", "date_time", "temperature").snapshots, second.snapshots);
    // A replace again; then the old snapshots expire and gc deletes their objects, only.
    let (code, _, err) = tier(&[&["load", "weather"][..], &iceberg].concat());
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = tier(&["lake", "expire", "weather", "--older-than", "0s"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = tier(&["lake", "gc", "weather", "--grace", "0s"]);
    assert_eq!(code, 0, "{err}");
    let deleted: Vec<&str> = out.lines().collect();
    for f in first.files.iter().chain(&second.files).chain(&killed) {
        assert!(deleted.contains(&f.as_str()), "{f} is deleted");
    }
    let last = read_lake_at(&env, Some(&moto.url), "weather", "date_time", "temperature");
    assert_eq!(last.per_day, pg_side(&env, "weather", "date_time", "temperature").0);
    assert_eq!(last.duckdb_per_day, last.per_day);
    assert_eq!(last.snapshots.len(), 1);
    assert!(last.files.iter().all(|f| !deleted.contains(&f.as_str())));

    // Merges in object storage: the touched day's objects are rewritten, the others kept.
    let contracts = readings_contract(&env);
    let reading = |s: u32, d: u32, v: f64| format!("{{\"sensor\": \"s{s}\", \"at\": \"2024-03-{d:02} 10:00:00\", \"value\": {v}}}");
    let first_merge: Vec<String> = (0..4).flat_map(|s| (1..=3).map(move |d| reading(s, d, 1.0))).collect();
    let second_merge: Vec<String> = (0..4).map(|s| reading(s, 2, 5.0)).collect();
    let mut merged = Vec::new();
    for (name, lines) in [("m1.json", first_merge), ("m2.json", second_merge)] {
        let f = env.write(name, lines.join("\n") + "\n");
        let (code, _, err) = tier(
            &[&["--datasets", &contracts, "load", "readings", "--from", f.to_str().unwrap(), "--mode", "merge"][..], &iceberg].concat(),
        );
        assert_eq!(code, 0, "{err}");
        merged.push(assert_lake_at_is_the_table(&env, Some(&moto.url), "readings", "at", "value"));
    }
    let day =
        |seen: &Seen, d: &str| -> Vec<String> { seen.files.iter().filter(|f| f.contains(&format!("at_day={d}/"))).cloned().collect() };
    assert_eq!(day(&merged[1], "2024-03-01"), day(&merged[0], "2024-03-01"));
    assert_ne!(day(&merged[1], "2024-03-02"), day(&merged[0], "2024-03-02"));
    assert_spark_reads_the_table_at(&env, Some(&moto.url), "readings", "at", "value");

    // Two appends at once: both commit, one on top of the other.
    let before = read_lake_at(&env, Some(&moto.url), "weather", "date_time", "temperature").snapshots.len();
    let mut children = Vec::new();
    for (i, city) in ["Oslo", "Lima"].iter().enumerate() {
        let lines: Vec<String> =
            (0..100).map(|n| weather_line(city, &format!("2033-04-{:02} {:02}:00:00", 1 + n / 24, n % 24), "0.5")).collect();
        let file = env.write(&format!("at-once-{i}.json"), format!("[{}]\n", lines.join(",\n")));
        let mut c = env.tier(&[&["load", "weather", "--from", file.to_str().unwrap(), "--mode", "append"][..], &iceberg].concat());
        c.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", crate::objects::SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &moto.url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        children.push(c.spawn().unwrap());
    }
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let both = read_lake_at(&env, Some(&moto.url), "weather", "date_time", "temperature");
    assert_eq!(both.snapshots.len(), before + 2);
    assert_eq!(both.per_day, pg_side(&env, "weather", "date_time", "temperature").0);
    // Their days have two files each: `lake compact` makes them one, read from S3 and
    // written back there; `query --iceberg` fetches the files and counts the same rows.
    let (code, _, err) = tier(&["lake", "compact", "weather"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("5 partition(s) compacted, 10 file(s) into 5"), "{err}");
    let compacted = read_lake_at(&env, Some(&moto.url), "weather", "date_time", "temperature");
    assert_eq!(compacted.per_day, both.per_day);
    assert_eq!(compacted.duckdb_per_day, both.per_day);
    assert_eq!(compacted.files.len(), both.files.len() - 5);
    let q = env.write("count.sql", "select count(*) as n from weather");
    let (code, out, err) = tier(&["query", q.to_str().unwrap(), "--iceberg", "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("n\n{}\n", env.count("weather")));

    // An evolving load: the new key is a new field of the lake table, in object storage too.
    env.write(
        "contracts/pings.toml",
        "name = \"pings\"\nday = \"at\"\non_new_key = \"evolve\"\n[[column]]\nname = \"sensor\"\ntype = \"text\"\n\
         [[column]]\nname = \"at\"\ntype = \"timestamp\"\n[[column]]\nname = \"value\"\ntype = \"double\"\n",
    );
    for (name, extra) in [("p1.json", ""), ("p2.json", ", \"battery\": 7")] {
        let lines: Vec<String> =
            (0..10).map(|i| format!("{{\"sensor\": \"s{i}\", \"at\": \"2024-05-01 10:0{i}:00\", \"value\": {i}.5{extra}}}")).collect();
        let f = env.write(name, lines.join("\n") + "\n");
        let (code, _, err) =
            tier(&[&["--datasets", &contracts, "load", "pings", "--from", f.to_str().unwrap(), "--mode", "append"][..], &iceberg].concat());
        assert_eq!(code, 0, "{err}");
    }
    let pings = assert_lake_at_is_the_table(&env, Some(&moto.url), "pings", "at", "battery");
    assert_eq!(
        pings.fields.iter().map(|(id, n)| (*id, n.as_str())).collect::<Vec<_>>(),
        [(1, "sensor"), (2, "at"), (3, "value"), (4, "battery")]
    );
    assert_eq!(pings.schemas, 2);
}

#[test]
fn a_lake_begun_on_a_loaded_table_holds_its_earlier_rows_and_a_hive_lake_is_left_alone() {
    let env = Env::new("icefirst");
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "10", "--weather", "500", "--seed", "8", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    // Loaded without a lake, then an append with one: the lake's first snapshot holds both.
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<String> =
        (0..30).map(|n| weather_line("Lima", &format!("2031-02-{:02} {:02}:00:00", 1 + n / 24, n % 24), "0.25")).collect();
    let more = env.write("more.json", format!("[{}]\n", lines.join(",\n")));
    let lake = env.data().join("lake").display().to_string();
    let (code, _, err) = run(env.tier(&[
        "load",
        "weather",
        "--from",
        more.to_str().unwrap(),
        "--mode",
        "append",
        "--lake",
        &lake,
        "--lake-format",
        "iceberg",
    ]));
    assert_eq!(code, 0, "{err}");
    let seen = assert_lake_is_the_table(&env, "weather", "date_time", "temperature");
    assert_eq!(seen.snapshots.len(), 1);
    // `query --lake` reads Hive lakes; an Iceberg one is named, with the way to read it.
    let q = env.write("q.sql", "select count(*) from weather");
    let (code, _, err) = run(env.tier_plain(&["query", "--lake", &lake, q.to_str().unwrap()]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("holds an Iceberg lake") && err.contains("tier query --iceberg"), "{err}");

    // Where a Hive lake is, an Iceberg lake is refused, saying what to do; nothing loads.
    let hive = env.data().join("hive").display().to_string();
    let append_with = |format: &str| {
        let from = more.to_str().unwrap();
        run(env.tier(&["load", "weather", "--from", from, "--mode", "append", "--force", "--lake", &hive, "--lake-format", format]))
    };
    let (code, _, err) = append_with("hive");
    assert_eq!(code, 0, "{err}");
    let rows = env.query_strings("SELECT count(*)::text FROM {s}.weather");
    let (code, _, err) = append_with("iceberg");
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("holds a Hive lake") && err.contains("--lake OTHER --lake-format iceberg"), "{err}");
    assert_eq!(env.query_strings("SELECT count(*)::text FROM {s}.weather"), rows);
    // The same directory named by a file:// URL.
    let url = format!("file://{hive}");
    let from = more.to_str().unwrap();
    let (code, _, err) =
        run(env.tier(&["load", "weather", "--from", from, "--mode", "append", "--force", "--lake", &url, "--lake-format", "iceberg"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("holds a Hive lake"), "{err}");
    assert_eq!(env.query_strings("SELECT count(*)::text FROM {s}.weather"), rows);
}

#[test]
fn the_catalog_can_have_another_name() {
    let env = Env::new("icecat");
    let lines: Vec<String> =
        (0..40).map(|n| weather_line("Oslo", &format!("2032-03-{:02} {:02}:00:00", 1 + n / 24, n % 24), "0.5")).collect();
    let file = env.write("w.json", format!("[{}]\n", lines.join(",\n")));
    let lake = env.data().join("lake").display().to_string();
    let (code, _, err) =
        run(env.tier(&["load", "weather", "--from", file.to_str().unwrap(), "--lake", &lake, "--lake-catalog", "lakehouse"]));
    assert_eq!(code, 0, "{err}");
    let names = env.query_strings("SELECT catalog_name || '.' || table_namespace || '.' || table_name FROM {s}.iceberg_tables");
    assert_eq!(names, vec![vec![Some(format!("lakehouse.{}.weather", env.schema))]]);
    let seen = read_lake_with(&env, &[("CATALOG", "lakehouse")], "weather", "date_time", "humidity");
    assert_eq!(seen.per_day, pg_side(&env, "weather", "date_time", "humidity").0);
    // The lake commands look in the catalog they are told (TIER_LAKE_CATALOG or the flag).
    let (code, _, err) = run(env.tier(&["lake", "show"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no lake tables"), "{err}");
    let mut show = env.tier(&["lake", "show", "--json"]);
    show.env("TIER_LAKE_CATALOG", "lakehouse");
    let (code, out, err) = run(show);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown[0]["snapshots"].as_array().map(|s| s.len()), Some(1));
}
