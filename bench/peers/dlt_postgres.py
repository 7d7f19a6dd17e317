"""The load done with dlt (`dlt[postgres]`), the way its docs put JSON into PostgreSQL fast:
the framing fixed first (dlt reads no BI export as it is), each record a Python dict with
the contract's keys as columns and their types declared as column hints, the `csv` loader
file format (dlt writes CSV files, then COPYs them). A value that does not fit its column's
type goes into a variant column dlt adds (`rating__v_text`); no rules, no rejects table,
no duplicate check.

    python dlt_postgres.py POSTGRES_URL DATA_DIR DATASETS_DIR SCHEMA
"""
import json
import os
import sys
import tempfile

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402

from common import DATASETS, contract, to_ndjson, with_password  # noqa: E402

DLT = {
    "text": "text", "integer": "bigint", "bigint": "bigint", "double": "double", "numeric": "decimal",
    "boolean": "bool", "timestamp": "timestamp", "date": "date", "json": "json",
}


def records(ndjson, prefix, columns):
    keys = [(column, prefix + key) for column, key, _ in columns]
    with open(ndjson, "rb") as f:
        for line in f:
            record = json.loads(line)
            yield {column: record.get(key) for column, key in keys}


def main(url, data_dir, datasets_dir, schema):
    pipeline = dlt.pipeline(
        pipeline_name="tier_bench",
        destination=dlt.destinations.postgres(credentials=with_password(url)),
        dataset_name=schema,
        pipelines_dir=tempfile.mkdtemp(prefix="dlt-"),
    )
    for name in DATASETS:
        file, prefix, columns = contract(datasets_dir, name)
        ndjson = to_ndjson(os.path.join(data_dir, file))
        try:
            hints = {column: {"data_type": DLT[kind]} for column, _, kind in columns}
            resource = dlt.resource(records(ndjson, prefix, columns), name=name, write_disposition="replace", columns=hints)
            pipeline.run(resource, loader_file_format="csv")
        finally:
            os.unlink(ndjson)
        print(f"{name}: loaded", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:5])
