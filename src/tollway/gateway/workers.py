"""`tollway serve --workers N`: N gateway processes sharing one listening socket.

One Python process uses one core; workers let the gateway use all of them. The parent binds the port,
forks the workers (each with its own event loop, upstream connections, breakers and ledger writer; they
share the SQLite ledger through WAL locking, or PostgreSQL), forwards SIGTERM/SIGINT so each drains and
flushes its ledger rows, forwards SIGHUP so each reloads the config, and exits with the worst exit code. /metrics sums every worker's figures through
a fresh directory per run (observe/worker_metrics.py). Limits and budgets are exact across workers only
through Redis (`redis_url`), exactly as across replicas.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from pathlib import Path
from typing import Callable

from tollway.observe.worker_metrics import mark_worker_dead, remove_fleet_dir

log = logging.getLogger("tollway.workers")


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def run_workers(workers: int, sock: socket.socket, serve_one: Callable[[socket.socket], None],
                metrics_dir: Path) -> int:
    """Fork `workers` processes each running `serve_one(sock)`; wait for all; return the worst exit code.
    `metrics_dir` (observe.worker_metrics.make_fleet_dir, made before the gateway's registry) is removed
    when all have exited."""
    try:
        return _fork_and_wait(workers, sock, serve_one, metrics_dir)
    finally:
        remove_fleet_dir(metrics_dir)


def _fork_and_wait(workers: int, sock: socket.socket, serve_one: Callable[[socket.socket], None],
                   metrics_dir: Path) -> int:
    children: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker: its own process group, so a terminal's Ctrl-C reaches it once, via the parent
            os.setpgid(0, 0)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # until its loop handles it: never a reason to exit
            code = 0
            try:
                serve_one(sock)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # the worker's own traceback is already logged; the parent reports the code
                log.exception("worker %d failed", os.getpid())
                code = 1
            os._exit(code)
        children.append(pid)
    sock.close()

    def forward(signum: int, _frame: object) -> None:
        sent = signal.SIGHUP if signum == signal.SIGHUP else signal.SIGTERM
        for child in children:
            try:
                os.kill(child, sent)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGHUP, forward)
    worst = 0
    for child in children:
        _, status = os.waitpid(child, 0)
        mark_worker_dead(metrics_dir, child)
        worst = max(worst, os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)
    return worst
