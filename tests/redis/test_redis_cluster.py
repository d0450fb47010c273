"""The broker on a real 3-master Redis Cluster (`redis://host:port/0?cluster=1`).

Each queue's keys share the hash tag `{queue}`, so every script runs in one slot; the queues below
land on different masters, which is what makes the test mean something.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.crc import key_slot
from redis_servers import RedisCluster

from qaio import App, JobStatus, Worker
from qaio.brokers.redis import RedisBroker
from qaio.message import Message, encode
from qaio.protocols import Action, Enqueued, JobState, Settlement
from qaio.serializers import get_serializer

SERIALIZER = get_serializer("json")
QUEUES = ("alpha", "beta", "gamma")


def job(queue: str, *, job_id: str = "", priority: int = 0) -> Enqueued:
    message = Message(id=job_id or uuid.uuid4().hex, task="t", queue=queue, priority=priority)
    return Enqueued(message.id, encode(message, SERIALIZER), queue, "t", priority, 0, 0.0, time.time())


@pytest.fixture
async def broker(cluster: RedisCluster) -> AsyncIterator[RedisBroker]:
    broker = RedisBroker(cluster.url + "&prefix=" + uuid.uuid4().hex[:8], serializer=SERIALIZER, result_ttl=60)
    await broker.connect()
    yield broker
    await broker.close()


def test_the_queues_live_on_different_slots() -> None:
    slots = {key_slot(f"qaio:{{{q}}}:ready:0".encode()) for q in QUEUES}
    assert len(slots) == 3


async def test_enqueue_claim_settle_state_on_a_cluster(broker: RedisBroker) -> None:
    assert broker.cluster
    jobs = [job(q, priority=p) for q in QUEUES for p in (1, 5)]
    assert await broker.enqueue(jobs) == [True] * 6
    assert await broker.enqueue([job("beta", job_id=jobs[0].job_id)]) == [False]  # unique across queues
    stats = {s.queue: s.queued for s in await broker.queue_stats()}
    assert stats == {"alpha": 2, "beta": 2, "gamma": 2}

    got = await broker.claim(QUEUES, limit=10, lease=5, wait=0)
    assert sorted(d.job_id for d in got) == sorted(j.job_id for j in jobs)
    for queue in QUEUES:  # within a queue, priority order holds
        mine = [d.job_id for d in got if d.queue == queue]
        assert mine == [j.job_id for j in jobs if j.queue == queue][::-1]
    assert await broker.extend(got, 5) == [True] * 6

    waiter = asyncio.create_task(broker.wait_state(got[0].job_id, timeout=10))
    await asyncio.sleep(0.1)
    state = JobState(JobStatus.SUCCEEDED, task="t", finished_at=time.time(), worker="w")
    await broker.settle([Settlement(d, Action.ACK, state, result=b"7") for d in got])
    pushed = await asyncio.wait_for(waiter, 5)
    assert pushed is not None and pushed.status is JobStatus.SUCCEEDED and pushed.result == 7
    for d in got:
        final = await broker.get_state(d.job_id)
        assert final is not None and final.status is JobStatus.SUCCEEDED and final.queue == d.queue

    # A gateway's forget: the jobs and their index entries (kept by the client, in other slots) go.
    await broker.forget([d.job_id for d in got])
    for d in got:
        assert await broker.get_state(d.job_id) is None
        assert await broker.client.exists(broker.keys.index(d.job_id)) == 0
    assert await broker.enqueue([job("alpha", job_id=got[0].job_id)]) == [True]


async def test_two_producers_of_one_id_create_one_job_on_a_cluster(broker: RedisBroker) -> None:
    """The id is reserved on its own node before the job is written on the queue's: a producer that
    finds a reservation without a job takes it over (its owner may have died between the two steps).
    If the owner was only slow, its late write must leave the job alone, which may be running by then."""
    keys = broker.keys
    first = job("alpha", job_id="contested")
    assert await broker.client.set(keys.index(first.job_id), keys.job("alpha", first.job_id), nx=True)
    # The first producer stalls here, between its two steps; a second one enqueues the same id.
    assert await broker.enqueue([job("alpha", job_id=first.job_id)]) == [True]
    (running,) = await broker.claim(["alpha"], limit=1, lease=30, wait=0)
    assert await broker._enqueue([first], "", registry=False) == [False]  # the first producer's second step
    state = await broker.get_state(first.job_id)
    assert state is not None and state.status is JobStatus.STARTED
    assert await broker.claim(["alpha"], limit=1, lease=30, wait=0) == []
    assert await broker.extend([running], 30) == [True]


async def test_jobs_handed_in_two_slots_at_once_both_reach_the_worker(broker: RedisBroker) -> None:
    """On a Cluster a worker blocks with one BZPOPMIN per slot; when two return together, both popped
    deliveries are its jobs: one dropped would wait for its lease to run out, then count a delivery.
    Whether the second reply is read before the first returns is up to the machine's load, so the pair
    is tried up to three times (one pop per call, as before, could never give both)."""
    producer = RedisBroker(broker.url, serializer=SERIALIZER)
    await producer.connect()
    try:
        for _ in range(3):
            while await broker.claim(["alpha", "gamma"], limit=4, lease=30, wait=0.05):
                pass  # a try before may have left one in an inbox; a claim that finds none registers in both
            jobs = [job("alpha"), job("gamma")]
            await producer.enqueue(jobs)  # each handed to it, into its inbox of that queue
            handed = await broker._block(["alpha", "gamma"], 9, 30_000, 2.0)
            assert all(d.deliveries == 1 for d in handed) and handed
            if len(handed) == 2:
                break
        assert sorted(d.job_id for d in handed) == sorted(j.job_id for j in jobs)
    finally:
        await producer.close()


async def test_cancel_and_blocking_on_a_cluster(broker: RedisBroker) -> None:
    queued, running = job("alpha"), job("gamma")
    await broker.enqueue([queued, running])
    (delivery,) = await broker.claim(["gamma"], limit=1, lease=5, wait=0)
    assert await broker.cancel(queued.job_id) is True
    assert (await broker.get_state(queued.job_id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert await broker.cancel(running.job_id) is True
    assert await broker.extend([delivery], 5) == [False]
    assert await broker.cancel(queued.job_id) is False

    # An idle claim over queues on different masters wakes on whichever gets a job.
    claim = asyncio.create_task(broker.claim(QUEUES, limit=1, lease=5, wait=5))
    await asyncio.sleep(0.2)
    start = time.monotonic()
    await broker.enqueue([job("beta")])
    got = await asyncio.wait_for(claim, 3)
    assert len(got) == 1 and got[0].queue == "beta" and time.monotonic() - start < 0.5


async def test_lease_expiry_and_reap_on_a_cluster(broker: RedisBroker) -> None:
    item = job("beta")
    await broker.enqueue([item])
    (first,) = await broker.claim(["beta"], limit=1, lease=0.05, wait=0)
    await asyncio.sleep(0.1)
    assert await broker.reap() == 1
    (second,) = await broker.claim(["beta"], limit=1, lease=5, wait=0)
    assert second.deliveries == 2
    await broker.settle([Settlement(first, Action.ACK, JobState(JobStatus.FAILED))])  # stale: ignored
    assert (await broker.get_state(item.job_id)).status is JobStatus.STARTED  # type: ignore[union-attr]


async def test_a_worker_runs_jobs_on_a_cluster(cluster: RedisCluster) -> None:
    app = App(cluster.url + "&prefix=" + uuid.uuid4().hex[:8], result_ttl=60)

    @app.task(name="double", queue="alpha")
    async def double(x: int) -> int:
        return 2 * x

    @app.task(name="triple", queue="gamma")
    async def triple(x: int) -> int:
        return 3 * x

    doubles = await double.aenqueue_many([{"x": i} for i in range(50)])
    triples = await triple.aenqueue_many([{"x": i} for i in range(50)])
    stats = await Worker(app, burst=True, concurrency=16).run()
    assert stats.succeeded == 100
    assert await doubles[7].aresult(timeout=5) == 14 and await triples[7].aresult(timeout=5) == 21
    await app.aclose()
