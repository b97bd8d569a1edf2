"""The lean script client against a real redis-server: replies reach their own callers when pipelined,
scripts reload after NOSCRIPT, the URL's login and database are used (its password never in a message),
a paused Redis times out without a late reply reaching a later call, and a broken connection is replaced.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
import redis
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.processes import free_port, stop
from tollway.accounting.counters.resp_client import RedisAddress, RespClient, Script, pack

ECHO = Script("return {ARGV[1], KEYS[1]}")
SET_AND_READ = Script("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])")
SECRET = "s3cr3t-pass-word"


def test_pipelined_calls_each_get_their_own_reply(redis_url: str) -> None:
    async def scenario() -> list:
        client = RespClient(RedisAddress.from_url(redis_url))
        try:
            return await asyncio.gather(*(client.evalsha(ECHO, [f"k{i}"], [f"v{i} é"], 1.0) for i in range(300)))
        finally:
            await client.close()

    assert asyncio.run(scenario()) == [[f"v{i} é", f"k{i}"] for i in range(300)]


def test_a_flushed_script_cache_is_reloaded_and_the_call_still_answers(redis_url: str) -> None:
    async def scenario() -> tuple:
        client = RespClient(RedisAddress.from_url(redis_url))
        first = await client.evalsha(SET_AND_READ, ["tw:test"], ["one"], 1.0)
        await client.call(pack("SCRIPT", "FLUSH"))
        second = await client.evalsha(SET_AND_READ, ["tw:test"], ["two"], 1.0)
        await client.close()
        return first, second

    assert asyncio.run(scenario()) == ("one", "two")


def test_a_script_error_raises_response_error_and_the_connection_stays_usable(redis_url: str) -> None:
    failing = Script("return redis.error_reply('nope from lua')")

    async def scenario() -> list:
        client = RespClient(RedisAddress.from_url(redis_url))
        with pytest.raises(ResponseError, match="nope from lua"):
            await client.evalsha(failing, [], [], 1.0)
        reply = await client.evalsha(ECHO, ["k"], ["after"], 1.0)
        await client.close()
        return reply

    assert asyncio.run(scenario()) == ["after", "k"]


@pytest.fixture
def password_redis():
    """A redis-server of this test's own that requires a password."""
    data_dir = Path(tempfile.mkdtemp(prefix="tollway-redis-auth-"))
    port = free_port()
    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(port), "--bind",
                             "127.0.0.1", "--dir", str(data_dir), "--save", "", "--requirepass", SECRET],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    client = redis.Redis(port=port, password=SECRET, socket_timeout=1)
    for _ in range(250):
        try:
            client.ping()
            break
        except redis.RedisError:
            asyncio.run(asyncio.sleep(0.02))
    yield port
    client.close()
    stop(proc, signal.SIGTERM)
    shutil.rmtree(data_dir, ignore_errors=True)


def test_the_urls_password_and_database_are_used(password_redis: int) -> None:
    async def scenario() -> str:
        client = RespClient(RedisAddress.from_url(f"redis://:{SECRET}@127.0.0.1:{password_redis}/3"))
        reply = await client.evalsha(SET_AND_READ, ["tw:in-db-3"], ["yes"], 1.0)
        await client.close()
        return reply

    assert asyncio.run(scenario()) == "yes"
    with redis.Redis(port=password_redis, password=SECRET, db=3, decode_responses=True) as check:
        assert check.get("tw:in-db-3") == "yes"
    with redis.Redis(port=password_redis, password=SECRET, db=0) as check:
        assert check.get("tw:in-db-3") is None


def test_a_wrong_password_is_refused_without_the_password_in_the_message(password_redis: int) -> None:
    async def scenario() -> None:
        client = RespClient(RedisAddress.from_url(f"redis://user:wrong-{SECRET}@127.0.0.1:{password_redis}/0"))
        await client.evalsha(ECHO, ["k"], ["v"], 1.0)

    with pytest.raises(AuthenticationError) as refused:
        asyncio.run(scenario())
    assert f"127.0.0.1:{password_redis}" in str(refused.value) and SECRET not in str(refused.value)


