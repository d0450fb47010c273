"""funboost driver: @boost on REDIS_ACK_ABLE (list + unacked set, its crash-safe Redis broker);
Booster.push, AsyncResult in RPC mode (BLPOP); the worker runs through Booster.consume()."""

from __future__ import annotations

import logging
import threading

from _common import RESULT_TIMEOUT_S, mark_done
from funboost import Booster, BoosterParams, BrokerEnum, ConcurrentModeEnum, boost

VIA = "AsyncResult.is_success() in rpc mode (BLPOP)"


@boost(
    BoosterParams(
        queue_name="bench",
        broker_kind=BrokerEnum.REDIS_ACK_ABLE,
        concurrent_mode=ConcurrentModeEnum.SINGLE_THREAD,
        concurrent_num=1,
        is_using_rpc_mode=True,
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


def roundtrip(booster: Booster) -> None:
    result = booster.push()
    result.set_timeout(int(RESULT_TIMEOUT_S))
    if not result.is_success():
        raise RuntimeError(f"task failed: {result.status_and_result}")


def worker() -> None:
    noop.consume()
    threading.Event().wait()
