"""The contracts every broker implements, and the plain records that cross them.

A broker stores jobs and their states. Jobs are leased, never removed when taken: `claim` hands out
deliveries with a lease, `settle` ends them (ack, retry or dead-letter, together with the job's new
state), `extend` keeps long jobs' leases alive, `reap` returns expired leases to the queue. Everything a
worker does per job is batched, so a broker can turn a batch into one round trip or one transaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, NamedTuple, Protocol, runtime_checkable

from qaio.limits.caps import ConcurrencyCap
from qaio.limits.decision import Limiter
from qaio.status import JobStatus


class Delivery(NamedTuple):
    """A claimed job: its encoded body and the lease under which this worker holds it. A tuple, as
    one is made per job on the worker's path (a frozen dataclass's __init__ cost ~1 µs more)."""

    job_id: str
    body: bytes
    receipt: str  #: the lease token (or stream id, delivery tag); settling with a stale one is refused
    deliveries: int  #: how often the broker handed out this body; too many means a poison message
    queue: str = "default"


@dataclass(slots=True)
class JobState:
    """Everything a producer can learn about a job. Stored by the broker beside the job."""

    status: JobStatus
    task: str = ""
    queue: str = "default"
    attempt: int = 1
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    progress: float | None = None
    progress_message: str | None = None
    enqueued_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    worker: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "task": self.task,
            "queue": self.queue,
            "attempt": self.attempt,
            "result": self.result,
            "error": self.error,
            "traceback": self.traceback,
            "progress": self.progress,
            "progress_message": self.progress_message,
            "enqueued_at": self.enqueued_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "worker": self.worker,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobState:
        return cls(**{**data, "status": JobStatus(data["status"])})


class Action(str, Enum):
    """How a delivery ends."""

    ACK = "ack"  #: finished (succeeded, failed for good, cancelled, expired): remove from the queue
    RETRY = "retry"  #: put `message` back, due at its eta
    DEAD = "dead"  #: move to the dead-letter store, with the state's error as the reason
    RELEASE = "release"  #: give the lease back unrun (graceful shutdown); does not count as a delivery


class Settlement(NamedTuple):
    """The end of one delivery, with the state to store in the same step. A tuple, like Delivery."""

    delivery: Delivery
    action: Action
    state: JobState | None = None
    result: bytes | None = None  #: the encoded result, for ACK of a success (the worker encodes it once)
    retry_body: bytes | None = None  #: the encoded next-attempt message, for RETRY
    retry_eta: float = 0.0
    priority: int = 0


class Enqueued(NamedTuple):
    """One message to write, with the fields a broker indexes on beside the encoded body (a tuple: one
    is made per job on the enqueue path, at a third of a frozen dataclass's cost)."""

    job_id: str
    body: bytes
    queue: str
    task: str
    priority: int = 0
    level: int = 0
    eta: float = 0.0
    enqueued_at: float = 0.0
    #: The id was made for this job (`task.new_id`, `new_ids`), not given by the caller, so it cannot be taken
    #: yet: a broker may leave the uniqueness check to a later step (Redis's plain-command writes).
    fresh_id: bool = False


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    queued: int  #: ready now
    scheduled: int  #: waiting for their eta
    running: int  #: leased
    dead: int


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    worker_id: str
    hostname: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    started_at: float
    seen_at: float
    processed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerInfo:
        return cls(**{**data, "queues": tuple(data["queues"])})


@runtime_checkable
class Broker(Protocol):
    """The queue: what a worker and a producer need per job. All methods are coroutines."""

    #: True when `claim` blocks on the server until a job arrives; False when it polls.
    blocking: bool

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(self, jobs: Sequence[Enqueued]) -> list[bool]:
        """Write jobs, each with state QUEUED; False where that job id exists already (uniqueness)."""
        ...

    async def claim(
        self, queues: Sequence[str], *, limit: int, lease: float, max_level: int = 9, wait: float = 1.0
    ) -> list[Delivery]:
        """Lease up to `limit` due jobs, highest priority first, FIFO within one; block up to `wait`."""
        ...

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        """End deliveries and store their states in one step; a stale receipt is ignored (lease lost)."""
        ...

    async def extend(self, deliveries: Sequence[Delivery], lease: float) -> list[bool]:
        """Renew leases; False where the lease was lost or the job was cancelled (stop working on it)."""
        ...

    async def reap(self) -> int:
        """Return jobs whose lease expired to the queue; idempotent, any worker may run it."""
        ...

    async def cancel(self, job_id: str, *, running: bool = True) -> bool:
        """Cancel a queued job at once, or flag a running one (its worker stops it); False if finished.
        With `running=False` only a job no worker has claimed yet is cancelled (a gateway withdrawing it)."""
        ...


@runtime_checkable
class ResultStore(Protocol):
    """Job states: status, progress and result, kept for the result TTL after the job finished."""

    async def get_state(self, job_id: str) -> JobState | None: ...

    async def wait_state(self, job_id: str, *, timeout: float) -> JobState | None:
        """The job's state once it is finished, or the latest state when `timeout` runs out."""
        ...

    async def set_progress(self, job_id: str, progress: float, message: str | None) -> None: ...


@runtime_checkable
class Inspector(Protocol):
    """Inspection and administration, for the CLI and the dashboard; never on the per-job path."""

    async def queue_stats(self) -> list[QueueStats]: ...

    async def list_jobs(
        self, *, queue: str | None, status: JobStatus | None, limit: int
    ) -> list[tuple[str, JobState]]: ...

    async def requeue(self, job_id: str) -> bool:
        """Put a dead or failed job back in its queue as a fresh first attempt."""
        ...

    async def purge(self, queue: str) -> int:
        """Drop every waiting job of a queue; running jobs finish."""
        ...

    async def register_worker(self, info: WorkerInfo, *, ttl: float) -> None: ...

    async def unregister_worker(self, worker_id: str) -> None: ...

    async def workers(self) -> list[WorkerInfo]: ...


@runtime_checkable
class SharedRateLimits(Protocol):
    """Optional: a backend that can host rate limiters shared by every process using it (Redis)."""

    def rate_limiter(self, name: str, rate: str) -> Limiter: ...


@runtime_checkable
class Forgets(Protocol):
    """Optional: a result store that drops succeeded jobs at once, when their result has been read and
    nobody will ask again (a gateway's request-reply), instead of keeping them for the result TTL."""

    async def forget(self, job_ids: Sequence[str]) -> None:
        """Delete the jobs that succeeded; any other (still running, failed, dead...) is left alone."""
        ...


@runtime_checkable
class SharedCaps(Protocol):
    """Optional: a backend that can host concurrency caps shared by every process using it (Redis)."""

    def concurrency_cap(self) -> ConcurrencyCap: ...


@runtime_checkable
class BlockingEnqueue(Protocol):
    """Optional: a broker that can write jobs from any thread without an event loop (Redis), so that
    synchronous producers need not wait on the portal's loop."""

    def blocking_enqueue(self) -> Callable[[Sequence[Enqueued]], list[bool]] | None:
        """A thread-safe blocking `enqueue`, or None where this broker cannot offer one."""
        ...


class Backend(Broker, ResultStore, Inspector, Protocol):
    """What `App` needs from a URL: the three roles, usually one object per broker module."""
