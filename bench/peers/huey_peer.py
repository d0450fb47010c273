"""Huey driver: RedisHuey (blocking BRPOP, notify_result so Result.get waits on BLPOP, not a poll)."""

from __future__ import annotations

from _common import REDIS_URL, RESULT_TIMEOUT_S, mark_done
from huey import RedisHuey
from huey.api import TaskWrapper

VIA = "Result.get(blocking=True) with notify_result=True (BLPOP)"

huey = RedisHuey("bench", url=REDIS_URL, store_none=True, notify_result=True)


@huey.task()
def noop() -> None:
    """The benchmark's no-op task."""
    mark_done()


def setup() -> TaskWrapper:
    huey.storage.conn.ping()
    return noop


def enqueue(task: TaskWrapper) -> None:
    task()


def roundtrip(task: TaskWrapper) -> None:
    task().get(blocking=True, timeout=RESULT_TIMEOUT_S)
