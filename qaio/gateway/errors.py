"""The HTTP answers of a gateway call that did not give a result.

They are `HTTPException`s, so FastAPI answers them with no handler installed, and a route can catch
them. None carries a traceback or a task's error message to the client: a 500 carries an error id,
and the log line with the same id carries the whole story.
"""

from __future__ import annotations

import math

from fastapi import HTTPException


def retry_after_header(seconds: float) -> dict[str, str]:
    """Retry-After in whole seconds, rounded up and at least 1 (RFC 9110 allows no fractions)."""
    return {"Retry-After": str(max(1, math.ceil(seconds - 1e-9)))}


class GatewayError(HTTPException):
    """Base of the gateway's answers; `job_id` is set once a job was enqueued."""

    def __init__(
        self, status_code: int, detail: object, *, job_id: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.job_id = job_id


class Overloaded(GatewayError):
    """503 before anything was queued: the task's cap of jobs queued plus running is full."""

    def __init__(self, key: str, limit: int, retry_after: float) -> None:
        super().__init__(503, "over capacity, try again later", headers=retry_after_header(retry_after))
        self.key = key
        self.limit = limit
        self.retry_after = retry_after


class Unavailable(GatewayError):
    """503 after queueing: no worker claimed the job in time (it was withdrawn), or it was cancelled,
    expired or lost before it could run."""

    def __init__(self, reason: str, job_id: str, retry_after: float) -> None:
        super().__init__(503, reason, job_id=job_id, headers=retry_after_header(retry_after))


class RunTimeout(GatewayError):
    """504: a worker took the job, but it did not finish within the route's timeout."""

    def __init__(self, job_id: str, timeout: float) -> None:
        super().__init__(504, f"the job did not finish within {timeout:g} s", job_id=job_id)


class InternalError(GatewayError):
    """500 with an error id: the task raised (or the gateway could not run it). The id is in the log
    line that holds the traceback; the client gets nothing else."""

    def __init__(self, error_id: str, job_id: str | None = None) -> None:
        detail = {"error": "internal error", "error_id": error_id}
        super().__init__(500, detail, job_id=job_id, headers={"X-Error-Id": error_id})
        self.error_id = error_id


#: For `@api.get(..., responses=RESPONSES)`: documents the gateway's answers in the OpenAPI schema.
RESPONSES: dict[int | str, dict[str, object]] = {
    500: {"description": "The task failed; the body carries an error id to find it in the log."},
    503: {"description": "Over capacity, or no worker took the job in time; see Retry-After."},
    504: {"description": "A worker took the job but it did not finish in time."},
}
