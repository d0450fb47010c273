"""Background jobs over HTTP, mounted with one line: `api.include_router(jobs_router(app, tasks=[...]))`.

    POST   /jobs/{task}         202 {id, status_url, events_url}; the body is the task's kwargs
    GET    /jobs/{id}           status, progress and result
    GET    /jobs/{id}/events    the same as server-sent events, until the job finishes
    DELETE /jobs/{id}           cancel

Only jobs of the listed tasks are visible (anything else is 404), and a failed job's error message is
shown only with `expose_errors=True`: the worker's log has it, with the traceback, under the job id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, params
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from qaio.app import App
from qaio.errors import ConfigError, EnqueueError
from qaio.gateway.models import JobAccepted, JobCancelled, JobInfo, Problem, args_model
from qaio.gateway.sse import job_events
from qaio.protocols import JobState
from qaio.status import JobStatus
from qaio.task import Task

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such job"}}


def jobs_router(
    app: App,
    tasks: Sequence[Task[Any, Any]] | Mapping[str, Task[Any, Any]],
    *,
    prefix: str = "/jobs",
    tags: Sequence[str] = ("jobs",),
    dependencies: Sequence[params.Depends] = (),
    expose_errors: bool = False,
    poll: float = 0.1,
    heartbeat: float = 15.0,
    name: str = "qaio_jobs",
) -> APIRouter:
    """An APIRouter for submitting and following jobs of `tasks`.

    Args:
        tasks: the tasks to offer, named by their function's name, or a mapping of URL name to task.
        dependencies: run before every route (authentication, `RateLimit`...).
        expose_errors: show a failed job's error message (never its traceback) in GET and events.
        poll: seconds between reads of a running job's progress for the event stream.
        heartbeat: seconds of silence after which the event stream sends a keep-alive comment.
        name: prefix of the route names, for `url_for` and for mounting two routers in one app.
    """
    named = dict(tasks) if isinstance(tasks, Mapping) else _by_function_name(tasks)
    by_task = {task.name: url_name for url_name, task in named.items()}
    router = APIRouter(prefix=prefix, tags=list(tags), dependencies=list(dependencies))

    def render(job_id: str, state: JobState) -> JobInfo:
        return JobInfo.of(job_id, state, task=by_task[state.task], expose_errors=expose_errors)

    async def visible(job_id: str) -> JobState:
        state = await (await app.backend()).get_state(job_id)
        if state is None or state.task not in by_task:
            raise HTTPException(404, "no such job")
        return state

    for url_name, task in named.items():
        _add_submit(router, app, url_name, task, name)

    @router.get("/{job_id}", response_model=JobInfo, responses=_NOT_FOUND, name=f"{name}_status", summary="Job status")
    async def status(job_id: str) -> JobInfo:
        return render(job_id, await visible(job_id))

    @router.get(
        "/{job_id}/events",
        name=f"{name}_events",
        summary="Job progress as server-sent events",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": "`state` events (data: a JobInfo) on every change, then one `end` event",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **_NOT_FOUND,
        },
    )
    async def events(job_id: str, response: Response) -> StreamingResponse:
        await visible(job_id)
        backend = await app.backend()
        stream = job_events(
            backend,
            job_id,
            lambda state: render(job_id, state).model_dump(mode="json"),
            poll=poll,
            heartbeat=heartbeat,
        )
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        streaming = StreamingResponse(stream, media_type="text/event-stream", headers=headers)
        streaming.raw_headers.extend(response.raw_headers)  # what dependencies set (RateLimit headers...)
        return streaming

    @router.delete(
        "/{job_id}",
        response_model=JobCancelled,
        status_code=202,
        name=f"{name}_cancel",
        summary="Cancel a job",
        responses={**_NOT_FOUND, 409: {"model": Problem, "description": "The job has finished already"}},
    )
    async def cancel(job_id: str) -> JobCancelled:
        state = await visible(job_id)
        if state.status.finished:
            raise HTTPException(409, f"the job has finished already ({state.status.value})")
        cancelled = await (await app.backend()).cancel(job_id)
        after = await (await app.backend()).get_state(job_id)
        return JobCancelled(id=job_id, cancelled=cancelled, status=after.status if after else JobStatus.CANCELLED)

    return router


def _by_function_name(tasks: Sequence[Task[Any, Any]]) -> dict[str, Task[Any, Any]]:
    named: dict[str, Task[Any, Any]] = {}
    for task in tasks:
        url_name = task.fn.__name__
        if url_name in named:
            raise ConfigError(f"two tasks are called {url_name!r}; pass tasks as a mapping of URL name to task")
        named[url_name] = task
    return named


def _add_submit(router: APIRouter, app: App, url_name: str, task: Task[Any, Any], name: str) -> None:
    """POST /{url_name}: the body model is built from the task's signature (422 on bad kwargs)."""
    body_model = args_model(url_name, task)

    async def submit(request: Request, response: Response, body: BaseModel) -> JobAccepted:
        try:
            job = await task.aenqueue(**body.model_dump(mode="json"))
        except EnqueueError as exc:
            raise HTTPException(422, str(exc)) from None
        status_url = request.url_for(f"{name}_status", job_id=job.id).path
        events_url = request.url_for(f"{name}_events", job_id=job.id).path
        response.headers["Location"] = status_url
        return JobAccepted(id=job.id, task=url_name, status_url=status_url, events_url=events_url)

    submit.__annotations__["body"] = body_model
    router.add_api_route(
        f"/{url_name}",
        submit,
        methods=["POST"],
        status_code=202,
        response_model=JobAccepted,
        name=f"{name}_submit_{url_name}",
        summary=f"Submit a {url_name} job",
        description=task.fn.__doc__ or "",
    )
