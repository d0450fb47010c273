"""Jobs written with plain commands instead of enqueue.lua (docs/redis.md, "Writing a job with plain
commands"): `RPUSH <intake> <entry>...` per queue, then `ZADD <marker> LT 0 m` per level, sent as one
buffer. A batch goes the same way as one job: one RPUSH of all its entries.

The buffer is RESP around the entries, the commands' fixed parts packed once per key: only the entries
change from call to call, and packing the commands afresh was a tenth of a one-job enqueue's client time.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from typing import Any

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
        run: tuple[Any, ...] = ()
        for job in jobs:
            # A batch is mostly one run of jobs that differ only in id and body: its keys and the
            # entry's fields between those two are made once.
            if job[2:8] != run:  # queue, task, priority, level, eta, enqueued_at
                run, group, job_level = job[2:8], keys.group(job.queue), level(job)
                queued = self.entries.setdefault(group[INTAKE], [])
                self.markers[group[MARKERS + job_level]] = None
                middle = middle_fields(job, job_level)
            queued.append(intake_entry(job.job_id, middle, job.body))

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


def intake_entry(job_id: str, middle: bytes, body: bytes) -> bytes:
    """A job as an intake entry: netstrings of id, task, priority, level, enqueued_at and body, the four
    in the middle being `middle_fields`."""
    encoded = job_id.encode()
    return b"%d:%s%s%d:%s" % (len(encoded), encoded, middle, len(body), body)


def middle_fields(job: Enqueued, job_level: int) -> bytes:
    """The netstrings of task, priority, level (`level(job)`, which the caller has) and enqueued_at."""
    task, enqueued_at = job.task.encode(), repr(job.enqueued_at).encode()
    return b"%d:%s1:%d1:%d%d:%s" % (len(task), task, priority(job), job_level, len(enqueued_at), enqueued_at)


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
