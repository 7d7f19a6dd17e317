#!/usr/bin/env bash
# The benchmark: tier load against PostgreSQL's own COPY, in one run, on this machine.
#
#   bench/run.sh [--peers] [--shapes] [--loads] [EVENTS ...]     default: 1000000 4000000
#   bench/run.sh --stream [EVENTS]                                the Kafka benchmark (bench/stream.sh)
#
# --shapes also loads the events reshaped three ways, to show memory stays flat on data that
# `tier gen` does not make: a tenth of the records repeated (duplicates), every record 1 KB
# wider (an undeclared padding key), and one record in a thousand carrying a 100 KB value.
#
# --loads runs only the loads (and, with --shapes, the shapes) and their memory: for a size
# such as 16000000, where the rest (queries, the merge) would take most of an hour. The shapes'
# files are made for the load and deleted after it (a 16 M-event wide shape is 28 GB);
# BENCH_SHAPES picks some of them (default "duplicates wide long").
#
# Each size also loads the events as a log split by event name (`infer --split-by`), a table
# per kind, beside the same file into one table: what splitting costs. And the events with a
# lake (Hive Parquet, then Iceberg) beside the same load without one: what the lake costs.
#
# --peers also runs the same load done in Python with Polars + ADBC, with DuckDB + ADBC, with
# dlt and with Sling's CLI (bench/peers/, installed into bench/peers/.venv with pinned
# versions on first use; each file's docstring says what fix-ups the export needed) and
# prints their seconds, peak RSS and ratio to tier. EVENTS may be 16000000 (about 13 GB of
# exports, 15 GB of scratch space): rows/s per size shows whether time stays linear.
#
# For each size it generates the exports with `tier gen` (weather = EVENTS / 10), loads them
# into a fresh database, then measures the floor: the loaded rows dumped with COPY TO and read
# back with the server's own `COPY ... FROM` into empty tables of the same shape, as CSV and
# as binary (what tier sends: the least any client can cost the server). Then
# `tier validate`, and a large `tier query` to Parquet and CSV against psql's `\copy`. Then a
# merge: an export of EVENTS/4 events (half re-sent from the table, a fifth of those edited;
# half new) merged on a key into the EVENTS-row table, against an append of the same file,
# and the keyed floors: the accepted rows by CSV COPY into an empty copy of the keyed table
# with its unique index, and the quarter by COPY into a stage then INSERT ... ON CONFLICT
# DO NOTHING (a keyed append) or DO UPDATE (a merge) into a copy of the keyed table, plus the
# COPY of the records each load turned away (its rejects).
# Prints seconds, rows/s, MB/s, peak RSS and the ratios. Not part of `cargo test`.
#
# Needs: a PostgreSQL superuser at BENCH_URL (default postgresql://postgres@127.0.0.1:5432/postgres),
# psql, GNU time. Scratch space: BENCH_DIR (default /tmp/tier-bench), about 1 GB per million events.
set -euo pipefail
cd "$(dirname "$0")/.."

PEERS=0
SHAPES=0
LOADS_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --peers) PEERS=1; shift ;;
        --stream) shift; exec bench/stream.sh "$@" ;;
        --shapes) SHAPES=1; shift ;;
        --loads) LOADS_ONLY=1; shift ;;
        *) break ;;
    esac
done
SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(1000000 4000000)
BENCH_URL="${BENCH_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
BENCH_DIR="${BENCH_DIR:-/tmp/tier-bench}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tier-target}"
cargo build --release --quiet
TIER="$CARGO_TARGET_DIR/release/tier"
DB=tier_bench
DB_URL="${BENCH_URL%/*}/$DB"
mkdir -p "$BENCH_DIR"
chmod 755 "$BENCH_DIR"   # the server reads the floor's CSV files from here

