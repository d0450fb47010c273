"""qaio: a fast, crash-safe task queue and request scheduler for Python web services."""

from qaio.app import App
from qaio.context import current_job, report_progress
from qaio.errors import (
    BrokerError,
    ConfigError,
    DecodeError,
    EnqueueError,
    JobFailed,
    QaioError,
    ResultTimeout,
    Retry,
    TaskTimeout,
)
from qaio.job import Job
from qaio.options import Backoff, TaskOptions
from qaio.protocols import JobState
from qaio.status import JobStatus
from qaio.task import Task
from qaio.worker import Worker

__all__ = [
    "App",
    "Backoff",
    "BrokerError",
    "ConfigError",
    "DecodeError",
    "EnqueueError",
    "Job",
    "JobFailed",
    "JobState",
    "JobStatus",
    "QaioError",
    "ResultTimeout",
    "Retry",
    "Task",
    "TaskOptions",
    "TaskTimeout",
    "Worker",
    "current_job",
    "report_progress",
]
