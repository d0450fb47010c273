"""The connections a Redis broker holds for the job path (connection.Lane): script calls, a worker's
blocking pop and the reply listener skip redis-py's client layer, so they must recover by themselves
from what that layer would have handled: a script Redis forgot, a cancelled call, a killed connection,
and they must honour everything the URL asks for (TLS, an ACL user, a db number).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import redis
from click.testing import CliRunner
from redis_servers import RedisServer, SecureRedisServer
from test_redis_broker import SERIALIZER, job, succeeded

from qaio import App, Worker
from qaio.brokers.redis import RedisBroker
from qaio.brokers.redis.connection import Lane, parse
from qaio.brokers.redis.scripts import source
from qaio.cli.main import cli
from qaio.protocols import Action, Settlement


async def test_a_script_that_redis_forgot_is_loaded_again(server_factory: Callable[..., RedisServer]) -> None:
    """SCRIPT FLUSH (as after a restart without persistence): the next calls still work."""
    server = server_factory()
    broker = RedisBroker(server.url, serializer=SERIALIZER)
    await broker.connect()
    admin = redis.Redis(port=server.port)
    try:
        await broker.enqueue([job()])
        sha = hashlib.sha1(source("enqueue").encode()).hexdigest()
        admin.script_flush()
        assert admin.script_exists(sha) == [False]
        item = job()
        assert await broker.enqueue([item]) == [True]
        assert admin.script_exists(sha) == [True]
        got = await broker.claim(["default"], limit=5, lease=5, wait=0)
        assert len(got) == 2 and item.job_id in {d.job_id for d in got}
    finally:
        admin.close()
        await broker.close()


async def test_a_cancelled_blocking_claim_leaves_its_connection_in_step(broker: RedisBroker) -> None:
    """A claim cancelled while it blocks must not leave the pop's late reply to be read as the answer
    to the next command on that connection."""
    for _ in range(3):
        claim = asyncio.create_task(broker.claim(["default"], limit=1, lease=5, wait=5))
        await asyncio.sleep(0.05)
        claim.cancel()
        await asyncio.gather(claim, return_exceptions=True)
        await broker.enqueue([job()])  # pops and wakes nothing: no one blocks now
        got = await broker.claim(["default"], limit=1, lease=5, wait=1)
        assert len(got) == 1
        await broker.settle([Settlement(got[0], Action.ACK, succeeded())])
    blocked = asyncio.create_task(broker.claim(["default"], limit=1, lease=5, wait=2))
    await asyncio.sleep(0.05)
    item = job()
    await broker.enqueue([item])
    assert [d.job_id for d in await asyncio.wait_for(blocked, 2)] == [item.job_id]


async def test_concurrent_calls_share_the_lane_and_the_pool(broker: RedisBroker) -> None:
    """Calls made while the lane is busy go through the pool; every one gets its own reply."""
    items = [job() for _ in range(40)]
    created = await asyncio.gather(*(broker.enqueue([item]) for item in items))
    assert created == [[True]] * 40
    got = await asyncio.gather(*(broker.claim(["default"], limit=1, lease=5, wait=0) for _ in range(40)))
    assert sorted(d.job_id for each in got for d in each) == sorted(item.job_id for item in items)


async def test_killed_connections_are_opened_again(server_factory: Callable[..., RedisServer]) -> None:
    """Every client connection is killed between calls, a blocked worker's among them: each call after
    that still gets its answer, and a waiting producer still gets the pushed end."""
    server = server_factory()
    worker = RedisBroker(server.url, serializer=SERIALIZER)
    producer = RedisBroker(server.url, serializer=SERIALIZER)
    await worker.connect()
    await producer.connect()
    admin = redis.Redis(port=server.port)
    try:
        first = job()
        await producer.enqueue([first])
        (delivery,) = await worker.claim(["default"], limit=1, lease=5, wait=0)
        await worker.settle([Settlement(delivery, Action.ACK, succeeded())])
        assert await producer.wait_state(first.job_id, timeout=5) is not None  # the listener runs
        blocked = asyncio.create_task(worker.claim(["default"], limit=1, lease=5, wait=3))
        await asyncio.sleep(0.1)
        mine = admin.client_id()
        killed = sum(admin.client_kill_filter(_id=c["id"]) for c in admin.client_list() if c["id"] != mine)
        assert killed >= 4  # worker's script and blocking lanes, producer's lanes and listener
        item = job()
        start = time.monotonic()
        assert await producer.enqueue([item]) == [True]
        got = await asyncio.wait_for(blocked, 5)
        if not got:  # the killed pop returned empty; the worker claims again as its loop would
            got = await worker.claim(["default"], limit=1, lease=5, wait=1)
        assert [d.job_id for d in got] == [item.job_id]
        waiter = asyncio.create_task(producer.wait_state(item.job_id, timeout=10))
        await worker.settle([Settlement(got[0], Action.ACK, succeeded(), result=b"1")])
        state = await asyncio.wait_for(waiter, 8)
        assert state is not None and state.result == 1
        assert time.monotonic() - start < 8
    finally:
        admin.close()
        await producer.close()
        await worker.close()


async def test_tls_with_an_acl_user_and_a_db_number(tmp_path: Path) -> None:
    """`rediss://user:password@host/db`: a worker and a producer do a whole round trip over TLS, the
    pushed result included, as an ACL user on db 3, and a blocking producer enqueues there too; a
    wrong password fails clearly, and at once."""
    server = SecureRedisServer(tmp_path / "secure").start()
    app = App(server.url, result_ttl=60)

    @app.task(name="double")
    async def double(x: int) -> int:
        return 2 * x

    worker = Worker(app, concurrency=4)
    running = asyncio.create_task(worker.run())
    try:
        job_ = await double.aenqueue(x=21)
        assert await job_.aresult(timeout=10) == 42
        with redis.Redis.from_url(server.url) as admin:
            assert admin.dbsize() > 0
            assert admin.client_info()["db"] == 3
            assert admin.acl_whoami() == SecureRedisServer.USER
        assert await asyncio.to_thread(lambda: double.enqueue(x=1).created)  # a blocking producer too
        wrong = RedisBroker(server.url.replace(":s3cret@", ":wrong@"), serializer=SERIALIZER)
        await wrong.connect()
        try:
            with pytest.raises(redis.AuthenticationError):
                await wrong.enqueue([job()])
            blocking = wrong.blocking_enqueue()
            assert blocking is not None
            with pytest.raises(redis.AuthenticationError):
                await asyncio.to_thread(blocking, [job()])
        finally:
            await wrong.close()
        # The password is a secret: never in a repr, the CLI's output or its errors (one line, no traceback).
        assert SecureRedisServer.PASSWORD not in repr(app) and ":***@" in repr(app)
        runner = CliRunner()
        shown = await asyncio.to_thread(runner.invoke, cli, ["info", "--json", "--url", server.url])
        assert shown.exit_code == 0 and SecureRedisServer.PASSWORD not in shown.output, shown.output
        assert orjson.loads(shown.output)["url"].startswith(f"rediss://{SecureRedisServer.USER}:***@")
        wrong_url = server.url.replace(":s3cret@", ":wrong@")
        refused = await asyncio.to_thread(runner.invoke, cli, ["info", "--url", wrong_url])
        assert refused.exit_code == 1 and "broker error: AuthenticationError" in refused.output, refused.output
        assert "Traceback" not in refused.output and ":wrong@" not in refused.output
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)
        await app.aclose()
        server.stop()


async def test_a_script_head_packed_once_serves_every_call_with_those_keys(url: str) -> None:
    """Lane.script packs "EVALSHA sha n keys" once per script and key list and joins each call's
    arguments to it: calls with other keys, other scripts, no arguments and binary ones all arrive whole."""
    lane = Lane(parse(url))
    admin = redis.Redis.from_url(url)
    echo = admin.script_load("return {KEYS, ARGV}")
    count = admin.script_load("return #KEYS + #ARGV")
    try:
        for keys, args in [(["a", "b"], ["1", b"\x00\xff", 2.5]), (["c"], []), (["a", "b"], ["x" * 70_000])] * 2:
            got_keys, got_args = await lane.script(echo, keys, args)
            assert [k.decode() for k in got_keys] == keys
            assert got_args == [a if isinstance(a, bytes) else str(a).encode() for a in args]
            assert await lane.script(count, keys, args) == len(keys) + len(args)
    finally:
        admin.close()
        await lane.aclose()
