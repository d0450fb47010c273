"""Gateway fixtures: an App per test on memory://, sqlite:// and Redis, a worker in the test's event
loop, and an httpx client on the ASGI app (no server, no sockets besides the broker's).

Redis tests use the shared server at 127.0.0.1:6379 under a key prefix of their own, deleted
afterwards (never FLUSHDB: others use this Redis). Unreachable, they fail under CI=true and are
skipped with a warning otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from qaio import App, Worker
from tests.conftest import REDIS_HOST, REDIS_PORT, require_server

from .apps import Tasks, build

#: The Redis database of the gateway tests (keys under a per-test prefix; nothing is flushed).
REDIS_DB = 0


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    require_server("Redis", REDIS_HOST, REDIS_PORT)
    import redis

    prefix = f"qaio-test-gw-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis(REDIS_HOST, REDIS_PORT, db=REDIS_DB)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def gateway_url(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'gateway.db'}"
    prefix = request.getfixturevalue("redis_prefix")
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}?prefix={prefix}"


@pytest.fixture(params=["memory", "sqlite", "redis"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return gateway_url(str(request.param), tmp_path, request)


@pytest.fixture(params=["memory", "sqlite"])
def local_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """For tests of the gateway's own logic, where a third broker adds time and nothing else."""
    return gateway_url(str(request.param), tmp_path, request)


@pytest.fixture
async def qaio_app(url: str) -> AsyncIterator[tuple[App, Tasks]]:
    app, tasks = build(url)
    yield app, tasks
    tasks.controls.go.set()
    await app.aclose()


@contextlib.asynccontextmanager
async def running_worker(app: App, **options: Any) -> AsyncIterator[Worker]:
    """A real Worker in this event loop; stopped (or, once idle, cancelled: claims block up to 1 s) after."""
    worker = Worker(app, concurrency=options.pop("concurrency", 16), grace=2.0, **options)
    task = asyncio.get_running_loop().create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        done, _ = await asyncio.wait({task}, timeout=0.1)
        if not done:
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def client_for(api: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
        yield client


async def job_count(app: App) -> int:
    """Jobs the backend holds in any state (a rejected request must not have added one)."""
    backend = await app.backend()
    return len(await backend.list_jobs(queue=None, status=None, limit=10_000))
