"""Jobs written with plain commands (docs/redis.md): a one-job enqueue (sync, or async in a process
that does not wait for results) puts an entry on its queue's intake instead of calling enqueue.lua,
and every script that reads waiting jobs takes the intake in first. So such a job is what enqueue.lua
would have written: in FIFO order with the others, visible to other processes, counted, cancelled,
purged and run; a retried push writes nothing, and an entry that is not one is dead-lettered while the
worker goes on."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import redis
from redis_servers import RedisServer

from qaio import App, JobStatus, Task, Worker
from qaio.brokers.redis import RedisBroker

INTAKE = "qaio:{default}:intake"
READY = "qaio:{default}:ready:0"


def run_worker(app: App) -> None:
    asyncio.run(Worker(app, burst=True, concurrency=1).run())


def recording(url: str) -> tuple[App, Task[[int], int], list[int]]:
    """An app whose one task, `keep(x)`, returns x and records every x it ran (the list)."""
    app = App(url, result_ttl=60)
    runs: list[int] = []

    @app.task(name="keep")
    def keep(x: int) -> int:
        runs.append(x)
        return x

    return app, keep, runs


def test_a_sync_enqueue_goes_through_the_intake_and_is_a_job_like_any(url: str, raw: redis.Redis) -> None:
    app, other = App(url, result_ttl=60), App(url)

    @app.task(name="square")
    def square(x: int) -> int:
        return x * x

    try:
        first = square.enqueue(x=2)  # the queue's first write: enqueue.lua, which registers the queue
        job = square.enqueue(x=3)
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (1, 1)
        assert raw.zscore("qaio:{default}:marker:0", "m") == 0  # set for an idle worker to wake on
        assert other.job(job.id).status() is JobStatus.QUEUED  # another process, through the index
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (2, 0)  # reading took the entry in
        run_worker(app)
        assert (first.result(timeout=5), job.result(timeout=5)) == (4, 9)
    finally:
        app.close()
        other.close()


async def test_a_batch_goes_through_the_intake_as_one_job_would(url: str, raw: redis.Redis) -> None:
    """A batch of jobs each of which a one-job enqueue would write with plain commands is written the
    same way, sync or async: its entries in one RPUSH, in order. A batch with one job that needs the
    script (here a higher priority) goes whole through enqueue.lua, which takes the intake in first."""
    app, keep, order = recording(url)
    try:
        keep.enqueue(x=0)  # a broker's first write to a queue: enqueue.lua, which registers the queue
        keep.enqueue_many([{"x": 1}, {"x": 2}])
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (1, 2)
        await keep.aenqueue(x=3)  # the loop's own broker: its first write, so the script's
        await keep.aenqueue_many([{"x": 4}, {"x": 5}])
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (4, 2)
        mixed = [keep.with_options(priority=5).message({"x": 6}), keep.with_options(priority=0).message({"x": 7})]
        await app.aenqueue_messages(mixed, fresh_ids=True)
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (8, 0)
        await asyncio.to_thread(run_worker, app)
        assert order == [6, 0, 1, 2, 3, 4, 5, 7]
    finally:
        await app.aclose()


def test_a_waiter_on_a_job_still_in_the_intake_gets_its_result(url: str, raw: redis.Redis) -> None:
    app, other = App(url, result_ttl=60), App(url)
    double = app.task(name="double")(lambda x: 2 * x)
    try:
        double.enqueue(x=0)
        job = double.enqueue(x=21)
        assert raw.llen(INTAKE) == 1
        with ThreadPoolExecutor(1) as pool:
            waiting = pool.submit(other.job(job.id).result, timeout=10)
            time.sleep(0.2)  # the waiter subscribes first (watch.lua), after taking the entry in
            assert raw.llen(INTAKE) == 0
            run_worker(app)
            assert waiting.result() == 42
    finally:
        app.close()
        other.close()


def test_fifo_and_priority_hold_across_plain_and_scripted_writes(url: str) -> None:
    app, keep, order = recording(url)
    try:
        keep.enqueue(x=1)
        keep.enqueue(x=2)
        keep.enqueue_many([{"x": 3}, {"x": 4}])
        keep.enqueue(x=5)
        keep.with_options(priority=5).enqueue(x=0)
        keep.enqueue_many([{"x": 6}])
        keep.enqueue(x=7)
        run_worker(app)
        assert order == list(range(8))
    finally:
        app.close()


def test_fifo_holds_when_the_intake_holds_more_than_a_script_takes_in(url: str, raw: redis.Redis) -> None:
    """A script takes in 1000 entries at most; enqueue.lua's jobs then join the intake behind the rest,
    and one cancelled there is left out when its turn comes."""
    app, keep, order = recording(url)
    try:
        keep.enqueue(x=0)
        keep.enqueue_many([{"x": x} for x in range(1, 4501)])
        keep.with_options(job_id="a").enqueue(x=4501)  # takes in 1-1000; 3500 wait before it
        keep.with_options(job_id="b").enqueue(x=4502)  # takes in 1001-2000
        gone = keep.with_options(job_id="gone").enqueue(x=-1)  # takes in 2001-3000
        keep.enqueue(x=4503)
        assert raw.llen(INTAKE) == 1500 + 3 + 1
        assert gone.cancel()  # takes in 3001-4000: "gone" still waits in the intake
        assert gone.status() is JobStatus.CANCELLED
        run_worker(app)
        assert order == list(range(4504))
    finally:
        app.close()


def test_a_claim_leases_the_intake_head_as_it_takes_it_in(url: str, raw: redis.Redis) -> None:
    """A claim whose batch the ready jobs do not fill leases the intake's head in the same step as it
    takes it in, passing nothing through a ready set; the job is leased like any: it reads as started,
    and once its lease runs out it is reaped and delivered again."""
    app = App(url, result_ttl=60)
    noop = app.task(name="noop")(lambda: None)
    try:
        backend = app.portal.call(app.backend())
        first = noop.enqueue()  # the queue's first write: enqueue.lua, into the ready set
        jobs = [noop.enqueue() for _ in range(3)]
        got = app.portal.call(backend.claim(["default"], limit=3, lease=0.2, wait=0))
        assert [d.job_id for d in got] == [first.id, jobs[0].id, jobs[1].id]
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (0, 1)
        assert jobs[0].status() is JobStatus.STARTED
        time.sleep(0.3)
        assert app.portal.call(backend.reap()) == 3
        again = app.portal.call(backend.claim(["default"], limit=4, lease=5, wait=0))
        assert {d.job_id: d.deliveries for d in again} == {first.id: 2, jobs[0].id: 2, jobs[1].id: 2, jobs[2].id: 1}
    finally:
        app.close()


def test_a_claim_its_ready_jobs_fill_leaves_the_intake_as_it_is(url: str, raw: redis.Redis) -> None:
    """Jobs of priority 0 in the intake come after every ready job, so a claim that the ready jobs fill
    takes nothing in; the next, which they do not fill, leases the intake's head after them."""
    app = App(url, result_ttl=60)
    noop = app.task(name="noop")(lambda: None)
    try:
        backend = app.portal.call(app.backend())
        ready = [noop.enqueue(), *noop.enqueue_many([{}] * 2), noop.with_options(job_id="given").enqueue()]
        waiting = noop.enqueue_many([{}] * 2)
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (4, 2)
        got = app.portal.call(backend.claim(["default"], limit=3, lease=5, wait=0))
        assert [d.job_id for d in got] == [job.id for job in ready[:3]]
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (1, 2)
        got = app.portal.call(backend.claim(["default"], limit=3, lease=5, wait=0))
        assert [d.job_id for d in got] == [ready[3].id, *(job.id for job in waiting)]
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (0, 0)
    finally:
        app.close()


