"""Two gateway replicas on one PostgreSQL: each batch is run by exactly one of them, so each line reaches
the upstream once and has one ledger row, whichever replica took the create call."""

from __future__ import annotations

import time
from collections import Counter

import psycopg

from tests.batch.support import PROVIDER_KEYS, batch_config, line, sent_contents, upload, wait_for


def test_two_replicas_never_run_the_same_batch(emulator_factory, gateway_factory, postgres_url):
    emu = emulator_factory()
    emu.set_profile("qwen3.5-plus", {"ttft_ms": 150})  # lines take a while: both replicas poll meanwhile
    config = batch_config(emu, concurrency=2, poll_s=0.05, max_batches=1)
    replicas = [gateway_factory(config, env=PROVIDER_KEYS, extra_args=("--database-url", postgres_url))
                for _ in range(2)]
    batches = []
    for number in range(6):
        client = replicas[number % 2].client()
        lines = [line(f"b{number}-l{i}", model="now") for i in range(3)]
        batches.append(client.batches.create(input_file_id=upload(client, lines).id,
                                             endpoint="/v1/chat/completions", completion_window="24h"))
    for batch in batches:
        done = wait_for(replicas[0].client(), batch.id)
        assert done.status == "completed" and done.request_counts.completed == 3, done
    sent = Counter(sent_contents(emu, "qwen3.5-plus"))
    assert sent == {f"say b{n}-l{i}": 1 for n in range(6) for i in range(3)}
    deadline = time.monotonic() + 10
    while True:
        with psycopg.connect(postgres_url) as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM requests WHERE batch_id <> ''")]
        if len(ids) >= 18 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert sorted(Counter(ids).values()) == [1] * 18
    with psycopg.connect(postgres_url) as conn:
        owners = {row[0] for row in conn.execute("SELECT lease_owner FROM batches")}
    assert len(owners) == 2, "one replica ran every batch: the test did not exercise sharing"


def test_workers_sharing_one_sqlite_ledger_run_each_batch_once(emulator_factory, gateway_factory):
    emu = emulator_factory()
    gw = gateway_factory(batch_config(emu, poll_s=0.05, max_batches=1), env=PROVIDER_KEYS,
                         extra_args=("--workers", "2"))
    client = gw.client()
    batches = [client.batches.create(input_file_id=upload(client, [line(f"w{n}-l{i}", model="now")
                                                                   for i in range(2)]).id,
                                     endpoint="/v1/chat/completions", completion_window="24h") for n in range(4)]
    for batch in batches:
        done = wait_for(client, batch.id)
        assert done.status == "completed" and done.request_counts.completed == 2, done
    assert Counter(sent_contents(emu, "qwen3.5-plus")) == {f"say w{n}-l{i}": 1 for n in range(4) for i in range(2)}
