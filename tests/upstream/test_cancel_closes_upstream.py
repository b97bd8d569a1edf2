"""A cancelled attempt (a hedge loser) closes its upstream connection, so the upstream stops working on it."""

import asyncio

from tollway.upstream.http_client import HttpClient


def test_cancelling_before_the_answer_closes_the_connection():
    async def main() -> float | None:
        closed = asyncio.get_running_loop().create_future()

        async def silent_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")  # read the request head, never answer
            started = asyncio.get_running_loop().time()
            while await reader.read(1024):
                pass
            closed.set_result(asyncio.get_running_loop().time() - started)
            writer.close()

        server = await asyncio.start_server(silent_upstream, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = HttpClient()
        target = client.target(f"http://127.0.0.1:{port}/v1/chat/completions", {"Content-Type": "application/json"})
        attempt = asyncio.create_task(client.post(target, b"{}", 1.0))
        await asyncio.sleep(0.1)
        attempt.cancel()
        try:
            return await asyncio.wait_for(closed, 2.0)
        except TimeoutError:
            return None
        finally:
            await client.close()
            server.close()

    assert asyncio.run(main()) is not None, "the upstream never saw the cancelled request's connection close"