def test_an_unreachable_redis_raises_a_connection_error_without_the_password() -> None:
    port = free_port()

    async def scenario() -> None:
        await RespClient(RedisAddress.from_url(f"redis://:{SECRET}@127.0.0.1:{port}/0")).evalsha(ECHO, [], [], 1.0)

    with pytest.raises(RedisConnectionError) as failed:
        asyncio.run(scenario())
    assert f"127.0.0.1:{port}" in str(failed.value) and SECRET not in str(failed.value)


def test_a_paused_redis_times_out_every_pending_call_and_no_late_reply_is_read(redis_factory) -> None:
    server = redis_factory()
    assert server.proc is not None

    async def scenario() -> None:
        client = RespClient(RedisAddress.from_url(server.url))
        assert await client.evalsha(ECHO, ["k"], ["before"], 0.3) == ["before", "k"]
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            first = asyncio.ensure_future(client.evalsha(ECHO, ["k"], ["late-1"], 0.3))
            await asyncio.sleep(0.1)
            second = asyncio.ensure_future(client.evalsha(ECHO, ["k"], ["late-2"], 5.0))
            with pytest.raises(TimeoutError):
                await first
            with pytest.raises(RedisConnectionError):  # dropped with the connection, well before its own 5 s
                await asyncio.wait_for(second, 1.0)
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        for attempt in range(5):  # Redis answers again on a fresh connection, with this call's own reply
            try:
                assert await client.evalsha(ECHO, ["k"], [f"after-{attempt}"], 1.0) == [f"after-{attempt}", "k"]
                break
            except RedisConnectionError:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the client never reconnected")
        await client.close()

    asyncio.run(asyncio.wait_for(scenario(), 30))


def test_a_restarted_redis_is_reconnected_and_its_scripts_reloaded(redis_factory) -> None:
    server = redis_factory()

    async def scenario() -> list:
        client = RespClient(RedisAddress.from_url(server.url))
        await client.evalsha(ECHO, ["k"], ["one"], 1.0)
        await asyncio.get_running_loop().run_in_executor(None, server.restart)
        await asyncio.sleep(0.1)  # the loop sees the old socket close
        reply = await client.evalsha(ECHO, ["k"], ["two"], 1.0)
        await client.close()
        return reply

    assert asyncio.run(scenario()) == ["two", "k"]


def test_a_caller_cancelled_from_outside_keeps_the_order_of_replies(redis_url: str) -> None:
    async def scenario() -> list:
        client = RespClient(RedisAddress.from_url(redis_url))
        await client.evalsha(ECHO, ["k"], ["warm"], 1.0)
        abandoned = asyncio.ensure_future(client.evalsha(ECHO, ["k"], ["abandoned"], 1.0))
        await asyncio.sleep(0)  # written, not yet answered
        abandoned.cancel()
        replies = await asyncio.gather(*(client.evalsha(ECHO, ["k"], [f"next-{i}"], 1.0) for i in range(3)))
        await client.close()
        return replies

    assert asyncio.run(scenario()) == [[f"next-{i}", "k"] for i in range(3)]


def test_urls_are_read_into_addresses() -> None:
    plain = RedisAddress.from_url("redis://127.0.0.1:6390/2")
    assert (plain.host, plain.port, plain.db, plain.password, plain.tls) == ("127.0.0.1", 6390, 2, None, None)
    login = RedisAddress.from_url("rediss://me:p%40ss@cache.example:6380")
    assert (login.username, login.password, login.db, login.where) == ("me", "p@ss", 0, "cache.example:6380")
    assert login.tls is not None and login.tls.check_hostname
    with pytest.raises(ValueError, match="scheme"):
        RedisAddress.from_url("http://127.0.0.1:6379")
    with pytest.raises(ValueError, match="database must be a number"):
        RedisAddress.from_url("redis://127.0.0.1:6379/zero")


def test_a_redis_py_clients_address_is_taken_over() -> None:
    import redis.asyncio as aioredis

    address = RedisAddress.from_redis_py(aioredis.Redis.from_url(f"rediss://u:{SECRET}@h.example:7000/4"))
    assert (address.host, address.port, address.db, address.username, address.password) == \
        ("h.example", 7000, 4, "u", SECRET)
    assert address.tls is not None and SECRET not in address.where and SECRET not in repr(address)
