"""Request-reply through the gateway on every broker: 200, 503 over the cap, 503 when no worker claims
the job, 504 past the timeout, 500 with an error id, the Depends form, and task levels."""
# No `from __future__ import annotations`: FastAPI must evaluate the Annotated dependency of a route
# defined inside a function, whose names are local.

import asyncio
import contextlib
import logging
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from qaio import App
from qaio.gateway import Admitted, Gateway
from qaio.status import JobStatus

from .apps import Tasks
from .conftest import client_for, job_count, running_worker


def make_api(app: App, tasks: Tasks, **defaults: Any) -> tuple[FastAPI, Gateway]:
    gateway = Gateway(app, **defaults)
    api = FastAPI()

    @api.get("/hello")
    async def hello() -> dict[str, str]:
        return {"data": await gateway.call(tasks.hello)}

    @api.get("/add")
    async def add(a: int, b: int = 1) -> dict[str, int]:
        return {"sum": await gateway.call(tasks.add, a=a, b=b)}

    @api.get("/held")
    async def held() -> str:
        return await gateway.call(tasks.held)

    @api.get("/sleepy")
    async def sleepy(seconds: float) -> str:
        return await gateway.call(tasks.sleepy, seconds=seconds)

    @api.get("/boom")
    async def boom() -> None:
        await gateway.call(tasks.boom, secret="hunter2")

    @api.get("/light")
    async def light() -> str:
        return await gateway.call(tasks.light)

    @api.get("/heavy")
    async def heavy() -> str:
        return await gateway.call(tasks.heavy)

    @api.get("/depends")
    async def depends(a: int, run: Annotated[Admitted[..., int], Depends(gateway.admit(tasks.add))]) -> dict[str, int]:
        return {"sum": await run(a=a, b=2)}

    return api, gateway


async def held_slots(gateway: Gateway, app: App, key: str) -> int:
    await gateway.join(timeout=1.0)  # slots are released after the answer, in the background
    store: Any = gateway.admission.store(await app.backend())
    return int(await store.held(key)) if asyncio.iscoroutinefunction(store.held) else int(store.held(key))


