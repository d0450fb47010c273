"""The real worker over every broker: results, retries, dead letters, timeouts, poison, progress."""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time

import pytest

from qaio import App, EnqueueError, JobFailed, JobStatus, Retry, Worker, current_job, report_progress
from qaio.errors import ConfigError
from qaio.protocols import Enqueued


async def drain(app: App, **options: object) -> Worker:
    worker = Worker(app, burst=True, **options)  # type: ignore[arg-type]
    await asyncio.wait_for(worker.run(), 30)
    return worker


async def test_sync_and_async_tasks_return_results(app: App) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    @app.task(queue="other")
    async def greet(name: str) -> dict[str, str]:
        return {"hello": name}

    jobs = [await add.aenqueue(a=1, b=2), await add.aenqueue(3, b=4), await greet.aenqueue(name="qaio")]
    await drain(app)
    assert [await job.aresult(timeout=5) for job in jobs] == [3, 7, {"hello": "qaio"}]
    assert await jobs[0].astatus() is JobStatus.SUCCEEDED


async def test_bulk_enqueue_runs_every_job(app: App) -> None:
    seen: list[int] = []

    @app.task
    async def note(i: int) -> None:
        seen.append(i)

    jobs = await note.aenqueue_many([{"i": i} for i in range(500)])
    assert len(jobs) == 500 and all(job.created for job in jobs)
    worker = await drain(app, concurrency=32)
    assert sorted(seen) == list(range(500)) and worker.stats.succeeded == 500


async def test_retries_with_backoff_then_success(app: App) -> None:
    attempts: list[int] = []

    @app.task(retries=3, backoff=0.05)
    def flaky() -> str:
        attempts.append(current_job().attempt)
        if len(attempts) < 3:
            raise ConnectionError("try again")
        return "done"

    job = await flaky.aenqueue()
    worker = await drain(app)
    assert await job.aresult(timeout=5) == "done"
    assert attempts == [1, 2, 3] and worker.stats.retried == 2
    state = await job.astate()
    assert state is not None and state.attempt == 3


async def test_exhausted_retries_go_to_the_dead_letter_store_and_can_be_requeued(app: App) -> None:
    calls = []

    @app.task(retries=1, backoff=0.01)
    async def broken() -> None:
        calls.append(1)
        if len(calls) <= 2:
            raise ValueError("bad input")

    job = await broken.aenqueue()
    await drain(app)
    state = await job.astate()
    assert state is not None and state.status is JobStatus.DEAD
    assert "retries exhausted after 2 attempts: ValueError: bad input" in (state.error or "")
    assert "ValueError: bad input" in (state.traceback or "")
    with pytest.raises(JobFailed, match="dead"):
        await job.aresult(timeout=1)
    assert await (await app.backend()).requeue(job.id)
    await drain(app)
    assert await job.astatus() is JobStatus.SUCCEEDED and len(calls) == 3


async def test_a_task_without_retries_fails_once(app: App) -> None:
    @app.task
    def once() -> None:
        raise KeyError("missing")

    job = await once.aenqueue()
    await drain(app)
    state = await job.astate()
    assert state is not None and state.status is JobStatus.FAILED and state.error == "KeyError: 'missing'"


async def test_retry_raised_by_the_task_waits_its_delay(app: App) -> None:
    stamps: list[float] = []

    @app.task
    async def polling() -> int:
        stamps.append(time.monotonic())
        if len(stamps) == 1:
            raise Retry(delay=0.3)
        return len(stamps)

    job = await polling.aenqueue()
    await drain(app)
    assert await job.aresult(timeout=5) == 2
    assert stamps[1] - stamps[0] >= 0.29


async def test_async_timeout_cancels_the_coroutine(app: App) -> None:
    cancelled = asyncio.Event()

    @app.task(timeout=0.2)
    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = await slow.aenqueue()
    await drain(app)
    state = await job.astate()
    assert state is not None and state.status is JobStatus.FAILED and "TaskTimeout" in (state.error or "")
    assert cancelled.is_set()


async def test_sync_timeout_fails_the_job_and_ignores_the_late_result(app: App) -> None:
    release = threading.Event()

    @app.task(timeout=0.2)
    def stuck() -> str:
        release.wait(5)
        return "late"

    job = await stuck.aenqueue()
    await drain(app)
    release.set()
    state = await job.astate()
    assert state is not None and state.status is JobStatus.FAILED and "TaskTimeout" in (state.error or "")
    await asyncio.sleep(0.1)
    assert (await job.astate()).status is JobStatus.FAILED  # type: ignore[union-attr]


