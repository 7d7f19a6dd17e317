//! `tier load` against a real PostgreSQL: framings, defects, modes, the round trip.

use crate::common::*;

fn three_weather() -> Vec<String> {
    vec![
        weather_line("Zurich", "2019-06-04 14:05:13", "0.43"),
        weather_line("Oslo", "2019-06-04T15:05:13Z", "\"0.5\""),
        weather_line("Berlin", "2019-06-04 16:05:13", "0.61"),
    ]
}

#[test]
fn every_framing_loads_the_same_rows() {
    let r = three_weather();
    let pretty = format!(
        "[\n  {},\n  {}\n,\n  {}\n]\n",
        r[0].replace(", ", ",\n    "),
        r[1].replace(", ", ",\n    "),
        r[2].replace(", ", ",\n    ")
    );
    let framings: Vec<(&str, Vec<u8>)> = vec![
        ("bi_unclosed", format!("[{}", r.join(",\n")).into_bytes()),
        ("bi_closed", format!("[{}]", r.join(",\n")).into_bytes()),
        ("trailing_comma", format!("[{},\n]", r.join(",\n")).into_bytes()),
        ("ndjson", format!("{}\n", r.join("\n")).into_bytes()),
        ("pretty", pretty.into_bytes()),
        ("crlf", format!("[{}\r\n", r.join(",\r\n")).into_bytes()),
        ("bom", [&b"\xEF\xBB\xBF"[..], format!("[{}", r.join(",\n")).as_bytes()].concat()),
        ("no_prefix", format!("[{}", r.join(",\n")).replace("weather_data.", "").into_bytes()),
        ("one_line_array", format!("[{}]", r.join(", ")).into_bytes()),
    ];
    let env = Env::new("framing");
    for (name, bytes) in framings {
        env.write("weather.json", &bytes);
        let (code, out, err) = run(env.tier(&["load", "weather"]));
        assert_eq!(code, 0, "{name}: {err}");
        assert!(out.contains("weather"), "{name}: summary on stdout: {out}");
        assert_eq!(env.count("weather"), 3, "{name}");
        assert_eq!(env.count("weather_rejects"), 0, "{name}");
        let rows = env.query_strings(
            "SELECT city, humidity::text, precipintensity::text, to_char(date_time AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') FROM {s}.weather ORDER BY date_time",
        );
        assert_eq!(
            rows,
            vec![
                vec![Some("Zurich".into()), Some("0.43".into()), Some("0.0305".into()), Some("2019-06-04 14:05:13".into())],
                vec![Some("Oslo".into()), Some("0.5".into()), Some("0.0305".into()), Some("2019-06-04 15:05:13".into())],
                vec![Some("Berlin".into()), Some("0.61".into()), Some("0.0305".into()), Some("2019-06-04 16:05:13".into())],
            ],
            "{name}"
        );
    }
}

#[test]
fn every_defect_is_loaded_or_quarantined_with_its_reason_and_line() {
    let env = Env::new("defects");
    let good = weather_line("Zurich", "2019-06-04 14:05:13", "0.43");
    let lines: Vec<Vec<u8>> = vec![
        good.clone().into_bytes(),                                       // 1 ok
        weather_line("Oslo", "2019-06-04 14:05:13", "NaN").into_bytes(), // 2 ok, NaN -> NULL
        b"{\"weather_data.city\": \"Paris\", \"weather_data.date_time\": \"2019-06-04 14:00:00\", \"x.extra\": [1]}".to_vec(), // 3 ok, extra key
        weather_line("Rome", "2019-06-04 14:05:13", "\"0.7\"").into_bytes(), // 4 ok, quoted number
        b"{\"weather_data.city\": null, \"weather_data.date_time\": \"2019-06-04 14:00:00\"}".to_vec(), // 5 missing
        b"{\"weather_data.city\": \"Oslo\"}".to_vec(),                       // 6 missing (absent)
        weather_line("Oslo", "04.06.2019", "0.5").into_bytes(),              // 7 bad_timestamp
        weather_line("Oslo", "2019-06-04 14:05:13", "\"wet\"").into_bytes(), // 8 bad_number
        weather_line("Oslo", "2019-06-04 14:05:13", "1.5").into_bytes(),     // 9 out_of_range
        good.clone().into_bytes(),                                           // 10 duplicate of 1
        b"#### not json ####".to_vec(),                                      // 11 malformed
        b"{\"weather_data.city\": \"\xff\xfe\", \"weather_data.date_time\": \"2019-06-04 14:00:00\"}".to_vec(), // 12 malformed (UTF-8)
        b"{\"weather_data.city\": {\"name\": \"Oslo\"}, \"weather_data.date_time\": \"2019-06-04 14:00:00\"}".to_vec(), // 13 bad_value
        b"{\"weather_data.city\": \"Ber".to_vec(),                           // 14 malformed (cut)
    ];
    let mut file = b"[".to_vec();
    file.extend(lines.join(&b",\n"[..]));
    env.write("weather.json", &file);
    let (code, out, err) = run(env.tier(&["load", "weather", "--json", "--max-reject-ratio", "1"]));
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary[0]["records"], 14);
    assert_eq!(summary[0]["loaded"], 4);
    assert_eq!(summary[0]["nan_as_null"], 1);
    assert_eq!(summary[0]["extra_keys"], 1);
    let rejects = env.query_strings("SELECT r.line::text, r.reason FROM {s}.weather_rejects r ORDER BY r.line");
    let expect = [
        ("5", "missing_required"),
        ("6", "missing_required"),
        ("7", "bad_timestamp"),
        ("8", "bad_number"),
        ("9", "out_of_range"),
        ("10", "duplicate"),
        ("11", "malformed"),
        ("12", "malformed"),
        ("13", "bad_value"),
        ("14", "malformed"),
    ];
    assert_eq!(rejects, expect.iter().map(|(l, r)| vec![Some(l.to_string()), Some(r.to_string())]).collect::<Vec<_>>());
    // The exact bytes of the invalid UTF-8 record are kept.
    let raw: Vec<u8> =
        client().query_one(&format!("SELECT raw_bytes FROM {}.weather_rejects WHERE line = 12", env.schema), &[]).unwrap().get(0);
    assert_eq!(raw, lines[11]);
    let ledger = env.query_strings(
        "SELECT records::text, loaded::text, rejected::text, status, (rejected_by_reason->>'malformed') FROM {s}.tier_loads",
    );
    assert_eq!(ledger, vec![vec![Some("14".into()), Some("4".into()), Some("10".into()), Some("ok".into()), Some("3".into())]]);
    let nan = env.query_strings("SELECT coalesce(humidity::text, 'NULL') FROM {s}.weather WHERE city = 'Oslo'");
    assert_eq!(nan, vec![vec![Some("NULL".into())]]);
}

