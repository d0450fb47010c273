"""Jobs written with plain commands instead of enqueue.lua (docs/redis.md, "Writing a job with plain
commands"): `RPUSH <intake> <entry>...` per queue, then `ZADD <marker> LT 0 m` per level, sent as one
buffer. A batch goes the same way as one job: one RPUSH of all its entries.

The buffer is RESP around the entries, the commands' fixed parts packed once per key: only the entries
change from call to call, and packing the commands afresh was a tenth of a one-job enqueue's client time.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from redis.asyncio.client import Pipeline

from qaio.brokers.redis.keys import GROUP_SUFFIXES, LEVELS, Keys
from qaio.protocols import Enqueued

INTAKE, MARKERS = GROUP_SUFFIXES.index("intake"), GROUP_SUFFIXES.index("marker:0")


class PlainWrite:
    """The plain commands that write `jobs`: an RPUSH of each intake's entries, in order, then a ZADD of
    each marker (after the entries, so a worker the marker wakes finds them)."""

    __slots__ = ("entries", "markers")

    def __init__(self, keys: Keys, jobs: Iterable[Enqueued]) -> None:
        self.entries: dict[str, list[bytes]] = {}
        self.markers: dict[str, None] = {}
        queue = None
        for job in jobs:
            if job.queue != queue:  # a batch is mostly one queue: its keys are looked up once
                queue, group = job.queue, keys.group(job.queue)
                queued = self.entries.setdefault(group[INTAKE], [])
            job_level = level(job)
            queued.append(intake_entry(job, job_level))
            self.markers[group[MARKERS + job_level]] = None

    @property
    def replies(self) -> int:
        return len(self.entries) + len(self.markers)

    def packed(self) -> bytes:
        """All the commands as one RESP buffer."""
        parts: list[bytes] = []
        for intake, queued in self.entries.items():
            parts.append(b"*%d\r\n%s" % (len(queued) + 2, _rpush(intake)))
            parts += [b"$%d\r\n%s\r\n" % (len(entry), entry) for entry in queued]
        parts += map(_zadd, self.markers)
        return b"".join(parts)

    def queue_on(self, pipe: Pipeline) -> None:
        """The same commands on a redis-py pipeline (the pooled client's, which retries across reconnects)."""
        for intake, queued in self.entries.items():
            pipe.rpush(intake, *queued)
        for marker in self.markers:
            pipe.zadd(marker, {"m": 0}, lt=True)


def intake_entry(job: Enqueued, job_level: int) -> bytes:
    """The job as an intake entry: netstrings of id, task, priority, level (`level(job)`, which the
    caller has), enqueued_at and body."""
    job_id, task, enqueued_at, body = job.job_id.encode(), job.task.encode(), repr(job.enqueued_at).encode(), job.body
    return b"%d:%s%d:%s1:%d1:%d%d:%s%d:%s" % (
        len(job_id),
        job_id,
        len(task),
        task,
        priority(job),
        job_level,
        len(enqueued_at),
        enqueued_at,
        len(body),
        body,
    )


def priority(job: Enqueued) -> int:
    return min(max(job.priority, 0), 9)


def level(job: Enqueued) -> int:
    return min(max(job.level, 0), LEVELS - 1)


@lru_cache(maxsize=1024)
def _rpush(intake: str) -> bytes:
    """RPUSH and the intake key, without the command's leading count (it depends on the entries)."""
    return _bulk(b"RPUSH") + _bulk(intake.encode())


@lru_cache(maxsize=1024)
def _zadd(marker: str) -> bytes:
    return b"*5\r\n" + b"".join(_bulk(part) for part in (b"ZADD", marker.encode(), b"LT", b"0", b"m"))


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)
