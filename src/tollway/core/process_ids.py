"""Ids unique across processes and replicas, and cheaper than a uuid4 each: a random prefix per process
and a counter.

The prefix is drawn again in every forked child (`tollway serve --workers N` forks after start-up
code has run): workers sharing a prefix would hand out the same request ids and budget tickets, and
tickets name holds in a shared Redis.
"""

from __future__ import annotations

import itertools
import os
import secrets
import weakref


class ProcessIds:
    """`next(ids)`: "<12 hex chars of this process><counter in hex, zero-padded to `width`>"."""

    def __init__(self, width: int = 0) -> None:
        self._spec = f"0{width}x" if width else "x"
        self._renew()
        _live.add(self)

    def _renew(self) -> None:
        self._prefix = secrets.token_hex(6)
        self._count = itertools.count(1)

    def __iter__(self) -> "ProcessIds":
        return self

    def __next__(self) -> str:
        return self._prefix + format(next(self._count), self._spec)


_live: "weakref.WeakSet[ProcessIds]" = weakref.WeakSet()


def _renew_all_after_fork() -> None:
    for ids in list(_live):
        ids._renew()


os.register_at_fork(after_in_child=_renew_all_after_fork)
