"""Ids made in forked workers must not repeat each other's (they name ledger rows and Redis holds)."""

import os

from tollway.core.process_ids import ProcessIds


def test_ids_count_up_behind_one_prefix_and_pad_to_width():
    ids = ProcessIds(width=10)
    first, second = next(ids), next(ids)
    assert len(first) == 22 and first[:12] == second[:12]
    assert (first[12:], second[12:]) == ("0000000001", "0000000002")
    assert next(ProcessIds())[12:] == "1"


def test_a_forked_child_draws_its_own_prefix():
    ids = ProcessIds()
    parent = next(ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, next(ids).encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 100).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child[:12] != parent[:12], "a worker forked after start-up reuses the parent's ids"
    assert next(ids)[:12] == parent[:12], "the parent keeps its own"