async def test_a_sync_task_stuck_past_its_timeout_does_not_hold_up_the_next_jobs(app: App) -> None:
    """Its thread cannot be stopped, so the pool grows by one until it returns: the next job starts at
    once instead of waiting behind it, though the worker has one slot."""
    release = threading.Event()

    @app.task(timeout=0.3)
    def hang() -> None:
        release.wait(30)

    @app.task
    def quick() -> str:
        return "ran"

    try:
        stuck, after = await hang.aenqueue(), await quick.aenqueue()
        await drain(app, concurrency=1)
        assert (await stuck.astatus()) is JobStatus.FAILED
        assert await after.aresult(timeout=5) == "ran"
    finally:
        release.set()


#: Envelope fields of the wrong type or range (docs/protocol.md), each in a message of its own.
BAD_FIELDS = (
    b'"priority": "5"',
    b'"priority": 10',
    b'"level": 2.5',
    b'"attempt": 0',
    b'"attempt": true',
    b'"enqueued_at": "nan"',
    b'"eta": "1700000000"',
    b'"expires_at": [1]',
    b'"enqueued_at": null',
    b'"queue": 7',
)


async def test_poison_and_unknown_messages_are_dead_lettered_and_the_worker_goes_on(app: App) -> None:
    @app.task
    async def fine() -> str:
        return "ok"

    backend = await app.backend()
    now = time.time()
    await backend.enqueue(
        [
            Enqueued("garbage", b"\xff not an envelope", "default", "?", enqueued_at=now),
            Enqueued("no-kwargs", b'{"id": "no-kwargs", "task": "x", "kwargs": 3}', "default", "x", enqueued_at=now),
            Enqueued(
                "stranger",
                b'{"id": "stranger", "task": "who.knows", "kwargs": {}}',
                "default",
                "who.knows",
                enqueued_at=now,
            ),
            *(
                Enqueued(
                    f"field-{i}", b'{"id": "field-%d", "task": "x", %b}' % (i, field), "default", "x", enqueued_at=now
                )
                for i, field in enumerate(BAD_FIELDS)
            ),
        ]
    )
    good = await fine.aenqueue()
    worker = await drain(app)
    assert await good.aresult(timeout=5) == "ok"
    reasons = {job_id: (await app.job(job_id).astate()) for job_id in ("garbage", "no-kwargs", "stranger")}
    assert all(state is not None and state.status is JobStatus.DEAD for state in reasons.values())
    assert "cannot decode" in (reasons["garbage"].error or "")  # type: ignore[union-attr]
    assert "kwargs" in (reasons["no-kwargs"].error or "")  # type: ignore[union-attr]
    assert "unknown task 'who.knows'" in (reasons["stranger"].error or "")  # type: ignore[union-attr]
    for i, field in enumerate(BAD_FIELDS):  # given, but not what docs/protocol.md says: never coerced
        state = await app.job(f"field-{i}").astate()
        assert state is not None and state.status is JobStatus.DEAD, field
        assert "bad envelope field: " + field.split(b'"')[1].decode() in (state.error or ""), (field, state.error)
    assert worker.stats.dead == 3 + len(BAD_FIELDS) and worker.stats.succeeded == 1


async def test_a_job_redelivered_too_often_is_poison(app: App) -> None:
    @app.task
    async def crashy() -> None: ...

    job = await crashy.aenqueue()
    backend = await app.backend()
    for _ in range(app.max_deliveries):  # as if that many workers died holding it
        assert len(await backend.claim(["default"], limit=1, lease=0.05, wait=0)) == 1
        await asyncio.sleep(0.1)
        await backend.reap()
    await drain(app)
    state = await job.astate()
    assert state is not None and state.status is JobStatus.DEAD and (state.error or "").startswith("poison")


async def test_a_job_that_waited_past_its_ttl_expires(app: App) -> None:
    ran = []

    @app.task(ttl=0.1)
    async def fresh_only() -> None:
        ran.append(1)

    job = await fresh_only.aenqueue()
    await asyncio.sleep(0.2)
    await drain(app)
    assert await job.astatus() is JobStatus.EXPIRED and ran == []


