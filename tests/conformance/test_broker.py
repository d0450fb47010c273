"""The broker contract, the same tests against every broker (memory, sqlite, redis).

These drive the Broker/ResultStore/Inspector methods directly, so each rule of the contract is pinned
down on its own; tests/conformance/test_worker.py runs the real worker over the same brokers.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from qaio import App, JobStatus
from qaio.message import Message, decode, encode
from qaio.protocols import Action, Backend, Delivery, Enqueued, Forgets, JobState, Settlement, WorkerInfo


def make(
    app: App,
    *,
    queue: str = "default",
    priority: int = 0,
    level: int = 0,
    eta: float = 0.0,
    job_id: str | None = None,
    task: str = "t",
) -> Enqueued:
    now = time.time()
    message = Message(
        id=job_id or uuid.uuid4().hex,
        task=task,
        kwargs={"x": 1},
        queue=queue,
        priority=priority,
        level=level,
        enqueued_at=now,
        eta=eta,
    )
    return Enqueued(message.id, encode(message, app.serializer), queue, task, priority, level, eta, now)


async def claim_one(backend: Backend, queues: tuple[str, ...] = ("default",), **kw: object) -> Delivery | None:
    got = await backend.claim(queues, limit=1, lease=kw.pop("lease", 5.0), wait=0, **kw)  # type: ignore[arg-type]
    return got[0] if got else None


def done(delivery: Delivery, status: JobStatus = JobStatus.SUCCEEDED, result: bytes | None = None) -> Settlement:
    return Settlement(delivery, Action.ACK, JobState(status, finished_at=time.time()), result=result)


async def test_enqueue_claim_settle_roundtrip(app: App) -> None:
    backend = await app.backend()
    job = make(app)
    assert await backend.enqueue([job]) == [True]
    assert (await backend.get_state(job.job_id)).status is JobStatus.QUEUED  # type: ignore[union-attr]
    delivery = await claim_one(backend)
    assert delivery is not None and delivery.job_id == job.job_id and delivery.deliveries == 1
    assert decode(delivery.body, app.serializer).kwargs == {"x": 1}
    assert (await backend.get_state(job.job_id)).status is JobStatus.STARTED  # type: ignore[union-attr]
    assert await claim_one(backend) is None, "a leased job is not handed out twice"
    await backend.settle([done(delivery, result=app.serializer.dumps({"answer": 42}))])
    state = await backend.get_state(job.job_id)
    assert state is not None and state.status is JobStatus.SUCCEEDED and state.result == {"answer": 42}
    assert await claim_one(backend) is None


async def test_an_empty_batch_writes_nothing(app: App) -> None:
    backend = await app.backend()
    assert await backend.enqueue([]) == []
    task = app.task(name="t")(lambda x: x)
    assert await task.aenqueue_many([]) == []
    assert await asyncio.to_thread(task.enqueue_many, []) == []
    assert all(stats.queued == 0 for stats in await backend.queue_stats())


async def test_job_id_is_unique_while_the_job_exists(app: App) -> None:
    backend = await app.backend()
    assert await backend.enqueue([make(app, job_id="same"), make(app, job_id="same")]) == [True, False]
    assert await backend.enqueue([make(app, job_id="same")]) == [False]
    assert await claim_one(backend) is not None
    assert await claim_one(backend) is None


async def test_higher_priority_first_and_fifo_within_a_priority(app: App) -> None:
    backend = await app.backend()
    order = [("a", 0), ("b", 5), ("c", 9), ("d", 5), ("e", 0)]
    for job_id, priority in order:
        await backend.enqueue([make(app, job_id=job_id, priority=priority)])
        await asyncio.sleep(0.002)  # distinct enqueue times, so FIFO is well defined
    claimed = []
    while (delivery := await claim_one(backend)) is not None:
        claimed.append(delivery.job_id)
    assert claimed == ["c", "b", "d", "a", "e"]


async def test_batch_claim_takes_at_most_limit(app: App) -> None:
    backend = await app.backend()
    await backend.enqueue([make(app) for _ in range(10)])
    first = await backend.claim(["default"], limit=4, lease=5, wait=0)
    second = await backend.claim(["default"], limit=100, lease=5, wait=0)
    assert len(first) == 4 and len(second) == 6
    assert not {d.job_id for d in first} & {d.job_id for d in second}


async def test_delayed_job_waits_for_its_eta(app: App) -> None:
    backend = await app.backend()
    job = make(app, eta=time.time() + 0.4)
    await backend.enqueue([job])
    assert await claim_one(backend) is None
    [stats] = [s for s in await backend.queue_stats() if s.queue == "default"]
    assert stats.scheduled == 1 and stats.queued == 0
    got = await backend.claim(["default"], limit=1, lease=5, wait=2.0)
    assert [d.job_id for d in got] == [job.job_id]


async def test_claim_blocks_until_a_job_arrives(app: App) -> None:
    backend = await app.backend()
    job = make(app)

    async def later() -> None:
        await asyncio.sleep(0.2)
        await (await app.backend()).enqueue([job])

    producer = asyncio.create_task(later())
    started = time.monotonic()
    got = await backend.claim(["default"], limit=1, lease=5, wait=3.0)
    await producer
    assert [d.job_id for d in got] == [job.job_id]
    assert time.monotonic() - started < 2.0, "claim returned when the job came, not at the end of its wait"


async def test_claim_respects_queues_and_levels(app: App) -> None:
    backend = await app.backend()
    await backend.enqueue(
        [
            make(app, queue="a", job_id="in-a"),
            make(app, queue="b", job_id="in-b"),
            make(app, queue="a", level=7, job_id="heavy"),
        ]
    )
    assert await claim_one(backend, ("c",)) is None
    light = await backend.claim(["a"], limit=10, lease=5, max_level=3, wait=0)
    assert [d.job_id for d in light] == ["in-a"]
    heavy = await backend.claim(["a", "b"], limit=10, lease=5, max_level=9, wait=0)
    assert sorted(d.job_id for d in heavy) == ["heavy", "in-b"]


async def test_expired_lease_is_reaped_and_delivered_again(app: App) -> None:
    backend = await app.backend()
    job = make(app)
    await backend.enqueue([job])
    first = await claim_one(backend, lease=0.2)
    assert first is not None
    await asyncio.sleep(0.3)
    assert await backend.reap() == 1
    second = await claim_one(backend)
    assert second is not None and second.job_id == job.job_id and second.deliveries == 2
    # The first worker's late outcome is ignored: the job belongs to the second one now.
    await backend.settle([done(first, JobStatus.FAILED)])
    assert (await backend.get_state(job.job_id)).status is JobStatus.STARTED  # type: ignore[union-attr]
    await backend.settle([done(second)])
    assert (await backend.get_state(job.job_id)).status is JobStatus.SUCCEEDED  # type: ignore[union-attr]


async def test_extend_keeps_the_lease_and_reports_lost_ones(app: App) -> None:
    backend = await app.backend()
    await backend.enqueue([make(app), make(app)])
    kept = await claim_one(backend, lease=0.3)
    lost = await claim_one(backend, lease=0.3)
    assert kept is not None and lost is not None
    for _ in range(3):
        await asyncio.sleep(0.15)
        assert (await backend.extend([kept], 0.3)) == [True]
    assert await backend.reap() == 1, "only the lease that was not extended expired"
    assert await backend.extend([kept, lost], 5) == [True, False]


async def test_release_returns_the_job_without_counting_a_delivery(app: App) -> None:
    backend = await app.backend()
    await backend.enqueue([make(app)])
    first = await claim_one(backend)
    assert first is not None
    await backend.settle([Settlement(first, Action.RELEASE)])
    again = await claim_one(backend)
    assert again is not None and again.job_id == first.job_id and again.deliveries == 1


async def test_retry_puts_the_next_attempt_back_at_its_eta(app: App) -> None:
    backend = await app.backend()
    job = make(app)
    await backend.enqueue([job])
    delivery = await claim_one(backend)
    assert delivery is not None
    nxt = decode(delivery.body, app.serializer).next_attempt(time.time() + 0.3)
    state = JobState(JobStatus.RETRYING, attempt=2, error="ValueError: x")
    await backend.settle(
        [Settlement(delivery, Action.RETRY, state, retry_body=encode(nxt, app.serializer), retry_eta=nxt.eta)]
    )
    current = await backend.get_state(job.job_id)
    assert current is not None and current.status is JobStatus.RETRYING and current.error == "ValueError: x"
    assert await claim_one(backend) is None, "not before its eta"
    got = await backend.claim(["default"], limit=1, lease=5, wait=2.0)
    assert len(got) == 1 and got[0].deliveries == 1
    assert decode(got[0].body, app.serializer).attempt == 2


async def test_dead_letter_keeps_the_reason_and_can_be_requeued(app: App) -> None:
    backend = await app.backend()
    job = make(app)
    await backend.enqueue([job])
    delivery = await claim_one(backend)
    assert delivery is not None
    await backend.settle([Settlement(delivery, Action.DEAD, JobState(JobStatus.DEAD, error="poison: bad"))])
    state = await backend.get_state(job.job_id)
    assert state is not None and state.status is JobStatus.DEAD and state.error == "poison: bad"
    assert [s.dead for s in await backend.queue_stats() if s.queue == "default"] == [1]
    assert await claim_one(backend) is None
    assert await backend.requeue(job.job_id) is True
    assert await backend.requeue(job.job_id) is False, "only dead or failed jobs are requeued"
    again = await claim_one(backend)
    assert again is not None and again.job_id == job.job_id and again.deliveries == 1


async def test_cancel_a_queued_job_and_flag_a_running_one(app: App) -> None:
    backend = await app.backend()
    queued, running = make(app), make(app)
    await backend.enqueue([running])
    delivery = await claim_one(backend)
    assert delivery is not None
    await backend.enqueue([queued])
    assert await backend.cancel(queued.job_id) is True
    assert (await backend.get_state(queued.job_id)).status is JobStatus.CANCELLED  # type: ignore[union-attr]
    assert await claim_one(backend) is None
    assert await backend.cancel(running.job_id, running=False) is False, "withdraw takes only unclaimed jobs"
    assert await backend.extend([delivery], 5) == [True]
    assert await backend.cancel(running.job_id) is True
    assert await backend.extend([delivery], 5) == [False], "the worker learns of the cancel at its heartbeat"
    await backend.settle([done(delivery, JobStatus.CANCELLED)])
    assert await backend.cancel(running.job_id) is False, "a finished job cannot be cancelled"


async def test_progress_is_visible_to_producers(app: App) -> None:
    backend = await app.backend()
    job = make(app)
    await backend.enqueue([job])
    await claim_one(backend)
    await backend.set_progress(job.job_id, 0.4, "resizing")
    state = await backend.get_state(job.job_id)
    assert state is not None and state.progress == pytest.approx(0.4) and state.progress_message == "resizing"


async def test_wait_state_returns_when_the_job_finishes(app: App) -> None:
    backend = await app.backend()
    job = make(app)
    await backend.enqueue([job])
    delivery = await claim_one(backend)
    assert delivery is not None
    timed_out = await backend.wait_state(job.job_id, timeout=0.1)
    assert timed_out is not None and timed_out.status is JobStatus.STARTED

    async def finish() -> None:
        await asyncio.sleep(0.1)
        await backend.settle([done(delivery, result=app.serializer.dumps("ok"))])

    finisher = asyncio.create_task(finish())
    started = time.monotonic()
    state = await backend.wait_state(job.job_id, timeout=5)
    await finisher
    assert state is not None and state.status is JobStatus.SUCCEEDED and state.result == "ok"
    assert time.monotonic() - started < 1.0
    assert await backend.wait_state("no-such-job", timeout=0.05) is None


async def test_results_expire_after_their_ttl(url: str) -> None:
    app = App(url, result_ttl=0.3)
    try:
        backend = await app.backend()
        job = make(app)
        await backend.enqueue([job])
        delivery = await claim_one(backend)
        assert delivery is not None
        await backend.settle([done(delivery)])
        assert await backend.get_state(job.job_id) is not None
        await asyncio.sleep(1.2)
        await backend.reap()
        assert await backend.get_state(job.job_id) is None
        assert await backend.enqueue([make(app, job_id=job.job_id)]) == [True], "the id is free again"
    finally:
        await app.aclose()


async def test_forget_deletes_succeeded_jobs_only(app: App) -> None:
    """What a gateway does once it has answered: the succeeded job goes; failed and waiting ones stay."""
    backend = await app.backend()
    assert isinstance(backend, Forgets)
    ok, failed, waiting = make(app), make(app), make(app)
    await backend.enqueue([ok, failed])
    statuses = {ok.job_id: JobStatus.SUCCEEDED, failed.job_id: JobStatus.FAILED}
    deliveries = await backend.claim(("default",), limit=2, lease=5, wait=0)
    await backend.settle([done(d, statuses[d.job_id]) for d in deliveries])
    await backend.enqueue([waiting])
    await backend.forget([ok.job_id, failed.job_id, waiting.job_id, "no-such-job"])
    assert await backend.get_state(ok.job_id) is None
    assert (await backend.get_state(failed.job_id)).status is JobStatus.FAILED  # type: ignore[union-attr]
    assert (await backend.get_state(waiting.job_id)).status is JobStatus.QUEUED  # type: ignore[union-attr]
    assert await backend.enqueue([make(app, job_id=ok.job_id)]) == [True], "its id is free again"


async def test_purge_drops_waiting_jobs_only(app: App) -> None:
    backend = await app.backend()
    await backend.enqueue([make(app) for _ in range(5)])
    running = await claim_one(backend)
    assert await backend.purge("default") == 4
    assert await claim_one(backend) is None
    assert running is not None and await backend.extend([running], 5) == [True]


async def test_queue_stats_count_each_state(app: App) -> None:
    backend = await app.backend()
    await backend.enqueue([make(app, queue="q") for _ in range(3)] + [make(app, queue="q", eta=time.time() + 60)])
    await backend.claim(["q"], limit=1, lease=5, wait=0)
    [stats] = [s for s in await backend.queue_stats() if s.queue == "q"]
    assert (stats.queued, stats.scheduled, stats.running, stats.dead) == (2, 1, 1, 0)


async def test_list_jobs_filters_by_queue_and_status(app: App) -> None:
    backend = await app.backend()
    await backend.enqueue([make(app, queue="a", job_id="j1"), make(app, queue="b", job_id="j2")])
    await backend.claim(["a"], limit=1, lease=5, wait=0)
    assert [job_id for job_id, _ in await backend.list_jobs(queue="a", status=None, limit=10)] == ["j1"]
    started = await backend.list_jobs(queue=None, status=JobStatus.STARTED, limit=10)
    assert [job_id for job_id, _ in started] == ["j1"]


async def test_worker_registry_forgets_silent_workers(app: App) -> None:
    backend = await app.backend()
    now = time.time()
    await backend.register_worker(WorkerInfo("w1", "host", 1, ("default",), 4, now, now), ttl=30)
    await backend.register_worker(WorkerInfo("w2", "host", 2, ("default",), 4, now, now), ttl=0.2)
    await asyncio.sleep(0.4)
    assert [w.worker_id for w in await backend.workers()] == ["w1"]
    await backend.unregister_worker("w1")
    assert await backend.workers() == []
