//! `tier query`: saved SQL through connectorx, parameters, formats, read-only.

use crate::common::*;

fn weather_env(name: &str) -> Env {
    let env = Env::new(name);
    let lines = [
        weather_line("Oslo", "2019-06-04 14:05:13", "0.43"),
        weather_line("Oslo", "2019-06-05 14:05:13", "0.5"),
        weather_line("O'Brien; DROP TABLE weather; --", "2019-06-04 14:05:13", "0.61"),
        weather_line("Zurich", "2019-06-04 14:05:13", "null"),
    ];
    env.write("weather.json", format!("[{}", lines.join(",\n")));
    let (code, _, err) = run(env.tier(&["load", "weather"]));
    assert_eq!(code, 0, "{err}");
    env
}

/// Runs `sql` as a saved query through `tier query`; returns (code, stdout, stderr).
pub(crate) fn query(env: &Env, sql: &str, extra: &[&str]) -> (i32, String, String) {
    let path = env.write("q.sql", sql);
    let mut args = vec!["query", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(env.tier(&args))
}

#[test]
fn table_output_has_types_nulls_and_a_row_count() {
    let env = weather_env("q_table");
    let (code, out, err) = query(&env, "select city, humidity, date_time from weather order by city, date_time", &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("text") && out.contains("double") && out.contains("timestamp (UTC)"), "{out}");
    assert!(out.contains("NULL"), "{out}");
    assert!(out.contains("2019-06-05 14:05:13"), "{out}");
    assert!(out.contains("(4 rows)"), "{out}");
    let (code, out, err) = query(&env, "select city from weather order by city", &["--limit", "2"]);
    assert_eq!(code, 0);
    assert!(out.contains("(4 rows)") && !out.contains("Zurich"), "{out}");
    assert!(err.contains("showing 2 of 4 rows"), "{err}");
}

#[test]
fn parameters_are_data_never_sql() {
    let env = weather_env("q_params");
    let sql = "select count(*) as n from weather where city = :city and date_time >= :since::timestamptz";
    let (code, out, err) = query(&env, sql, &["--param", "city=Oslo", "--param", "since=2019-06-05", "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "n\n1");
    for hostile in ["O'Brien; DROP TABLE weather; --", "x' OR '1'='1", "back\\slash'", "$$; drop table weather; $$"] {
        let param = format!("city={hostile}");
        let (code, out, err) = query(&env, sql, &["--param", &param, "--param", "since=2000-01-01", "--format", "csv"]);
        assert_eq!(code, 0, "{hostile}: {err}");
        let expected = if hostile.starts_with("O'Brien") { "1" } else { "0" };
        assert_eq!(out.trim(), format!("n\n{expected}"), "{hostile}");
    }
    assert_eq!(env.count("weather"), 4, "the table survived");
    let (code, _, err) = query(&env, sql, &["--param", "city=nul\u{1}ok", "--param", "since=2000-01-01"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = query(&env, sql, &["--param", "city=Oslo"]);
    assert_eq!(code, 3);
    assert!(err.contains(":since"), "{err}");
    let (code, _, err) = query(&env, sql, &["--param", "city=Oslo", "--param", "since=2000-01-01", "--param", "nope=1"]);
    assert_eq!(code, 3);
    assert!(err.contains(":nope"), "{err}");
}

#[test]
fn every_output_format() {
    let env = weather_env("q_formats");
    let sql = "select city, humidity from weather where city in ('Oslo', 'Zurich') order by city, humidity";
    let (code, out, _) = query(&env, sql, &["--format", "csv"]);
    assert_eq!(code, 0);
    assert_eq!(out, "city,humidity\nOslo,0.43\nOslo,0.5\nZurich,\n");
    let (_, out, _) = query(&env, sql, &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["city"], "Oslo");
    assert_eq!(v[2]["humidity"], serde_json::Value::Null);
    let (_, out, _) = query(&env, sql, &["--format", "ndjson"]);
    assert_eq!(out.lines().count(), 3);
    assert_eq!(serde_json::from_str::<serde_json::Value>(out.lines().nth(1).unwrap()).unwrap()["humidity"], 0.5);
    let parquet = env.data().join("out.parquet");
    let (code, out, err) = query(&env, sql, &["--format", "parquet", "--output", parquet.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty());
    let bytes = std::fs::read(&parquet).unwrap();
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
    let csv = env.data().join("out.csv");
    let (code, _, _) = query(&env, sql, &["--format", "csv", "-o", csv.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(std::fs::read_to_string(csv).unwrap().lines().count(), 4);
}

#[test]
fn queries_are_read_only_unless_write_is_given() {
    let env = weather_env("q_readonly");
    let sql = "with gone as (delete from weather returning 1) select count(*) as n from gone";
    let (code, _, err) = query(&env, sql, &[]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("read-only"), "{err}");
    assert_eq!(env.count("weather"), 4);
    let (code, _, err) = query(&env, sql, &["--write", "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(env.count("weather"), 0);
}

#[test]
fn sql_errors_name_the_file_line_and_column() {
    let env = weather_env("q_errors");
    let (code, _, err) = query(&env, "select city,\n       no_such_column\nfrom weather", &[]);
    assert_eq!(code, 4);
    assert!(err.contains("q.sql:2:8") && err.contains("no_such_column"), "{err}");
    let (code, _, err) = run(env.tier(&["query", "/nonexistent/q.sql"]));
    assert_eq!(code, 3);
    assert!(err.contains("/nonexistent/q.sql"), "{err}");
}

#[test]
fn partitioned_reads_return_the_same_rows() {
    let env = weather_env("q_partitions");
    let sql = "select city, humidity, extract(epoch from date_time)::bigint as ts from weather";
    let (code, whole, err) = query(&env, &format!("{sql} order by ts, city"), &["--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    for parts in ["1", "2", "3", "7"] {
        let (code, out, err) = query(&env, sql, &["--format", "csv", "--partition-on", "ts", "--partitions", parts]);
        assert_eq!(code, 0, "{err}");
        let mut got: Vec<&str> = out.lines().skip(1).collect();
        let mut want: Vec<&str> = whole.lines().skip(1).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{parts} partitions");
    }
    let (code, _, err) = query(&env, sql, &["--partition-on", "nope"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn large_results_stream_whole_in_every_file_format() {
    let env = weather_env("q_stream");
    // Several of the reader's 64K-row batches, from two connections.
    let sql = "select x::bigint as x, (x % 7)::float8 / 2 as half, 'row ' || x as label from generate_series(1, 150000) x";
    let extra = ["--partition-on", "x", "--partitions", "2"];
    let (code, out, err) = query(&env, sql, &[&["--format", "csv"], &extra[..]].concat());
    assert_eq!(code, 0, "{err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("x,half,label"), "one header");
    let xs: std::collections::BTreeSet<u64> = lines.map(|l| l.split(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!((xs.len(), xs.first(), xs.last()), (150_000, Some(&1), Some(&150_000)));
    let (code, out, _) = query(&env, sql, &[&["--format", "ndjson"], &extra[..]].concat());
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 150_000);
    let parquet = env.data().join("big.parquet");
    let (code, _, err) = query(&env, sql, &[&["--format", "parquet", "-o", parquet.to_str().unwrap()], &extra[..]].concat());
    assert_eq!(code, 0, "{err}");
    use polars::prelude::*;
    let df = ParquetReader::new(std::fs::File::open(&parquet).unwrap()).finish().unwrap();
    assert_eq!(df.height(), 150_000);
    assert_eq!(df.column("x").unwrap().as_materialized_series().sum::<i64>().unwrap(), 150_000 * 150_001 / 2);
    assert_eq!(df.column("label").unwrap().dtype(), &DataType::String);
}

#[test]
fn a_query_that_fails_midway_leaves_no_partial_file() {
    let env = weather_env("q_partial");
    // The server has sent 100,000 rows (written as batches) when the division fails: CSV
    // streamed from the server's COPY, Parquet decoded from its binary COPY.
    let sql = "select x, 1 / (100001 - x) as y from generate_series(1, 200000) x";
    for format in ["csv", "parquet"] {
        let out = env.data().join(format!("keep.{format}"));
        std::fs::write(&out, "earlier\n").unwrap();
        let (code, _, err) = query(&env, sql, &["--format", format, "-o", out.to_str().unwrap()]);
        assert_eq!(code, 4, "{format}: {err}");
        assert!(err.contains("division by zero"), "{format}: {err}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "earlier\n", "{format}: the earlier file is untouched");
    }
    let leftovers: Vec<_> = std::fs::read_dir(env.data())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".tier-query-"))
        .collect();
    assert!(leftovers.is_empty(), "no temporary file is left: {leftovers:?}");
}

#[test]
fn csv_is_the_servers_own() {
    let env = weather_env("q_server_csv");
    // Formatted by the server: any type (numeric needs no cast), timestamps in UTC, quoting as COPY does.
    let sql = "select 1.50::numeric as amount, true as ok, '2019-06-04 16:05:13+02'::timestamptz as at, \
               '{\"a\": [1, 2]}'::jsonb as doc, 'say \"hi\", then go' as note, null::text as nothing";
    let (code, out, err) = query(&env, sql, &["--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "amount,ok,at,doc,note,nothing\n1.50,t,2019-06-04 14:05:13+00,\"{\"\"a\"\": [1, 2]}\",\"say \"\"hi\"\", then go\",\n");
    // The same bytes as psql's \copy of the same query.
    let psql = std::process::Command::new("psql")
        .arg(server_url())
        .args(["-qAtX", "-c", "SET TimeZone = 'UTC'", "-c", &format!("\\copy ({sql}) TO STDOUT (FORMAT csv, HEADER)")])
        .output()
        .expect("psql");
    assert!(psql.status.success(), "{}", String::from_utf8_lossy(&psql.stderr));
    assert_eq!(out, String::from_utf8_lossy(&psql.stdout));
}

/// Reads a Parquet file the way a user's tool would.
fn read_parquet(path: &std::path::Path) -> polars::prelude::DataFrame {
    use polars::prelude::*;
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

#[test]
fn parquet_holds_each_type_as_the_server_has_it() {
    use polars::prelude::*;
    let env = weather_env("q_parquet_types");
    // Every type the export decodes from the server's binary COPY itself, nulls in every
    // column, and the numerics numeric_out prints in its own way.
    let sql = "select * from (values \
        (1::int2, 2::int4, 3000000000::int8, 1.5::float4, -0.1::float8, true, 'Zürich'::text, 'v'::varchar(3), 'c'::char(3), \
         '{\"a\": [1, 2]}'::json, '{\"b\": 1}'::jsonb, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, \
         '2019-06-04 16:05:13.123456+02'::timestamptz, '1999-12-31 23:59:59'::timestamp, '1970-01-01'::date, 1.50::numeric, \
         'NaN'::float8), \
        (null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, -0.000012300::numeric, null), \
        (-32768, -2147483648, -9223372036854775808, null, 'Infinity', false, '', '', '', 'null', '[]', null, \
         '0001-01-01 00:00:00+00', '2200-03-01 12:00:00', '4000-02-29', 123456789012345678901234567890.5::numeric, null)) \
        as t(i2, i4, i8, f4, f8, ok, txt, vc, ch, js, jb, id, tz, ts, d, num, nan)";
    let path = env.data().join("types.parquet");
    let (code, _, err) = query(&env, sql, &["--format", "parquet", "-o", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let df = read_parquet(&path);
    assert_eq!(df.height(), 3);
    let col = |name: &str| df.column(name).unwrap().as_materialized_series().clone();
    assert_eq!(col("i2").i32().unwrap().into_iter().collect::<Vec<_>>(), [Some(1), None, Some(-32768)]);
    assert_eq!(col("i4").i32().unwrap().into_iter().collect::<Vec<_>>(), [Some(2), None, Some(i32::MIN)]);
    assert_eq!(col("i8").i64().unwrap().into_iter().collect::<Vec<_>>(), [Some(3_000_000_000), None, Some(i64::MIN)]);
    assert_eq!(col("f4").f32().unwrap().get(0), Some(1.5));
    assert_eq!(col("f8").f64().unwrap().into_iter().collect::<Vec<_>>(), [Some(-0.1), None, Some(f64::INFINITY)]);
    assert!(col("nan").f64().unwrap().get(0).unwrap().is_nan());
    assert_eq!(col("ok").bool().unwrap().into_iter().collect::<Vec<_>>(), [Some(true), None, Some(false)]);
    let strings = |name: &str| col(name).str().unwrap().into_iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>();
    let s = |v: &str| Some(v.to_string());
    assert_eq!(strings("txt"), [s("Zürich"), None, s("")]);
    assert_eq!(strings("vc"), [s("v"), None, s("")]);
    // The column's type is bpchar without a length (VALUES merges the rows' types): the
    // server pads only the first value.
    assert_eq!(strings("ch"), [s("c  "), None, s("")]);
    assert_eq!(strings("js"), [s("{\"a\": [1, 2]}"), None, s("null")]);
    assert_eq!(strings("jb"), [s("{\"b\": 1}"), None, s("[]")]);
    assert_eq!(strings("id"), [s("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), None, None]);
    assert_eq!(strings("num"), [s("1.50"), s("-0.000012300"), s("123456789012345678901234567890.5")]);
    // Instants in UTC, without a zone tag; dates as days.
    assert_eq!(col("tz").dtype(), &DataType::Datetime(TimeUnit::Microseconds, None));
    let micros = |name: &str| col(name).datetime().unwrap().physical().into_iter().collect::<Vec<_>>();
    assert_eq!(micros("tz"), [Some(1_559_657_113_123_456), None, Some(-62_135_596_800_000_000)]);
    assert_eq!(micros("ts"), [Some(946_684_799_000_000), None, Some(7_263_259_200_000_000)]);
    assert_eq!(col("d").dtype(), &DataType::Date);
    assert_eq!(col("d").date().unwrap().physical().into_iter().collect::<Vec<_>>(), [Some(0), None, Some(741_501)]);
    // The same rows as NDJSON, through the same reader.
    let (code, out, err) = query(&env, sql, &["--format", "ndjson"]);
    assert_eq!(code, 0, "{err}");
    let first: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!((first["txt"].as_str(), first["num"].as_str(), first["i8"].as_i64()), (Some("Zürich"), Some("1.50"), Some(3_000_000_000)));
}

#[test]
fn parquet_of_bytea_and_of_types_read_as_text() {
    let env = weather_env("q_parquet_fallback");
    // bytea is read as bytes; an interval, which tier's reader does not decode, as the
    // server's text for it.
    let sql = "select x::bigint as x, decode(lpad(to_hex(x), 2, '0'), 'hex') as b, make_interval(secs => x) as i from generate_series(1, 70000) x";
    let path = env.data().join("fallback.parquet");
    let (code, _, err) = query(&env, sql, &["--format", "parquet", "-o", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let df = read_parquet(&path);
    assert_eq!(df.height(), 70_000);
    assert_eq!(df.column("x").unwrap().as_materialized_series().sum::<i64>().unwrap(), 70_000 * 70_001 / 2);
    // The bytes themselves, as connectorx reads bytea.
    let b = df.column("b").unwrap().as_materialized_series().clone();
    assert_eq!(b.dtype(), &polars::prelude::DataType::Binary);
    assert_eq!(b.binary().unwrap().get(0), Some(&[1u8][..]));
    let i = df.column("i").unwrap().as_materialized_series().clone();
    assert_eq!(i.str().unwrap().get(61), Some("00:01:02"));
}

#[test]
fn a_timestamp_a_parquet_file_cannot_hold_is_an_error_naming_the_column() {
    let env = weather_env("q_parquet_infinity");
    let path = env.data().join("keep.parquet");
    std::fs::write(&path, "earlier").unwrap();
    let (code, _, err) = query(&env, "select 'infinity'::timestamptz as forever", &["--format", "parquet", "-o", path.to_str().unwrap()]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("forever") && err.contains("infinite") && err.contains("cast it"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "earlier", "the earlier file is untouched");
}
