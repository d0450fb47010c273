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


async def test_a_result_the_codec_refuses_fails_the_job_once(sqlite_url: str) -> None:
    """msgpack refuses integers of 2**64 and more with OverflowError, and a user codec may raise any
    error: the job must still end (failed, once), not be run again at every lease."""

    class Strict:
        name = "strict-json"

        def dumps(self, obj: Any) -> bytes:
            if obj == "refused":
                raise RuntimeError("this codec refuses it")
            return orjson.dumps(obj)

        def loads(self, data: bytes) -> Any:
            return orjson.loads(data)

    register("strict-json", Strict)
    refused = {"msgpack": 2**64, "strict-json": "refused"}
    runs: list[str] = []
    for codec in refused:
        app = App(sqlite_url, serializer=codec)

        @app.task(name=f"give-{codec}")
        async def give(codec: str) -> Any:
            runs.append(codec)
            return refused[codec]

        job = await give.aenqueue(codec=codec)
        await asyncio.wait_for(Worker(app, burst=True).run(), 20)
        state = await job.astate()
        assert state is not None and state.status.value == "failed", codec
        assert "result cannot be serialised" in (state.error or "") and runs.count(codec) == 1, codec
        await app.aclose()


def test_msgpack_refuses_too_large_integers_as_an_enqueue_error() -> None:
    app = App("memory://", serializer="msgpack")
    with pytest.raises(EnqueueError, match="msgpack"):
        app.serializer.dumps(2**64)
