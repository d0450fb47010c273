"""What a running task can learn about its job and report back, from async code or a thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

from qaio.errors import QaioError

#: Where progress goes: (job id, progress, message). One per worker, not one per job.
ProgressSink = Callable[[str, float, "str | None"], None]


@dataclass(frozen=True, slots=True)
class JobContext:
    job_id: str
    task: str
    attempt: int
    queue: str
    sink: ProgressSink

    def report(self, progress: float, message: str | None) -> None:
        self.sink(self.job_id, progress, message)


_current: ContextVar[JobContext | None] = ContextVar("qaio_job", default=None)


def current_job() -> JobContext:
    """The job being run by this task call; raises outside a worker."""
    context = _current.get()
    if context is None:
        raise QaioError("current_job() is only available inside a task run by a qaio worker")
    return context


def report_progress(progress: float, message: str | None = None) -> None:
    """Tell the producer how far the job got (0.0 to 1.0); cheap, and safe from threads."""
    if not 0.0 <= progress <= 1.0:
        raise ValueError(f"progress must be between 0 and 1, got {progress}")
    context = _current.get()
    if context is not None:  # a task called directly, outside a worker, reports nowhere
        context.report(progress, message)


def progress_sink(loop: asyncio.AbstractEventLoop, send: ProgressSink) -> ProgressSink:
    """A sink that runs `send` on the worker's loop, from whichever thread reports."""

    def sink(job_id: str, progress: float, message: str | None) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            send(job_id, progress, message)
        else:
            loop.call_soon_threadsafe(send, job_id, progress, message)

    return sink
