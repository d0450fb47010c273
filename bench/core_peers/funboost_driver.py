"""funboost driver: @boost on BrokerEnum.SQLITE_QUEUE (persist-queue's SQLiteAckQueue, WAL), pushed
with Booster.push, consumed through Booster.consume() in the worker process.

No round trip: funboost's result API (AsyncResult, is_using_rpc_mode) needs Redis, which an embedded
broker is meant to avoid; no bulk enqueue API either.
"""

from __future__ import annotations

import logging
import os
import threading

from _common import VARIANT, mark_done
from funboost import Booster, BoosterParams, BrokerEnum, ConcurrentModeEnum, boost

VIA = "n/a"
ROUNDTRIP_NA = "funboost's result API (rpc mode) needs Redis"

_MODE = ConcurrentModeEnum.THREADING if VARIANT == "threading" else ConcurrentModeEnum.SINGLE_THREAD


@boost(
    BoosterParams(
        queue_name="bench",
        broker_kind=BrokerEnum.SQLITE_QUEUE,
        concurrent_mode=_MODE,
        concurrent_num=int(os.environ.get("BENCH_FUNBOOST_THREADS", "1")),
        log_level=logging.WARNING,
        create_logger_file=False,
    )
)
def noop() -> None:
    """The benchmark's no-op task."""
    mark_done()


def setup() -> Booster:
    return noop


def enqueue(booster: Booster) -> None:
    booster.push()


def worker() -> None:
    noop.consume()
    threading.Event().wait()
