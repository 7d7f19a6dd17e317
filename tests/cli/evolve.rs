//! New keys in exports: `on_new_key = "ignore" | "evolve" | "reject"`.

use crate::common::*;

const CONTRACT: &str = "name = \"pings\"\nfile = \"pings/*.json\"\nday = \"at\"\non_new_key = \"ON_NEW_KEY\"\n\
    [[column]]\nname = \"sensor\"\ntype = \"text\"\nrequired = true\n\
    [[column]]\nname = \"at\"\ntype = \"timestamp\"\n\
    [[column]]\nname = \"value\"\ntype = \"double\"\n";

fn env_with(name: &str, on_new_key: &str) -> (Env, String) {
    let env = Env::new(name);
    std::fs::create_dir_all(env.data().join("contracts")).unwrap();
    std::fs::create_dir_all(env.data().join("pings")).unwrap();
    env.write("contracts/pings.toml", CONTRACT.replace("ON_NEW_KEY", on_new_key));
    let contracts = env.data().join("contracts").display().to_string();
    (env, contracts)
}

fn ping(i: u32, extra: &str) -> String {
    format!("{{\"sensor\": \"s{}\", \"at\": \"2024-05-0{} 10:{:02}:00\", \"value\": {}.5{extra}}}", i % 4, 1 + i % 3, i % 60, i)
}

fn load(env: &Env, contracts: &str, file: &str, lines: &[String]) -> (i32, String, String) {
    let path = env.write(&format!("pings/{file}"), lines.join("\n") + "\n");
    run(env.tier(&["--datasets", contracts, "load", "pings", "--from", path.to_str().unwrap(), "--json"]))
}

