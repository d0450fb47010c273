"""The Inspector role of RedisBroker: counts, listings, requeue, purge, the worker registry.

Never on the per-job path, so plain pipelines of reads are enough here; the writes that must be
atomic (requeue, purge) are scripts like the rest.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from qaio.brokers.redis.keys import GROUP_SUFFIXES, LEVELS, Keys
from qaio.brokers.redis.replies import STATE_FIELDS, decode_state
from qaio.brokers.redis.scripts import Scripts
from qaio.message import fresh_body
from qaio.protocols import JobState, QueueStats, WorkerInfo
from qaio.serializers import Serializer
from qaio.status import JobStatus

#: Jobs dropped per purge script call.
PURGE_CHUNK = 5000

_DELAYED, _LEASED, _DONE, _DEAD = (GROUP_SUFFIXES.index(name) for name in ("delayed", "leased", "done", "dead"))

#: Where list_jobs looks for each status (indexes into a queue's key group).
_SOURCES: dict[JobStatus, tuple[int, ...]] = {
    JobStatus.QUEUED: (*range(LEVELS), _DELAYED),
    JobStatus.RETRYING: (*range(LEVELS), _DELAYED),
    JobStatus.STARTED: (_LEASED,),
    JobStatus.DEAD: (_DEAD,),
}
_ALL_SOURCES = (*range(LEVELS), _DELAYED, _LEASED, _DONE, _DEAD)


class InspectorMixin:
    """Needs the broker's client, keys, scripts and queue list (see RedisBroker)."""

    keys: Keys
    cluster: bool
    result_ttl: float
    _index_arg: str
    _ttl_ms: int
    _serializer: Serializer

    @property
    def client(self) -> Any:
        raise NotImplementedError

    @property
    def scripts(self) -> Scripts:
        raise NotImplementedError

    async def _all_queues(self) -> list[str]:
        raise NotImplementedError

    async def _locate(self, job_id: str, *, cached: bool = True) -> str | None:
        raise NotImplementedError

    def _slots(self, queues: Iterable[str]) -> list[list[str]]:
        raise NotImplementedError

    async def queue_stats(self) -> list[QueueStats]:
        queues = await self._all_queues()
        await self._absorb(queues)
        now = int(time.time() * 1000)
        since = now - self._ttl_ms
        async with self.client.pipeline(transaction=False) as pipe:
            for queue in queues:
                group = self.keys.group(queue)
                for level in range(LEVELS):
                    pipe.zcard(group[level])
                pipe.zcount(group[_DELAYED], "-inf", now)
                pipe.zcount(group[_DELAYED], f"({now}", "+inf")
                pipe.zcard(group[_LEASED])
                pipe.zcount(group[_DEAD], since, "+inf")
                pipe.zcount(group[_DONE], since, "+inf")
            counts = await pipe.execute()
        stats = []
        width = LEVELS + 5
        for i, queue in enumerate(queues):
            row = counts[i * width : (i + 1) * width]
            queued = sum(row[: LEVELS + 1])
            scheduled, running, dead, done = row[LEVELS + 1 :]
            if queued or scheduled or running or dead or done:
                stats.append(QueueStats(queue, queued, scheduled, running, dead))
        return stats

    async def list_jobs(self, *, queue: str | None, status: JobStatus | None, limit: int) -> list[tuple[str, JobState]]:
        """The newest jobs (by enqueue time) of a queue or all, optionally of one status; reads at most
        `limit` entries of each index, so it stays cheap on long queues."""
        queues = [queue] if queue is not None else await self._all_queues()
        sources = _ALL_SOURCES if status is None else _SOURCES.get(status, (_DONE,))
        await self._absorb(queues)
        async with self.client.pipeline(transaction=False) as pipe:
            for name in queues:
                group = self.keys.group(name)
                for source in sources:
                    pipe.zrange(group[source], 0, limit - 1, desc=source in (_DONE, _DEAD))
            found = await pipe.execute()
        ids: list[tuple[str, str]] = []
        position = 0
        for name in queues:
            for _ in sources:
                ids.extend((name, raw.decode()) for raw in found[position])
                position += 1
        if not ids:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for name, job_id in ids:
                pipe.hmget(self.keys.job(name, job_id), *STATE_FIELDS)
            rows = await pipe.execute()
        jobs = [
            (job_id, decode_state(fields, name, self._serializer))
            for (name, job_id), fields in zip(ids, rows, strict=True)
            if fields[0] is not None
        ]
        if status is not None:
            jobs = [(job_id, state) for job_id, state in jobs if state.status is status]
        jobs.sort(key=lambda row: row[1].enqueued_at, reverse=True)
        return jobs[:limit]

    async def requeue(self, job_id: str) -> bool:
        job_key = await self._locate(job_id, cached=False)
        if job_key is None:
            return False
        status, body = await self.client.hmget(job_key, "s", "b")
        if status not in (b"dead", b"failed") or body is None:
            return False
        now = time.time()
        queue = Keys.queue_of(job_key)
        done = await self.scripts.requeue(
            [self.keys.head(queue)], [self._index_arg, job_id, fresh_body(body, self._serializer, now), now]
        )
        if done and self.cluster:
            await self.client.persist(self.keys.index(job_id))
        return bool(done)

    async def _absorb(self, queues: Sequence[str]) -> int:
        """Take in the queues' intakes (jobs written with plain commands), so reads see those jobs;
        how many entries that took."""
        taken = 0
        for slot in self._slots(queues):
            while count := await self.scripts.absorb([self.keys.head(queue) for queue in slot], [self._index_arg]):
                taken += count
        return taken

    async def purge(self, queue: str) -> int:
        dropped = 0
        keys = [self.keys.head(queue)]
        while True:
            ids = await self.scripts.purge(keys, [self._index_arg, PURGE_CHUNK])
            dropped += len(ids)
            if self.cluster and ids:
                await self._delete_index([job_id.decode() for job_id in ids])
            if not ids:  # not `< PURGE_CHUNK`: each call takes in at most 1000 intake entries first
                return dropped

    async def _delete_index(self, job_ids: Sequence[str]) -> None:
        async with self.client.pipeline() as pipe:
            for job_id in job_ids:
                pipe.delete(self.keys.index(job_id))
            await pipe.execute()

    async def register_worker(self, info: WorkerInfo, *, ttl: float) -> None:
        until = int((time.time() + ttl) * 1000)
        async with self.client.pipeline(transaction=not self.cluster) as pipe:
            pipe.hset(self.keys.workers_info, info.worker_id, orjson.dumps(info.to_dict()))
            pipe.zadd(self.keys.workers_seen, {info.worker_id: until})
            await pipe.execute()

    async def unregister_worker(self, worker_id: str) -> None:
        async with self.client.pipeline(transaction=not self.cluster) as pipe:
            pipe.hdel(self.keys.workers_info, worker_id)
            pipe.zrem(self.keys.workers_seen, worker_id)
            await pipe.execute()

    async def workers(self) -> list[WorkerInfo]:
        now = int(time.time() * 1000)
        gone = await self.client.zrangebyscore(self.keys.workers_seen, "-inf", f"({now}")
        if gone:  # registrations that ran out: their workers died without unregistering
            await self.client.hdel(self.keys.workers_info, *gone)
            await self.client.zremrangebyscore(self.keys.workers_seen, "-inf", f"({now}")
        alive = await self.client.zrangebyscore(self.keys.workers_seen, now, "+inf")
        if not alive:
            return []
        rows = await self.client.hmget(self.keys.workers_info, alive)
        return [WorkerInfo.from_dict(orjson.loads(row)) for row in rows if row is not None]
