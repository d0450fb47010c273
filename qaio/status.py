"""Job statuses, and which of them are final."""

from __future__ import annotations

from enum import Enum


class JobStatus(str, Enum):
    """What a producer sees of a job. The string values are the wire and storage form."""

    QUEUED = "queued"
    STARTED = "started"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DEAD = "dead"
    CANCELLED = "cancelled"
    EXPIRED = "expired"

    @property
    def finished(self) -> bool:
        """True once nothing more will happen to the job (a dead job may still be re-enqueued by hand)."""
        return self in FINISHED


FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.DEAD, JobStatus.CANCELLED, JobStatus.EXPIRED})