async def test_progress_reported_from_a_thread_reaches_the_producer(app: App) -> None:
    seen: list[tuple[float | None, str | None]] = []
    go_on = threading.Event()

    @app.task
    def resize() -> str:
        report_progress(0.4, "resizing")
        go_on.wait(5)
        return "done"

    job = await resize.aenqueue()
    worker = asyncio.create_task(drain(app))
    for _ in range(100):
        state = await job.astate()
        if state is not None and state.progress is not None:
            seen.append((state.progress, state.progress_message))
            break
        await asyncio.sleep(0.02)
    go_on.set()
    await worker
    assert seen == [(pytest.approx(0.4), "resizing")]
    assert await job.aresult(timeout=5) == "done"


async def test_cancel_stops_a_running_job(app: App) -> None:
    started = asyncio.Event()

    @app.task
    async def long() -> None:
        started.set()
        await asyncio.sleep(30)

    job = await long.aenqueue()
    worker = asyncio.create_task(drain(app))
    await asyncio.wait_for(started.wait(), 5)
    assert await job.acancel() is True
    stats = await asyncio.wait_for(worker, 10)
    assert await job.astatus() is JobStatus.CANCELLED and stats.stats.cancelled == 1


async def test_per_call_options_priority_delay_and_job_id(app: App) -> None:
    order: list[str] = []

    @app.task
    async def mark(tag: str) -> None:
        order.append(tag)

    await mark.aenqueue(tag="low")
    await mark.with_options(priority=9).aenqueue(tag="high")
    await mark.with_options(delay=0.3).aenqueue(tag="later")
    first = await mark.with_options(job_id="only-once").aenqueue(tag="unique")
    second = await mark.with_options(job_id="only-once").aenqueue(tag="unique")
    assert first.created and not second.created
    await drain(app, concurrency=1)
    assert order == ["high", "low", "unique", "later"]


async def test_bad_input_fails_before_anything_is_written(app: App) -> None:
    @app.task
    def typed(path: str, width: int) -> None: ...

    with pytest.raises(EnqueueError, match="unexpected keyword argument 'height'"):
        await typed.aenqueue(path="a", width=1, height=2)  # type: ignore[call-arg]
    with pytest.raises(EnqueueError, match="missing a required argument"):
        await typed.aenqueue(path="a")  # type: ignore[call-arg]
    with pytest.raises(EnqueueError, match="serialise"):
        await typed.aenqueue(path=object(), width=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="priority"):
        typed.with_options(priority=11)
    for bad in (math.nan, math.inf, -1.0):  # a NaN delay would reach the broker as a null eta
        with pytest.raises(ConfigError, match="delay"):
            typed.with_options(delay=bad)
    for bad in (math.nan, math.inf):
        with pytest.raises(ConfigError, match="eta"):
            typed.with_options(eta=bad)
        with pytest.raises(ConfigError, match="ttl"):
            typed.with_options(ttl=bad)
        with pytest.raises(ConfigError, match="timeout"):
            app.task(timeout=bad)(lambda: None)
    assert await (await app.backend()).queue_stats() == []


async def test_an_exception_whose_text_fails_still_ends_the_job_once(app: App) -> None:
    """The outcome of a job whose exception's str() raises must still be stored: lost, the job would run
    again at every lease and die as poison."""
    runs: list[int] = []

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no text")

    @app.task
    def unprintable() -> None:
        runs.append(1)
        raise Unprintable

    job = await unprintable.aenqueue()
    await drain(app)
    state = await job.astate()
    assert state is not None and state.status is JobStatus.FAILED
    assert state.error == "Unprintable: <str() of the exception failed>" and runs == [1]


async def test_the_sync_api_works_beside_a_worker(app: App) -> None:
    @app.task
    def double(x: int) -> int:
        return 2 * x

    job = await asyncio.to_thread(double.enqueue, x=21)
    await drain(app)
    assert await asyncio.to_thread(job.result, 5) == 42
    assert await asyncio.to_thread(job.status) is JobStatus.SUCCEEDED


async def test_rate_limit_spaces_the_starts_of_a_task(app: App) -> None:
    starts: list[float] = []

    @app.task(rate_limit="5/s")
    async def limited(i: int) -> None:
        starts.append(time.monotonic())

    await limited.aenqueue_many([{"i": i} for i in range(6)])
    await drain(app, concurrency=8)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 6
    # 5 per second: nginx's leaky bucket lets one start each 200 ms. A start delayed on a busy machine
    # shortens the gap after it, never the pace: five gaps take about a second.
    assert starts[-1] - starts[0] >= 0.9, gaps
    assert all(gap >= 0.1 for gap in gaps), gaps


def test_a_bad_rate_limit_fails_at_declaration() -> None:
    app = App("memory://")
    with pytest.raises(ConfigError, match="rate"):

        @app.task(rate_limit="fast")
        def f() -> None: ...
