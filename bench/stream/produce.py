"""The stream benchmark's producer: an export's records (the BI framing: one object per line,
`[` before the first and `,` after each) as messages of TOPIC, round-robin over its
partitions, as fast as it can or at a steady RATE messages per second.

    produce.py BOOTSTRAP TOPIC EXPORT [--create PARTITIONS] [--rate N] [--limit N]
"""
import argparse
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic


def main():
    p = argparse.ArgumentParser()
    p.add_argument("bootstrap")
    p.add_argument("topic")
    p.add_argument("export")
    p.add_argument("--create", type=int)
    p.add_argument("--rate", type=float)
    p.add_argument("--limit", type=int)
    args = p.parse_args()
    if args.create:
        admin = AdminClient({"bootstrap.servers": args.bootstrap})
        admin.create_topics([NewTopic(args.topic, args.create, 1)])[args.topic].result(60)
    partitions = args.create or 4
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "linger.ms": 5,
        "compression.type": "lz4",
        "queue.buffering.max.messages": 1000000,
    })
    started = time.monotonic()
    n = 0
    with open(args.export, "rb") as export:
        for line in export:
            record = line.strip().lstrip(b"[").rstrip(b",").rstrip(b"]").strip()
            if not record:
                continue
            while True:
                try:
                    producer.produce(args.topic, value=record, partition=n % partitions)
                    break
                except BufferError:
                    producer.poll(0.01)
            n += 1
            if n % 1000 == 0:
                producer.poll(0)
                if args.rate:
                    # Steady: never ahead of the rate's schedule.
                    ahead = n / args.rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
            if args.limit and n >= args.limit:
                break
    left = producer.flush(120)
    if left:
        sys.exit(f"{left} messages not delivered")
    print(f"{n} messages in {time.monotonic() - started:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
