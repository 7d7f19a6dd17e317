"""What both peer loaders share: the datasets (read from tier's contracts, so the peers load
the same columns with the same types) and the framing fix a data engineer would write for the
BI tool's export (`[`, one object per line followed by `,`, `]` maybe missing) -> NDJSON."""
import os
import tempfile
import tomllib
import urllib.parse

# The datasets loaded (PEER_DATASETS: others, comma-separated, such as the bench's clean file).
DATASETS = tuple(os.environ.get("PEER_DATASETS", "track_events,weather").split(","))

SQL_TYPES = {
    "text": "text", "integer": "integer", "bigint": "bigint", "double": "double precision",
    "numeric": "numeric", "boolean": "boolean", "timestamp": "timestamptz", "date": "date", "json": "jsonb",
}


def contract(datasets_dir, name):
    """(file, prefix, [(column, key, type)]) of a dataset."""
    with open(os.path.join(datasets_dir, f"{name}.toml"), "rb") as f:
        c = tomllib.load(f)
    columns = [(col["name"], col.get("key", col["name"]), col["type"]) for col in c["column"]]
    return c.get("file", f"{name}.json"), c.get("key_prefix", ""), columns


def to_ndjson(path):
    """The export as NDJSON in a temporary file (streamed line by line). Lines that are not
    one whole object (truncated records, garbage) are dropped, and the export's bare `NaN`
    (not JSON) becomes null: the JSON readers below give up on a file at its first bad line.
    With PEER_CLEAN set the file is clean NDJSON already, read as it is (a second name for
    it, which the caller removes)."""
    if os.environ.get("PEER_CLEAN"):
        link = os.path.join(tempfile.mkdtemp(), "clean.ndjson")
        os.link(path, link)
        return link
    out = tempfile.NamedTemporaryFile("wb", suffix=".ndjson", delete=False)
    with open(path, "rb") as f, out:
        for line in f:
            line = line.strip()
            if line.startswith(b"["):
                line = line[1:]
            if line.endswith(b"]"):
                line = line[:-1]
            if line.endswith(b","):
                line = line[:-1]
            if line.startswith(b"{") and line.endswith(b"}"):
                out.write(line.replace(b":NaN", b":null") + b"\n")
    return out.name


def create_table(cursor, schema, name, columns):
    cols = ", ".join(f'"{c}" {SQL_TYPES[t]}' for c, _, t in columns)
    cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    cursor.execute(f'DROP TABLE IF EXISTS "{schema}"."{name}"')
    cursor.execute(f'CREATE TABLE "{schema}"."{name}" ({cols})')


def with_password(url):
    """The URL with its password in it, from the libpq password file (PGPASSFILE or
    ~/.pgpass) when it has none: dlt and Sling read no password file."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None:
        return url
    path = os.environ.get("PGPASSFILE", os.path.expanduser("~/.pgpass"))
    host, port = parts.hostname or "localhost", str(parts.port or 5432)
    user, db = parts.username or "postgres", parts.path.lstrip("/") or parts.username or "postgres"
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return url
    for line in lines:
        fields = line.split(":")
        if len(fields) == 5 and all(f in ("*", v) for f, v in zip(fields[:4], (host, port, db, user))):
            netloc = f"{urllib.parse.quote(user)}:{urllib.parse.quote(fields[4], safe='')}@{host}:{port}"
            return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return url
