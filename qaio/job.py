"""The handle a producer keeps for a job: status, progress, result and cancellation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar, cast

from qaio.errors import JobFailed, ResultTimeout
from qaio.protocols import JobState
from qaio.status import JobStatus

if TYPE_CHECKING:
    from qaio.app import App

R = TypeVar("R")

#: How long `result()` waits when the caller gives no timeout.
DEFAULT_RESULT_TIMEOUT = 60.0


class Job(Generic[R]):
    """A job by id. Every method has a sync form and an `a`-prefixed async twin."""

    __slots__ = ("app", "created", "id")

    def __init__(self, app: App, job_id: str, *, created: bool = True) -> None:
        self.app = app
        self.id = job_id
        self.created = created  #: False when a job with this id existed already (uniqueness)

    def __repr__(self) -> str:
        return f"<Job {self.id}>"

    async def astate(self) -> JobState | None:
        """Everything known about the job, or None once its state expired (or it never existed)."""
        return await (await self.app.backend()).get_state(self.id)

    def state(self) -> JobState | None:
        return self.app.portal.call(self.astate())

    async def astatus(self) -> JobStatus | None:
        state = await self.astate()
        return None if state is None else state.status

    def status(self) -> JobStatus | None:
        return self.app.portal.call(self.astatus())

    async def aresult(self, timeout: float | None = None) -> R:
        """Wait for the job to finish and return its result; raise JobFailed if it did not succeed."""
        wait = DEFAULT_RESULT_TIMEOUT if timeout is None else timeout
        state = await (await self.app.backend()).wait_state(self.id, timeout=wait)
        if state is None:
            raise JobFailed(self.id, "unknown", "no such job, or its result expired")
        if state.status is JobStatus.SUCCEEDED:
            return cast(R, state.result)
        if state.status.finished:
            raise JobFailed(self.id, state.status.value, state.error)
        raise ResultTimeout(f"job {self.id} still {state.status.value} after {wait} s")

    def result(self, timeout: float | None = None) -> R:
        return self.app.portal.call(self.aresult(timeout))

    async def acancel(self) -> bool:
        """Cancel the job: at once if queued, at its worker's next heartbeat if running."""
        return await (await self.app.backend()).cancel(self.id)

    def cancel(self) -> bool:
        return self.app.portal.call(self.acancel())