#[test]
fn evolve_adds_columns_as_keys_appear_and_records_them() {
    let (env, contracts) = env_with("evolve", "evolve");
    // Load 1: only declared keys.
    let (code, _, err) = load(&env, &contracts, "1.json", &(0..20).map(|i| ping(i, "")).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    // Load 2: a number and an object appear.
    let two: Vec<String> = (20..40)
        .map(|i| ping(i, &if i % 2 == 0 { format!(", \"battery\": 0.{i}, \"tags\": {{\"zone\": \"z{i}\"}}") } else { String::new() }))
        .collect();
    let (code, out, err) = load(&env, &contracts, "2.json", &two);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("added battery (double), tags (json)"), "{err}");
    assert!(err.contains("[[column]]\nname = \"battery\"\ntype = \"double\""), "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary[0]["schema_changes"][1]["column"], "tags");
    // Load 3: text appears; a battery value that is no number is a reject, not a wider type.
    let three: Vec<String> = (40..60)
        .map(|i| {
            ping(
                i,
                &match i {
                    40 => ", \"battery\": \"low\"".to_string(),
                    _ => format!(", \"firmware\": \"v1.{i}\", \"battery\": 0.{i}"),
                },
            )
        })
        .collect();
    let (code, out, err) = load(&env, &contracts, "3.json", &three);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("added firmware (text)"), "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary[0]["rejected"]["bad_number"], 1);
    let columns = env.query_strings(
        "SELECT column_name::text, data_type::text FROM information_schema.columns WHERE table_schema = '{s}' AND table_name = 'pings' ORDER BY ordinal_position",
    );
    let columns: Vec<String> = columns.iter().map(|c| format!("{} {}", c[0].as_deref().unwrap(), c[1].as_deref().unwrap())).collect();
    assert_eq!(
        columns,
        [
            "sensor text",
            "at timestamp with time zone",
            "value double precision",
            "load_id bigint",
            "battery double precision",
            "tags jsonb",
            "firmware text"
        ]
    );
    let values = env
        .query_strings("SELECT battery::text, tags ->> 'zone', firmware FROM {s}.pings WHERE value IN (22.5, 23.5, 41.5) ORDER BY value");
    assert_eq!(
        values,
        vec![
            vec![Some("0.22".into()), Some("z22".into()), None],
            vec![None, None, None],
            vec![Some("0.41".into()), None, Some("v1.41".into())],
        ]
    );
    // The ledger lists each change with the load that made it.
    let changes = env.query_strings(
        "SELECT id::text, c ->> 'column', c ->> 'type' FROM {s}.tier_loads, jsonb_array_elements(schema_changes) c ORDER BY id, c ->> 'column'",
    );
    assert_eq!(
        changes,
        vec![
            vec![Some("2".into()), Some("battery".into()), Some("double".into())],
            vec![Some("2".into()), Some("tags".into()), Some("json".into())],
            vec![Some("3".into()), Some("firmware".into()), Some("text".into())],
        ]
    );
    // Until the contract declares them, validate reports the columns it does not know.
    let (code, out, _) = run(env.tier(&["--datasets", &contracts, "validate", "pings"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("undeclared battery; undeclared tags; undeclared firmware"), "{out}");
    // With the printed lines pasted in, it matches.
    let declared = CONTRACT.replace("ON_NEW_KEY", "evolve")
        + "\n[[column]]\nname = \"battery\"\ntype = \"double\"\n\n[[column]]\nname = \"tags\"\ntype = \"json\"\n\n[[column]]\nname = \"firmware\"\ntype = \"text\"\n";
    env.write("contracts/pings.toml", declared);
    let (code, out, err) = run(env.tier(&["--datasets", &contracts, "validate", "pings"]));
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_failed_evolving_load_leaves_the_table_as_it_was() {
    let (env, contracts) = env_with("evolve_fail", "evolve");
    let (code, _, err) = load(&env, &contracts, "1.json", &(0..10).map(|i| ping(i, "")).collect::<Vec<_>>());
    assert_eq!(code, 0, "{err}");
    let before = env.fingerprint("pings");
    // A new key, and too many rejects: the load fails, and its column is not added.
    let bad: Vec<String> = (10..20).map(|i| if i < 16 { "{\"at\": 1}".to_string() } else { ping(i, ", \"rssi\": -70") }).collect();
    let (code, _, err) = load(&env, &contracts, "2.json", &bad);
    assert_eq!(code, 3, "{err}");
    assert_eq!(env.fingerprint("pings"), before);
    let rssi =
        env.query_strings("SELECT count(*)::text FROM information_schema.columns WHERE table_schema = '{s}' AND column_name = 'rssi'");
    assert_eq!(rssi[0][0].as_deref(), Some("0"));
}

#[test]
fn reject_and_ignore_count_unknown_keys_exactly() {
    let lines: Vec<String> = (0..12)
        .map(|i| match i {
            3 | 7 => ping(i, ", \"rssi\": -70"),
            9 => ping(i, ", \"rssi\": -70, \"segment\": {\"a\": 1}"),
            // Unknown key and a missing required value: the missing value is the reason.
            11 => "{\"at\": \"2024-05-01 10:00:00\", \"rssi\": 1}".to_string(),
            _ => ping(i, ""),
        })
        .collect();
    let (env, contracts) = env_with("new_key_reject", "reject");
    let (code, out, err) = load(&env, &contracts, "1.json", &lines);
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary[0]["rejected"]["unknown_key"], 3, "{out}");
    assert_eq!(summary[0]["rejected"]["missing_required"], 1, "{out}");
    assert_eq!(summary[0]["loaded"], 8);
    let details = env.query_strings("SELECT line::text, detail FROM {s}.pings_rejects r WHERE reason = 'unknown_key' ORDER BY r.line");
    assert_eq!(details[2], vec![Some("10".into()), Some("not in the contract: \"rssi\", \"segment\"".into())]);

    let (env, contracts) = env_with("new_key_ignore", "ignore");
    let (code, out, err) = load(&env, &contracts, "1.json", &lines);
    assert_eq!(code, 0, "{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary[0]["loaded"], 11);
    assert_eq!(summary[0]["extra_keys"], 5, "{out}");
    let columns =
        env.query_strings("SELECT count(*)::text FROM information_schema.columns WHERE table_schema = '{s}' AND table_name = 'pings'");
    assert_eq!(columns[0][0].as_deref(), Some("4"));
}
