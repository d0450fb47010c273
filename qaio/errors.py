"""One exception hierarchy, so callers can catch `QaioError` and nothing else."""

from __future__ import annotations


class QaioError(Exception):
    """Base of every error qaio raises."""


class ConfigError(QaioError):
    """A task, option or URL is wrong; raised when it is declared, before anything runs."""


class EnqueueError(QaioError):
    """The job cannot be enqueued (unknown kwargs, unserialisable values); nothing was written."""


class BrokerError(QaioError):
    """The broker failed or cannot be reached."""


class DecodeError(QaioError):
    """A message in the queue cannot be decoded; it goes to the dead-letter store."""


class JobFailed(QaioError):
    """The job ended without a result: failed, dead, cancelled or expired."""

    def __init__(self, job_id: str, status: str, error: str | None) -> None:
        super().__init__(f"job {job_id} {status}" + (f": {error}" if error else ""))
        self.job_id = job_id
        self.status = status
        self.error = error


class ResultTimeout(QaioError, TimeoutError):
    """The job did not finish within the time the caller was willing to wait."""


class TaskTimeout(QaioError, TimeoutError):
    """The task ran longer than its timeout."""


class Retry(QaioError):
    """Raise inside a task to retry it, after `delay` seconds if given, else after the task's backoff."""

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay = delay