def test_a_job_of_a_higher_priority_skips_the_intake(url: str, raw: redis.Redis) -> None:
    """A claim leases the intake's head in order, which is priority order only while it holds jobs of
    priority 0; so a one-job enqueue of a higher priority goes through enqueue.lua."""
    app, keep, seen = recording(url)
    try:
        keep.enqueue(x=0)
        run_worker(app)
        keep.enqueue(x=1)
        keep.with_options(priority=5).enqueue(x=5)
        assert (raw.llen(INTAKE), raw.zcard(READY)) == (0, 2)  # the script took the first in before it
        keep.enqueue(x=2)
        run_worker(app)
        assert seen == [0, 5, 1, 2]
    finally:
        app.close()


def test_a_job_in_the_intake_is_counted_cancelled_and_purged(url: str, raw: redis.Redis) -> None:
    app, other = App(url), App(url)
    noop = app.task(name="noop")(lambda: None)
    try:
        noop.enqueue()
        waiting = [noop.enqueue() for _ in range(4)]
        assert raw.llen(INTAKE) == 4
        assert other.job(waiting[0].id).cancel()
        assert waiting[0].status() is JobStatus.CANCELLED
        backend = other.portal.call(other.backend())
        noop.enqueue()
        assert [stats.queued for stats in other.portal.call(backend.queue_stats())] == [5]
        noop.enqueue()
        assert other.portal.call(backend.purge("default")) == 6
        assert raw.llen(INTAKE) == 0 and raw.zcard(READY) == 0
        assert waiting[1].status() is None
    finally:
        app.close()
        other.close()


