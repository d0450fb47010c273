"""`sqlite://`: the embedded default. Persistent, shared by the processes of one machine (WAL).

One row per job holds both its place in the queue and its state, so settling a job is one UPDATE.
A claim leases a batch in one `UPDATE ... RETURNING` under `BEGIN IMMEDIATE`; a lease is a receipt
token and an expiry, and `reap` puts rows with expired leases back. All SQL runs on one thread that
owns the connection, so the event loop never blocks on the database's busy timeout.

SQLite cannot notify other processes, so idle claims and result waits poll, backing off from 1 ms to
50 ms; within one process, writes wake the waiters at once.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from qaio.brokers._waiters import Waiters, park
from qaio.message import fresh_body
from qaio.protocols import Action, Delivery, Enqueued, JobState, QueueStats, Settlement, WorkerInfo
from qaio.serializers import Serializer
from qaio.status import FINISHED, JobStatus

T = TypeVar("T")

#: Numbered schema migrations; the database records how many ran (PRAGMA user_version).
MIGRATIONS = [
    """
    CREATE TABLE qaio_jobs (
        id TEXT PRIMARY KEY,
        queue TEXT NOT NULL,
        task TEXT NOT NULL,
        body BLOB NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        level INTEGER NOT NULL DEFAULT 0,
        eta REAL NOT NULL,
        state TEXT NOT NULL,                 -- ready | leased | done
        status TEXT NOT NULL,                -- JobStatus, what producers see
        receipt TEXT,
        lease_until REAL,
        deliveries INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        attempt INTEGER NOT NULL DEFAULT 1,
        result BLOB,
        error TEXT,
        traceback TEXT,
        progress REAL,
        progress_message TEXT,
        enqueued_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        worker TEXT,
        expire_at REAL
    );
    CREATE INDEX qaio_jobs_ready ON qaio_jobs (queue, priority DESC, eta) WHERE state = 'ready';
    CREATE INDEX qaio_jobs_leased ON qaio_jobs (lease_until) WHERE state = 'leased';
    CREATE INDEX qaio_jobs_done ON qaio_jobs (expire_at) WHERE state = 'done';
    CREATE TABLE qaio_workers (id TEXT PRIMARY KEY, info TEXT NOT NULL, until REAL NOT NULL);
    """,
]

#: Idle polling: every POLL_MIN seconds while HOT_SECONDS have not passed since the last job, then
#: backing off to POLL_MAX. Within one process, writes wake waiters at once instead.
POLL_MIN, POLL_MAX, HOT_SECONDS = 0.001, 0.05, 1.0

_STATE_COLUMNS = (
    "status, task, queue, attempt, result, error, traceback, progress, progress_message,"
    " enqueued_at, started_at, finished_at, worker"
)


class SqliteBroker:
    """All three roles on one SQLite file."""

    blocking = False

    def __init__(
        self, path: str, *, serializer: Serializer, result_ttl: float = 3600.0, synchronous: str = "NORMAL"
    ) -> None:
        self.path = path
        self.result_ttl = result_ttl
        self._serializer = serializer
        self._synchronous = synchronous
        self._db: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._busy_at = time.monotonic()
        self._jobs_ready = Waiters()
        self._states_changed = Waiters()

    # -- plumbing --
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._thread is None:
            await self.connect()
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def connect(self) -> None:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="qaio-sqlite")
            await asyncio.get_running_loop().run_in_executor(self._thread, self._open)

    def _open(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self._synchronous}")
        with _write(db):
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")
        self._db = db

    async def close(self) -> None:
        if self._thread is not None:
            thread, self._thread = self._thread, None
            await asyncio.get_running_loop().run_in_executor(thread, self._close)
            thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @staticmethod
    async def _park(waiters: Waiters, timeout: float) -> None:
        """Sleep until `timeout`, or until this process writes what the caller waits for."""
        future = waiters.add()
        await park(future, timeout)
        waiters.discard(future)

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "connect() first"
        return self._db

    # -- queue --
    async def enqueue(self, jobs: Sequence[Enqueued]) -> list[bool]:
        created = await self._run(self._enqueue, jobs)
        self._jobs_ready.wake_all()
        return created

    def _enqueue(self, jobs: Sequence[Enqueued]) -> list[bool]:
        db = self.db
        with _write(db):
            # Expired results go first, so a job id can be reused once its old result is gone.
            db.execute("DELETE FROM qaio_jobs WHERE state = 'done' AND expire_at <= ?", (time.time(),))
            return [
                db.execute(
                    "INSERT INTO qaio_jobs (id, queue, task, body, priority, level, eta, state, status,"
                    " enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'ready', 'queued', ?)"
                    " ON CONFLICT (id) DO NOTHING",
                    (
                        job.job_id,
                        job.queue,
                        job.task,
                        job.body,
                        job.priority,
                        job.level,
                        max(job.eta, job.enqueued_at),
                        job.enqueued_at,
                    ),
                ).rowcount
                == 1
                for job in jobs
            ]

    async def claim(
        self, queues: Sequence[str], *, limit: int, lease: float, max_level: int = 9, wait: float = 1.0
    ) -> list[Delivery]:
        """Polls while idle: every millisecond for a second after the last job (traffic tends to come
        in runs), then backing off to 50 ms, so an idle worker costs little and a job waits ms."""
        deadline = time.monotonic() + wait
        while True:
            deliveries = await self._run(self._claim, tuple(queues), limit, lease, max_level)
            now = time.monotonic()
            if deliveries:
                self._busy_at = now
                return deliveries
            remaining = deadline - now
            if remaining <= 0:
                return []
            idle = now - self._busy_at
            pause = POLL_MIN if idle < HOT_SECONDS else min(POLL_MIN * 2 ** ((idle - HOT_SECONDS) * 4), POLL_MAX)
            await self._park(self._jobs_ready, min(pause, remaining))

    def _claim(self, queues: tuple[str, ...], limit: int, lease: float, max_level: int) -> list[Delivery]:
        now = time.time()
        receipt = uuid.uuid4().hex
        marks = ",".join("?" * len(queues))
        with _write(self.db) as db:
            rows = db.execute(
                "UPDATE qaio_jobs SET state = 'leased', status = 'started', receipt = ?, lease_until = ?,"
                " deliveries = deliveries + 1, started_at = ?"
                " WHERE rowid IN (SELECT rowid FROM qaio_jobs WHERE state = 'ready'"
                f" AND queue IN ({marks}) AND level <= ? AND eta <= ? ORDER BY priority DESC, eta LIMIT ?)"
                " RETURNING id, body, deliveries, queue",
                (receipt, now + lease, now, *queues, max_level, now, limit),
            ).fetchall()
        return [Delivery(job_id, body, receipt, deliveries, queue) for job_id, body, deliveries, queue in rows]

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        await self._run(self._settle, settlements)
        self._states_changed.wake_all()
        self._jobs_ready.wake_all()  # retried and released jobs are ready again

    def _settle(self, settlements: Sequence[Settlement]) -> None:
        now = time.time()
        done, retried, released = [], [], []
        for item in settlements:
            d, state = item.delivery, item.state
            if item.action is Action.RELEASE:
                released.append((d.job_id, d.receipt))
            elif item.action is Action.RETRY:
                assert state is not None and item.retry_body is not None
                retried.append(
                    (
                        state.status.value,
                        item.retry_body,
                        item.retry_eta,
                        state.attempt,
                        state.error,
                        state.traceback,
                        d.job_id,
                        d.receipt,
                    )
                )
            else:
                assert state is not None
                done.append(
                    (
                        state.status.value,
                        state.attempt,
                        item.result,
                        state.error,
                        state.traceback,
                        state.finished_at or now,
                        state.worker,
                        now + self.result_ttl,
                        d.job_id,
                        d.receipt,
                    )
                )
        with _write(self.db) as db:
            if done:
                db.executemany(
                    "UPDATE qaio_jobs SET state = 'done', status = ?, attempt = ?, result = ?, error = ?,"
                    " traceback = ?, finished_at = ?, worker = ?, expire_at = ?, receipt = NULL"
                    " WHERE id = ? AND receipt = ?",
                    done,
                )
            if retried:
                db.executemany(
                    "UPDATE qaio_jobs SET state = 'ready', status = ?, body = ?, eta = ?,"
                    " attempt = ?, error = ?, traceback = ?, deliveries = 0, receipt = NULL"
                    " WHERE id = ? AND receipt = ?",
                    retried,
                )
            if released:
                db.executemany(
                    "UPDATE qaio_jobs SET state = 'ready', status = 'queued', deliveries = deliveries - 1,"
                    " receipt = NULL WHERE id = ? AND receipt = ?",
                    released,
                )

    async def extend(self, deliveries: Sequence[Delivery], lease: float) -> list[bool]:
        return await self._run(self._extend, deliveries, lease)

    def _extend(self, deliveries: Sequence[Delivery], lease: float) -> list[bool]:
        until = time.time() + lease
        with _write(self.db) as db:
            return [
                db.execute(
                    "UPDATE qaio_jobs SET lease_until = ? WHERE id = ? AND receipt = ? AND cancel_requested = 0",
                    (until, d.job_id, d.receipt),
                ).rowcount
                == 1
                for d in deliveries
            ]

    async def reap(self) -> int:
        return await self._run(self._reap)

    def _reap(self) -> int:
        now = time.time()
        with _write(self.db) as db:
            returned = db.execute(
                "UPDATE qaio_jobs SET state = 'ready', status = 'queued', receipt = NULL"
                " WHERE state = 'leased' AND lease_until < ?",
                (now,),
            ).rowcount
            db.execute("DELETE FROM qaio_jobs WHERE state = 'done' AND expire_at <= ?", (now,))
            db.execute("DELETE FROM qaio_workers WHERE until <= ?", (now,))
        return returned

    async def cancel(self, job_id: str, *, running: bool = True) -> bool:
        cancelled = await self._run(self._cancel, job_id, running)
        self._states_changed.wake_all()
        return cancelled

    def _cancel(self, job_id: str, running: bool) -> bool:
        now = time.time()
        with _write(self.db) as db:
            if db.execute(
                "UPDATE qaio_jobs SET state = 'done', status = 'cancelled', finished_at = ?, expire_at = ?"
                " WHERE id = ? AND state = 'ready'",
                (now, now + self.result_ttl, job_id),
            ).rowcount:
                return True
            return running and (
                db.execute(
                    "UPDATE qaio_jobs SET cancel_requested = 1 WHERE id = ? AND state = 'leased'", (job_id,)
                ).rowcount
                == 1
            )

    # -- states --
    async def get_state(self, job_id: str) -> JobState | None:
        return await self._run(self._get_state, job_id)

    def _get_state(self, job_id: str) -> JobState | None:
        row = self.db.execute(
            f"SELECT {_STATE_COLUMNS} FROM qaio_jobs WHERE id = ? AND (expire_at IS NULL OR expire_at > ?)",
            (job_id, time.time()),
        ).fetchone()
        return None if row is None else self._state(row)

    def _state(self, row: tuple[Any, ...]) -> JobState:
        status, task, queue, attempt, result, *rest = row
        return JobState(
            JobStatus(status),
            task,
            queue,
            attempt,
            None if result is None else self._serializer.loads(result),
            *rest,
        )

    async def wait_state(self, job_id: str, *, timeout: float) -> JobState | None:
        """Polls: every millisecond for the first 100 ms (most jobs are short), then backing off to 50 ms."""
        started = time.monotonic()
        deadline = started + timeout
        pause = POLL_MIN
        while True:
            state = await self.get_state(job_id)
            now = time.monotonic()
            if state is None or state.status in FINISHED or now >= deadline:
                return state
            await self._park(self._states_changed, min(pause, deadline - now))
            if now - started > 0.1:
                pause = min(pause * 1.5, POLL_MAX)

    async def set_progress(self, job_id: str, progress: float, message: str | None) -> None:
        await self._run(self._set_progress, job_id, progress, message)
        self._states_changed.wake_all()

    def _set_progress(self, job_id: str, progress: float, message: str | None) -> None:
        with _write(self.db) as db:
            db.execute(
                "UPDATE qaio_jobs SET progress = ?, progress_message = ? WHERE id = ? AND state != 'done'",
                (progress, message, job_id),
            )

    # -- inspection --
    async def queue_stats(self) -> list[QueueStats]:
        return await self._run(self._queue_stats)

    def _queue_stats(self) -> list[QueueStats]:
        rows = self.db.execute(
            "SELECT queue,"
            " SUM(state = 'ready' AND eta <= ?), SUM(state = 'ready' AND eta > ?),"
            " SUM(state = 'leased'), SUM(status = 'dead')"
            " FROM qaio_jobs GROUP BY queue ORDER BY queue",
            (time.time(), time.time()),
        ).fetchall()
        return [QueueStats(queue, *(int(n or 0) for n in counts)) for queue, *counts in rows]

    async def list_jobs(self, *, queue: str | None, status: JobStatus | None, limit: int) -> list[tuple[str, JobState]]:
        return await self._run(self._list_jobs, queue, status, limit)

    def _list_jobs(self, queue: str | None, status: JobStatus | None, limit: int) -> list[tuple[str, JobState]]:
        rows = self.db.execute(
            f"SELECT id, {_STATE_COLUMNS} FROM qaio_jobs"
            " WHERE (?1 IS NULL OR queue = ?1) AND (?2 IS NULL OR status = ?2)"
            " ORDER BY enqueued_at DESC LIMIT ?3",
            (queue, None if status is None else status.value, limit),
        ).fetchall()
        return [(row[0], self._state(row[1:])) for row in rows]

    async def requeue(self, job_id: str) -> bool:
        return await self._run(self._requeue, job_id)

    def _requeue(self, job_id: str) -> bool:
        now = time.time()
        with _write(self.db) as db:
            row = db.execute(
                "SELECT body FROM qaio_jobs WHERE id = ? AND status IN ('dead', 'failed')", (job_id,)
            ).fetchone()
            if row is None:
                return False
            db.execute(
                "UPDATE qaio_jobs SET state = 'ready', status = 'queued', body = ?, eta = ?, deliveries = 0,"
                " attempt = 1, enqueued_at = ?, result = NULL, error = NULL, traceback = NULL,"
                " finished_at = NULL, expire_at = NULL, progress = NULL, progress_message = NULL WHERE id = ?",
                (fresh_body(row[0], self._serializer, now), now, now, job_id),
            )
            return True

    async def forget(self, job_ids: Sequence[str]) -> None:
        await self._run(self._forget, list(job_ids))

    def _forget(self, job_ids: list[str]) -> None:
        with _write(self.db) as db:
            db.executemany("DELETE FROM qaio_jobs WHERE id = ? AND status = 'succeeded'", [(i,) for i in job_ids])

    async def purge(self, queue: str) -> int:
        return await self._run(self._purge, queue)

    def _purge(self, queue: str) -> int:
        with _write(self.db) as db:
            return db.execute("DELETE FROM qaio_jobs WHERE queue = ? AND state = 'ready'", (queue,)).rowcount

    async def register_worker(self, info: WorkerInfo, *, ttl: float) -> None:
        data = orjson.dumps(info.to_dict()).decode()
        await self._run(self._register_worker, info.worker_id, data, time.time() + ttl)

    def _register_worker(self, worker_id: str, data: str, until: float) -> None:
        with _write(self.db) as db:
            db.execute(
                "INSERT OR REPLACE INTO qaio_workers (id, info, until) VALUES (?, ?, ?)", (worker_id, data, until)
            )

    async def unregister_worker(self, worker_id: str) -> None:
        await self._run(self._unregister_worker, worker_id)

    def _unregister_worker(self, worker_id: str) -> None:
        with _write(self.db) as db:
            db.execute("DELETE FROM qaio_workers WHERE id = ?", (worker_id,))

    async def workers(self) -> list[WorkerInfo]:
        rows = await self._run(
            lambda: self.db.execute("SELECT info FROM qaio_workers WHERE until > ?", (time.time(),)).fetchall()
        )
        return [WorkerInfo.from_dict(orjson.loads(data)) for (data,) in rows]


class _write:
    """`BEGIN IMMEDIATE ... COMMIT`: takes the write lock up front, so two writers never deadlock."""

    __slots__ = ("db",)

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