psql_admin() { psql "$BENCH_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
psql_db() { psql "$DB_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }

# CPU seconds every PostgreSQL process on this machine has used so far (its own and its
# exited children's: backends that ended count through the postmaster).
server_cpu() {
    local ticks
    ticks=$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" { t += $14 + $15 + $16 + $17 } END { print t + 0 }')
    awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
}

# Runs a command under GNU time; sets SECS, RSS_MB (peak), CPU, SERVER (the CPU seconds
# PostgreSQL used meanwhile) and RSS_TRACE: its resident memory in MB sampled each second,
# to show whether it grows through the run.
timed() {
    local out="$BENCH_DIR/time.txt" samples=() child rss server_before
    server_before=$(server_cpu)
    /usr/bin/time -f "%e %M %P %U %S" -o "$out" "$@" >/dev/null &
    local watcher=$!
    while kill -0 "$watcher" 2>/dev/null; do
        sleep 1
        child=$(pgrep -P "$watcher" | head -1 || true)
        rss=$([ -n "$child" ] && awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$child/status" 2>/dev/null || true)
        [ -n "$rss" ] && samples+=("$rss")
    done
    wait "$watcher"
    read -r SECS RSS_KB CPU USER_S SYS_S < "$out"
    RSS_MB=$((RSS_KB / 1024))
    CLIENT=$(awk -v u="$USER_S" -v s="$SYS_S" 'BEGIN { printf "%.2f", u + s }')
    SERVER=$(awk -v a="$server_before" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", b - a }')
    RSS_TRACE="${samples[*]}"
}

TRACES=()
trace() { TRACES+=("$(printf '%-10s %-34s %s' "$1" "$2" "$RSS_TRACE")"); }

# Peak RSS of each load against the same load at the first size: memory should not grow
# with the file.
declare -A FIRST_PEAK
GROWTH=()
growth() {
    local step="$2"
    [ -z "${FIRST_PEAK[$step]:-}" ] && FIRST_PEAK[$step]="$1 $RSS_MB"
    read -r first_events first_rss <<< "${FIRST_PEAK[$step]}"
    GROWTH+=("$(printf '%-10s %-34s %9s %9s  %s' "$1" "$step" "${RSS_MB}MB" "${first_rss}MB" \
        "$(awk -v a="$RSS_MB" -v b="$first_rss" -v e="$first_events" 'BEGIN { printf "%+.0f%% over %s events", 100 * (a - b) / b, e }')")")
}

if [ "$PEERS" = 1 ] && { [ ! -x bench/peers/.venv/bin/python ] || [ bench/peers/requirements.txt -nt bench/peers/.venv/.installed ]; }; then
    [ -x bench/peers/.venv/bin/python ] || python3 -m venv bench/peers/.venv
    bench/peers/.venv/bin/pip install --quiet --disable-pip-version-check -r bench/peers/requirements.txt
    touch bench/peers/.venv/.installed
fi

# Seconds of wall time for a SQL statement run by the server (psql's \timing).
server_secs() {
    psql_db -c '\timing on' -c "$1" | awk '/^Time:/ { gsub(",", "", $2); s += $2 } END { printf "%.2f", s / 1000 }'
}

# How much two busy threads get done here, relative to one: 2.0 on two real cores; less where
# the two vCPUs share a physical core or the host is busy. Every ratio below depends on it.
spin() { awk 'BEGIN { for (i = 0; i < 3e7; i++) s += i * i }'; }
spin_secs() { local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }'; }
ONE=$(spin_secs spin)
TWO=$(spin_secs eval 'spin & spin & wait')
CAPACITY=$(awk -v one="$ONE" -v two="$TWO" 'BEGIN { printf "%.2f", 2 * one / two }')

ROWS=()
row() { ROWS+=("$(printf '%-10s %-34s %12s %9s %12s %9s %9s %7s  %s' "$@")"); }

for EVENTS in "${SIZES[@]}"; do
    WEATHER=$((EVENTS / 10))
    DATA="$BENCH_DIR/data-$EVENTS"
    if [ ! -f "$DATA/gen-manifest.json" ]; then
        "$TIER" -q gen --events "$EVENTS" --weather "$WEATHER" --seed 1 --out "$DATA"
    fi
    BYTES=$(( $(stat -c %s "$DATA/track_events.json") + $(stat -c %s "$DATA/weather.json") ))
    MB=$(awk -v b="$BYTES" 'BEGIN { printf "%.0f", b / 1048576 }')
    RECORDS=$((EVENTS + WEATHER))

    psql_admin -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
    timed "$TIER" -q --data-dir "$DATA" load --database-url "$DB_URL"
    LOAD=$SECS
    LOAD_RSS=$RSS_MB
    row "$EVENTS" "tier load (both files)" "$RECORDS" "$SECS" "$(awk -v r=$RECORDS -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" \
        "$(awk -v m=$MB -v s=$SECS 'BEGIN{printf "%.0f", m/s}')" "${RSS_MB}MB" "$CPU" "CPU s: tier $CLIENT, server $SERVER"
    trace "$EVENTS" "tier load (both files)"
    growth "$EVENTS" "tier load (both files)"

    # The peers: the same two files loaded in Python (no rules, rejects, dedupe or ledger).
    if [ "$PEERS" = 1 ]; then
        for PEER in polars_adbc duckdb_adbc dlt_postgres sling_cli; do
            psql_db -c "DROP SCHEMA IF EXISTS peer CASCADE"
            timed bench/peers/.venv/bin/python "bench/peers/$PEER.py" "$DB_URL" "$DATA" datasets peer
            row "$EVENTS" "peer: ${PEER/_/ + }" "$RECORDS" "$SECS" "$(awk -v r=$RECORDS -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" \
                "$(awk -v m=$MB -v s=$SECS 'BEGIN{printf "%.0f", m/s}')" "${RSS_MB}MB" "$CPU" \
                "peer/tier $(awk -v a=$SECS -v b=$LOAD 'BEGIN{printf "%.2fx", a/b}') time, $(awk -v a=$RSS_MB -v b=$LOAD_RSS 'BEGIN{printf "%.1fx", a/b}') memory"
            trace "$EVENTS" "peer: ${PEER/_/ + }"
        done
        psql_db -c "DROP SCHEMA IF EXISTS peer CASCADE"

        # A clean NDJSON file every peer reads natively (no framing, no defects): the loaded
        # events written by `tier query`, its contract inferred by `tier infer`; tier and
        # each peer load it as it is.
        CLEAN="$BENCH_DIR/clean-$EVENTS"
        if [ ! -f "$CLEAN/data/clean_events.json" ]; then
            rm -rf "$CLEAN" && mkdir -p "$CLEAN/data" "$CLEAN/datasets"
            COLS=$(psql_db -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'track_events'::regclass AND attnum > 0 AND NOT attisdropped AND attname <> 'load_id'")
            echo "SELECT $COLS FROM track_events" > "$CLEAN/events.sql"
            "$TIER" -q query "$CLEAN/events.sql" --database-url "$DB_URL" --format ndjson --output "$CLEAN/data/clean_events.json"
            "$TIER" -q --datasets "$CLEAN/datasets" infer "$CLEAN/data/clean_events.json" --name clean_events --write
        fi
        CLEAN_ROWS=$(wc -l < "$CLEAN/data/clean_events.json")
        psql_db -c "DROP SCHEMA IF EXISTS clean CASCADE"
        timed "$TIER" -q --datasets "$CLEAN/datasets" --data-dir "$CLEAN/data" load clean_events --schema clean --database-url "$DB_URL"
        CLEAN_LOAD=$SECS
        row "$EVENTS" "clean NDJSON: tier" "$CLEAN_ROWS" "$SECS" "$(awk -v r=$CLEAN_ROWS -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" "" "${RSS_MB}MB" "$CPU" ""
        psql_db -c "DROP SCHEMA IF EXISTS clean CASCADE"
        for PEER in polars_adbc duckdb_adbc dlt_postgres sling_cli; do
            psql_db -c "DROP SCHEMA IF EXISTS peer CASCADE"
            PEER_DATASETS=clean_events PEER_CLEAN=1 timed bench/peers/.venv/bin/python "bench/peers/$PEER.py" "$DB_URL" "$CLEAN/data" "$CLEAN/datasets" peer
            row "$EVENTS" "clean NDJSON: ${PEER/_/ + }" "$CLEAN_ROWS" "$SECS" "$(awk -v r=$CLEAN_ROWS -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" "" "${RSS_MB}MB" "$CPU" \
                "peer/tier $(awk -v a=$SECS -v b=$CLEAN_LOAD 'BEGIN{printf "%.2fx", a/b}') time"
        done
        psql_db -c "DROP SCHEMA IF EXISTS peer CASCADE"
    fi

    # One log, many tables: the events split by their name (a table per kind), against the
    # same file into one table, both contracts inferred from the file.
    SPLIT="$BENCH_DIR/split-$EVENTS"
    rm -rf "$SPLIT" "$SPLIT-one"
    "$TIER" -q --datasets "$SPLIT" infer "$DATA/track_events.json" --name events --split-by segment_tracks.event_name --write
    "$TIER" -q --datasets "$SPLIT-one" infer "$DATA/track_events.json" --name events --write
    KINDS=$(ls "$SPLIT/events" | wc -l)
    # Five alternating pairs, each load into fresh tables on a quiet server (what earlier
    # steps left to vacuum done first, dirty pages written to disk): run back to back, the
    # second load paid for the first's autovacuum and writes. The medians are shown (a
    # shared 2-core machine varies by a tenth from run to run).
    ONE_RUNS=() SPLIT_RUNS=()
    for PAIR in 1 2 3 4 5; do
        for WHICH in one split; do
            psql_db -c "DROP SCHEMA IF EXISTS bench_plain CASCADE" -c "DROP SCHEMA IF EXISTS bench_split CASCADE" -c "VACUUM ANALYZE" -c "CHECKPOINT"
            sync
            case $WHICH in
                one) timed "$TIER" -q --datasets "$SPLIT-one" load events --from "$DATA/track_events.json" --schema bench_plain --max-reject-ratio 1 --database-url "$DB_URL"
                     ONE_RUNS+=("$SECS") ONE_RSS=$RSS_MB ONE_CPU=$CPU ;;
                split) timed "$TIER" -q --datasets "$SPLIT" load events --from "$DATA/track_events.json" --schema bench_split --max-reject-ratio 1 --database-url "$DB_URL"
                     SPLIT_RUNS+=("$SECS") ;;
            esac
        done
    done
    median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
    ONE_TABLE=$(median "${ONE_RUNS[@]}") SECS=$(median "${SPLIT_RUNS[@]}")
    row "$EVENTS" "events into one table" "$EVENTS" "$ONE_TABLE" "$(awk -v r=$EVENTS -v s=$ONE_TABLE 'BEGIN{printf "%.0f", r/s}')" "" "${ONE_RSS}MB" "$ONE_CPU" "median of ${#ONE_RUNS[@]}: ${ONE_RUNS[*]}"
    row "$EVENTS" "split by event name ($KINDS kinds)" "$EVENTS" "$SECS" "$(awk -v r=$EVENTS -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" "" "${RSS_MB}MB" "$CPU" \
        "split/one table $(awk -v a=$SECS -v b=$ONE_TABLE 'BEGIN{printf "%.2fx", a/b}')  median of ${#SPLIT_RUNS[@]}: ${SPLIT_RUNS[*]}"
    trace "$EVENTS" "split by event name"
    psql_db -c "DROP SCHEMA IF EXISTS bench_plain CASCADE" -c "DROP SCHEMA IF EXISTS bench_split CASCADE"
    rm -rf "$SPLIT" "$SPLIT-one"

    # The lake beside the table: the events loaded with a Hive lake and with an Iceberg lake
    # (its catalog in the same database), against the same load without one.
    LAKE="$BENCH_DIR/lake-$EVENTS"
    psql_db -c "DROP SCHEMA IF EXISTS bench_lake CASCADE"
    timed "$TIER" -q --data-dir "$DATA" load track_events --schema bench_lake --database-url "$DB_URL"
    NO_LAKE=$SECS
    row "$EVENTS" "events, no lake" "$EVENTS" "$SECS" "$(awk -v r=$EVENTS -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" "" "${RSS_MB}MB" "$CPU" ""
    for FORMAT in hive iceberg; do
        rm -rf "$LAKE"
        psql_db -c "DROP SCHEMA IF EXISTS bench_lake CASCADE"
        timed "$TIER" -q --data-dir "$DATA" load track_events --schema bench_lake --lake "$LAKE" --lake-format $FORMAT --database-url "$DB_URL"
        row "$EVENTS" "events + $FORMAT lake" "$EVENTS" "$SECS" "$(awk -v r=$EVENTS -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" "" "${RSS_MB}MB" "$CPU" \
            "lake/no lake $(awk -v a=$SECS -v b=$NO_LAKE 'BEGIN{printf "%.2fx", a/b}')"
        trace "$EVENTS" "events + $FORMAT lake"
    done
    psql_db -c "DROP SCHEMA bench_lake CASCADE"
    rm -rf "$LAKE"

    # Other shapes of data: peak and sampled memory of a load of each.
    if [ "$SHAPES" = 1 ]; then
        PAD=$(head -c 1000 /dev/zero | tr '\0' 'x')
        BIG=$(head -c 100000 /dev/zero | tr '\0' 'y')
        for SHAPE in ${BENCH_SHAPES:-duplicates wide long}; do
            SHAPED="$BENCH_DIR/shape-$SHAPE-$EVENTS.json"
            case "$SHAPE" in
                duplicates) awk 'NR > 1 && NR % 10 == 0 && /,$/ { print } { print }' "$DATA/track_events.json" > "$SHAPED" ;;
                wide) sed "s/^\(.*\)}\(,\{0,1\}\]\{0,1\}\)\$/\1,\"segment_tracks.padding\":\"$PAD\"}\2/" "$DATA/track_events.json" > "$SHAPED" ;;
                long) awk -v big="$BIG" 'NR % 1000 == 0 { sub(/"segment_tracks.context_app_build":"[^"]*"/, "\"segment_tracks.context_app_build\":\"" big "\"") } { print }' "$DATA/track_events.json" > "$SHAPED" ;;
            esac
            SHAPE_MB=$(( $(stat -c %s "$SHAPED") / 1048576 ))
            timed "$TIER" -q load track_events --from "$SHAPED" --mode replace --max-reject-ratio 1 --schema bench_shape --database-url "$DB_URL"
            row "$EVENTS" "shape: $SHAPE (${SHAPE_MB} MB)" "$EVENTS" "$SECS" "$(awk -v r=$EVENTS -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" \
                "$(awk -v m=$SHAPE_MB -v s=$SECS 'BEGIN{printf "%.0f", m/s}')" "${RSS_MB}MB" "$CPU" ""
            trace "$EVENTS" "shape: $SHAPE"
            growth "$EVENTS" "shape: $SHAPE"
            rm -f "$SHAPED"
            psql_db -c "DROP SCHEMA IF EXISTS bench_shape CASCADE"
        done
    fi

    [ "$LOADS_ONLY" = 1 ] && continue

    # The floor: the same final rows through the server's own CSV COPY into empty tables.
    FLOOR=0
    FLOOR_CPU=0
    for T in track_events weather; do
        psql_db -c "DROP TABLE IF EXISTS floor_$T" -c "CREATE TABLE floor_$T (LIKE $T)"
        psql_db -c "\\copy $T TO '$BENCH_DIR/floor_$T.csv' (FORMAT csv)"
        C=$(server_cpu)
        S=$(server_secs "COPY floor_$T FROM '$BENCH_DIR/floor_$T.csv' (FORMAT csv)")
        FLOOR=$(awk -v a=$FLOOR -v b=$S 'BEGIN{print a+b}')
        FLOOR_CPU=$(awk -v a="$FLOOR_CPU" -v c="$C" -v b="$(server_cpu)" 'BEGIN { printf "%.2f", a + b - c }')
    done
    LOADED=$(psql_db -c "SELECT (SELECT count(*) FROM track_events) + (SELECT count(*) FROM weather)")
    row "$EVENTS" "floor: COPY FROM csv (server)" "$LOADED" "$FLOOR" "$(awk -v r=$LOADED -v s=$FLOOR 'BEGIN{printf "%.0f", r/s}')" "" "" "" \
        "load/floor $(awk -v a=$LOAD -v b=$FLOOR 'BEGIN{printf "%.2fx", a/b}')  (CPU s: server $FLOOR_CPU)"
    rm -f "$BENCH_DIR"/floor_*.csv
    # The binary floor: the same rows through the server's binary COPY (what tier sends),
    # the least any client can cost the server.
    BIN_FLOOR=0
    for T in track_events weather; do
        psql_db -c "TRUNCATE floor_$T"
        psql_db -c "\\copy $T TO '$BENCH_DIR/floor_$T.bin' (FORMAT binary)"
        S=$(server_secs "COPY floor_$T FROM '$BENCH_DIR/floor_$T.bin' (FORMAT binary)")
        BIN_FLOOR=$(awk -v a=$BIN_FLOOR -v b=$S 'BEGIN{print a+b}')
    done
    row "$EVENTS" "floor: COPY FROM binary (server)" "$LOADED" "$BIN_FLOOR" "$(awk -v r=$LOADED -v s=$BIN_FLOOR 'BEGIN{printf "%.0f", r/s}')" "" "" "" \
        "load/binary floor $(awk -v a=$LOAD -v b=$BIN_FLOOR 'BEGIN{printf "%.2fx", a/b}')"
    rm -f "$BENCH_DIR"/floor_*.bin
    psql_db -c "DROP TABLE floor_track_events" -c "DROP TABLE floor_weather"

    timed "$TIER" -q --data-dir "$DATA" validate --database-url "$DB_URL"
    row "$EVENTS" "tier validate (both files)" "$RECORDS" "$SECS" "$(awk -v r=$RECORDS -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" \
        "$(awk -v m=$MB -v s=$SECS 'BEGIN{printf "%.0f", m/s}')" "${RSS_MB}MB" "$CPU" "validate/load $(awk -v a=$SECS -v b=$LOAD 'BEGIN{printf "%.2fx", a/b}')"
    timed "$TIER" -q --data-dir "$DATA" validate --reread --database-url "$DB_URL"
    row "$EVENTS" "tier validate --reread" "$RECORDS" "$SECS" "$(awk -v r=$RECORDS -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" \
        "$(awk -v m=$MB -v s=$SECS 'BEGIN{printf "%.0f", m/s}')" "${RSS_MB}MB" "$CPU" "reread/load $(awk -v a=$SECS -v b=$LOAD 'BEGIN{printf "%.2fx", a/b}')"

    # A large result: every event, with an integer column to split the read on.
    Q="$BENCH_DIR/all_events.sql"
    SQL="select *, extract(epoch from original_timestamp)::bigint as ts from track_events"
    echo "$SQL" > "$Q"
    N=$(psql_db -c "SELECT count(*) FROM track_events")
    timed psql "$DB_URL" -qAtX -c "\\copy ($SQL) TO '$BENCH_DIR/psql.csv' CSV"
    PSQL=$SECS
    row "$EVENTS" "psql \\copy to CSV" "$N" "$SECS" "$(awk -v r=$N -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" "" "${RSS_MB}MB" "$CPU""CPU s: psql $CLIENT, server $SERVER"
    for FMT in csv parquet; do
        for PARTS in 1 2; do
            timed "$TIER" -q query "$Q" --database-url "$DB_URL" --format "$FMT" --output "$BENCH_DIR/out.$FMT" --partition-on ts --partitions "$PARTS"
            row "$EVENTS" "tier query to $FMT ($PARTS connection$([ "$PARTS" = 1 ] || echo s))" "$N" "$SECS" "$(awk -v r=$N -v s=$SECS 'BEGIN{printf "%.0f", r/s}')" "" "${RSS_MB}MB" "$CPU" \
                "query/psql $(awk -v a=$SECS -v b=$PSQL 'BEGIN{printf "%.2fx", a/b}')  CPU s: tier $CLIENT, server $SERVER"
        done
    done
    rm -f "$BENCH_DIR"/psql.csv "$BENCH_DIR"/out.*

    # Merge on a key: the events contract with `unique`, in a schema of its own.
    KEYED="$BENCH_DIR/keyed"
    mkdir -p "$KEYED"
    sed 's/^day = .*/&\nunique = ["anonymous_id", "original_timestamp", "event_name"]/' datasets/track_events.toml > "$KEYED/track_events.toml"
    QUARTER=$((EVENTS / 4))
    MERGE_FILE="$BENCH_DIR/merge-$EVENTS.json"
    if [ ! -f "$MERGE_FILE" ]; then
        "$TIER" -q gen --events $((QUARTER / 2)) --weather 1 --seed 2 --out "$BENCH_DIR/new-$EVENTS"
        { tail -n $((QUARTER / 2)) "$DATA/track_events.json" | sed -e 's/,$//' -e 's/^\[//' -e 's/\]$//' \
              | awk 'NR % 5 == 0 { sub(/context_app_version":"[^"]*"/, "context_app_version\":\"9.9.9\"") } { print }'
          sed -e 's/,$//' -e 's/^\[//' -e 's/\]$//' "$BENCH_DIR/new-$EVENTS/track_events.json"; } > "$MERGE_FILE"
        rm -rf "$BENCH_DIR/new-$EVENTS"
    fi
    MERGE_RECORDS=$(wc -l < "$MERGE_FILE")
    for S in bench_merge bench_keyed bench_append; do psql_db -c "DROP SCHEMA IF EXISTS $S CASCADE"; done
    KEYED_LOAD=("$TIER" -q --datasets "$KEYED" load track_events --database-url "$DB_URL")
    rate() { awk -v r="$1" -v s="$2" 'BEGIN{printf "%.0f", r/s}'; }
    timed "${KEYED_LOAD[@]}" --from "$DATA/track_events.json" --mode merge --schema bench_merge
    row "$EVENTS" "merge into an empty keyed table" "$EVENTS" "$SECS" "$(rate $EVENTS $SECS)" "" "${RSS_MB}MB" "$CPU" ""
    MERGE_EMPTY=$SECS
    timed "${KEYED_LOAD[@]}" --from "$DATA/track_events.json" --mode append --schema bench_keyed
    KEYED_EMPTY=$SECS
    # The keyed floor into an empty table: the accepted rows through the server's own CSV
    # COPY into an empty copy of the table with its unique key index.
    KEY_COLS="anonymous_id, original_timestamp, event_name"
    psql_db -c "\\copy bench_keyed.track_events TO '$BENCH_DIR/keyed.csv' (FORMAT csv)"
    psql_db -c "DROP TABLE IF EXISTS public.floor_keyed" -c "CREATE TABLE public.floor_keyed (LIKE bench_keyed.track_events)" \
        -c "CREATE UNIQUE INDEX ON public.floor_keyed ($KEY_COLS)" -c "CHECKPOINT"
    KEYED_FLOOR=$(server_secs "COPY public.floor_keyed FROM '$BENCH_DIR/keyed.csv' (FORMAT csv)")
    rm -f "$BENCH_DIR/keyed.csv"
    psql_db -c "DROP TABLE public.floor_keyed"
    row "$EVENTS" "append into an empty keyed table" "$EVENTS" "$SECS" "$(rate $EVENTS $SECS)" "" "${RSS_MB}MB" "$CPU" \
        "/keyed floor $(awk -v a=$SECS -v b=$KEYED_FLOOR 'BEGIN{printf "%.2fx", a/b}'), /merge into empty $(awk -v a=$SECS -v b=$MERGE_EMPTY 'BEGIN{printf "%.2fx", a/b}')"
    row "$EVENTS" "floor: keyed COPY into empty (server)" "$EVENTS" "$KEYED_FLOOR" "$(rate $EVENTS $KEYED_FLOOR)" "" "" "" ""
    # Copies of the keyed table as the quarter finds it, for the floors of the quarter below.
    for F in floor_append floor_merge; do
        psql_db -c "DROP TABLE IF EXISTS public.$F" -c "CREATE TABLE public.$F AS SELECT * FROM bench_keyed.track_events" \
            -c "CREATE UNIQUE INDEX ON public.$F ($KEY_COLS)" -c "VACUUM ANALYZE public.$F"
    done
    "$TIER" -q load track_events --from "$DATA/track_events.json" --mode append --schema bench_append --database-url "$DB_URL" >/dev/null
    # The same export of EVENTS/4 three ways: appended to the table without a key, appended
    # to the keyed table (re-sent keys turned away), merged into the keyed table.
    timed "$TIER" -q load track_events --from "$MERGE_FILE" --mode append --schema bench_append --database-url "$DB_URL"
    PLAIN=$SECS
    row "$EVENTS" "1/4 more: append (no key)" "$MERGE_RECORDS" "$SECS" "$(rate $MERGE_RECORDS $SECS)" "" "${RSS_MB}MB" "$CPU" ""
    timed "${KEYED_LOAD[@]}" --from "$MERGE_FILE" --mode append --schema bench_keyed --max-reject-ratio 1
    KEYED_APPEND=$SECS KEYED_APPEND_RSS=$RSS_MB KEYED_APPEND_CPU=$CPU
    trace "$EVENTS" "1/4 more: append (keyed)"
    timed "${KEYED_LOAD[@]}" --from "$MERGE_FILE" --mode merge --schema bench_merge
    KEYED_MERGE=$SECS KEYED_MERGE_RSS=$RSS_MB KEYED_MERGE_CPU=$CPU
    trace "$EVENTS" "1/4 more: merge (keyed)"
    # The keyed floor of the quarter: its accepted rows (as the plain append took them)
    # through CSV COPY into a staging table, then into the keyed table by the server alone:
    # INSERT ... ON CONFLICT DO NOTHING (re-sent keys turned away) and DO UPDATE (a merge).
    psql_db -c "\\copy (SELECT * FROM bench_append.track_events WHERE load_id = (SELECT max(load_id) FROM bench_append.track_events)) TO '$BENCH_DIR/quarter.csv' (FORMAT csv)"
    COLS=$(psql_db -c "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 'public.floor_append'::regclass AND attnum > 0 AND NOT attisdropped")
    SETS=$(psql_db -c "SELECT string_agg(format('%1\$I = EXCLUDED.%1\$I', attname), ', ') FROM pg_attribute WHERE attrelid = 'public.floor_merge'::regclass AND attnum > 0 AND NOT attisdropped AND attname NOT IN ('anonymous_id', 'original_timestamp', 'event_name')")
    for F in floor_append floor_merge; do
        psql_db -c "DROP TABLE IF EXISTS public.floor_stage" -c "CREATE UNLOGGED TABLE public.floor_stage (LIKE public.$F)" -c "CHECKPOINT"
        S1=$(server_secs "COPY public.floor_stage FROM '$BENCH_DIR/quarter.csv' (FORMAT csv)")
        CONFLICT=$([ $F = floor_append ] && echo "DO NOTHING" || echo "DO UPDATE SET $SETS")
        S2=$(server_secs "INSERT INTO public.$F ($COLS) SELECT DISTINCT ON ($KEY_COLS) $COLS FROM public.floor_stage ON CONFLICT ($KEY_COLS) $CONFLICT")
        eval "${F^^}=$(awk -v a=$S1 -v b=$S2 'BEGIN{print a+b}')"
        psql_db -c "DROP TABLE public.floor_stage" -c "DROP TABLE public.$F"
    done
    rm -f "$BENCH_DIR/quarter.csv"
    # The same work keeps the records each load turned away (re-sent keys, bad rows): its
    # rejects, with their raw text, through the server's CSV COPY into an empty copy of the
    # rejects table. The ratios are shown with and without them.
    for L in APPEND:bench_keyed MERGE:bench_merge; do
        S=${L#*:}
        psql_db -c "\\copy (SELECT * FROM $S.track_events_rejects WHERE load_id = (SELECT max(id) FROM $S.tier_loads)) TO '$BENCH_DIR/rejects.csv' (FORMAT csv)"
        psql_db -c "DROP TABLE IF EXISTS public.floor_rejects" -c "CREATE TABLE public.floor_rejects (LIKE $S.track_events_rejects)" -c "CHECKPOINT"
        eval "REJECTS_${L%%:*}=$(server_secs "COPY public.floor_rejects FROM '$BENCH_DIR/rejects.csv' (FORMAT csv)")"
        eval "REJECTED_${L%%:*}=$(psql_db -c "SELECT count(*) FROM public.floor_rejects")"
        psql_db -c "DROP TABLE public.floor_rejects"
    done
    rm -f "$BENCH_DIR/rejects.csv"
    WHOLE_APPEND=$(awk -v a=$FLOOR_APPEND -v b=$REJECTS_APPEND 'BEGIN{print a+b}')
    WHOLE_MERGE=$(awk -v a=$FLOOR_MERGE -v b=$REJECTS_MERGE 'BEGIN{print a+b}')
    row "$EVENTS" "1/4 more: append (keyed)" "$MERGE_RECORDS" "$KEYED_APPEND" "$(rate $MERGE_RECORDS $KEYED_APPEND)" "" "${KEYED_APPEND_RSS}MB" "$KEYED_APPEND_CPU" \
        "/keyed floor $(awk -v a=$KEYED_APPEND -v b=$WHOLE_APPEND 'BEGIN{printf "%.2fx", a/b}') ($(awk -v a=$KEYED_APPEND -v b=$FLOOR_APPEND 'BEGIN{printf "%.2fx", a/b}') without its rejects)"
    row "$EVENTS" "1/4 more: merge (keyed)" "$MERGE_RECORDS" "$KEYED_MERGE" "$(rate $MERGE_RECORDS $KEYED_MERGE)" "" "${KEYED_MERGE_RSS}MB" "$KEYED_MERGE_CPU" \
        "/merge floor $(awk -v a=$KEYED_MERGE -v b=$WHOLE_MERGE 'BEGIN{printf "%.2fx", a/b}') ($(awk -v a=$KEYED_MERGE -v b=$FLOOR_MERGE 'BEGIN{printf "%.2fx", a/b}') without its rejects), /keyed append $(awk -v a=$KEYED_MERGE -v b=$KEYED_APPEND 'BEGIN{printf "%.2fx", a/b}'), /plain append $(awk -v a=$KEYED_MERGE -v b=$PLAIN 'BEGIN{printf "%.2fx", a/b}')  $(psql_db -c "SELECT format('+%s ~%s =%s', inserted, updated, unchanged) FROM bench_merge.tier_loads ORDER BY id DESC LIMIT 1")"
    row "$EVENTS" "floor: ON CONFLICT DO NOTHING" "$MERGE_RECORDS" "$WHOLE_APPEND" "$(rate $MERGE_RECORDS $WHOLE_APPEND)" "" "" "" "COPY into a stage, INSERT: $FLOOR_APPEND s; $REJECTED_APPEND rejects' COPY: $REJECTS_APPEND s (server)"
    row "$EVENTS" "floor: ON CONFLICT DO UPDATE" "$MERGE_RECORDS" "$WHOLE_MERGE" "$(rate $MERGE_RECORDS $WHOLE_MERGE)" "" "" "" "COPY into a stage, INSERT: $FLOOR_MERGE s; $REJECTED_MERGE rejects' COPY: $REJECTS_MERGE s (server)"
    for S in bench_merge bench_keyed bench_append; do psql_db -c "DROP SCHEMA $S CASCADE"; done
done

echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); PostgreSQL $(psql_admin -c 'SHOW server_version')"
echo "parallel capacity: two busy threads do ${CAPACITY}x the work of one (2.00 on two free cores)"
printf '%-10s %-34s %12s %9s %12s %9s %9s %7s  %s\n' events step rows seconds rows/s MB/s "peak RSS" CPU ratio
for r in "${ROWS[@]}"; do echo "$r"; done
echo
echo "resident memory through the run (MB, sampled each second)"
for r in "${TRACES[@]}"; do echo "$r"; done
echo
echo "peak RSS against the first size"
for r in "${GROWTH[@]}"; do echo "$r"; done
