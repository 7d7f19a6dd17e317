"""The load done with Sling's CLI (the binary the `sling-linux-amd64` wheel ships; nothing is
downloaded at run time, telemetry off): `sling run` from a JSON-lines file into a table,
full refresh. It needs the export fixed first: the framing and the bare `NaN` (as for every
peer), and the dotted keys (`segment_tracks.event_name`: Sling's flattening finds no column
of that name), here by stripping the contract's key prefix from the keys. Its types come
from a sample of the rows: 100,000 here (SAMPLE_SIZE; the default 900 misses keys few
records have, and a key first seen after the sample makes Sling add a column with DDL that
PostgreSQL refuses), and every contract column is declared text, since one value that does
not fit the sampled type ("five" for a number) fails the whole COPY. No rules, no rejects
table, no duplicate check.

    python sling_cli.py POSTGRES_URL DATA_DIR DATASETS_DIR SCHEMA
"""
import importlib.util
import json
import os
import subprocess
import sys

from common import DATASETS, contract, to_ndjson, with_password

SLING = os.path.join(os.path.dirname(importlib.util.find_spec("sling_linux_amd64").origin), "bin", "sling-linux-amd64")


def strip_prefix(path, prefix):
    """The keys without the export's prefix, in place (one pass, bytes); returns the rows."""
    with open(path, "rb") as f:
        data = f.read()
    if prefix:
        data = data.replace(b'"' + prefix.encode(), b'"')
        with open(path, "wb") as f:
            f.write(data)
    return data.count(b"\n")


def main(url, data_dir, datasets_dir, schema):
    url = with_password(url)
    for name in DATASETS:
        file, prefix, columns = contract(datasets_dir, name)
        ndjson = to_ndjson(os.path.join(data_dir, file))
        try:
            rows = strip_prefix(ndjson, prefix)
            # A sample of 100,000 rows (Sling's default is 900; it allocates it up front).
            env = dict(os.environ, SLING_DISABLE_TELEMETRY="true", SAMPLE_SIZE=str(min(rows, 100_000)))
            types = {key.lower(): "text" for _, key, _ in columns}
            subprocess.run(
                [
                    SLING, "run",
                    "--src-stream", f"file://{ndjson}",
                    "--src-options", json.dumps({"format": "jsonlines", "flatten": True}),
                    "--columns", json.dumps(types),
                    "--tgt-conn", url + ("&" if "?" in url else "?") + "sslmode=disable",
                    "--tgt-object", f"{schema}.{name}",
                    "--mode", "full-refresh",
                ],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        finally:
            os.unlink(ndjson)
        print(f"{name}: loaded", file=sys.stderr)


if __name__ == "__main__":
    main(*sys.argv[1:5])
