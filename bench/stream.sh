#!/usr/bin/env bash
# The stream benchmark (`bench/run.sh --stream [EVENTS]`): the benchmark's events as messages
# of a 4-partition topic on a local Apache Kafka broker (one node, KRaft; its jars from Maven
# Central as the tests fetch them, tests/kafka/pom.xml).
#
#   1. A bounded load of the topic against the same events loaded from the export file:
#      seconds, rows/s and the ratio (the target: the topic at least 80 % of the file's rows/s).
#   2. `--follow` while a producer writes at a steady RATE messages/s (default 20000) for
#      SECONDS (default 30): the latency from produce to commit (each row's message timestamp
#      to its batch's commit in the ledger) at p50 and p99, and the follower's memory, sampled
#      each second (flat means flat).
#
# Needs what bench/run.sh needs, plus Java and Maven. Not part of `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS="${1:-1000000}"
RATE="${RATE:-20000}"
SECONDS_STEADY="${SECONDS_STEADY:-30}"
BENCH_URL="${BENCH_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
BENCH_DIR="${BENCH_DIR:-/tmp/tier-bench}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tier-target}"
cargo build --release --quiet
TIER="$CARGO_TARGET_DIR/release/tier"
DB=tier_bench_stream
DB_URL="${BENCH_URL%/*}/$DB"
DATA="$BENCH_DIR/data-$EVENTS"
KAFKA="$BENCH_DIR/kafka"
mkdir -p "$BENCH_DIR"
[ -f "$DATA/gen-manifest.json" ] || "$TIER" -q gen --events "$EVENTS" --weather $((EVENTS / 10)) --seed 1 --out "$DATA"

if [ ! -x bench/stream/.venv/bin/python ]; then
    python3 -m venv bench/stream/.venv
    bench/stream/.venv/bin/pip install --quiet --disable-pip-version-check -r bench/stream/requirements.txt
fi
PRODUCE=(bench/stream/.venv/bin/python bench/stream/produce.py)

