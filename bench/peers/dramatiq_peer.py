"""Dramatiq driver: RedisBroker with the Results middleware; Actor.send, Message.get_result (BRPOPLPUSH)."""

from __future__ import annotations

import dramatiq
from _common import REDIS_URL, RESULT_TIMEOUT_S, mark_done
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

VIA = "Message.get_result(block=True) (BRPOPLPUSH)"

broker = RedisBroker(url=REDIS_URL)
broker.add_middleware(Results(backend=RedisBackend(url=REDIS_URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True, max_retries=0)
def noop() -> None:
    """The benchmark's no-op actor."""
    mark_done()


def setup() -> dramatiq.Actor:
    broker.client.ping()
    return noop


def enqueue(actor: dramatiq.Actor) -> None:
    actor.send()


def roundtrip(actor: dramatiq.Actor) -> None:
    actor.send().get_result(block=True, timeout=int(RESULT_TIMEOUT_S * 1000))
