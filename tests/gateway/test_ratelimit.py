"""Rate-limit dependencies: RateLimit headers, 429 (or 503) with Retry-After, keys by IP, header, user or
any function, the per-process token bucket, nginx delay, a shared Redis zone, and no queue on rejection."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Depends, FastAPI, Header, HTTPException

from qaio import App
from qaio.gateway import Gateway, RateLimit, header
from qaio.limits import LocalLimiter, RedisLimiter, TokenBucket

from .apps import build
from .conftest import REDIS_DB, client_for, job_count, running_worker


def api_with(limit: RateLimit, app: App | None = None) -> FastAPI:
    api = FastAPI()
    gateway = Gateway(app, keep_results=True) if app is not None else None  # jobs stay countable
    tasks = None if app is None else app.tasks["gw.hello"]

    @api.get("/", dependencies=[Depends(limit)])
    async def root() -> str:
        if gateway is not None and tasks is not None:
            return str(await gateway.call(tasks))
        return "ok"

    return api


async def test_headers_then_429_with_retry_after() -> None:
    api = api_with(RateLimit(LocalLimiter("1r/s", burst=2, nodelay=True)))
    async with client_for(api) as client:
        answers = [await client.get("/") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert all(r.headers["RateLimit-Limit"] == "3" for r in answers)
    assert answers[2].headers["RateLimit-Reset"] == "2"
    rejected = answers[3]
    assert rejected.headers["Retry-After"] == "1" and rejected.headers["RateLimit-Remaining"] == "0"
    assert rejected.json() == {"detail": "too many requests"}


async def test_503_like_nginx() -> None:
    api = api_with(RateLimit(LocalLimiter("1r/s", nodelay=True), status_code=503))
    async with client_for(api) as client:
        assert (await client.get("/")).status_code == 200
        response = await client.get("/")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"


async def test_keyed_by_client_ip_header_and_function() -> None:
    by_ip = api_with(RateLimit(LocalLimiter("1r/m", nodelay=True)))
    async with client_for(by_ip) as client:  # httpx's ASGI transport connects from 127.0.0.1
        assert [(await client.get("/")).status_code for _ in range(2)] == [200, 429]

    by_key = api_with(RateLimit(LocalLimiter("1r/m", nodelay=True), key=header("X-API-Key")))
    async with client_for(by_key) as client:
        codes = [(await client.get("/", headers={"X-API-Key": key})).status_code for key in ("a", "b", "a", "b")]
        assert codes == [200, 200, 429, 429]
        assert [(await client.get("/")).status_code for _ in range(2)] == [200, 429]  # anonymous: one budget

    async def tenant(request: Any) -> str:  # any function of the request, sync or async
        return str(request.query_params.get("tenant", "-"))

    by_function = api_with(RateLimit(LocalLimiter("1r/m", nodelay=True), key=tenant))
    async with client_for(by_function) as client:
        codes = [(await client.get("/", params={"tenant": t})).status_code for t in ("x", "y", "x")]
        assert codes == [200, 200, 429]


async def test_keyed_by_user_after_authentication() -> None:
    def current_user(authorization: str = Header("")) -> str:
        if not authorization.startswith("Bearer "):
            raise HTTPException(401, "log in first")
        return authorization.removeprefix("Bearer ")

    limit = RateLimit(LocalLimiter("1r/m", nodelay=True), subject=current_user, key=lambda user: f"user:{user}")
    api = api_with(limit)
    async with client_for(api) as client:
        assert (await client.get("/")).status_code == 401  # authentication answers first
        alice = {"Authorization": "Bearer alice"}
        codes = [(await client.get("/", headers=alice)).status_code for _ in range(2)]
        assert codes == [200, 429]
        assert (await client.get("/", headers={"Authorization": "Bearer bob"})).status_code == 200


async def test_per_process_token_bucket() -> None:
    bucket = TokenBucket(capacity=3, refill_per_second=0.5)
    api = api_with(RateLimit(bucket, status_code=503))
    async with client_for(api) as client:
        answers = [await client.get("/", headers={"X-Forwarded-For": f"10.0.0.{i}"}) for i in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 503]  # one budget, whoever asks
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert answers[3].headers["Retry-After"] == "2"


async def test_nginx_delay_holds_the_request() -> None:
    api = api_with(RateLimit(LocalLimiter("10r/s", burst=5)))  # no nodelay: above the first, requests wait
    async with client_for(api) as client:
        await client.get("/")
        started = time.monotonic()
        response = await client.get("/")
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.08  # held about 1/rate
    api = api_with(RateLimit(LocalLimiter("10r/s", burst=5), delay=False))
    async with client_for(api) as client:
        await client.get("/")
        started = time.monotonic()
        await client.get("/")
        assert time.monotonic() - started < 0.05


async def test_rejected_request_never_touches_the_queue(local_url: str) -> None:
    app, _ = build(local_url)
    api = api_with(RateLimit(LocalLimiter("1r/m", nodelay=True)), app)
    async with running_worker(app), client_for(api) as client:
        assert (await client.get("/")).status_code == 200
        assert await job_count(app) == 1
        assert [(await client.get("/")).status_code for _ in range(5)] == [429] * 5
        assert await job_count(app) == 1
    await app.aclose()


async def test_shared_redis_zone_across_gateways(redis_prefix: str) -> None:
    import redis.asyncio as aioredis

    from tests.conftest import REDIS_HOST, REDIS_PORT

    clients = [aioredis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB) for _ in range(2)]
    try:
        apis = [
            api_with(RateLimit(RedisLimiter(c, prefix=f"{redis_prefix}:rl", rate="1r/m", burst=2, nodelay=True)))
            for c in clients
        ]
        async with client_for(apis[0]) as one, client_for(apis[1]) as two:
            codes = await asyncio.gather(*(client.get("/") for client in (one, two, one, two, one, two)))
        assert sorted(r.status_code for r in codes) == [200, 200, 200, 429, 429, 429]
    finally:
        for client in clients:
            await client.aclose()
