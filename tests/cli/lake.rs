//! `load --lake` and `query --lake`: Parquet by day, in step with the database.

use crate::common::*;

pub fn per_day(env: &Env, lake: &str, table: &str) -> Vec<(String, i64)> {
    let q = env.write("days.sql", format!("select date, count(*) as n from {table} group by date order by date"));
    let (code, out, err) = run(env.tier_plain(&["query", "--lake", lake, q.to_str().unwrap(), "--format", "csv"]));
    assert_eq!(code, 0, "{err}");
    out.lines()
        .skip(1)
        .map(|l| {
            let (d, n) = l.split_once(',').unwrap();
            (d.to_string(), n.parse().unwrap())
        })
        .collect()
}

pub fn pg_per_day(env: &Env, table: &str, column: &str) -> Vec<(String, i64)> {
    let sql = format!(
        "SELECT to_char(({column} AT TIME ZONE 'UTC')::date, 'YYYY-MM-DD'), count(*) FROM {}.{table} GROUP BY 1 ORDER BY 1",
        env.schema
    );
    client().query(&sql, &[]).unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
}

#[test]
fn the_lake_follows_the_database_through_replace_append_and_failure() {
    let env = Env::new("lake");
    let lake = env.data().join("lake");
    let lake_s = lake.to_str().unwrap().to_string();
    let data = env.data().to_str().unwrap().to_string();
    let (code, _, err) = run(env.tier_plain(&["gen", "--events", "4000", "--weather", "500", "--seed", "8", "--out", &data]));
    assert_eq!(code, 0, "{err}");
    for _ in 0..2 {
        // Replace twice: the lake holds one copy, like the table.
        let (code, _, err) = run(env.tier(&["load", "--lake", &lake_s, "--lake-format", "hive"]));
        assert_eq!(code, 0, "{err}");
        assert_eq!(per_day(&env, &lake_s, "track_events"), pg_per_day(&env, "track_events", "original_timestamp"));
        assert_eq!(per_day(&env, &lake_s, "weather"), pg_per_day(&env, "weather", "date_time"));
    }
    let day_dirs: Vec<String> =
        std::fs::read_dir(lake.join("weather")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert!(day_dirs.iter().all(|d| d.starts_with("date=20")), "{day_dirs:?}");

    // A failed load leaves the lake as it was.
    let before = per_day(&env, &lake_s, "weather");
    std::fs::create_dir_all(env.data().join("garbage")).unwrap();
    env.write("garbage/weather.json", "not\nan\nexport\n");
    let mut c = std::process::Command::new(tier_bin());
    c.arg("--data-dir").arg(env.data().join("garbage"));
    c.args(["load", "weather", "--lake", &lake_s, "--lake-format", "hive", "--database-url", server_url(), "--schema", &env.schema]);
    assert_eq!(run(c).0, 3);
    assert_eq!(per_day(&env, &lake_s, "weather"), before);

    // Appends add one file per day per load.
    let more = env.data().join("more");
    let (code, _, err) =
        run(env.tier_plain(&["gen", "--events", "10", "--weather", "300", "--seed", "9", "--out", more.to_str().unwrap()]));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(env.tier(&[
        "load",
        "weather",
        "--from",
        more.join("weather.json").to_str().unwrap(),
        "--lake",
        &lake_s,
        "--lake-format",
        "hive",
    ]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(per_day(&env, &lake_s, "weather"), pg_per_day(&env, "weather", "date_time"));
    let staging: Vec<_> = std::fs::read_dir(lake.join("_tier_staging")).unwrap().collect();
    assert!(staging.is_empty(), "nothing left in staging");
}

#[test]
fn lake_queries_need_no_database_and_take_parameters_as_data() {
    let env = Env::new("lakeq");
    let lake = env.data().join("lake");
    env.write(
        "weather.json",
        format!("[{},\n{}", weather_line("Oslo", "2019-06-04 10:00:00", "0.5"), weather_line("O'Brien", "2019-06-05 10:00:00", "0.6")),
    );
    let (code, _, err) = run(env.tier(&["load", "weather", "--lake", lake.to_str().unwrap(), "--lake-format", "hive"]));
    assert_eq!(code, 0, "{err}");
    let q = env.write("q.sql", "select count(*) as n from weather where city = :city");
    for (city, n) in [("Oslo", "1"), ("O'Brien", "1"), ("x' or '1'='1", "0")] {
        let mut c = env.tier_plain(&[
            "query",
            "--lake",
            lake.to_str().unwrap(),
            q.to_str().unwrap(),
            "--format",
            "csv",
            "--param",
            &format!("city={city}"),
        ]);
        c.env("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none");
        let (code, out, err) = run(c);
        assert_eq!(code, 0, "{city}: {err}");
        assert_eq!(out.trim(), format!("n\n{n}"), "{city}");
    }
    let (code, _, err) =
        run(env.tier_plain(&["query", "--lake", env.data().join("nope").to_str().unwrap(), q.to_str().unwrap(), "--param", "city=x"]));
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no lake tables"), "{err}");
}
