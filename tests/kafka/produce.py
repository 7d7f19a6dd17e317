"""Writes the Kafka tests' messages: one per line of a JSON Lines file, each
{"partition": N, "key": text or null, "value": text or null}, in order, with the given
compression (none, gzip, snappy, lz4, zstd); creates the topic first if asked, and
deletes a partition's messages before an offset if asked (what retention does).

    produce.py BOOTSTRAP TOPIC MESSAGES.jsonl [--create PARTITIONS] [--compression KIND]
               [--delete-before PARTITION:OFFSET]
"""
import argparse
import json
import sys
import time

from confluent_kafka import KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create(admin, topic, partitions):
    # A broker just started may not take it yet: try for a while.
    deadline = time.time() + 60
    while True:
        try:
            admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)
            return
        except KafkaException as e:
            if time.time() > deadline:
                raise
            print(f"create {topic}: {e}; retrying", file=sys.stderr)
            time.sleep(0.5)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("messages")
    parser.add_argument("--create", type=int)
    parser.add_argument("--compression", default="none")
    parser.add_argument("--delete-before")
    args = parser.parse_args()
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    if args.create:
        create(admin, args.topic, args.create)
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "compression.type": args.compression,
        "linger.ms": 50,
        "enable.idempotence": True,
    })
    failures = []

    def delivered(err, msg):
        if err is not None:
            failures.append(str(err))

    count = 0
    with open(args.messages, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            m = json.loads(line)
            value = None if m["value"] is None else m["value"].encode("utf-8")
            key = None if m.get("key") is None else m["key"].encode("utf-8")
            producer.produce(args.topic, value=value, key=key, partition=m["partition"], on_delivery=delivered)
            count += 1
            if count % 10000 == 0:
                producer.poll(0)
    remaining = producer.flush(60)
    if failures or remaining:
        sys.exit(f"produce failed: {remaining} not delivered; {failures[:3]}")
    if args.delete_before:
        partition, offset = (int(n) for n in args.delete_before.split(":"))
        for future in admin.delete_records([TopicPartition(args.topic, partition, offset)]).values():
            future.result(30)
    print(count)


if __name__ == "__main__":
    main()
