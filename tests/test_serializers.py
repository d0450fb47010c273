"""Codecs: msgpack carries bytes, pickle is refused unless allowed, user codecs plug in by name."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from qaio import App, ConfigError, EnqueueError, Worker
from qaio.serializers import register


async def run_one(app: App, task: Any, **kwargs: Any) -> Any:
    job = await task.aenqueue(**kwargs)
    await asyncio.wait_for(Worker(app, burst=True).run(), 20)
    return await job.aresult(timeout=5)


async def test_msgpack_carries_raw_bytes(sqlite_url: str) -> None:
    app = App(sqlite_url, serializer="msgpack")

    @app.task
    async def reverse(data: bytes) -> bytes:
        return data[::-1]

    assert await run_one(app, reverse, data=b"\x00\x01\xff") == b"\xff\x01\x00"
    await app.aclose()


async def test_json_rejects_bytes_at_enqueue(sqlite_url: str) -> None:
    app = App(sqlite_url)

    @app.task
    async def take(data: bytes) -> None: ...

    with pytest.raises(EnqueueError, match="msgpack"):
        await take.aenqueue(data=b"x")
    assert await (await app.backend()).queue_stats() == []
    await app.aclose()


def test_pickle_is_refused_unless_allowed() -> None:
    with pytest.raises(ConfigError, match="allow_pickle"):
        App("memory://", serializer="pickle")
    assert App("memory://", serializer="pickle", allow_pickle=True).serializer.name == "pickle"


async def test_a_registered_codec_is_used_by_name() -> None:
    class Sorted:
        name = "sorted-json"

        def dumps(self, obj: Any) -> bytes:
            return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)

        def loads(self, data: bytes) -> Any:
            return orjson.loads(data)

    register("sorted-json", Sorted)
    app = App("memory://", serializer="sorted-json")

    @app.task
    async def echo(x: int) -> int:
        return x

    assert await run_one(app, echo, x=7) == 7


def test_unknown_codec_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known: .*json.*msgpack"):
        App("memory://", serializer="yaml")