def test_a_retried_push_writes_nothing_and_given_ids_stay_unique(url: str, raw: redis.Redis) -> None:
    app, keep, seen = recording(url)
    try:
        keep.enqueue(x=0)
        job = keep.enqueue(x=1)
        entry = raw.lindex(INTAKE, 0)
        assert entry is not None and job.id.encode() in entry
        raw.rpush(INTAKE, entry)  # as a push retried after its reply was lost: its id is taken when taken in
        once = keep.with_options(job_id="once")  # a given id may be taken already: enqueue.lua checks it
        assert once.enqueue(x=2).created
        assert not once.enqueue(x=3).created
        run_worker(app)
        assert sorted(seen) == [0, 1, 2]
        assert app.job("once").result(timeout=5) == 2
    finally:
        app.close()


def test_an_entry_that_is_not_one_is_dead_lettered_and_the_worker_goes_on(url: str, raw: redis.Redis) -> None:
    app = App(url, result_ttl=60)
    double = app.task(name="double")(lambda x: 2 * x)
    try:
        double.enqueue(x=1)
        raw.rpush(INTAKE, b"3:abc2:xx")  # a producer in another language erred: two fields, not six
        raw.rpush(INTAKE, b"1:a4:nope1:x1:01:01:0")  # priority not a digit
        for stamp in (b"abc", b"nan", b"0x10"):  # enqueued_at not a number: every state read would fail on it
            raw.rpush(INTAKE, b"1:b4:nope1:01:0%d:%b2:{}" % (len(stamp), stamp))
        good = double.enqueue(x=21)
        run_worker(app)
        assert good.result(timeout=5) == 42
        backend = app.portal.call(app.backend())
        dead = app.portal.call(backend.list_jobs(queue="default", status=JobStatus.DEAD, limit=10))
        assert sorted(job_id[:10] for job_id, _ in dead) == ["malformed-"] * 5
        assert all(state.error and "cannot decode" in state.error for _, state in dead), dead
    finally:
        app.close()


def test_an_entry_whose_marker_was_lost_is_still_run(url: str, raw: redis.Redis) -> None:
    """The two commands are not atomic: a producer cut off between them leaves an entry and no wake-up.
    A blocked worker's next claim (its block lasts 2 s at most) takes the entry in and runs it."""
    app = App(url, result_ttl=60)
    double = app.task(name="double")(lambda x: 2 * x)
    worker = Worker(app, concurrency=1)
    thread = threading.Thread(target=asyncio.run, args=(worker.run(),))
    try:
        first = double.enqueue(x=0)
        job = double.enqueue(x=21)
        entry = raw.lpop(INTAKE)
        assert entry is not None
        raw.delete("qaio:{default}:marker:0")
        thread.start()
        assert first.result(timeout=10) == 0
        time.sleep(0.5)  # the worker has claimed what there was and blocks on the markers again
        raw.rpush(INTAKE, entry)  # the push arrived; its ZADD did not
        assert job.result(timeout=10) == 42
    finally:
        worker.stop()
        thread.join(10)
        app.close()


