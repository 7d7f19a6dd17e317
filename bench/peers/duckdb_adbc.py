"""The load done with DuckDB + ADBC, as a data engineer would: fix the framing, read the
NDJSON with every field as text (records that do not parse are skipped), TRY_CAST to the
column's type, hand the Arrow result to ADBC's binary COPY. No rules, no rejects table, no
duplicate check, no ledger.

    python duckdb_adbc.py POSTGRES_URL DATA_DIR DATASETS_DIR SCHEMA
"""
import os
import sys

import adbc_driver_postgresql.dbapi as adbc
import duckdb

from common import DATASETS, contract, create_table, to_ndjson

DUCK = {
    "text": "VARCHAR", "integer": "INTEGER", "bigint": "BIGINT", "double": "DOUBLE", "numeric": "DOUBLE",
    "boolean": "BOOLEAN", "timestamp": "TIMESTAMPTZ", "date": "DATE", "json": "VARCHAR",
}


def main(url, data_dir, datasets_dir, schema):
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    with adbc.connect(url) as conn:
        for name in DATASETS:
            file, prefix, columns = contract(datasets_dir, name)
            ndjson = to_ndjson(os.path.join(data_dir, file))
            try:
                keys = {prefix + key for _, key, _ in columns}
                spec = ", ".join(f"'{k}': 'VARCHAR'" for k in sorted(keys))
                select = ", ".join(f'TRY_CAST("{prefix + key}" AS {DUCK[kind]}) AS "{column}"' for column, key, kind in columns)
                table = db.execute(
                    f"SELECT {select} FROM read_json('{ndjson}', format = 'newline_delimited', columns = {{{spec}}}, ignore_errors = true)"
                ).to_arrow_table()
            finally:
                os.unlink(ndjson)
            with conn.cursor() as cur:
                create_table(cur, schema, name, columns)
                conn.commit()
                cur.adbc_ingest(name, table, mode="append", db_schema_name=schema)
            conn.commit()
            print(f"{name}: {table.num_rows} rows", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:5])
