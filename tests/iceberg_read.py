"""Reads one table of tier's Iceberg lake with engines tier did not write, and prints what
each saw as JSON: pyiceberg (its SqlCatalog on the load's PostgreSQL) and DuckDB's iceberg
extension (given the metadata file the catalog points at). Days are UTC days.

usage: iceberg_read.py CATALOG_URL NAMESPACE TABLE DAY_COLUMN SUM_COLUMN
A lake in object storage: S3_ENDPOINT (http://host:port), with the key id and secret `test`;
another catalog name than `tier`: CATALOG.
"""
import datetime
import json
import os
import sys

import duckdb
import duckdb_extensions
import pyarrow as pa
import pyarrow.compute as pc
from pyiceberg.catalog.sql import SqlCatalog

url, namespace, table, day, measure = sys.argv[1:6]
endpoint = os.environ.get("S3_ENDPOINT")
s3 = {"s3.endpoint": endpoint, "s3.access-key-id": "test", "s3.secret-access-key": "test", "s3.region": "us-east-1"} if endpoint else {}
catalog = SqlCatalog(os.environ.get("CATALOG", "tier"), uri=url, **s3)
t = catalog.load_table(f"{namespace}.{table}")
rows = t.scan().to_arrow()
days = rows[day]
if pa.types.is_timestamp(days.type):
    days = pc.cast(days, pa.timestamp("us"))  # the UTC wall clock
per_day = {}
for d in pc.strftime(days, format="%Y-%m-%d").to_pylist():
    per_day[d] = per_day.get(d, 0) + 1
snapshots = [
    {"id": s.snapshot_id, "operation": s.summary.operation.value, "load": s.summary.additional_properties.get("tier.load-id")}
    for s in sorted(t.snapshots(), key=lambda s: s.sequence_number)
]

con = duckdb.connect()
for extension in ("avro", "iceberg", "httpfs"):
    duckdb_extensions.import_extension(extension, con=con)
    con.sql(f"LOAD {extension}")
if endpoint:
    con.sql(f"""CREATE SECRET (TYPE s3, KEY_ID 'test', SECRET 'test', REGION 'us-east-1',
                ENDPOINT '{endpoint.removeprefix("http://")}', URL_STYLE 'path', USE_SSL false)""")
scan = f"iceberg_scan('{t.metadata_location}')"
qday, qmeasure = '"%s"' % day, '"%s"' % measure  # DuckDB keywords (at) as names
if pa.types.is_timestamp(rows[day].type):
    day_of = f"epoch_us({qday}) // 86400000000"
    name = lambda d: str(datetime.date(1970, 1, 1) + datetime.timedelta(days=d)) if d is not None else None
else:
    day_of = f"strftime({qday}, '%Y-%m-%d')"
    name = lambda d: d
duck_days = {name(d): n for d, n in con.sql(f"SELECT {day_of} AS d, count(*) FROM {scan} GROUP BY d").fetchall()}

fields = [[f.field_id, f.name, str(f.field_type)] for f in t.schema().fields]
files = sorted(task.file.file_path for task in t.scan().plan_files())

print(json.dumps({
    "fields": fields,
    "schemas": len(t.metadata.schemas),
    "files": files,
    "pyiceberg": {"per_day": per_day, "sum": pc.sum(rows[measure]).as_py(), "rows": rows.num_rows},
    "duckdb": {"per_day": duck_days, "sum": con.sql(f"SELECT sum({qmeasure}) FROM {scan}").fetchone()[0]},
    "snapshots": snapshots,
}, default=str))
