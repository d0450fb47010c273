"""The pydantic models of the jobs router: OpenAPI schemas, and each task's body from its signature."""

from __future__ import annotations

import inspect
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from qaio.protocols import JobState
from qaio.status import JobStatus
from qaio.task import Task


class JobAccepted(BaseModel):
    """202: the job is queued; poll `status_url` or stream `events_url`."""

    id: str
    task: str
    status: JobStatus = JobStatus.QUEUED
    status_url: str
    events_url: str


class JobInfo(BaseModel):
    """A job's status, progress and (once it succeeded) result."""

    id: str
    task: str
    status: JobStatus
    finished: bool
    progress: float | None = Field(None, description="0 to 1, as the task reported it")
    progress_message: str | None = None
    result: Any = Field(None, description="the task's return value, once it succeeded")
    error: str | None = Field(None, description="why it failed; only when the router exposes errors")
    attempt: int = 1
    enqueued_at: float | None = Field(None, description="Unix time")
    started_at: float | None = None
    finished_at: float | None = None

    @classmethod
    def of(cls, job_id: str, state: JobState, *, task: str, expose_errors: bool) -> JobInfo:
        failed = state.status in (JobStatus.FAILED, JobStatus.DEAD)
        return cls(
            id=job_id,
            task=task,
            status=state.status,
            finished=state.status.finished,
            progress=state.progress,
            progress_message=state.progress_message,
            result=state.result if state.status is JobStatus.SUCCEEDED else None,
            error=(state.error if expose_errors else "the task failed") if failed else None,
            attempt=state.attempt,
            enqueued_at=state.enqueued_at or None,
            started_at=state.started_at,
            finished_at=state.finished_at,
        )


class JobCancelled(BaseModel):
    """DELETE: whether the job was cancelled (a running job stops at its worker's next heartbeat)."""

    id: str
    cancelled: bool
    status: JobStatus


class Problem(BaseModel):
    detail: str


def args_model(name: str, task: Task[Any, Any]) -> type[BaseModel]:
    """The POST body of `task`: one field per parameter, typed and defaulted from its signature, so
    FastAPI validates the job's kwargs (422) before anything is queued. Unknown fields are refused
    unless the function takes **kwargs."""
    try:
        hints = typing.get_type_hints(task.fn)
    except Exception:  # unresolvable annotations: validate names and presence only
        hints = {}
    fields: dict[str, Any] = {}
    extra: Literal["allow", "forbid"] = "forbid"
    for param in inspect.signature(task.fn).parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            extra = "allow"
            continue
        if param.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (hints.get(param.name, Any), default)
    model_name = "".join(part.capitalize() for part in name.replace("-", "_").split("_")) + "Args"
    return create_model(model_name, __config__=ConfigDict(extra=extra), __doc__=task.fn.__doc__, **fields)