async def test_request_reply(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    api, gateway = make_api(app, tasks, cap=10)
    async with running_worker(app), client_for(api) as client:
        response = await client.get("/hello")
        assert response.status_code == 200, response.text
        assert response.json() == {"data": "Hello world."}
        response = await client.get("/add", params={"a": 40, "b": 2})
        assert response.json() == {"sum": 42}  # a sync task, in the worker's thread pool
        answers = await asyncio.gather(*(client.get("/add", params={"a": i}) for i in range(10)))
        assert sorted(r.json()["sum"] for r in answers) == list(range(1, 11))
        assert await held_slots(gateway, app, tasks.add.name) == 0


async def test_answered_jobs_leave_nothing_behind_unless_kept(qaio_app: tuple[App, Tasks]) -> None:
    """A succeeded request-reply job is deleted once answered (keep_results=True keeps it); a failed one
    stays for inspection."""
    app, tasks = qaio_app
    api, gateway = make_api(app, tasks)
    gateway.policy(tasks.hello, keep_results=True)
    backend = await app.backend()
    async with running_worker(app), client_for(api) as client:
        for path in ("/add?a=1", "/add?a=2", "/hello", "/boom"):
            await client.get(path)
        await gateway.join(timeout=2.0)
    left = {state.task: state.status for _, state in await backend.list_jobs(queue=None, status=None, limit=100)}
    assert left == {tasks.hello.name: JobStatus.SUCCEEDED, tasks.boom.name: JobStatus.FAILED}


async def test_over_cap_503_at_once_then_released(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    api, gateway = make_api(app, tasks)
    gateway.policy(tasks.held, cap=2, retry_after=3.0)
    async with running_worker(app), client_for(api) as client:
        first = [asyncio.create_task(client.get("/held")) for _ in range(2)]
        while tasks.controls.running < 2:
            await asyncio.sleep(0.01)
        jobs_before = await job_count(app)
        loop = asyncio.get_running_loop()
        started = loop.time()
        rejected = await client.get("/held")
        assert loop.time() - started < 0.5
        assert rejected.status_code == 503
        assert rejected.headers["Retry-After"] == "3"
        assert await job_count(app) == jobs_before  # nothing was queued for it
        assert await held_slots(gateway, app, tasks.held.name) == 2
        tasks.controls.go.set()
        assert [r.status_code for r in await asyncio.gather(*first)] == [200, 200]
        assert await held_slots(gateway, app, tasks.held.name) == 0
        assert (await client.get("/held")).status_code == 200  # the cap was given back
    assert tasks.controls.peak == 2


async def test_a_burst_admits_exactly_the_cap(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    api, gateway = make_api(app, tasks)
    gateway.policy(tasks.held, cap=7)
    async with running_worker(app, concurrency=32), client_for(api) as client:
        burst = [asyncio.create_task(client.get("/held")) for _ in range(30)]
        while tasks.controls.running < 7:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        tasks.controls.go.set()
        codes = [r.status_code for r in await asyncio.gather(*burst)]
    assert codes.count(200) == 7 and codes.count(503) == 23
    assert tasks.controls.peak == 7


async def test_other_tasks_have_their_own_cap(local_url: str) -> None:
    from .apps import build

    app, tasks = build(local_url)
    api, gateway = make_api(app, tasks)
    gateway.policy(tasks.held, cap=1)
    gateway.policy(tasks.hello, cap=1)
    async with running_worker(app), client_for(api) as client:
        blocked = asyncio.create_task(client.get("/held"))
        await tasks.controls.started.wait()
        assert (await client.get("/held")).status_code == 503
        assert (await client.get("/hello")).status_code == 200
        tasks.controls.go.set()
        assert (await blocked).status_code == 200
    await app.aclose()


async def test_unclaimed_job_is_withdrawn_503(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    api, gateway = make_api(app, tasks, cap=5, confirm_timeout=0.3, retry_after=2.0)
    async with client_for(api) as client:  # no worker
        response = await client.get("/hello")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "2"
    assert "no worker" in response.json()["detail"]
    (_, state), *_ = await (await app.backend()).list_jobs(queue=None, status=None, limit=10)
    assert state.status is JobStatus.CANCELLED  # withdrawn, so no worker will run it later
    assert state.started_at is None
    assert await held_slots(gateway, app, tasks.hello.name) == 0


async def test_claimed_during_withdrawal_keeps_waiting(local_url: str) -> None:
    """cancel(running=False) answering False means a worker took the job meanwhile: wait for it."""
    from .apps import build

    app, tasks = build(local_url)
    api, _ = make_api(app, tasks, confirm_timeout=0.2)
    backend = await app.backend()
    real_cancel = backend.cancel
    calls: list[bool] = []
    async with contextlib.AsyncExitStack() as stack:

        async def racing_cancel(job_id: str, *, running: bool = True) -> bool:
            calls.append(running)
            await stack.enter_async_context(running_worker(app))  # a worker turns up right now...
            return False  # ...and claimed the job first

        backend.cancel = racing_cancel  # type: ignore[method-assign]
        try:
            async with client_for(api) as client:
                response = await client.get("/add", params={"a": 1})
        finally:
            backend.cancel = real_cancel  # type: ignore[method-assign]
    assert calls == [False]
    assert response.status_code == 200
    assert response.json() == {"sum": 2}
    await app.aclose()


async def test_run_timeout_504_cancels_the_job(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    api, gateway = make_api(app, tasks, cap=1, timeout=0.3)
    async with running_worker(app), client_for(api) as client:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await client.get("/sleepy", params={"seconds": 30})
        assert response.status_code == 504
        assert 0.3 <= loop.time() - started < 1.5
        backend = await app.backend()
        (job_id, _), *_ = await backend.list_jobs(queue=None, status=None, limit=10)
        state = await backend.wait_state(job_id, timeout=3.0)  # its worker stops it at the next heartbeat
        assert state is not None and state.status is JobStatus.CANCELLED
        for _ in range(100):
            if await held_slots(gateway, app, tasks.sleepy.name) == 0:
                break
            await asyncio.sleep(0.02)
        assert (await client.get("/sleepy", params={"seconds": 0})).status_code == 200


async def test_run_timeout_504_holds_the_slot_while_the_job_runs(qaio_app: tuple[App, Tasks]) -> None:
    """Without cancelling, a timed-out job keeps its slot until it ends: the cap counts what really runs."""
    app, tasks = qaio_app
    api, gateway = make_api(app, tasks, cap=1, timeout=0.2, lease=2.0, cancel_abandoned=False)
    async with running_worker(app), client_for(api) as client:
        assert (await client.get("/sleepy", params={"seconds": 0.8})).status_code == 504
        assert (await client.get("/sleepy", params={"seconds": 0})).status_code == 503
        for _ in range(150):
            if await held_slots(gateway, app, tasks.sleepy.name) == 0:
                break
            await asyncio.sleep(0.02)
        assert (await client.get("/sleepy", params={"seconds": 0})).status_code == 200


async def test_slot_is_renewed_while_a_long_job_runs(local_url: str) -> None:
    from .apps import build

    app, tasks = build(local_url)
    api, _ = make_api(app, tasks, cap=1, lease=0.3)  # renewed every 0.1 s
    async with running_worker(app), client_for(api) as client:
        long = asyncio.create_task(client.get("/sleepy", params={"seconds": 0.8}))
        await asyncio.sleep(0.5)  # past the first lease
        assert (await client.get("/sleepy", params={"seconds": 0})).status_code == 503
        assert (await long).status_code == 200
    await app.aclose()


async def test_a_request_that_goes_away_cancels_its_job_and_frees_its_slot(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    gateway = Gateway(app, cap=1)
    async with running_worker(app):
        request = asyncio.create_task(gateway.call(tasks.held))  # as uvicorn runs a route
        await tasks.controls.started.wait()
        request.cancel()  # the client disconnected, or the server is stopping
        with pytest.raises(asyncio.CancelledError):
            await request
        backend = await app.backend()
        (job_id, _), *_ = await backend.list_jobs(queue=None, status=None, limit=10)
        state = await backend.wait_state(job_id, timeout=3.0)  # stopped at the worker's next heartbeat
        assert state is not None and state.status is JobStatus.CANCELLED
        assert await gateway.join(timeout=3.0)
        assert await held_slots(gateway, app, tasks.held.name) == 0
        tasks.controls.go.set()


async def test_task_error_500_with_error_id_and_no_traceback(
    qaio_app: tuple[App, Tasks], caplog: pytest.LogCaptureFixture
) -> None:
    app, tasks = qaio_app
    api, _ = make_api(app, tasks, cap=3)
    caplog.set_level(logging.ERROR, logger="qaio.gateway")
    async with running_worker(app), client_for(api) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    body = response.json()
    error_id = body["detail"]["error_id"]
    assert body == {"detail": {"error": "internal error", "error_id": error_id}}
    assert response.headers["X-Error-Id"] == error_id
    assert "hunter2" not in response.text and "Traceback" not in response.text
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert error_id in logged
    assert "hunter2" in logged and "Traceback" in logged and "ValueError" in logged  # the whole story, logged


async def test_unexpected_gateway_failure_is_500_with_error_id(local_url: str) -> None:
    from .apps import build

    app, tasks = build(local_url)
    api, _ = make_api(app, tasks)
    backend = await app.backend()

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("broker exploded at 10.0.0.7")

    backend.enqueue = broken  # type: ignore[method-assign]
    async with client_for(api) as client:
        response = await client.get("/hello")
    assert response.status_code == 500
    assert "10.0.0.7" not in response.text
    assert response.json()["detail"]["error_id"]
    await app.aclose()


async def test_depends_form(local_url: str) -> None:
    from .apps import build

    app, tasks = build(local_url)
    api, gateway = make_api(app, tasks)
    gateway.policy(tasks.add, cap=0)  # closed: every request is refused before the body runs
    async with running_worker(app), client_for(api) as client:
        assert (await client.get("/depends", params={"a": 1})).status_code == 503
        gateway.policy(tasks.add, cap=1)
        response = await client.get("/depends", params={"a": 1})
        assert response.status_code == 200 and response.json() == {"sum": 3}
        assert await held_slots(gateway, app, tasks.add.name) == 0
    await app.aclose()


async def test_levels_worker_max_level_3_never_takes_level_7(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    api, _ = make_api(app, tasks, cap=5, confirm_timeout=0.5)
    async with running_worker(app, max_level=3) as worker, client_for(api) as client:
        light, heavy = await asyncio.gather(client.get("/light"), client.get("/heavy"))
        assert light.status_code == 200 and light.json() == "light"
        assert heavy.status_code == 503  # withdrawn: no worker of level 7 or more is running
        backend = await app.backend()
        heavy_jobs = [s for _, s in await backend.list_jobs(queue=None, status=None, limit=50) if s.task == "gw.heavy"]
        assert [s.status for s in heavy_jobs] == [JobStatus.CANCELLED]
        assert heavy_jobs[0].started_at is None  # never claimed
        assert worker.stats.succeeded == 1
    async with running_worker(app, max_level=9), client_for(api) as client:
        assert (await client.get("/heavy")).json() == "heavy"


async def test_policy_rejects_unknown_options(local_url: str) -> None:
    from qaio.errors import ConfigError

    from .apps import build

    app, tasks = build(local_url)
    gateway = Gateway(app)
    with pytest.raises(ConfigError, match="known"):
        gateway.policy(tasks.hello, capp=3)
    with pytest.raises(ConfigError):
        Gateway(app, cap=-1)
    with pytest.raises(ConfigError):
        gateway.policy(tasks.hello, level=12)
    await app.aclose()


async def test_client_is_never_shown_internals(qaio_app: tuple[App, Tasks]) -> None:
    """FastAPI's own answer to an unhandled error carries no traceback either (debug is off)."""
    app, tasks = qaio_app
    api, _ = make_api(app, tasks)

    @api.get("/crash")
    async def crash() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/crash")
    assert response.status_code == 500 and "secret" not in response.text


async def test_one_cap_for_every_gateway_on_redis(redis_prefix: str) -> None:
    """Two gateways (two Apps, as two processes would have) on one Redis count against one cap."""
    from tests.conftest import REDIS_HOST, REDIS_PORT

    from .apps import build
    from .conftest import REDIS_DB

    url = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}?prefix={redis_prefix}"
    (app_a, tasks_a), (app_b, tasks_b) = build(url), build(url)
    api_a, gateway_a = make_api(app_a, tasks_a, cap=1)
    api_b, _ = make_api(app_b, tasks_b, cap=1)
    async with running_worker(app_a), client_for(api_a) as a, client_for(api_b) as b:
        first = asyncio.create_task(a.get("/held"))
        await tasks_a.controls.started.wait()
        assert (await b.get("/held")).status_code == 503
        assert (await b.get("/hello")).status_code == 200  # another task, another cap
        tasks_a.controls.go.set()
        assert (await first).status_code == 200
        assert (await b.get("/hello")).status_code == 200
    assert type(gateway_a.admission.store(await app_a.backend())).__name__ == "RedisCap"
    await app_a.aclose()
    await app_b.aclose()