#[test]
fn generated_exports_round_trip_to_the_planted_counts() {
    let env = Env::new("roundtrip");
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) =
        run(env.tier_plain(&["gen", "--events", "5000", "--weather", "800", "--seed", "9", "--defect-share", "0.2", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(env.data().join("gen-manifest.json")).unwrap()).unwrap();
    let (code, _, err) = run(env.tier(&["load"]));
    assert_eq!(code, 0, "{err}");
    for table in ["track_events", "weather"] {
        let planted = &manifest[table];
        let row = client()
            .query_one(
                &format!(
                    "SELECT records, loaded, rejected, rejected_by_reason::text, warnings::text FROM {}.tier_loads WHERE table_name = $1",
                    env.schema
                ),
                &[&table],
            )
            .unwrap();
        let (records, loaded, rejected): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        assert_eq!(records, planted["records"].as_i64().unwrap(), "{table}");
        assert_eq!(loaded, planted["loaded"].as_i64().unwrap(), "{table}");
        assert_eq!(loaded + rejected, records, "{table}: nothing lost");
        let by_reason: serde_json::Value = serde_json::from_str(&row.get::<_, String>(3)).unwrap();
        assert_eq!(by_reason, planted["rejected"], "{table}");
        let warnings: serde_json::Value = serde_json::from_str(&row.get::<_, String>(4)).unwrap();
        assert_eq!(warnings["nan_as_null"], planted["nan_as_null"], "{table}");
        assert_eq!(warnings["extra_keys"], planted["extra_keys"], "{table}");
        assert_eq!(env.count(table), loaded);
        assert_eq!(env.count(&format!("{table}_rejects")), rejected);
    }
}

#[test]
fn empty_input_is_an_error_and_keeps_the_table() {
    let env = Env::new("empty");
    env.write("weather.json", format!("[{}", three_weather().join(",\n")));
    assert_eq!(run(env.tier(&["load", "weather"])).0, 0);
    let before = env.fingerprint("weather");
    for empty in ["", "[", "[\n]\n", "   \n"] {
        env.write("weather.json", empty);
        let (code, _, err) = run(env.tier(&["load", "weather"]));
        assert_eq!(code, 3, "{empty:?}: {err}");
        assert!(err.contains("weather.json") && err.contains("no records"), "{err}");
        assert_eq!(env.fingerprint("weather"), before);
    }
    let (code, _, err) = run(env.tier(&["load", "weather", "--allow-empty"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.count("weather"), 0);
}

#[test]
fn a_garbage_file_does_not_replace_good_data() {
    let env = Env::new("garbage");
    env.write("weather.json", format!("[{}", three_weather().join(",\n")));
    assert_eq!(run(env.tier(&["load", "weather"])).0, 0);
    let (before, rejects_before) = (env.fingerprint("weather"), env.fingerprint("weather_rejects"));
    env.write("weather.json", "this is\nnot an export\nat all\n");
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("3 of 3 records rejected") && err.contains("malformed"), "{err}");
    assert_eq!(env.fingerprint("weather"), before);
    assert_eq!(env.fingerprint("weather_rejects"), rejects_before);
    let failed = env.query_strings("SELECT status FROM {s}.tier_loads ORDER BY id");
    assert_eq!(failed, vec![vec![Some("ok".into())], vec![Some("failed".into())]]);
}

#[test]
fn append_refuses_a_file_already_loaded_unless_forced() {
    let env = Env::new("append");
    env.write("weather.json", format!("[{}", three_weather().join(",\n")));
    assert_eq!(run(env.tier(&["load", "weather", "--mode", "append"])).0, 0);
    let (code, _, err) = run(env.tier(&["load", "weather", "--mode", "append"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("already loaded"), "{err}");
    assert_eq!(env.count("weather"), 3);
    let (code, _, err) = run(env.tier(&["load", "weather", "--mode", "append", "--force"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.count("weather"), 6);
    let modes = env.query_strings("SELECT mode, status FROM {s}.tier_loads WHERE status = 'ok'");
    assert_eq!(modes.len(), 2);
}

#[test]
fn missing_file_and_unreachable_database_are_clear_errors() {
    let env = Env::new("errors");
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 3);
    assert!(err.contains("weather.json: no such file"), "{err}");

    env.write("weather.json", format!("[{}", three_weather().join(",\n")));
    let mut cmd = std::process::Command::new(tier_bin());
    cmd.arg("--data-dir").arg(env.data());
    cmd.args(["load", "weather", "--database-url", "postgresql://tier:hunter2@127.0.0.1:1/db?connect_timeout=2"]);
    let (code, out, err) = run(cmd);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("cannot connect") && err.contains("127.0.0.1:1"), "{err}");
    assert!(!err.contains("hunter2") && !out.contains("hunter2"), "password leaked: {err}");
}

#[test]
fn track_events_keep_every_column() {
    let env = Env::new("events");
    let line = "{\"segment_tracks.original_timestamp_time\": \"2019-05-13 14:23:41\", \"segment_tracks.event_name\": \"Signup Started\", \
        \"segment_tracks.context_timezone\": \"Europe/Oslo\", \"segment_tracks.context_os_version\": \"12.2\", \"segment_tracks.context_os_name\": \"iOS\", \
        \"segment_tracks.context_device_type\": \"ios\", \"segment_tracks.context_device_model\": \"iPhone11,6\", \"segment_tracks.context_device_manufacturer\": \"Apple\", \
        \"segment_tracks.context_device_id\": \"11551203-2950-4157-B927-4488468B7086\", \"segment_tracks.context_app_version\": \"3.0.5\", \
        \"segment_tracks.context_app_name\": \"Tier\", \"segment_tracks.context_app_build\": \"3.0.5.2\", \
        \"segment_tracks.anonymous_id\": \"97311ADA-DF6E-4534-8741-01EF9CE8A1E6\", \"segment_tracks.received_time\": \"2019-05-13 14:23:46\", \
        \"segment_tracks.sent_time\": \"2019-05-13 14:23:46\", \"segment_tracks.properties_rating\": \"4\"}";
    env.write("track_events.json", format!("[{line}"));
    let (code, _, err) = run(env.tier(&["load", "track_events"]));
    assert_eq!(code, 0, "{err}");
    let row = env.query_strings(
        "SELECT anonymous_id, app_build, app_name, app_version, device_id, device_manufacturer, device_model, device_type, os_name, os_version, timezone, event_name, properties_rating::text, \
         to_char(original_timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), to_char(sent_time AT TIME ZONE 'UTC', 'HH24:MI:SS'), to_char(received_time AT TIME ZONE 'UTC', 'HH24:MI:SS') FROM {s}.track_events",
    );
    let expect = [
        "97311ADA-DF6E-4534-8741-01EF9CE8A1E6",
        "3.0.5.2",
        "Tier",
        "3.0.5",
        "11551203-2950-4157-B927-4488468B7086",
        "Apple",
        "iPhone11,6",
        "ios",
        "iOS",
        "12.2",
        "Europe/Oslo",
        "Signup Started",
        "4",
        "2019-05-13 14:23:41",
        "14:23:46",
        "14:23:46",
    ];
    assert_eq!(row, vec![expect.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>()]);
}

#[test]
fn a_replaced_table_has_its_statistics_and_no_old_table_when_the_load_ends() {
    let env = Env::new("after_commit");
    env.write("weather.json", format!("[{}", three_weather().join(",\n")));
    for _ in 0..2 {
        let (code, _, err) = run(env.tier(&["load", "weather"]));
        assert_eq!(code, 0, "{err}");
    }
    // ANALYZE ran after the commit (a table only COPYed into has no row estimate: -1), and
    // the swapped-out tables are dropped, both before the command returned.
    let stats = env.query_strings(
        "SELECT c.reltuples::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = '{s}' AND c.relname = 'weather'",
    );
    assert_eq!(stats, vec![vec![Some("3".to_string())]]);
    let leftovers = env.query_strings("SELECT tablename::text FROM pg_tables WHERE schemaname = '{s}' AND tablename LIKE '%tier_old'");
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
