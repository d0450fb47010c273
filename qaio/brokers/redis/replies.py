"""Finished states pushed to producers: one pub/sub listener per broker multiplexes every waiting call.

A producer's `wait_state` runs `watch.lua`, which reads the job and, unless it has finished, adds this
process's channel to the job. The script that finishes the job publishes the final state on that
channel; the listener hands it to the waiting futures. Pub/sub drops messages while a connection is
down, so after every reconnect the waiters re-read their jobs (and each waiter also re-reads at least
every `RECHECK` seconds, a cheap net under any message lost some other way).

Once the listener runs, the jobs this process enqueues carry its channel from the start (enqueue.lua
writes it), so waiting for one of them needs no `watch.lua` call: the listener expects their ends and
keeps an end that arrives before anyone waits for it (a few, briefly) for the waiter that comes next.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any, TypeVar

import orjson

from qaio.brokers.redis.connection import Lane
from qaio.protocols import JobState
from qaio.serializers import Serializer
from qaio.status import JobStatus

log = logging.getLogger("qaio.redis")

V = TypeVar("V")

#: The most a waiter trusts the push channel before it re-reads its job (seconds).
RECHECK = 5.0
#: Jobs enqueued with our channel whose end has not arrived yet, remembered (oldest forgotten first).
EXPECTED = 65536
#: Ends that arrived before anyone waited for them, kept for the waiter that comes right after.
EARLY = 1024

#: The job hash fields of a state, in the order decode_state reads them (as STATE_FIELDS in _common.lua).
STATE_FIELDS = ("s", "t", "e", "sa", "x", "v", "g")
Fields = list[bytes | None]  #: the STATE_FIELDS as stored in the job hash


def decode_state(fields: Fields, queue: str, serializer: Serializer) -> JobState:
    """A JobState from the job hash's fields; the result is decoded with the app's serializer."""
    status, task, enqueued_at, started_at, extra, result, progress = fields
    assert status is not None
    state = JobState(
        JobStatus(status.decode()),
        task=task.decode() if task else "",
        queue=queue,
        enqueued_at=float(enqueued_at) if enqueued_at else 0.0,
        started_at=float(started_at) if started_at else None,
    )
    if extra:
        data: dict[str, Any] = orjson.loads(extra)
        state.attempt = int(data.get("attempt", state.attempt))
        state.error = data.get("error")
        state.traceback = data.get("traceback")
        state.finished_at = data.get("finished_at")
        state.worker = data.get("worker")
    if progress:
        state.progress, state.progress_message = orjson.loads(progress)
    if result is not None:
        state.result = serializer.loads(result)
    return state


def encode_extra(state: JobState) -> bytes:
    """The settlement's part of a state (what the worker knows), stored as one JSON field 'x'."""
    data: dict[str, Any] = {"attempt": state.attempt}
    for name in ("error", "traceback", "finished_at", "worker"):
        value = getattr(state, name)
        if value is not None:
            data[name] = value
    return orjson.dumps(data)


def parse_frame(data: bytes) -> tuple[str, Fields]:
    """Split a published frame: netstrings `len:bytes`, '-' for a missing field."""
    values: Fields = []
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] == 45:  # '-'
            values.append(None)
            pos += 1
            continue
        colon = data.index(b":", pos)
        size = int(data[pos:colon])
        values.append(data[colon + 1 : colon + 1 + size])
        pos = colon + 1 + size
    job_id = values[0]
    assert job_id is not None
    return job_id.decode(), values[1:]


class Replies:
    """The listener: subscribes this broker's channel and resolves futures keyed by job id."""

    def __init__(self, lane: Lane, channel_prefix: str) -> None:
        self.channel = f"{channel_prefix}{uuid.uuid4().hex}"
        self._lane = lane
        self._waiters: dict[str, set[asyncio.Future[Fields | None]]] = {}
        self._expected: dict[str, None] = {}
        self._early: dict[str, Fields] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None

    async def start(self) -> None:
        """Subscribe (once); returns when the subscription is live, so no publish can be missed."""
        if self._task is None:
            self._ready = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._listen())
        assert self._ready is not None
        await self._ready.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        await self._lane.aclose()

    @property
    def started(self) -> bool:
        """True once this process has waited for a result: its new jobs should then carry the channel."""
        return self._task is not None

    def expect(self, job_id: str) -> None:
        """`job_id` was enqueued with our channel: its end will be pushed without a watch.lua call."""
        _put_bounded(self._expected, job_id, None, EXPECTED)

    def forget(self, job_id: str) -> None:
        """`job_id` was not enqueued after all (its id was taken, or the call failed)."""
        self._expected.pop(job_id, None)
        self._early.pop(job_id, None)

    def expects(self, job_id: str) -> bool:
        return job_id in self._expected or job_id in self._early

    async def wait_pushed(self, job_id: str, timeout: float) -> Fields | None:
        """The pushed end of an expected job, or None when it does not come within `timeout`."""
        early = self._early.pop(job_id, None)
        if early is not None:
            return early
        future = self.add(job_id)
        try:
            await asyncio.wait((future,), timeout=timeout)
            return future.result() if future.done() else None
        finally:
            self.discard(job_id, future)

    def add(self, job_id: str) -> asyncio.Future[Fields | None]:
        future: asyncio.Future[Fields | None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(job_id, set()).add(future)
        return future

    def discard(self, job_id: str, future: asyncio.Future[Fields | None]) -> None:
        futures = self._waiters.get(job_id)
        if futures is not None:
            futures.discard(future)
            if not futures:
                del self._waiters[job_id]

    def _resolve(self, job_id: str, fields: Fields | None) -> None:
        waiters = self._waiters.pop(job_id, None)
        if waiters:
            for future in waiters:
                if not future.done():
                    future.set_result(fields)
        elif fields is not None and job_id in self._expected:
            _put_bounded(self._early, job_id, fields, EARLY)
        if fields is not None:
            self._expected.pop(job_id, None)

    def _recheck_all(self) -> None:
        """After a reconnect: wake every waiter with None, which makes it re-read its job, and expect
        no more pushes for the jobs enqueued so far (theirs may have been lost)."""
        self._expected.clear()
        for job_id in list(self._waiters):
            self._resolve(job_id, None)

    async def _listen(self) -> None:
        pause = 0.05
        assert self._ready is not None
        lane = self._lane
        while True:
            try:
                await lane.call("SUBSCRIBE", self.channel)
                self._recheck_all()
                self._ready.set()
                pause = 0.05
                while True:
                    kind, _, data = await lane.read()
                    if kind == b"message":
                        job_id, fields = parse_frame(data)
                        self._resolve(job_id, fields)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost (the lane dropped it): resubscribe with backoff, recheck
                log.warning("reply listener lost its connection (%s); reconnecting in %.2f s", exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)


def _put_bounded(entries: dict[str, V], key: str, value: V, limit: int) -> None:
    """Insert into a dict kept to `limit` entries by dropping the oldest first."""
    if len(entries) >= limit:
        del entries[next(iter(entries))]
    entries[key] = value
