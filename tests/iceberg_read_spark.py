"""Reads one table of tier's Iceberg lake with Apache Spark and Iceberg's Spark runtime,
through Iceberg's JdbcCatalog on the load's PostgreSQL, and prints what it saw as JSON (as
tests/iceberg_read.py does). Days are UTC days.

usage: iceberg_read_spark.py JARS JDBC_URL USER PASSWORD NAMESPACE TABLE DAY_COLUMN SUM_COLUMN
A lake in object storage: S3_ENDPOINT (http://host:port), with the key id and secret `test`
(Iceberg's S3FileIO, from its AWS bundle among JARS).
"""
import json
import os
import sys

from pyspark.sql import SparkSession

jars, jdbc, user, password, namespace, table, day, measure = sys.argv[1:9]
builder = SparkSession.builder
endpoint = os.environ.get("S3_ENDPOINT")
if endpoint:
    for key, value in {
        "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        "s3.endpoint": endpoint,
        "s3.path-style-access": "true",
        "s3.access-key-id": "test",
        "s3.secret-access-key": "test",
        "client.region": "us-east-1",
    }.items():
        builder = builder.config(f"spark.sql.catalog.tier.{key}", value)
spark = (
    builder.master("local[1]")
    .config("spark.jars", jars)
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
    .config("spark.sql.catalog.tier", "org.apache.iceberg.spark.SparkCatalog")
    .config("spark.sql.catalog.tier.catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog")
    .config("spark.sql.catalog.tier.uri", jdbc)
    .config("spark.sql.catalog.tier.jdbc.user", user)
    .config("spark.sql.catalog.tier.jdbc.password", password)
    .config("spark.sql.catalog.tier.jdbc.schema-version", "V1")
    # Required by the catalog; only new tables would go there (this reads existing ones).
    .config("spark.sql.catalog.tier.warehouse", "file:///nonexistent-tier-warehouse")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
name = f"tier.`{namespace}`.`{table}`"
per_day = {
    r[0]: r[1]
    for r in spark.sql(f"SELECT date_format(`{day}`, 'yyyy-MM-dd') AS d, count(*) FROM {name} GROUP BY d").collect()
}
total = spark.sql(f"SELECT sum(`{measure}`) FROM {name}").collect()[0][0]
snapshots = [
    {"id": r[0], "operation": r[1], "load": r[2]}
    for r in spark.sql(
        f"SELECT snapshot_id, operation, summary['tier.load-id'] FROM {name}.snapshots ORDER BY committed_at, snapshot_id"
    ).collect()
]
print(json.dumps({"per_day": per_day, "sum": float(total) if total is not None else None, "snapshots": snapshots}, default=str))
spark.stop()
