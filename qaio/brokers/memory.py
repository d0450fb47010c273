"""`memory://`: one process, for tests and scripts. Real leases, delivery counts and dead letters,
driven by the same worker as every other broker, so what passes here means something."""

from __future__ import annotations

import heapq
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from qaio.brokers._waiters import Waiters, park
from qaio.message import fresh_body
from qaio.protocols import (
    Action,
    Delivery,
    Enqueued,
    JobState,
    QueueStats,
    Settlement,
    WorkerInfo,
)
from qaio.serializers import Serializer
from qaio.status import FINISHED, JobStatus


@dataclass(slots=True)
class _Job:
    body: bytes
    queue: str
    task: str
    priority: int
    level: int
    eta: float
    seq: int
    state: JobState
    receipt: str | None = None
    lease_until: float = 0.0
    deliveries: int = 0
    cancel_requested: bool = False
    expire_at: float | None = None
    result: bytes | None = None


class MemoryBroker:
    """All three roles over dicts and heaps under one lock (producers may call from another thread)."""

    blocking = True

    def __init__(self, *, serializer: Serializer, result_ttl: float = 3600.0) -> None:
        self.result_ttl = result_ttl
        self._serializer = serializer
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._ready: dict[tuple[str, int], list[tuple[int, float, int, str]]] = {}
        self._scheduled: list[tuple[float, int, str]] = []
        self._leased: dict[str, _Job] = {}
        self._expiring: list[tuple[float, str]] = []
        self._seq = 0
        self._jobs_ready = Waiters()
        self._state_changed: dict[str, Waiters] = {}
        self._workers: dict[str, tuple[WorkerInfo, float]] = {}

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- queue --
    async def enqueue(self, jobs: Sequence[Enqueued]) -> list[bool]:
        now = time.time()
        created = []
        with self._lock:
            self._expire_results(now)
            for job in jobs:
                if job.job_id in self._jobs:
                    created.append(False)
                    continue
                self._seq += 1
                state = JobState(JobStatus.QUEUED, task=job.task, queue=job.queue, enqueued_at=job.enqueued_at)
                entry = _Job(job.body, job.queue, job.task, job.priority, job.level, job.eta, self._seq, state)
                self._jobs[job.job_id] = entry
                self._push(job.job_id, entry, now)
                created.append(True)
            self._jobs_ready.wake_all()
        return created

    def _push(self, job_id: str, job: _Job, now: float) -> None:
        if job.eta > now:
            heapq.heappush(self._scheduled, (job.eta, job.seq, job_id))
        else:
            heap = self._ready.setdefault((job.queue, job.level), [])
            heapq.heappush(heap, (-job.priority, job.eta, job.seq, job_id))

    def _promote_due(self, now: float) -> None:
        scheduled = self._scheduled
        while scheduled and scheduled[0][0] <= now:
            _, seq, job_id = heapq.heappop(scheduled)
            job = self._jobs.get(job_id)
            if job is not None and job.seq == seq and job.receipt is None:
                heap = self._ready.setdefault((job.queue, job.level), [])
                heapq.heappush(heap, (-job.priority, job.eta, job.seq, job_id))

    async def claim(
        self, queues: Sequence[str], *, limit: int, lease: float, max_level: int = 9, wait: float = 1.0
    ) -> list[Delivery]:
        deadline = time.monotonic() + wait
        while True:
            with self._lock:
                deliveries = self._take(queues, limit, lease, max_level)
                if deliveries or wait <= 0:
                    return deliveries
                future = self._jobs_ready.add()
                next_due = self._scheduled[0][0] - time.time() if self._scheduled else wait
            remaining = deadline - time.monotonic()
            await park(future, min(remaining, max(next_due, 0.001)))
            with self._lock:
                self._jobs_ready.discard(future)
            if time.monotonic() >= deadline:
                wait = 0

    def _take(self, queues: Sequence[str], limit: int, lease: float, max_level: int) -> list[Delivery]:
        now = time.time()
        self._promote_due(now)
        heaps = [
            heap for (queue, level), heap in self._ready.items() if heap and queue in queues and level <= max_level
        ]
        taken: list[Delivery] = []
        while heaps and len(taken) < limit:
            heap = min(heaps, key=_head) if len(heaps) > 1 else heaps[0]
            _, _, seq, job_id = heapq.heappop(heap)
            if not heap:
                heaps.remove(heap)
            job = self._jobs.get(job_id)
            if job is None or job.seq != seq or job.receipt is not None:
                continue  # cancelled, purged or re-queued since: a stale heap entry
            job.receipt = uuid.uuid4().hex
            job.lease_until = now + lease
            job.deliveries += 1
            job.state.status = JobStatus.STARTED
            job.state.started_at = now
            self._leased[job_id] = job
            taken.append(Delivery(job_id, job.body, job.receipt, job.deliveries, job.queue))
        return taken

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        now = time.time()
        with self._lock:
            for item in settlements:
                job_id = item.delivery.job_id
                job = self._jobs.get(job_id)
                if job is None or job.receipt != item.delivery.receipt:
                    continue  # the lease was lost: another worker owns the job now
                job.receipt = None
                self._leased.pop(job_id, None)
                if item.state is not None:
                    job.state = replace(item.state, result=None, started_at=job.state.started_at)
                    job.result = item.result
                if item.action is Action.RETRY:
                    assert item.retry_body is not None
                    self._seq += 1
                    job.body, job.eta, job.seq, job.deliveries = item.retry_body, item.retry_eta, self._seq, 0
                    self._push(job_id, job, now)
                elif item.action is Action.RELEASE:
                    job.deliveries -= 1
                    job.state.status = JobStatus.QUEUED
                    self._seq += 1
                    job.seq = self._seq
                    self._push(job_id, job, now)
                else:  # ACK or DEAD: the job keeps its state until the result TTL runs out
                    job.expire_at = now + self.result_ttl
                    heapq.heappush(self._expiring, (job.expire_at, job_id))
                self._notify_state(job_id)
            self._jobs_ready.wake_all()

    async def extend(self, deliveries: Sequence[Delivery], lease: float) -> list[bool]:
        until = time.time() + lease
        kept = []
        with self._lock:
            for delivery in deliveries:
                job = self._jobs.get(delivery.job_id)
                ok = job is not None and job.receipt == delivery.receipt and not job.cancel_requested
                if ok:
                    job.lease_until = until  # type: ignore[union-attr]
                kept.append(ok)
        return kept

    async def reap(self) -> int:
        now = time.time()
        returned = 0
        with self._lock:
            for job_id, job in list(self._leased.items()):
                if job.lease_until < now:
                    del self._leased[job_id]
                    job.receipt = None
                    job.state.status = JobStatus.QUEUED
                    self._seq += 1
                    job.seq = self._seq
                    self._push(job_id, job, now)
                    returned += 1
            self._expire_results(now)
            if returned:
                self._jobs_ready.wake_all()
        return returned

    def _expire_results(self, now: float) -> None:
        expiring = self._expiring
        while expiring and expiring[0][0] <= now:
            _, job_id = heapq.heappop(expiring)
            job = self._jobs.get(job_id)
            if job is not None and job.expire_at is not None and job.expire_at <= now:
                del self._jobs[job_id]
                self._state_changed.pop(job_id, None)

    async def cancel(self, job_id: str, *, running: bool = True) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state.status in FINISHED:
                return False
            if job.receipt is not None:
                job.cancel_requested = running
                return running
            job.seq = -1  # drops its heap entry
            self._finish(job_id, job, JobStatus.CANCELLED, time.time())
            return True

    def _finish(self, job_id: str, job: _Job, status: JobStatus, now: float) -> None:
        job.state.status = status
        job.state.finished_at = now
        job.expire_at = now + self.result_ttl
        heapq.heappush(self._expiring, (job.expire_at, job_id))
        self._notify_state(job_id)

    async def forget(self, job_ids: Sequence[str]) -> None:
        with self._lock:
            for job_id in job_ids:
                job = self._jobs.get(job_id)
                if job is not None and job.state.status is JobStatus.SUCCEEDED:
                    del self._jobs[job_id]  # its entry in _expiring finds nothing later
                    self._state_changed.pop(job_id, None)

    # -- states --
    def _notify_state(self, job_id: str) -> None:
        waiters = self._state_changed.pop(job_id, None)
        if waiters is not None:
            waiters.wake_all()

    def _snapshot(self, job: _Job) -> JobState:
        """A copy of the job's state with its result decoded, as a networked broker would return it."""
        result = None if job.result is None else self._serializer.loads(job.result)
        return replace(job.state, result=result)

    async def get_state(self, job_id: str) -> JobState | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return None if job is None else self._snapshot(job)

    async def wait_state(self, job_id: str, *, timeout: float) -> JobState | None:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                job = self._jobs.get(job_id)
                if job is None or job.state.status in FINISHED:
                    return None if job is None else self._snapshot(job)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return self._snapshot(job)
                future = self._state_changed.setdefault(job_id, Waiters()).add()
            await park(future, remaining)

    async def set_progress(self, job_id: str, progress: float, message: str | None) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.state.status not in FINISHED:
                job.state.progress, job.state.progress_message = progress, message
                self._notify_state(job_id)

    # -- inspection --
    async def queue_stats(self) -> list[QueueStats]:
        counts: dict[str, list[int]] = {}
        now = time.time()
        with self._lock:
            for job in self._jobs.values():
                row = counts.setdefault(job.queue, [0, 0, 0, 0])
                status = job.state.status
                if job.receipt is not None:
                    row[2] += 1
                elif status is JobStatus.DEAD:
                    row[3] += 1
                elif status in (JobStatus.QUEUED, JobStatus.RETRYING):
                    row[0 if job.eta <= now else 1] += 1
        return [QueueStats(queue, *row) for queue, row in sorted(counts.items())]

    async def list_jobs(self, *, queue: str | None, status: JobStatus | None, limit: int) -> list[tuple[str, JobState]]:
        with self._lock:
            rows = [
                (job_id, self._snapshot(job))
                for job_id, job in self._jobs.items()
                if (queue is None or job.queue == queue) and (status is None or job.state.status is status)
            ]
        return rows[-limit:][::-1]

    async def requeue(self, job_id: str) -> bool:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state.status not in (JobStatus.DEAD, JobStatus.FAILED):
                return False
            now = time.time()
            self._seq += 1
            job.seq, job.eta, job.deliveries, job.expire_at, job.result = self._seq, now, 0, None, None
            job.body = fresh_body(job.body, self._serializer, now)
            job.state = JobState(JobStatus.QUEUED, task=job.task, queue=job.queue, enqueued_at=now)
            self._push(job_id, job, now)
            self._jobs_ready.wake_all()
            return True

    async def purge(self, queue: str) -> int:
        dropped = 0
        with self._lock:
            for job_id, job in list(self._jobs.items()):
                if job.queue == queue and job.receipt is None and job.state.status not in FINISHED:
                    del self._jobs[job_id]
                    dropped += 1
        return dropped

    async def register_worker(self, info: WorkerInfo, *, ttl: float) -> None:
        with self._lock:
            self._workers[info.worker_id] = (info, time.time() + ttl)

    async def unregister_worker(self, worker_id: str) -> None:
        with self._lock:
            self._workers.pop(worker_id, None)

    async def workers(self) -> list[WorkerInfo]:
        now = time.time()
        with self._lock:
            return [info for info, until in self._workers.values() if until > now]


def _head(heap: list[tuple[int, float, int, str]]) -> tuple[int, float, int, str]:
    return heap[0]
