"""Large caps keep a few slots in reserve: most requests are admitted with no round trip, the cap is
still never exceeded, stale reserved slots go back, and a closing gateway returns the rest."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from qaio import App
from qaio.gateway import Gateway
from qaio.gateway.reserve import reserve_size
from tests.conftest import REDIS_HOST, REDIS_PORT

from .apps import build
from .conftest import REDIS_DB, client_for, running_worker


def redis_app(prefix: str) -> tuple[App, Any]:
    return build(f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}?prefix={prefix}")


def api_for(gateway: Gateway, tasks: Any) -> FastAPI:
    api = FastAPI()

    @api.get("/hello")
    async def hello() -> str:
        return await gateway.call(tasks.hello)

    @api.get("/held")
    async def held() -> str:
        return await gateway.call(tasks.held)

    return api


def count_calls(store: Any) -> dict[str, int]:
    calls = {"acquire": 0, "release": 0}
    acquire, release = store.acquire_many, store.release_many

    async def counted_acquire(*args: Any) -> Any:
        calls["acquire"] += 1
        return await acquire(*args)

    async def counted_release(*args: Any) -> Any:
        calls["release"] += 1
        return await release(*args)

    store.acquire_many, store.release_many = counted_acquire, counted_release
    return calls


def test_reserve_sizes() -> None:
    assert [reserve_size(n) for n in (0, 20, 99, 100, 320, 1000, 9999)] == [0, 0, 0, 1, 3, 10, 16]


async def test_a_steady_stream_stops_asking_the_store(redis_prefix: str) -> None:
    app, tasks = redis_app(redis_prefix)
    gateway = Gateway(app, cap=500)  # reserve 5
    store: Any = gateway.admission.store(await app.backend())
    calls = count_calls(store)
    async with running_worker(app), client_for(api_for(gateway, tasks)) as client:
        for _ in range(40):
            assert (await client.get("/hello")).status_code == 200
        await gateway.join()
    assert calls["acquire"] <= 3 and calls["release"] <= 2  # the first request, a refill or two, an overflow
    assert 1 <= await store.held(tasks.hello.name) <= 6  # the reserve, held in the shared store
    await gateway.aclose()
    assert await store.held(tasks.hello.name) == 0  # given back at shutdown


async def test_the_cap_holds_with_a_reserve(redis_prefix: str) -> None:
    app, tasks = redis_app(redis_prefix)
    gateway = Gateway(app, cap=100)  # reserve 1
    async with running_worker(app, concurrency=200), client_for(api_for(gateway, tasks)) as client:
        assert (await client.get("/hello")).status_code == 200  # warms the reserve up
        burst = [asyncio.create_task(client.get("/held")) for _ in range(150)]
        while tasks.controls.running < 99:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        tasks.controls.go.set()
        codes = [r.status_code for r in await asyncio.gather(*burst)]
    assert 99 <= codes.count(200) <= 100 and codes.count(200) + codes.count(503) == 150
    assert tasks.controls.peak <= 100
    await gateway.aclose()


async def test_stale_reserved_slots_go_back(redis_prefix: str) -> None:
    app, tasks = redis_app(redis_prefix)
    gateway = Gateway(app, cap=300, lease=0.6)  # reserve 3; a reserved slot is handed out for 0.3 s
    async with running_worker(app), client_for(api_for(gateway, tasks)) as client:
        assert (await client.get("/hello")).status_code == 200
        await asyncio.sleep(0.05)
        first = {token for token, _ in store_reserve(gateway, app, tasks)}
        assert first
        await asyncio.sleep(0.35)  # less than half their lease left: no longer handed out
        assert (await client.get("/hello")).status_code == 200
        await asyncio.sleep(0.05)
        second = {token for token, _ in store_reserve(gateway, app, tasks)}
        assert second and not first & second
    await gateway.aclose()


def store_reserve(gateway: Gateway, app: App, tasks: Any) -> list[Any]:
    coalesced = next(iter(gateway.admission._coalesced.values()))
    reserve = next(r for r in coalesced._reserves.values() if r is not None)
    return list(reserve._slots)
