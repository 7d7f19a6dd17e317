//! The Airflow DAG (deploy/airflow/tier_load_dag.py) run for real: `airflow dags test` with a
//! pinned Apache Airflow (installed by the test into a virtualenv), loading objects from a
//! local S3-compatible server into the test PostgreSQL, one mapped task per object.

use std::path::Path;
use std::process::Command;

use crate::common::*;
use crate::objects::{gz_exports, upload, Moto, CONTRACT, SECRET};

fn airflow(venv: &Path, home: &Path, moto: &Moto, env: &Env, contracts: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(venv.join("bin/airflow"))
        .args(args)
        .env("AIRFLOW_HOME", home)
        .env("AIRFLOW__CORE__DAGS_FOLDER", Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/airflow"))
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        .env("TIER_BIN", tier_bin())
        .env("TIER_LANDING", "pings=s3://lake/raw/")
        .env("TIER_DATASETS", contracts)
        .env("DATABASE_URL", server_url())
        .env("TIER_SCHEMA", &env.schema)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &moto.url)
        .output()
        .expect("run airflow");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn the_dag_loads_every_landed_object_once_and_a_second_run_loads_nothing() {
    let venv = python_venv("requirements-airflow.txt");
    let env = Env::new("airflow");
    std::fs::create_dir_all(env.data().join("contracts")).unwrap();
    env.write("contracts/pings.toml", CONTRACT);
    let contracts = env.data().join("contracts").display().to_string();
    let moto = Moto::start(env.data());
    moto.python("s3.create_bucket(Bucket='lake')");
    let files = gz_exports(&env.data().join("local"), 8, 1_000);
    upload(&moto, &files, "raw/");
    let home = env.data().join("airflow");
    let run_airflow = |args: &[&str]| airflow(&venv, &home, &moto, &env, &contracts, args);

    let (code, out) = run_airflow(&["db", "migrate"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run_airflow(&["pools", "set", "tier_loads", "2", "tier loads"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = run_airflow(&["dags", "test", "tier_load", "2024-01-01"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("state=success"), "{out}");
    // One mapped load task per object, then the validation.
    for i in 0..8 {
        assert!(
            out.contains(&format!("task_id=load_pings, run_id=manual__2024-01-01T00:00:00+00:00, map_index={i},")),
            "map index {i}: {out}"
        );
    }
    assert!(out.contains("task_id=validate_pings"), "{out}");
    assert_eq!(env.count("pings"), 8_000);
    let per_file = env.query_strings("SELECT file, count(*)::text FROM {s}.tier_loads WHERE status = 'ok' GROUP BY file ORDER BY file");
    assert_eq!(per_file.len(), 8);
    assert!(per_file.iter().all(|r| r[1].as_deref() == Some("1")), "{per_file:?}");
    assert!(!out.contains(SECRET), "a credential in the task logs");

    // The next run (a retry, a backfill, the next hour) loads nothing again.
    let (code, out) = run_airflow(&["dags", "test", "tier_load", "2024-01-02"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("state=success"), "{out}");
    assert_eq!(env.count("pings"), 8_000);
    let ledger = env.query_strings("SELECT count(*)::text FROM {s}.tier_loads");
    assert_eq!(ledger[0][0].as_deref(), Some("8"), "the second run recorded loads");
}
