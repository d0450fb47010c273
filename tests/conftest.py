"""Fixtures shared by every test: one App per broker URL, on the real servers of this machine.

A server that can be neither reached nor started skips its tests loudly locally and fails them in CI
(CI=true), so a missing server never passes silently.
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from qaio import App

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
#: The conformance suite's Redis database; other Redis tests use their own.
REDIS_DB = 13
CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
        return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (in CI) when a server the test needs is not there."""
    if reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}; start it (see README, 'Tests')"
    if CI:
        pytest.fail(message)
    warnings.warn(message, stacklevel=2)
    pytest.skip(message)


def broker_url(kind: str, tmp_path: Path) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'qaio.db'}"
    require_server("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    redis.Redis(REDIS_HOST, REDIS_PORT, db=REDIS_DB).flushdb()
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


@pytest.fixture(params=["memory", "sqlite", "redis"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url(backend_kind: str, tmp_path: Path) -> str:
    return broker_url(backend_kind, tmp_path)


@pytest.fixture
async def app(url: str) -> AsyncIterator[App]:
    """An App with short leases and TTLs, so recovery paths run in test time."""
    app = App(url, lease=1.0, result_ttl=60, max_deliveries=3)
    yield app
    await app.aclose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'qaio.db'}"
