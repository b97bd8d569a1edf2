"""A fake OpenAI-compatible upstream that stamps every byte it receives and answers after a known delay.

Run as its own process (`python -m tests.bench.stamping_upstream --delay-ms 150 --stamps FILE`) so that
it never waits for the benchmark client's CPU. It prints its port, then for every request appends one
JSON line to FILE, in time.perf_counter_ns() terms (CLOCK_MONOTONIC, one clock for every process):
- last_byte_ns: when the kernel received the request's last byte (SO_TIMESTAMPNS on the read that
  completed it, converted from CLOCK_REALTIME at that read). A kernel stamp, so a busy machine that is
  slow to wake this process does not move it; on loopback it is taken as the client's write goes out;
- first_content_ns: just before the first content event is written, `delay` (+ the request's stagger,
  or a little more on a busy machine) after last_byte_ns;
- done_ns: just before `data: [DONE]` is written.
Requests are staggered (delay + (number % 16) x stagger) so that 32 answers do not land on the client in
one burst. Raw sockets, not a web framework: nothing between the socket and the stamp.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import struct
import time

import orjson

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; the same value is the control message type
HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n")


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _event(obj: dict) -> bytes:
    return _chunk(b"data: " + orjson.dumps(obj) + b"\n\n")


def _kernel_receive_ns(ancdata: list) -> int | None:
    """The read's kernel timestamp on the perf_counter clock, or None when the kernel gave none."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanos = struct.unpack("qq", data[:16])
            realtime_minus_monotonic = time.time_ns() - time.perf_counter_ns()
            return seconds * 1_000_000_000 + nanos - realtime_minus_monotonic
    return None


class StampingUpstream:
    def __init__(self, args: argparse.Namespace, stamps) -> None:
        self.delay_s, self.stagger_s = args.delay_ms / 1000, args.stagger_ms / 1000
        self.gap_s, self.events, self.stamps = args.gap_ms / 1000, args.events, stamps
        self.loop = asyncio.get_running_loop()

    def listen(self) -> int:
        listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        listener.setblocking(False)
        self.loop.add_reader(listener, self._accept, listener)
        return listener.getsockname()[1]

    def _accept(self, listener: socket.socket) -> None:
        conn, _ = listener.accept()
        conn.setblocking(False)
        conn.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.loop.add_reader(conn, self._read, conn, [b""])

    def _read(self, conn: socket.socket, buffer: list[bytes]) -> None:
        try:
            data, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(16))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, ancdata = b"", []
        if not data:
            self.loop.remove_reader(conn)
            conn.close()
            return
        received_ns = _kernel_receive_ns(ancdata) or time.perf_counter_ns()
        buffer[0] += data
        while (request := _take_request(buffer)) is not None:
            content = orjson.loads(request)["messages"][0]["content"]
            self.loop.create_task(self._answer(conn, {"id": content, "last_byte_ns": received_ns}))

    async def _answer(self, conn: socket.socket, stamp: dict) -> None:
        number = int(stamp["id"].rsplit(" ", 1)[-1]) if stamp["id"][-1:].isdigit() else 0
        due_ns = stamp["last_byte_ns"] + int((self.delay_s + (number % 16) * self.stagger_s) * 1e9)
        await asyncio.sleep(max(0.0, (due_ns - time.perf_counter_ns()) / 1e9))
        stamp["first_content_ns"] = time.perf_counter_ns()
        await self._send(conn, HEAD + _event({"choices": [{"index": 0, "delta": {"content": "a"}}]}))
        for index in range(1, self.events):
            await asyncio.sleep(self.gap_s)
            finish = "stop" if index == self.events - 1 else None
            await self._send(conn, _event({"choices": [{"index": 0, "delta": {"content": "b"},
                                                        "finish_reason": finish}]}))
        usage = {"prompt_tokens": 5, "completion_tokens": self.events, "total_tokens": 5 + self.events}
        await self._send(conn, _event({"choices": [], "usage": usage}))
        stamp["done_ns"] = time.perf_counter_ns()
        await self._send(conn, _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        self.stamps.write(orjson.dumps(stamp) + b"\n")
        self.stamps.flush()

    async def _send(self, conn: socket.socket, data: bytes) -> None:
        try:
            await self.loop.sock_sendall(conn, data)
        except OSError:
            pass  # the client went away; its record says so


def _take_request(buffer: list[bytes]) -> bytes | None:
    """The body of the first complete request in buffer[0] (removed from it), or None."""
    end = buffer[0].find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buffer[0][:end].decode("latin-1").lower()
    length = next((int(line.split(":", 1)[1]) for line in head.split("\r\n") if line.startswith("content-length:")),
                  0)
    if len(buffer[0]) < end + 4 + length:
        return None
    body, buffer[0] = buffer[0][end + 4:end + 4 + length], buffer[0][end + 4 + length:]
    return body


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--stagger-ms", type=float, default=1.0)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--stamps", required=True)
    args = parser.parse_args()
    with open(args.stamps, "ab") as stamps:
        print(StampingUpstream(args, stamps).listen(), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