# The broker, on fresh data.
[ -f "$KAFKA/jars/.complete" ] || {
    mvn -q -B -f tests/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$KAFKA/jars"
    touch "$KAFKA/jars/.complete"
}
rm -rf "$KAFKA/logs"
read -r PORT CONTROLLER < <(python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
[x.bind(("127.0.0.1", 0)) for x in s]
print(*[x.getsockname()[1] for x in s])')
cat > "$KAFKA/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$KAFKA/logs
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
PROPS
java -cp "$KAFKA/jars/*" kafka.tools.StorageTool format -t YmVuY2gtc3RyZWFtLWthZmthMQ -c "$KAFKA/server.properties" >/dev/null 2>&1
java -Xmx1g -cp "$KAFKA/jars/*" kafka.Kafka "$KAFKA/server.properties" >"$KAFKA/broker.log" 2>&1 &
BROKER=$!
trap 'kill $BROKER 2>/dev/null || true' EXIT
until (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; do sleep 0.2; done
sleep 2
BOOT="127.0.0.1:$PORT"

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
now() { date +%s.%N; }
psql_db() { psql "$DB_URL" -qAtX -v ON_ERROR_STOP=1 "$@"; }
psql "$BENCH_URL" -qAtX -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"

echo "producing $EVENTS events to a 4-partition topic ..." >&2
"${PRODUCE[@]}" "$BOOT" events "$DATA/track_events.json" --create 4

# 1. Bounded: the topic against the file, same contract, same records.
/usr/bin/time -f "%e %M" -o "$BENCH_DIR/time.txt" "$TIER" -q --data-dir "$DATA" load track_events --schema from_file --database-url "$DB_URL" >/dev/null
read -r FILE_S FILE_KB < "$BENCH_DIR/time.txt"
/usr/bin/time -f "%e %M" -o "$BENCH_DIR/time.txt" "$TIER" -q load track_events --from "kafka://$BOOT/events" --schema from_topic --database-url "$DB_URL" >/dev/null
read -r TOPIC_S TOPIC_KB < "$BENCH_DIR/time.txt"
FILE_ROWS=$(psql_db -c "SELECT count(*) FROM from_file.track_events")
TOPIC_ROWS=$(psql_db -c "SELECT count(*) FROM from_topic.track_events")

# 2. Following at a steady rate: a contract with the message's timestamp as a column.
CONTRACTS="$BENCH_DIR/stream-contracts"
rm -rf "$CONTRACTS" && mkdir -p "$CONTRACTS"
cp datasets/track_events.toml "$CONTRACTS/"
printf '\n[[column]]\nname = "produced_at"\ntype = "timestamp"\nmessage = "timestamp"\n' >> "$CONTRACTS/track_events.toml"
"${PRODUCE[@]}" "$BOOT" steady "$DATA/track_events.json" --create 4 --limit 1 >/dev/null 2>&1
STEADY=$((RATE * SECONDS_STEADY))
/usr/bin/time -f "%M" -o "$BENCH_DIR/follow-time.txt" "$TIER" -q --datasets "$CONTRACTS" load track_events --from "kafka://$BOOT/steady" \
    --follow --schema following --database-url "$DB_URL" >/dev/null &
FOLLOWER=$!
SAMPLES=()
( "${PRODUCE[@]}" "$BOOT" steady "$DATA/track_events.json" --rate "$RATE" --limit "$STEADY" 2>"$BENCH_DIR/producer.txt" ) &
PRODUCER=$!
while kill -0 "$PRODUCER" 2>/dev/null; do
    sleep 1
    CHILD=$(pgrep -P "$FOLLOWER" | head -1 || true)
    [ -n "$CHILD" ] && SAMPLES+=("$(awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$CHILD/status" 2>/dev/null || true)")
done
wait "$PRODUCER"
TOTAL=$((STEADY + 1))
until [ "$(psql_db -c "SELECT (SELECT count(*) FROM following.track_events) + (SELECT count(*) FROM following.track_events_rejects)" 2>/dev/null || echo 0)" -ge "$TOTAL" ]; do
    sleep 0.2
done
# SIGTERM to tier itself (not GNU time, which would die and leave it running).
kill -TERM "$(pgrep -P "$FOLLOWER" | head -1)"
wait "$FOLLOWER" || true
FOLLOW_KB=$(tail -1 "$BENCH_DIR/follow-time.txt")
read -r P50 P99 MAX BATCHES < <(psql_db -F ' ' -c "
    SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY lat)::numeric, 3), round(percentile_cont(0.99) WITHIN GROUP (ORDER BY lat)::numeric, 3),
           round(max(lat)::numeric, 3), (SELECT count(*) FROM following.tier_loads WHERE status = 'ok')
    FROM (SELECT extract(epoch FROM l.finished_at - e.produced_at) AS lat
          FROM following.track_events e JOIN following.tier_loads l ON l.id = e.load_id) q")

printf '\n%-44s %10s %12s %10s\n' "stream benchmark, $EVENTS events" seconds rows/s "peak RSS"
printf '%-44s %10s %12s %10s\n' "file: tier load track_events" "$FILE_S" "$(awk -v r="$FILE_ROWS" -v s="$FILE_S" 'BEGIN { printf "%.0f", r / s }')" "$((FILE_KB / 1024))MB"
printf '%-44s %10s %12s %10s   topic/file rows/s: %s\n' "topic: tier load --from kafka:// (4 part.)" "$TOPIC_S" \
    "$(awk -v r="$TOPIC_ROWS" -v s="$TOPIC_S" 'BEGIN { printf "%.0f", r / s }')" "$((TOPIC_KB / 1024))MB" \
    "$(awk -v a="$FILE_S" -v b="$TOPIC_S" -v ra="$FILE_ROWS" -v rb="$TOPIC_ROWS" 'BEGIN { printf "%.0f%%", 100 * (rb / b) / (ra / a) }')"
printf '\n--follow at %s messages/s for %s s (%s messages, %s batches; producer: %s)\n' "$RATE" "$SECONDS_STEADY" "$STEADY" "$BATCHES" "$(cat "$BENCH_DIR/producer.txt")"
printf 'produce -> commit latency: p50 %s s, p99 %s s, max %s s; follower peak RSS %sMB; RSS each second: %s\n' \
    "$P50" "$P99" "$MAX" "$((FOLLOW_KB / 1024))" "${SAMPLES[*]}"
psql "$BENCH_URL" -qAtX -c "DROP DATABASE IF EXISTS $DB"
