"""The load done with Python Polars + ADBC, as a data engineer would: fix the framing, read
the NDJSON (records that do not parse are skipped), take every field as text, cast to the
column's type (what does not cast becomes NULL), write with ADBC's binary COPY. No rules, no
rejects table, no duplicate check, no ledger.

    python polars_adbc.py POSTGRES_URL DATA_DIR DATASETS_DIR SCHEMA
"""
import os
import sys

import adbc_driver_postgresql.dbapi as adbc
import polars as pl

from common import DATASETS, contract, create_table, to_ndjson

POLARS = {
    "text": pl.Utf8, "integer": pl.Int32, "bigint": pl.Int64, "double": pl.Float64, "numeric": pl.Float64,
    "boolean": pl.Boolean, "json": pl.Utf8,
}


def main(url, data_dir, datasets_dir, schema):
    with adbc.connect(url) as conn:
        for name in DATASETS:
            file, prefix, columns = contract(datasets_dir, name)
            ndjson = to_ndjson(os.path.join(data_dir, file))
            try:
                df = pl.read_ndjson(ndjson, infer_schema_length=None, ignore_errors=True)
            finally:
                os.unlink(ndjson)
            out = []
            for column, key, kind in columns:
                src = prefix + key if prefix + key in df.columns else key
                if src not in df.columns:
                    out.append(pl.lit(None, dtype=pl.Utf8).alias(column))
                    continue
                text = pl.col(src).cast(pl.Utf8, strict=False)
                if kind == "timestamp":
                    expr = text.str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="UTC", strict=False)
                elif kind == "date":
                    expr = text.str.to_date("%Y-%m-%d", strict=False)
                else:
                    expr = text.cast(POLARS[kind], strict=False)
                out.append(expr.alias(column))
            df = df.select(out)
            with conn.cursor() as cur:
                create_table(cur, schema, name, columns)
            conn.commit()
            df.write_database(f'"{schema}"."{name}"', connection=conn, engine="adbc", if_table_exists="append")
            conn.commit()
            print(f"{name}: {df.height} rows", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:5])
