"""Fixtures of the Redis tests: the shared server's db 14 (flushed per test), private servers the
tests start and stop themselves, and a real 3-master Cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis
from redis_servers import RedisCluster, RedisServer, ping

from qaio.brokers.redis import RedisBroker
from qaio.serializers import get_serializer

SHARED_PORT = 6379
#: The Redis tests' database on the shared server (the conformance suite uses 13).
DB = 14


@pytest.fixture(scope="session")
def shared_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The shared server at 127.0.0.1:6379, or a private one when it is not running."""
    if ping(SHARED_PORT):
        yield SHARED_PORT
        return
    server = RedisServer(tmp_path_factory.mktemp("redis-shared")).start()
    try:
        yield server.port
    finally:
        server.stop()


@pytest.fixture
def url(shared_port: int) -> str:
    redis.Redis(port=shared_port, db=DB).flushdb()
    return f"redis://127.0.0.1:{shared_port}/{DB}"


@pytest.fixture
def raw(shared_port: int) -> Iterator[redis.Redis]:
    """A plain synchronous client on the tests' database, to look at the keys."""
    client = redis.Redis(port=shared_port, db=DB)
    yield client
    client.close()


@pytest.fixture
async def broker(url: str) -> AsyncIterator[RedisBroker]:
    broker = RedisBroker(url, serializer=get_serializer("json"), result_ttl=60)
    await broker.connect()
    yield broker
    await broker.close()


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start private servers (`factory(persistent=True)`); all are stopped after the test."""
    servers: list[RedisServer] = []

    def factory(**options: object) -> RedisServer:
        server = RedisServer(tmp_path / f"server{len(servers)}", **options)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    nodes = RedisCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    try:
        yield nodes
    finally:
        nodes.stop()
