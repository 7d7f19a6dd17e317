#!/usr/bin/env python3
"""Reads a tier lake back with a real engine other than Polars (PySpark, local mode) and
compares its rows per day with PostgreSQL's. Not part of `cargo test`:

    pip install pyspark          # Java 17 must be installed
    cargo run --release -- load --lake lake
    python3 scripts/check_lake_with_spark.py --lake lake [--database-url URL] [--schema public]

Exit 0 when every table's per-day counts match, 1 otherwise.
"""
import argparse, json, os, subprocess, sys, tempfile

TABLES = {"track_events": "original_timestamp", "weather": "date_time"}

def postgres_counts(tier, url, schema, table, day_column):
    sql = f"select to_char(({day_column} at time zone 'UTC')::date, 'YYYY-MM-DD') as day, count(*) as n from {table} group by 1 order by 1"
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
        f.write(sql)
    args = [tier, "-q", "query", f.name, "--format", "json", "--schema", schema]
    if url:
        args += ["--database-url", url]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    os.unlink(f.name)
    return {r["day"]: r["n"] for r in json.loads(out)}

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--lake", required=True)
    p.add_argument("--database-url")
    p.add_argument("--schema", default="public")
    p.add_argument("--tier", default=os.environ.get("TIER", "target/release/tier"))
    a = p.parse_args()
    from pyspark.sql import SparkSession
    spark = SparkSession.builder.master("local[2]").appName("tier-lake-check").config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    ok = True
    for table, day_column in TABLES.items():
        path = os.path.join(a.lake, table)
        if not os.path.isdir(path):
            print(f"{table}: not in the lake"); ok = False; continue
        df = spark.read.parquet(path)
        spark_counts = {str(r["date"]): r["count"] for r in df.groupBy("date").count().collect()}
        pg_counts = postgres_counts(a.tier, a.database_url, a.schema, table, day_column)
        days = sorted(set(spark_counts) | set(pg_counts))
        bad = [d for d in days if spark_counts.get(d) != pg_counts.get(d)]
        print(f"{table}: {len(days)} days, {sum(spark_counts.values())} rows read by Spark {spark.version}, "
              f"{sum(pg_counts.values())} in PostgreSQL, columns {len(df.columns)}: "
              + ("match" if not bad else f"{len(bad)} days differ: " + ", ".join(f"{d} spark={spark_counts.get(d)} pg={pg_counts.get(d)}" for d in bad[:5])))
        ok = ok and not bad
    spark.stop()
    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    main()
