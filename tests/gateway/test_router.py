"""The background-jobs router on every broker: POST 202, GET status and result, SSE events in order,
DELETE, 404 for unknown (or foreign) jobs, 422 for bad bodies, and the OpenAPI schema."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import FastAPI

from qaio import App
from qaio.gateway import jobs_router

from .apps import Tasks
from .conftest import client_for, running_worker


def make_api(app: App, tasks: Tasks, **options: Any) -> FastAPI:
    api = FastAPI()
    api.include_router(jobs_router(app, tasks=[tasks.add, tasks.steps, tasks.held, tasks.boom], **options))
    return api


def parse_events(text: str) -> list[tuple[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            events.append((fields["event"], orjson.loads(fields["data"])))
    return events


async def wait_finished(client: Any, status_url: str) -> dict[str, Any]:
    for _ in range(300):
        body: dict[str, Any] = (await client.get(status_url)).json()
        if body["finished"]:
            return body
        await asyncio.sleep(0.01)
    raise AssertionError(f"not finished: {body}")


async def test_submit_status_and_result(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    async with running_worker(app), client_for(make_api(app, tasks)) as client:
        response = await client.post("/jobs/add", json={"a": 2, "b": 3})
        assert response.status_code == 202, response.text
        accepted = response.json()
        job_id = accepted["id"]
        assert accepted["status"] == "queued" and accepted["task"] == "add"
        assert accepted["status_url"] == f"/jobs/{job_id}" == response.headers["Location"]
        assert accepted["events_url"] == f"/jobs/{job_id}/events"
        body = await wait_finished(client, accepted["status_url"])
        assert body["status"] == "succeeded" and body["result"] == 5 and body["id"] == job_id
        assert body["task"] == "add" and body["error"] is None
        default_b = await client.post("/jobs/add", json={"a": 2})
        assert (await wait_finished(client, default_b.json()["status_url"]))["result"] == 3


async def test_bad_body_is_422_and_queues_nothing(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    async with client_for(make_api(app, tasks)) as client:
        for body in ({"a": "not a number"}, {}, {"a": 1, "c": 2}):
            response = await client.post("/jobs/add", json=body)
            assert response.status_code == 422, body
    assert await (await app.backend()).list_jobs(queue=None, status=None, limit=10) == []


async def test_unknown_and_foreign_jobs_are_404(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    foreign = await tasks.hello.aenqueue()  # a job of a task the router does not offer
    async with client_for(make_api(app, tasks)) as client:
        for job_id in ("no-such-job", foreign.id):
            assert (await client.get(f"/jobs/{job_id}")).status_code == 404
            assert (await client.get(f"/jobs/{job_id}/events")).status_code == 404
            assert (await client.delete(f"/jobs/{job_id}")).status_code == 404
        assert (await client.post("/jobs/hello", json={})).status_code in (404, 405)


async def test_events_stream_progress_in_order(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    api = make_api(app, tasks, poll=0.01)
    done = asyncio.Event()

    async def worker_later() -> None:  # the stream sees the job queued first
        await asyncio.sleep(0.15)
        async with running_worker(app):
            await done.wait()

    async with client_for(api) as client:
        accepted = (await client.post("/jobs/steps", json={"n": 4, "pause": 0.08})).json()
        worker = asyncio.create_task(worker_later())
        response = await client.get(accepted["events_url"])  # httpx's ASGI transport reads to the end
        done.set()
        await worker
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    events = parse_events(response.text)
    names = [name for name, _ in events]
    assert names[-1] == "end" and names.count("end") == 1 and set(names[:-1]) == {"state"}
    states = [data for name, data in events if name == "state"]
    assert states[0]["status"] == "queued"
    assert states[-1]["status"] == "succeeded" and states[-1]["result"] == 4 and states[-1]["finished"]
    started = [s for s in states if s["status"] == "started"]
    assert started[0]["progress"] is None  # claimed, no progress reported yet
    assert [s["progress"] for s in started[1:]] == [0.25, 0.5, 0.75, 1.0]  # each change once, in order
    assert [s["progress_message"] for s in started[1:]] == ["step 1", "step 2", "step 3", "step 4"]
    assert events[-1][1] == {"id": accepted["id"], "status": "succeeded"}
    ids = [int(line[4:]) for line in response.text.splitlines() if line.startswith("id: ")]
    assert ids == list(range(1, len(events) + 1))


async def test_events_of_a_finished_job(local_url: str) -> None:
    from .apps import build

    app, tasks = build(local_url)
    async with running_worker(app), client_for(make_api(app, tasks)) as client:
        accepted = (await client.post("/jobs/add", json={"a": 1})).json()
        await wait_finished(client, accepted["status_url"])
        events = parse_events((await client.get(accepted["events_url"])).text)
    assert [name for name, _ in events] == ["state", "end"]
    assert events[0][1]["result"] == 2
    await app.aclose()


async def test_delete_cancels_a_queued_job_and_409_once_finished(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    async with client_for(make_api(app, tasks)) as client:
        accepted = (await client.post("/jobs/add", json={"a": 1})).json()  # no worker: it stays queued
        response = await client.delete(f"/jobs/{accepted['id']}")
        assert response.status_code == 202
        assert response.json() == {"id": accepted["id"], "cancelled": True, "status": "cancelled"}
        assert (await client.get(accepted["status_url"])).json()["status"] == "cancelled"
        again = await client.delete(f"/jobs/{accepted['id']}")
        assert again.status_code == 409


async def test_delete_stops_a_running_job(qaio_app: tuple[App, Tasks]) -> None:
    app, tasks = qaio_app
    async with running_worker(app), client_for(make_api(app, tasks)) as client:
        accepted = (await client.post("/jobs/held", json={})).json()
        await tasks.controls.started.wait()
        response = await client.delete(f"/jobs/{accepted['id']}")
        assert response.status_code == 202 and response.json()["cancelled"] is True
        body = await wait_finished(client, accepted["status_url"])  # at the worker's next heartbeat
        assert body["status"] == "cancelled"


async def test_failed_job_shows_no_error_unless_exposed(local_url: str) -> None:
    from .apps import build

    app, tasks = build(local_url)
    async with running_worker(app):
        async with client_for(make_api(app, tasks)) as client:
            accepted = (await client.post("/jobs/boom", json={"secret": "hunter2"})).json()
            body = await wait_finished(client, accepted["status_url"])
            assert body["status"] == "failed" and body["error"] == "the task failed"
            assert "hunter2" not in str(body)
        async with client_for(make_api(app, tasks, expose_errors=True)) as client:
            body = (await client.get(accepted["status_url"])).json()
            assert "hunter2" in body["error"] and "Traceback" not in body["error"]
    await app.aclose()


async def test_openapi_documents_every_route_and_body(local_url: str) -> None:
    from .apps import build

    app, tasks = build(local_url)
    schema = make_api(app, tasks).openapi()
    paths = schema["paths"]
    assert set(paths) == {
        "/jobs/add",
        "/jobs/steps",
        "/jobs/held",
        "/jobs/boom",
        "/jobs/{job_id}",
        "/jobs/{job_id}/events",
    }
    assert set(paths["/jobs/{job_id}"]) == {"get", "delete"}
    assert "202" in paths["/jobs/add"]["post"]["responses"]
    assert "404" in paths["/jobs/{job_id}"]["get"]["responses"]
    assert "text/event-stream" in paths["/jobs/{job_id}/events"]["get"]["responses"]["200"]["content"]
    components = schema["components"]["schemas"]
    add_args = components["AddArgs"]
    assert add_args["required"] == ["a"]
    assert add_args["properties"]["a"]["type"] == "integer" and add_args["properties"]["b"]["default"] == 1
    assert add_args["additionalProperties"] is False
    assert {"JobAccepted", "JobInfo", "JobCancelled", "StepsArgs"} <= set(components)
    await app.aclose()


async def test_router_dependencies_run_first(local_url: str) -> None:
    from fastapi import Depends, Header, HTTPException

    from .apps import build

    app, tasks = build(local_url)

    def token(x_token: str = Header("")) -> None:
        if x_token != "sesame":
            raise HTTPException(401, "who are you?")

    api = make_api(app, tasks, dependencies=[Depends(token)])
    async with client_for(api) as client:
        assert (await client.post("/jobs/add", json={"a": 1})).status_code == 401
        assert (await client.post("/jobs/add", json={"a": 1}, headers={"X-Token": "sesame"})).status_code == 202
    assert len(await (await app.backend()).list_jobs(queue=None, status=None, limit=10)) == 1
    await app.aclose()


async def test_heavy_jobs_wait_for_a_heavy_worker(qaio_app: tuple[App, Tasks]) -> None:
    """Levels through the router: a worker with --max-level 3 leaves a level-7 job queued."""
    app, tasks = qaio_app
    api = FastAPI()
    api.include_router(jobs_router(app, tasks=[tasks.light, tasks.heavy]))
    async with client_for(api) as client:
        heavy = (await client.post("/jobs/heavy", json={})).json()
        light = (await client.post("/jobs/light", json={})).json()
        async with running_worker(app, max_level=3):
            assert (await wait_finished(client, light["status_url"]))["result"] == "light"
            await asyncio.sleep(0.3)
            assert (await client.get(heavy["status_url"])).json()["status"] == "queued"
        async with running_worker(app, max_level=7):
            assert (await wait_finished(client, heavy["status_url"]))["result"] == "heavy"