async def test_workers_take_a_backlog_written_one_at_a_time_each_job_once(url: str, raw: redis.Redis) -> None:
    """Three workers claim while a producer writes one job at a time: their claims lease the intake's
    head as they take it in, and wake the next worker while more wait; every job is taken, none twice."""
    app = App(url)
    noop = app.task(name="noop")(lambda: None)
    brokers = [RedisBroker(url, serializer=app.serializer) for _ in range(3)]
    taken: list[str] = []

    async def work(broker: RedisBroker) -> None:
        while got := await broker.claim(["default"], limit=8, lease=30, wait=1):
            taken.extend(delivery.job_id for delivery in got)

    try:
        for broker in brokers:
            await broker.connect()
        ids = [(await noop.aenqueue()).id]  # the queue's first write: enqueue.lua registers it
        workers = [asyncio.create_task(work(broker)) for broker in brokers]
        ids += [(await noop.aenqueue()).id for _ in range(600)]
        await asyncio.gather(*workers)
        assert sorted(taken) == sorted(ids)
        assert (raw.llen(INTAKE), raw.zcard(READY)) == (0, 0)
    finally:
        for broker in brokers:
            await broker.close()
        await app.aclose()


async def test_an_async_enqueue_takes_the_intake_until_the_producer_waits(url: str, raw: redis.Redis) -> None:
    """`aenqueue` writes plain commands too; once this process waits for a result (its reply listener
    runs), its enqueues go through enqueue.lua again, which tells the waiting producer without a watch."""
    app = App(url, result_ttl=60)
    double = app.task(name="double")(lambda x: 2 * x)
    try:
        first = await double.aenqueue(x=1)
        plain = await double.aenqueue(x=2)
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (1, 1)
        await asyncio.to_thread(run_worker, app)
        assert (await first.aresult(timeout=5), await plain.aresult(timeout=5)) == (2, 4)
        scripted = await double.aenqueue(x=3)
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (1, 0)
        await asyncio.to_thread(run_worker, app)
        assert await scripted.aresult(timeout=5) == 6
    finally:
        await app.aclose()


async def test_an_async_plain_write_over_a_dropped_connection_goes_through_the_pool_and_runs_once(
    server_factory: Callable[..., RedisServer],
) -> None:
    server = server_factory()  # its own server: the test kills every connection but its own
    app, keep, runs = recording(server.url)
    admin = redis.Redis(port=server.port)
    try:
        await keep.aenqueue(x=0)
        await keep.aenqueue(x=1)  # opens the lane the next write would take
        assert admin.client_kill_filter(_type="normal", skipme=True) >= 1  # the producer's connections drop
        job = await keep.aenqueue(x=2)
        await asyncio.to_thread(run_worker, app)
        assert await job.aresult(timeout=5) == 2
        assert sorted(runs) == [0, 1, 2]
    finally:
        admin.close()
        await app.aclose()


async def test_a_claim_that_empties_the_ready_set_wakes_the_next_worker_for_the_intake(
    url: str, raw: redis.Redis
) -> None:
    """A claim whose batch the ready jobs fill takes nothing in; if it empties the ready set, the entries
    left on the intake must still wake the next blocked worker (its marker was this claim's wake-up)."""
    app, keep, _ = recording(url)
    broker = RedisBroker(url, serializer=app.serializer)
    await broker.connect()
    try:
        first = keep.with_options(priority=1)  # above 0: enqueue.lua writes it into the ready set
        first.enqueue(x=1)
        first.enqueue(x=2)
        keep.enqueue(x=3)  # an intake entry
        assert (raw.zcard(READY), raw.llen(INTAKE)) == (2, 1)
        raw.delete(*raw.keys("qaio:{default}:marker:*"))  # the wake-up that this claim's worker took
        claimed = await broker.claim(["default"], limit=2, lease=5, wait=0)
        assert len(claimed) == 2 and raw.llen(INTAKE) == 1
        assert raw.zscore("qaio:{default}:marker:0", "m") == 0
    finally:
        await app.aclose()
        await broker.close()
